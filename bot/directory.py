"""Looking devices up on both platforms at once: exact reference resolution, search pages,
and the local Android index.

The Directory API's serial search (`id:`) is partial, so a *reference* to act on resolves
only on an exact serial / device id / asset id match; a reference that matches several
devices raises Ambiguous with the candidates, never "all of them".
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
from collections.abc import Iterable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

from bot.android_index import SORT_COLUMNS, AndroidIndex
from bot.blocks import esc
from bot.devices import ANDROID, CHROME, Device, android_device, chrome_device
from bot.errors import (
    Ambiguous,
    BadRequest,
    ConfigError,
    DeviceBotError,
    NotFound,
    ValidationError,
)
from bot.search_query import (
    PERSON_CAP,
    SORT_LABELS,
    Sort,
    _encode_cursor,
    decode_cursor,
    decode_sort,
    person_queries,
    plan_query,
)
from bot.store import Store

log = logging.getLogger(__name__)

_ANDROID_NAME = re.compile(r"^enterprises/[^/]+/devices/[^/]+$")
_CHROME_DEVICE_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_SAFE_REF = re.compile(r"^[A-Za-z0-9._:/@+-]{1,200}$")


@dataclass(frozen=True)
class SearchPage:
    devices: list[Device]
    next_cursor: str | None
    android_total: int | None  # exact count from the local index; None if Android was not searched
    chrome_more: bool
    notes: list[str] = field(default_factory=list)
    sort: Sort | None = None
    chrome_total: int | None = None  # countChromeOsDevices, or the merged person results
    #: the platforms searched (a filter may leave one out; plan_query's notes say why)
    platforms: tuple[str, ...] = ("chrome", "android")


class DeviceDirectory:
    """Looks devices up on both platforms at once (Android through its local index)."""

    def __init__(self, google: Any, store: Store, executor: Executor) -> None:
        self.google = google
        self.store = store
        self.executor = executor
        self.android_index = AndroidIndex(google, store)

    # ---- single devices ---------------------------------------------------------
    def get(self, platform: str, device_id: str) -> Device:
        """A fresh read of one device."""
        if platform == CHROME:
            return chrome_device(self.google.require_chrome().get(device_id))
        raw = self.google.require_android().get(device_id)
        self.android_index.add([raw])
        return android_device(raw)

    def resolve(self, ref: str) -> Device:
        """The one device `ref` names exactly (serial, device id, Android name/short id, asset id)."""
        return self._one(ref, self.matches(ref))

    @staticmethod
    def _one(ref: str, matches: list[Device]) -> Device:
        if not matches:
            raise NotFound(
                f"No device matches `{esc(ref)}` exactly (serial, device id, or asset id)."
            )
        if len(matches) > 1:
            raise Ambiguous(
                f"`{esc(ref)}` matches {len(matches)} devices; pick one.", list(matches)
            )
        return matches[0]

    def resolve_many(self, refs: Iterable[str]) -> list[Device]:
        """Resolve several references concurrently; any miss or ambiguity is an error."""
        refs = list(dict.fromkeys(refs))
        # Queue every reference's Google calls first, then collect them in this thread: a
        # resolve() run *on* the pool would wait for pool tasks queued behind it, and with
        # more references than workers every worker waits and none is left (a deadlock).
        started = {ref: self._start_matches(ref) for ref in refs}
        devices, missing = [], []
        for ref, lookups in started.items():
            try:
                devices.append(self._one(ref, self._collect(lookups)))
            except NotFound:
                missing.append(ref)
        if missing:
            raise NotFound(
                "No device matches " + ", ".join(f"`{esc(m)}`" for m in missing[:10]) + " exactly."
            )
        return list({d.id: d for d in devices}.values())

    def resolve_each(self, refs: Iterable[str]) -> dict[str, Device | DeviceBotError]:
        """Each reference's one exact device, or why not (NotFound, Ambiguous, ValidationError),
        all looked up concurrently: a bulk list reports every row instead of stopping at one."""
        started: dict[str, list[Future[list[Device]]] | DeviceBotError] = {}
        for ref in dict.fromkeys(refs):
            try:
                started[ref] = self._start_matches(ref)
            except DeviceBotError as exc:
                started[ref] = exc
        out: dict[str, Device | DeviceBotError] = {}
        for ref, lookups in started.items():
            if isinstance(lookups, DeviceBotError):
                out[ref] = lookups
                continue
            try:
                out[ref] = self._one(ref, self._collect(lookups))
            except DeviceBotError as exc:
                out[ref] = exc
        return out

    def matches(self, ref: str) -> list[Device]:
        """Every device that `ref` names exactly; both platforms queried concurrently."""
        return self._collect(self._start_matches(ref))

    def _start_matches(self, ref: str) -> list[Future[list[Device]]]:
        """Submit the look-ups of `ref` on both platforms; `_collect` gathers them."""
        ref = ref.strip()
        if not ref or not _SAFE_REF.match(ref):
            raise ValidationError(
                f"`{esc(ref[:60])}` is not a device reference (serial, device id or asset id)."
            )
        chrome, android = self.google.chrome, self.google.android
        if chrome is None and android is None:
            raise ConfigError("No device platform is configured (Chrome OS or Android).")
        # Only leaf tasks go to the pool (Google calls, the SQLite index): none of them
        # waits for another pool task, so concurrent look-ups cannot exhaust the pool.
        lookups: list[Future[list[Device]]] = []
        if chrome is not None and not _ANDROID_NAME.match(ref):
            for operator in ("id", "asset_id"):
                lookups.append(self.executor.submit(self._chrome_list, ref, operator))
            if _CHROME_DEVICE_ID.match(ref):
                lookups.append(self.executor.submit(self._chrome_get, ref))
        if android is not None:
            lookups.append(self.executor.submit(self._android_matches, ref))
        return lookups

    def _collect(self, lookups: list[Future[list[Device]]]) -> list[Device]:
        found: dict[str, Device] = {}
        errors: list[DeviceBotError] = []
        for future in lookups:
            try:
                for device in future.result():
                    found[device.id] = device
            except DeviceBotError as exc:
                errors.append(exc)
        if not found and errors:
            raise errors[0]
        return sorted(found.values(), key=lambda d: (d.platform, d.serial or "", d.id))

    def _chrome_list(self, ref: str, operator: str) -> list[Device]:
        """Chrome devices whose serial (`id`) or asset id equals `ref` (the search is a prefix one)."""
        wanted = ref.lower()
        page = self.google.require_chrome().list_devices(
            query=f"{operator}:{ref}", projection="FULL", max_results=50
        )
        found = [chrome_device(raw) for raw in page.items]
        return [
            d
            for d in found
            if (d.serial or "").lower() == wanted or (d.asset_id or "").lower() == wanted
        ]

    def _chrome_get(self, ref: str) -> list[Device]:
        """The Chrome device whose deviceId is `ref`, if any."""
        with contextlib.suppress(NotFound):
            return [chrome_device(self.google.require_chrome().get(ref))]
        return []

    def _android_matches(self, ref: str) -> list[Device]:
        android = self.google.require_android()
        names = [ref] if _ANDROID_NAME.match(ref) else self.android_index.named(ref)
        found = []
        for name in names:
            try:
                raw = android.get(name)
            except NotFound:
                continue
            found.append(android_device(raw))
        return found

    # ---- search -----------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        cursor: str | None = None,
        page_size: int = 20,
        sort: Sort | None = None,
    ) -> SearchPage:
        """One page of `query` on both platforms (Chrome: Directory query syntax).

        `sort` orders Chrome through the Directory API's orderBy/sortOrder and Android on
        the equivalent field of the local index. Lists need no full record: BASIC projection.
        """
        query = query.strip()
        chrome_token: str | None = None
        android_offset: int | None = 0
        first = cursor is None
        if cursor:
            query, chrome_token, android_offset = decode_cursor(cursor)
            sort = decode_sort(cursor)
        plan = plan_query(query)
        notes: list[str] = list(plan.notes)
        chrome_future: Future[tuple[list[Device], str | None, int | None]] | None = None
        count_future: Future[int | None] | None = None
        chrome_api, android_api = self.google.chrome, self.google.android
        if plan.chrome is None:
            chrome_api = None  # a filter that leaves Chrome out (said in plan.notes)
        if plan.android is None:
            android_api = None
        chrome_query = plan.chrome or ""
        order_by: str | None = None if chrome_query else "serialNumber"
        sort_order: str | None = None
        if sort is not None:
            order_by, sort_order = sort.order_by, sort.sort_order
        # A search for a person (`user:x` or a bare email) also asks `recent_user:x`: the
        # Directory's `user:` matches only the annotated user, yet the card shows the last
        # signed-in user when none is annotated. The queries run at once; their union is
        # merged here (each is a leaf task: none waits on another pool task).
        persons = person_queries(chrome_query)
        person_futures: list[Future[list[Device]]] = []
        if chrome_api is not None and (first or chrome_token):
            if persons is not None:
                person_futures = [
                    self.executor.submit(self._chrome_person_list, q) for q in persons
                ]
            else:
                chrome_future = self.executor.submit(
                    self._chrome_page, chrome_query, chrome_token, page_size, order_by, sort_order
                )
        if chrome_api is not None and persons is None:
            count_future = self.executor.submit(self._chrome_count, chrome_query)
        elif self.google.chrome is None and first and plan.chrome is not None:
            notes.append("Chrome OS is not configured.")
        android_devices: list[Device] = []
        android_total: int | None = None
        next_android: int | None = None
        android_where = plan.android
        if android_api is not None and android_offset is not None and android_where is not None:
            android_total = self.android_index.count(android_where)
            if sort is not None and SORT_COLUMNS[sort.order_by] is None and first:
                notes.append(
                    f"Android devices have no {SORT_LABELS[sort.order_by]}: they are sorted by serial."
                )
            names = self.android_index.page(android_where, sort, page_size, android_offset)
            android_devices = [
                d for d in self.executor.map(self.android_index.cached, names) if d is not None
            ]
            if android_offset + page_size < android_total:
                next_android = android_offset + page_size
        elif self.google.android is None and first and plan.android is not None:
            notes.append("Android is not configured.")
        if android_api is not None and android_total is None:  # a later page: count anyway
            android_total = self.android_index.count(plan.android or ("1 = 1", []))
        chrome_devices: list[Device] = []
        next_chrome: str | None = None
        chrome_total: int | None = None
        if chrome_future is not None:
            chrome_devices, next_chrome, chrome_total = chrome_future.result()
        elif person_futures:
            chrome_devices, next_chrome, chrome_total = self._merged_page(
                [f.result() for f in person_futures], chrome_token, page_size, order_by, sort_order
            )
        if count_future is not None:
            chrome_total = count_future.result()
        next_cursor = None
        if next_chrome or next_android is not None:
            next_cursor = _encode_cursor(query, next_chrome, next_android, sort)
        return SearchPage(
            devices=chrome_devices + android_devices,
            next_cursor=next_cursor,
            android_total=android_total,
            chrome_more=bool(next_chrome),
            notes=notes,
            sort=sort,
            chrome_total=chrome_total,
            platforms=tuple(
                p for p, api in ((CHROME, chrome_api), (ANDROID, android_api)) if api is not None
            ),
        )

    def _chrome_count(self, query: str) -> int | None:
        """How many Chrome devices match (None if Google would not say: the list still shows).

        A query Google rejects (400) is an error of the search itself, whichever of the two
        calls hears it first: it is raised, as the list would.
        """
        try:
            return int(self.google.require_chrome().count(query or None))
        except BadRequest:
            raise
        except DeviceBotError as exc:
            log.info("count of Chrome devices unavailable: %s", exc.message)
            return None

    def _chrome_page(
        self,
        query: str,
        token: str | None,
        page_size: int,
        order_by: str | None = None,
        sort_order: str | None = None,
    ) -> tuple[list[Device], str | None, int | None]:
        """One page of Chrome results: (devices, the next page's token, the total if known)."""
        page = self.google.require_chrome().list_devices(
            query=query or None,
            projection="BASIC",
            max_results=page_size,
            page_token=token,
            order_by=order_by,
            sort_order=sort_order,
        )
        return [chrome_device(raw) for raw in page.items], page.next_page_token, None

    def _chrome_person_list(self, query: str) -> list[Device]:
        """Every Chrome device of one person query (FULL: shown with who signed in last)."""
        chrome = self.google.require_chrome()
        devices = chrome.iter_devices(query, projection="FULL")
        return [chrome_device(raw) for raw in itertools.islice(devices, PERSON_CAP)]

    @staticmethod
    def _merged_page(
        lists: list[list[Device]],
        token: str | None,
        page_size: int,
        order_by: str | None,
        sort_order: str | None,
    ) -> tuple[list[Device], str | None, int | None]:
        """A page of the union of a person's queries, paged by offset (token `#<offset>`):
        two Google page tokens cannot be merged."""
        found: dict[str, Device] = {}
        for devices in lists:
            for device in devices:
                found.setdefault(device.id, device)
        key = order_by or "serialNumber"
        merged = sorted(found.values(), key=lambda d: ((d.serial or "").upper(), d.id))
        merged.sort(
            key=lambda d: str(d.raw.get(key) or "").lower(),
            reverse=bool(sort_order == "DESCENDING"),
        )
        offset = int(token[1:]) if token and token[1:].isdigit() else 0
        end = offset + page_size
        return merged[offset:end], (f"#{end}" if end < len(merged) else None), len(merged)

    # ---- the Android index, for the jobs and reports that refresh or read it ------------
    def sync_android_index(self) -> int:
        """Refresh the local Android index now (the scheduled job); returns the count."""
        return self.android_index.sync()

    def ensure_android_index(self) -> None:
        """Build the local Android index if it has never been built."""
        self.android_index.ensure()

    def android_index_synced_at(self) -> float | None:
        """When the local Android index was last synced (None: never)."""
        return self.android_index.synced_at()
