"""`/device stats`: a picture of the fleet, posted to the requester as a PNG chart.

The command acks and the work runs on its own thread (as `/device export` does, through
bot/background.py): one progress message in the requester's DM with the bot, edited in
place, becomes the text summary; the chart follows it as a file (Slack's external upload,
`SlackOut.upload`).

Where the numbers come from, in one pass:

- Chrome OS: chromeosdevices.list, 300 a page, `projection=BASIC` (every field needed is a
  basic one) with a partial response of exactly those fields: `CHROME_FIELDS`.
- Android: the bot's local device index (the raw AMAPI JSON in `android_raw`, refreshed by
  its job every INDEX_SYNC_INTERVAL), so no Google call at all; the summary says how old
  the index is.

The result (counts and PNG) is kept for STATS_CACHE_SECONDS: a request within that time
makes no Google call, and requests that arrive while a pass is running wait for it
instead of starting their own.

What is counted: statuses over every device; Chrome OS versions and auto-update expiry over
the devices in service (ACTIVE and DISABLED); Android versions and patch levels over the
devices in hand (ACTIVE, DISABLED, LOST); "not synced in 30 days" over the ACTIVE devices
(Chrome `lastSync`, Android `lastStatusReportTime`; none at all counts as not synced).
"""

from __future__ import annotations

import io
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.background import BackgroundRuns, DMProgress
from bot.blocks import context, section
from bot.commands import Commands, Invocation, Subcommand
from bot.errors import DeviceBotError, ValidationError
from bot.google.chrome import MAX_LIST_RESULTS
from bot.services import Services

log = logging.getLogger(__name__)

PAGE_SIZE = MAX_LIST_RESULTS  # 300, the Directory API's maximum
PROGRESS_EVERY = 2.0  # seconds between edits of the progress message
MAX_RUNNING = 4  # /device stats at once in this process (one per person)
STALE_DAYS = 30
#: the Directory fields the overview needs, all in projection=BASIC, as a partial response
CHROME_DEVICE_FIELDS = (
    "status",
    "osVersion",
    "lastSync",
    "autoUpdateThrough",
    "autoUpdateExpiration",
)
CHROME_FIELDS = f"nextPageToken,chromeosdevices({','.join(CHROME_DEVICE_FIELDS)})"
CHROME_IN_SERVICE = frozenset({"ACTIVE", "DISABLED"})
ANDROID_IN_HAND = frozenset({"ACTIVE", "DISABLED", "LOST"})
#: the chart: 1200 × 900 px, four panels, fonts large enough for Slack's preview
WIDTH, HEIGHT, DPI = 1200, 900, 100
MAX_BARS = 12  # per panel; the rest are grouped
TEXT, TITLE, HEAD = 14, 18, 21  # font sizes (points; 1 pt = 1.4 px at this DPI)
PATCH_AGES = (("≤ 90 days", 90, "#2e7d32"), ("91–365 days", 365, "#f9a825"))
PATCH_OLD = ("over a year", "#c62828")
PATCH_UNKNOWN = ("unknown", "#9e9e9e")
CHROME_COLOR, ANDROID_COLOR, STALE_COLOR = "#1a73e8", "#3ddc84", "#c62828"
EXPIRY_LEGEND = (("expired", "#c62828"), ("< 1 year", "#f9a825"), ("later", "#2e7d32"))
#: the chart's shorter legend labels
SHORT = {
    "≤ 90 days": "≤ 90 d",
    "91–365 days": "91–365 d",
    "over a year": "> 1 year",
    "unknown": "?",
}

_DATE = re.compile(r"^(\d{4})-(\d{2})")


@dataclass
class FleetStats:
    """The counts behind the chart and the summary."""

    taken_at: float  # the bot's clock when the pass started (seconds since the epoch)
    chrome_status: Counter[str] = field(default_factory=Counter)
    chrome_milestones: Counter[int] = field(default_factory=Counter)  # 0: unknown
    chrome_expiry: Counter[str] = field(default_factory=Counter)  # "YYYY-MM" or "unknown"
    chrome_active: int = 0
    chrome_stale: int = 0
    chrome_pages: int = 0
    android_status: Counter[str] = field(default_factory=Counter)
    android_versions: Counter[str] = field(default_factory=Counter)
    android_patch_age: Counter[str] = field(default_factory=Counter)  # PATCH_AGES labels
    #: androidVersion → patch-age label → devices (the chart's stacked bars)
    android_version_ages: dict[str, Counter[str]] = field(default_factory=dict)
    android_patches: Counter[str] = field(default_factory=Counter)  # "YYYY-MM"
    android_active: int = 0
    android_stale: int = 0
    android_synced_at: float | None = None
    chrome_configured: bool = True
    android_configured: bool = True
    seconds: float = 0.0

    @property
    def chrome_total(self) -> int:
        return sum(self.chrome_status.values())

    @property
    def android_total(self) -> int:
        return sum(self.android_status.values())

    @property
    def month(self) -> str:
        return datetime.fromtimestamp(self.taken_at, UTC).strftime("%Y-%m")


