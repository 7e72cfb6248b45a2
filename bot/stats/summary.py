"""The `/device stats` summary: every count the chart draws, in words, and where it came from."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from bot.blocks import context, section
from bot.dates import utc_minute
from bot.stats.counts import (
    CHROME_DEVICE_FIELDS,
    PATCH_AGES,
    PATCH_OLD,
    PATCH_UNKNOWN,
    STALE_DAYS,
    FleetStats,
    version_key,
)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "–"


def _listing(items: Iterable[tuple[str, int]], limit: int = 6) -> str:
    items = list(items)
    shown = " · ".join(f"{k} *{n:,}*" for k, n in items[:limit])
    rest = sum(n for _, n in items[limit:])
    return shown + (f" · other *{rest:,}*" if rest else "")


def _by_count(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _stale_line(what: str, stale: int, active: int) -> str:
    """`• <what> in STALE_DAYS days: *n* of m active (p %)`."""
    return (
        f"• {what} in {STALE_DAYS} days: *{stale:,}* of {active:,} active ({_pct(stale, active)})"
    )


def summary_lines(stats: FleetStats) -> list[str]:
    """The text beside the chart: every count it draws, in words."""
    lines: list[str] = []
    if stats.chrome_configured:
        lines.append(f"*Chrome OS: {stats.chrome_total:,} devices*")
        lines.append("• by status: " + _listing(_by_count(stats.chrome_status)))
        lines.append(_stale_line("not synced", stats.chrome_stale, stats.chrome_active))
        newest = sorted(stats.chrome_milestones.items(), key=lambda kv: -kv[0])
        lines.append(
            "• versions in service: "
            + _listing((f"M{m}" if m else "unknown", n) for m, n in newest)
        )
        month = stats.month
        expired = sum(n for m, n in stats.chrome_expiry.items() if m != "unknown" and m <= month)
        year, _, mm = month.partition("-")
        in_a_year = f"{int(year) + 1}-{mm}"
        soon = sum(
            n for m, n in stats.chrome_expiry.items() if m != "unknown" and month < m <= in_a_year
        )
        upcoming = sorted(
            (m, n) for m, n in stats.chrome_expiry.items() if m != "unknown" and m > month
        )
        nxt = f" (next: {upcoming[0][0]}, *{upcoming[0][1]:,}*)" if upcoming else ""
        unknown = stats.chrome_expiry.get("unknown", 0)
        lines.append(
            f"• auto-update expiry: expired *{expired:,}* · within a year *{soon:,}*{nxt}"
            f" · later *{sum(n for _, n in upcoming) - soon:,}*"
            + (f" · unknown *{unknown:,}*" if unknown else "")
        )
    else:
        lines.append("*Chrome OS*: not configured")
    if stats.android_configured:
        lines.append(f"*Android: {stats.android_total:,} devices*")
        lines.append("• by state: " + _listing(_by_count(stats.android_status)))
        lines.append(_stale_line("no status report", stats.android_stale, stats.android_active))
        versions = sorted(
            stats.android_versions.items(), key=lambda kv: version_key(kv[0]), reverse=True
        )
        lines.append("• versions in hand: " + _listing(versions, limit=8))
        ages = [(a[0], stats.android_patch_age.get(a[0], 0)) for a in PATCH_AGES]
        ages += [(PATCH_OLD[0], stats.android_patch_age.get(PATCH_OLD[0], 0))]
        if stats.android_patch_age.get(PATCH_UNKNOWN[0]):
            ages.append((PATCH_UNKNOWN[0], stats.android_patch_age[PATCH_UNKNOWN[0]]))
        lines.append("• security patch level: " + _listing(ages, limit=4))
        patches = sorted(stats.android_patches.items(), reverse=True)
        lines.append("• newest patch levels: " + _listing(patches, limit=4))
    else:
        lines.append("*Android*: not configured")
    return lines


def source_note(stats: FleetStats, cached_until: float | None) -> str:
    """Where the numbers come from and how fresh they are."""
    parts = [f"Counted {utc_minute(stats.taken_at)}"]
    if stats.chrome_configured:
        parts.append(
            f"Chrome OS: {stats.chrome_pages:,} pages of the Directory API"
            f" (projection=BASIC, {len(CHROME_DEVICE_FIELDS)} fields)"
        )
    if stats.android_configured and stats.android_synced_at:
        parts.append(
            f"Android: the bot's device index, refreshed {utc_minute(stats.android_synced_at)}"
        )
    if cached_until is not None:
        parts.append(f"kept until {utc_minute(cached_until)}")
    return ". ".join(parts) + "."


def summary_blocks(stats: FleetStats, cached_until: float | None) -> list[dict[str, Any]]:
    head = (
        f":bar_chart: *Fleet overview*: {stats.chrome_total + stats.android_total:,} devices;"
        " the chart is below."
    )
    return [
        section(head),
        section("\n".join(summary_lines(stats))),
        context(source_note(stats, cached_until)),
    ]
