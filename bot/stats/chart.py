"""The `/device stats` chart: four panels drawn in memory as one PNG (matplotlib's Agg canvas)."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from typing import Any

from bot.dates import utc_minute
from bot.stats.counts import (
    PATCH_AGES,
    PATCH_OLD,
    PATCH_UNKNOWN,
    STALE_DAYS,
    FleetStats,
    version_key,
)

#: the chart: 1200 × 900 px, four panels, fonts large enough for Slack's preview
WIDTH, HEIGHT, DPI = 1200, 900, 100
MAX_BARS = 12  # per panel; the rest are grouped
TEXT, TITLE, HEAD = 14, 18, 21  # font sizes (points; 1 pt = 1.4 px at this DPI)
CHROME_COLOR, ANDROID_COLOR, STALE_COLOR = "#1a73e8", "#3ddc84", "#c62828"
EXPIRY_LEGEND = (("expired", "#c62828"), ("< 1 year", "#f9a825"), ("later", "#2e7d32"))
#: the chart's shorter legend labels
SHORT = {
    "≤ 90 days": "≤ 90 d",
    "91–365 days": "91–365 d",
    "over a year": "> 1 year",
    "unknown": "?",
}


def _grouped(counts: Counter[Any], keep: int, key: Callable[[Any], Any]) -> list[tuple[str, int]]:
    """The `keep` largest entries in `key` order, the rest as one "other" entry."""
    top = sorted(counts.items(), key=lambda kv: -kv[1])
    shown = sorted(top[:keep], key=lambda kv: key(kv[0]))
    rest = sum(n for _, n in top[keep:])
    return [(str(k), n) for k, n in shown] + ([("other", rest)] if rest else [])


def _milestones(stats: FleetStats) -> list[tuple[str, int]]:
    """Milestones newest last; the oldest beyond MAX_BARS - 1 grouped as "≤ Mnn"."""
    known = sorted((m, n) for m, n in stats.chrome_milestones.items() if m)
    bars = [(str(m), n) for m, n in known]
    if len(bars) > MAX_BARS - 1:
        cut = len(bars) - (MAX_BARS - 2)
        older = sum(n for _, n in known[:cut])
        bars = [(f"≤{known[cut - 1][0]}", older), *bars[cut:]]
    if stats.chrome_milestones.get(0):
        bars.append(("unknown", stats.chrome_milestones[0]))
    return bars


def _expiry(stats: FleetStats) -> tuple[list[tuple[str, int]], str]:
    """Expiry bars by month (by year when there are too many months), and the unit."""
    months = sorted((m, n) for m, n in stats.chrome_expiry.items() if m != "unknown")
    unit = "month"
    if len(months) > 2 * MAX_BARS:
        years: Counter[str] = Counter()
        for m, n in months:
            years[m[:4]] += n
        months = sorted(years.items())
        unit = "year"
    unknown = stats.chrome_expiry.get("unknown", 0)
    return months + ([("unknown", unknown)] if unknown else []), unit


def _expiry_color(label: str, now_month: str) -> str:
    if label == "unknown":
        return PATCH_UNKNOWN[1]
    if label < now_month[: len(label)] or label == now_month[: len(label)] and len(label) == 7:
        return "#c62828"  # expired (or ending this month)
    year, _, month = now_month.partition("-")
    in_a_year = f"{int(year) + 1}-{month}"
    return "#f9a825" if label <= in_a_year[: len(label)] else "#2e7d32"


def _label_bars(ax: Any, bars: Any, *, horizontal: bool = False, size: int = 0) -> None:
    for bar in bars:
        value = bar.get_width() if horizontal else bar.get_height()
        if not value:
            continue
        if horizontal:
            ax.annotate(
                f"{int(value):,}",
                (bar.get_x() + value, bar.get_y() + bar.get_height() / 2),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=size or TEXT,
            )
        else:
            ax.annotate(
                f"{int(value):,}",
                (bar.get_x() + bar.get_width() / 2, value),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=(size or TEXT) - 1,
            )


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=TITLE, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _legend(ax: Any, ncols: int, **more: Any) -> None:
    """A panel's legend in the chart's style: top left, unframed, `ncols` entries a row."""
    ax.legend(
        fontsize=TEXT,
        loc="upper left",
        frameon=False,
        ncols=ncols,
        handlelength=1,
        columnspacing=0.8,
        **more,
    )


def render(stats: FleetStats) -> bytes:
    """The overview as a WIDTH × HEIGHT PNG, drawn in memory (matplotlib's Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    stamp = utc_minute(stats.taken_at)
    fig.suptitle(
        f"Fleet: {stats.chrome_total:,} Chrome OS, {stats.android_total:,} Android · {stamp}",
        fontsize=HEAD,
        fontweight="bold",
    )
    (ax_status, ax_versions), (ax_expiry, ax_android) = fig.subplots(2, 2)
    for ax in (ax_status, ax_versions, ax_expiry, ax_android):
        ax.tick_params(labelsize=TEXT)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.spines[["top", "right"]].set_visible(False)

    # 1. devices by status per platform; the ACTIVE bars show the part not synced in 30 days
    rows: list[tuple[str, int, str, int]] = []  # label, count, colour, of which stale
    for name, by_status, color, silent in (
        ("Chrome", stats.chrome_status, CHROME_COLOR, stats.chrome_stale),
        ("Android", stats.android_status, ANDROID_COLOR, stats.android_stale),
    ):
        for status, n in _grouped(by_status, 5, lambda s: (s != "ACTIVE", s)):
            rows.append((f"{name} {status}", n, color, silent if status == "ACTIVE" else 0))
    ax_status.set_title("Devices by status", fontsize=TITLE, fontweight="bold")
    if rows:
        labels = [r[0] for r in rows][::-1]
        ys = range(len(rows))
        counts = [r[1] for r in rows][::-1]
        stale = [r[3] for r in rows][::-1]
        fresh = [c - s for c, s in zip(counts, stale, strict=True)]
        ax_status.barh(ys, fresh, color=[r[2] for r in rows][::-1])
        ax_status.barh(ys, stale, left=fresh, color=STALE_COLOR, hatch="//", edgecolor="white")
        totals = ax_status.barh(ys, counts, fill=False, linewidth=0)
        _label_bars(ax_status, totals, horizontal=True)
        ax_status.set_yticks(list(ys), labels, fontsize=TEXT)
        ax_status.set_xlim(0, max(counts) * 1.2)
        ax_status.xaxis.set_visible(False)
        ax_status.spines["bottom"].set_visible(False)
        ax_status.text(
            1.0,
            0.02,
            f"red: ACTIVE, not synced in {STALE_DAYS} days",
            transform=ax_status.transAxes,
            ha="right",
            fontsize=TEXT,
            color=STALE_COLOR,
        )
    else:
        _empty(ax_status, "no devices")

    # 2. Chrome OS versions
    ax_versions.set_title("Chrome OS milestones", fontsize=TITLE, fontweight="bold")
    bars = _milestones(stats)
    if bars:
        drawn = ax_versions.bar([b[0] for b in bars], [b[1] for b in bars], color=CHROME_COLOR)
        _label_bars(ax_versions, drawn)
        ax_versions.tick_params(axis="x", rotation=45)
        ax_versions.set_ylim(0, max(b[1] for b in bars) * 1.15)
    else:
        _empty(ax_versions, "no Chrome OS devices")

    # 3. Chrome auto-update expiry
    expiry, unit = _expiry(stats)
    ax_expiry.set_title(f"Chrome update expiry by {unit}", fontsize=TITLE, fontweight="bold")
    if expiry:
        drawn = ax_expiry.bar(
            [b[0] for b in expiry],
            [b[1] for b in expiry],
            color=[_expiry_color(b[0], stats.month) for b in expiry],
        )
        _label_bars(ax_expiry, drawn)
        ax_expiry.tick_params(axis="x", rotation=45)
        ax_expiry.set_ylim(0, max(b[1] for b in expiry) * 1.3)
        _legend(ax_expiry, 3, handles=[Patch(color=c, label=t) for t, c in EXPIRY_LEGEND])
    else:
        _empty(ax_expiry, "no Chrome OS devices")

    # 4. Android versions, each bar split by the age of its security patch level
    ax_android.set_title("Android versions, patch age", fontsize=TITLE, fontweight="bold")
    versions = sorted(stats.android_versions, key=version_key)
    if versions:
        per_version = stats.android_version_ages
        bottom = [0] * len(versions)
        for label, color in [(a[0], a[2]) for a in PATCH_AGES] + [PATCH_OLD, PATCH_UNKNOWN]:
            heights = [per_version[v][label] for v in versions]
            if not any(heights):
                continue
            ax_android.bar(
                versions, heights, bottom=bottom, color=color, label=SHORT.get(label, label)
            )
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        totals_bars = ax_android.bar(versions, bottom, fill=False, linewidth=0)
        _label_bars(ax_android, totals_bars)
        ax_android.set_ylim(0, max(bottom) * 1.3)
        _legend(ax_android, 4)
    else:
        _empty(ax_android, "no Android devices")

    fig.tight_layout(rect=(0, 0, 1, 0.95))
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