# ---------------------------------------------------------------------------- reading


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def expiry_month(raw: dict[str, Any]) -> str:
    """`YYYY-MM` of a device's auto-update expiry: autoUpdateThrough, else the deprecated
    autoUpdateExpiration (int64 milliseconds); "unknown" without either."""
    through = raw.get("autoUpdateThrough")
    if isinstance(through, str) and (m := _DATE.match(through)):
        return f"{m[1]}-{m[2]}"
    expiration = raw.get("autoUpdateExpiration")
    try:
        millis = int(str(expiration))
    except ValueError:
        return "unknown"
    if millis <= 0:
        return "unknown"
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m")


def milestone(os_version: Any) -> int:
    """129 of "129.0.6668.100"; 0 when unknown."""
    head = str(os_version or "").split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def android_major(version: Any) -> str:
    """The major version of an androidVersion: "8" of "8.1.0", "12L" of "12L"."""
    m = re.match(r"\d+L?", str(version or ""))
    return m[0] if m else "unknown"


def patch_age(level: Any, now: float) -> str:
    """The age bucket of a security patch level ("2026-05-01")."""
    when = _timestamp(f"{level}T00:00:00Z") if isinstance(level, str) else None
    if when is None:
        return PATCH_UNKNOWN[0]
    days = (now - when) / 86400
    for label, limit, _ in PATCH_AGES:
        if days <= limit:
            return label
    return PATCH_OLD[0]


def add_chrome(stats: FleetStats, raws: Iterable[dict[str, Any]], cutoff: float) -> None:
    """Count a page of Directory ChromeOsDevices (partial responses)."""
    for raw in raws:
        status = str(raw.get("status") or "UNKNOWN")
        stats.chrome_status[status] += 1
        if status in CHROME_IN_SERVICE:
            stats.chrome_milestones[milestone(raw.get("osVersion"))] += 1
            stats.chrome_expiry[expiry_month(raw)] += 1
        if status == "ACTIVE":
            stats.chrome_active += 1
            synced = _timestamp(raw.get("lastSync"))
            if synced is None or synced < cutoff:
                stats.chrome_stale += 1


def add_android(
    stats: FleetStats, rows: Iterable[tuple[Any, Any, Any, Any]], cutoff: float
) -> None:
    """Count Android devices: (state, androidVersion, securityPatchLevel, lastStatusReportTime)."""
    for state, version, level, reported in rows:
        state = str(state or "DEVICE_STATE_UNSPECIFIED")
        stats.android_status[state] += 1
        if state in ANDROID_IN_HAND:
            version = android_major(version)
            age = patch_age(level, stats.taken_at)
            stats.android_versions[version] += 1
            stats.android_patch_age[age] += 1
            stats.android_version_ages.setdefault(version, Counter())[age] += 1
            m = _DATE.match(str(level or ""))
            stats.android_patches[f"{m[1]}-{m[2]}" if m else "unknown"] += 1
        if state == "ACTIVE":
            stats.android_active += 1
            when = _timestamp(reported)
            if when is None or when < cutoff:
                stats.android_stale += 1


def read_chrome(svc: Services, stats: FleetStats, on_page: Callable[[FleetStats], None]) -> None:
    """Every Chrome device, page after page of 300, only the fields the overview needs."""
    chrome = svc.google.chrome
    if chrome is None:
        stats.chrome_configured = False
        return
    cutoff = stats.taken_at - STALE_DAYS * 86400
    token: str | None = None
    while True:
        page = chrome.list_devices(
            None,
            projection="BASIC",
            max_results=PAGE_SIZE,
            page_token=token,
            fields=CHROME_FIELDS,
        )
        stats.chrome_pages += 1
        add_chrome(stats, page.items, cutoff)
        on_page(stats)
        token = page.next_page_token
        if not token:
            return


