"""Counting the fleet for `/device stats`: what is counted, and one pass that counts it.

Chrome OS from the Directory API (every page, only the fields counted); Android from the
bot's local device index, so no Google call at all.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.google.chrome import MAX_LIST_RESULTS
from bot.services import Services

PAGE_SIZE = MAX_LIST_RESULTS  # 300, the Directory API's maximum
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
PATCH_AGES = (("≤ 90 days", 90, "#2e7d32"), ("91–365 days", 365, "#f9a825"))
PATCH_OLD = ("over a year", "#c62828")
PATCH_UNKNOWN = ("unknown", "#9e9e9e")

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


def version_key(version: str) -> tuple[Any, ...]:
    """Sorts Android versions as numbers: "8.1" before "10", "12" before "12L"."""
    parts = re.findall(r"\d+|\D+", version)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts) or ((2, ""),)


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
    cutoff = stats.taken_at - STALE_DAYS * 86400
    for rows in svc.store.stream(
        "SELECT json_extract(r.raw, '$.state'),"
        " json_extract(r.raw, '$.softwareInfo.androidVersion'),"
        " json_extract(r.raw, '$.softwareInfo.securityPatchLevel'),"
        " json_extract(r.raw, '$.lastStatusReportTime')"
        " FROM android_index i JOIN android_raw r ON r.name = i.name",
        size=2000,
    ):
        add_android(stats, rows, cutoff)


def gather(svc: Services, on_page: Callable[[FleetStats], None]) -> FleetStats:
    """One pass over the fleet: Chrome from Google, Android from the index."""
    started = time.monotonic()
    stats = FleetStats(taken_at=svc.clock())
    read_chrome(svc, stats, on_page)
    read_android(svc, stats)
    stats.seconds = time.monotonic() - started
    return stats