def read_android(svc: Services, stats: FleetStats) -> None:
    """Every Android device of the local index (no Google call once the index is built)."""
    if svc.google.android is None:
        stats.android_configured = False
        return
    svc.devices.ensure_android_index()
    stats.android_synced_at = svc.devices.android_index_synced_at()
    cursor = svc.store.db().conn.execute(
        "SELECT json_extract(r.raw, '$.state'),"
        " json_extract(r.raw, '$.softwareInfo.androidVersion'),"
        " json_extract(r.raw, '$.softwareInfo.securityPatchLevel'),"
        " json_extract(r.raw, '$.lastStatusReportTime')"
        " FROM android_index i JOIN android_raw r ON r.name = i.name"
    )
    cutoff = stats.taken_at - STALE_DAYS * 86400
    while rows := cursor.fetchmany(2000):
        add_android(stats, rows, cutoff)


def gather(svc: Services, on_page: Callable[[FleetStats], None]) -> FleetStats:
    """One pass over the fleet: Chrome from Google, Android from the index."""
    started = time.monotonic()
    stats = FleetStats(taken_at=svc.clock())
    read_chrome(svc, stats, on_page)
    read_android(svc, stats)
    stats.seconds = time.monotonic() - started
    return stats


# ---------------------------------------------------------------------------- the chart


def _grouped(counts: Counter[Any], keep: int, key: Callable[[Any], Any]) -> list[tuple[str, int]]:
    """The `keep` largest entries in `key` order, the rest as one "other" entry."""
    top = sorted(counts.items(), key=lambda kv: -kv[1])
    shown = sorted(top[:keep], key=lambda kv: key(kv[0]))
    rest = sum(n for _, n in top[keep:])
    return [(str(k), n) for k, n in shown] + ([("other", rest)] if rest else [])


def _version_key(version: str) -> tuple[Any, ...]:
    parts = re.findall(r"\d+|\D+", version)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts) or ((2, ""),)


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


def render(stats: FleetStats) -> bytes:
    """The overview as a WIDTH × HEIGHT PNG, drawn in memory (matplotlib's Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    stamp = datetime.fromtimestamp(stats.taken_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
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
        ax_expiry.legend(
            handles=[Patch(color=c, label=t) for t, c in EXPIRY_LEGEND],
            fontsize=TEXT,
            loc="upper left",
            frameon=False,
            ncols=3,
            handlelength=1,
            columnspacing=0.8,
        )
    else:
        _empty(ax_expiry, "no Chrome OS devices")

    # 4. Android versions, each bar split by the age of its security patch level
    ax_android.set_title("Android versions, patch age", fontsize=TITLE, fontweight="bold")
    versions = sorted(stats.android_versions, key=_version_key)
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
        ax_android.legend(
            fontsize=TEXT,
            loc="upper left",
            frameon=False,
            ncols=4,
            handlelength=1,
            columnspacing=0.8,
        )
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


# ---------------------------------------------------------------------------- the summary


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "–"


def _listing(items: Iterable[tuple[str, int]], limit: int = 6) -> str:
    items = list(items)
    shown = " · ".join(f"{k} *{n:,}*" for k, n in items[:limit])
    rest = sum(n for _, n in items[limit:])
    return shown + (f" · other *{rest:,}*" if rest else "")


def _by_count(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def summary_lines(stats: FleetStats) -> list[str]:
    """The text beside the chart: every count it draws, in words."""
    lines: list[str] = []
    if stats.chrome_configured:
        lines.append(f"*Chrome OS: {stats.chrome_total:,} devices*")
        lines.append("• by status: " + _listing(_by_count(stats.chrome_status)))
        lines.append(
            f"• not synced in {STALE_DAYS} days: *{stats.chrome_stale:,}* of"
            f" {stats.chrome_active:,} active ({_pct(stats.chrome_stale, stats.chrome_active)})"
        )
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
        lines.append(
            f"• no status report in {STALE_DAYS} days: *{stats.android_stale:,}* of"
            f" {stats.android_active:,} active ({_pct(stats.android_stale, stats.android_active)})"
        )
        versions = sorted(
            stats.android_versions.items(), key=lambda kv: _version_key(kv[0]), reverse=True
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

    def at(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")

    parts = [f"Counted {at(stats.taken_at)}"]
    if stats.chrome_configured:
        parts.append(
            f"Chrome OS: {stats.chrome_pages:,} pages of the Directory API"
            f" (projection=BASIC, {len(CHROME_DEVICE_FIELDS)} fields)"
        )
    if stats.android_configured and stats.android_synced_at:
        parts.append(f"Android: the bot's device index, refreshed {at(stats.android_synced_at)}")
    if cached_until is not None:
        parts.append(f"kept until {at(cached_until)}")
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


# ---------------------------------------------------------------------------- the cache


@dataclass
class Overview:
    stats: FleetStats
    png: bytes
    made: float  # time.monotonic() when made


class OverviewCache:
    """The last overview, for `seconds`; one pass at a time (later callers wait for it)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._value: Overview | None = None
        self.passes = 0  # passes over the fleet made (for tests and benchmarks)

    def fresh(self) -> Overview | None:
        value = self._value
        if value is not None and self.clock() - value.made < self.seconds:
            return value
        return None

    def get(self, make: Callable[[], tuple[FleetStats, bytes]]) -> tuple[Overview, bool]:
        """(the overview, whether it came from the cache)."""
        if (value := self.fresh()) is not None:
            return value, True
        with self._lock:
            if (value := self.fresh()) is not None:  # made while we waited
                return value, True
            stats, png = make()
            self.passes += 1
            value = Overview(stats, png, self.clock())
            if self.seconds > 0:
                self._value = value
            return value, False

    def clear(self) -> None:
        """Forget the kept overview: the next request makes a pass."""
        self._value = None

    def expires_at(self, value: Overview, wall: float) -> float | None:
        """The wall-clock time `value` stops being served, None when nothing is kept."""
        if self.seconds <= 0:
            return None
        return wall + (value.made + self.seconds - self.clock())


# ---------------------------------------------------------------------------- the command


def run(svc: Services, user: str) -> None:
    """The overview for `user` (on its own thread): read or reuse, chart, upload."""
    cache: OverviewCache = svc.extras["stats_cache"]
    progress = DMProgress(svc, user, "Counting the fleet…", every=PROGRESS_EVERY)

    def reading(stats: FleetStats) -> None:
        progress.show(
            f":hourglass_flowing_sand: Counting the fleet: *{stats.chrome_total:,}* Chrome OS"
            f" devices read ({stats.chrome_pages:,} pages)…"
        )

    def make() -> tuple[FleetStats, bytes]:
        stats = gather(svc, reading)
        progress.show(":art: Drawing the chart…", force=True)
        return stats, render(stats)

    try:
        overview, cached = cache.get(make)
        stats = overview.stats
        stamp = datetime.fromtimestamp(stats.taken_at, UTC).strftime("%Y%m%d-%H%M")
        until = cache.expires_at(overview, svc.clock())
        progress.show(
            f"Fleet overview: {stats.chrome_total:,} Chrome OS, {stats.android_total:,} Android",
            force=True,
            blocks=summary_blocks(stats, until),
        )
        svc.out.upload(
            progress.channel,
            f"fleet-{stamp}.png",
            overview.png,
            title=f"Fleet overview {stamp}",
            comment=(
                f"Fleet overview: {stats.chrome_total:,} Chrome OS and"
                f" {stats.android_total:,} Android devices."
            ),
        )
    except DeviceBotError as exc:
        progress.show(f":warning: The overview stopped: {exc.message}", force=True)
        return
    except Exception:
        log.exception("fleet overview for %s failed", user)
        progress.show(":warning: The overview failed on our side; nothing was sent.", force=True)
        return
    log.info(
        "fleet overview for %s: %d Chrome + %d Android%s",
        user,
        stats.chrome_total,
        stats.android_total,
        " (cached)" if cached else f" in {stats.seconds:.1f}s, {stats.chrome_pages} pages",
    )


def stats_command(inv: Invocation) -> None:
    """`/device stats`: start the overview in the background and say where it goes."""
    if inv.args.strip():
        inv.reply(f":warning: `/device stats` takes no arguments. Usage: `{STATS.usage}`")
        return
    runs: BackgroundRuns = inv.svc.extras["stats_runs"]
    svc, user = inv.svc, inv.user_id
    try:
        runs.start(
            user,
            lambda: run(svc, user),
            inv.reply,
            ":warning: The overview could not start: device-bot cannot write to you directly.",
        )
    except ValidationError as exc:
        inv.reply(f":warning: {exc.message}")
        return
    inv.reply(
        "Counting the fleet. The summary and the chart arrive in your direct messages with"
        " device-bot."
    )


STATS = Subcommand(
    "stats",
    stats_command,
    "/device stats",
    "A chart of the whole fleet in your DMs: status per platform, Chrome OS versions,"
    " auto-update expiry, Android versions and patch levels, devices silent 30 days",
    "/device stats",
)


def register(app: Any, svc: Services, commands: Commands) -> None:
    """Add `/device stats`."""
    svc.extras["stats_cache"] = OverviewCache(svc.settings.stats_cache_seconds)
    svc.extras["stats_runs"] = BackgroundRuns(
        "stats",
        MAX_RUNNING,
        busy="Your fleet overview is still being made; it arrives in your DMs.",
        full="Several fleet overviews are being made; try again in a minute.",
    )
    commands.add(STATS)
