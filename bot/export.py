"""`/device export [query]`: every matching device as a CSV file, sent to the requester.

The command acks, says where the file will arrive, and the export runs on its own thread,
off the request path. It posts one progress message in the requester's DM with the bot and
edits it in place (chat.update, at most every PROGRESS_EVERY seconds) while it reads:

- Chrome OS: chromeosdevices.list with maxResults 300 and a partial response, as the
  Directory guide exports MEIDs (`fields=nextPageToken,chromeosdevices(meid)`), here with
  the CSV's columns: `fields=chromeosdevices(deviceId,…,meid),nextPageToken`. The
  projection is FULL only because `recentUsers` (a list field) is not in BASIC; the
  `fields` selector already cuts each device down to the columns.
  A person's search (an email, bare or `user:`) reads the same union the search page
  shows: `user:x`, `recent_user:x` (devices.person_queries), each device once.
- Android: the local index (AMAPI has no server-side filter; the index is refreshed by its
  job), so no Google call at all.

Then the CSV goes to the same DM through Slack's external upload flow
(`SlackOut.upload`), and the export is audited.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot import audit
from bot.background import BackgroundRuns, DMProgress
from bot.blocks import esc
from bot.commands import Commands, Invocation, Subcommand
from bot.dates import utc_minute
from bot.devices import android_device
from bot.errors import DeviceBotError, ValidationError
from bot.google.chrome import MAX_LIST_RESULTS
from bot.search_query import PERSON_CAP, person_queries, plan_query
from bot.services import Services

log = logging.getLogger(__name__)

MAX_QUERY = 200
PAGE_SIZE = MAX_LIST_RESULTS  # 300, the Directory API's maximum
PROGRESS_EVERY = 2.0  # seconds between edits of the progress message
MAX_RUNNING = 2  # exports at once in this process (one per person)

#: the Directory fields the CSV needs, as a partial-response selector
CHROME_FIELDS = (
    "chromeosdevices(deviceId,serialNumber,model,status,orgUnitPath,annotatedUser,"
    "recentUsers(email),annotatedAssetId,osVersion,lastSync,meid),nextPageToken"
)
COLUMNS = (
    "Platform",
    "Serial",
    "Model",
    "Status",
    "OU / policy",
    "Annotated user",
    "Recent user",
    "Asset id",
    "OS version",
    "Last sync",
    "MEID / IMEI",
    "Device id",
)


def chrome_row(raw: dict[str, Any]) -> list[str]:
    """A CSV row of a Directory ChromeOsDevice (partial response)."""
    recent = raw.get("recentUsers") or []
    return [
        "Chrome OS",
        raw.get("serialNumber") or "",
        raw.get("model") or "",
        raw.get("status") or "",
        raw.get("orgUnitPath") or "",
        raw.get("annotatedUser") or "",
        (recent[0].get("email") or "") if recent else "",
        raw.get("annotatedAssetId") or "",
        raw.get("osVersion") or "",
        raw.get("lastSync") or "",
        raw.get("meid") or "",
        raw.get("deviceId") or "",
    ]


def android_row(raw: dict[str, Any]) -> list[str]:
    """A CSV row of an Android Management Device: the equivalents of the Chrome columns."""
    device = android_device(raw)
    network = raw.get("networkInfo") or {}
    return [
        "Android",
        device.serial or "",
        device.model or "",
        device.status,
        device.org_unit or "",  # the policy
        device.user or "",  # the enrolled account
        "",  # AMAPI keeps no recent users
        "",  # nor an asset id
        device.os_version or "",
        device.last_seen or "",  # lastStatusReportTime
        network.get("meid") or network.get("imei") or "",
        device.id,
    ]


def _cell(value: str) -> str:
    """Keep a spreadsheet from reading a cell as a formula (annotations are free text)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@dataclass
class Counts:
    chrome: int = 0
    android: int = 0
    pages: int = 0


class Progress(DMProgress):
    """The one message that shows an export's progress, edited in place (throttled)."""

    def __init__(
        self, svc: Services, user: str, query: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.query = query
        self.subject = f"`{esc(query)}`" if query else "all devices"
        super().__init__(svc, user, f"Exporting {self.subject}…", every=PROGRESS_EVERY, clock=clock)

    def reading(self, counts: Counts, *, force: bool = False) -> None:
        self.show(
            f":hourglass_flowing_sand: Exporting {self.subject}: *{counts.chrome:,}* Chrome OS"
            f" devices read ({counts.pages:,} pages), *{counts.android:,}* Android…",
            force=force,
        )


def chrome_rows(
    svc: Services, query: str, counts: Counts, on_page: Callable[[Counts], None]
) -> Iterator[list[str]]:
    """Every Chrome device matching `query`, page after page of 300 (partial responses)."""
    chrome = svc.google.chrome
    query_or_none = plan_query(query).chrome
    if chrome is None or query_or_none is None:  # a filter left Chrome out (platform:, status:)
        return
    query = query_or_none
    persons = person_queries(query)
    if persons is not None:  # a person: the same union the search shows
        yield from _person_rows(svc, persons, counts, on_page)
        return
    token: str | None = None
    while True:
        page = chrome.list_devices(
            query or None,
            projection="FULL",  # recentUsers is not in BASIC; `fields` trims the rest
            max_results=PAGE_SIZE,
            page_token=token,
            fields=CHROME_FIELDS,
        )
        counts.pages += 1
        for raw in page.items:
            counts.chrome += 1
            yield chrome_row(raw)
        on_page(counts)
        token = page.next_page_token
        if not token:
            return


def _person_rows(
    svc: Services, queries: list[str], counts: Counts, on_page: Callable[[Counts], None]
) -> Iterator[list[str]]:
    """A person's Chrome devices as their search page lists them (devices.person_queries):
    the union of `user:x`, `recent_user:x` (and the bare email), each read up to
    PERSON_CAP devices as the search does, every device once, by serial."""
    chrome = svc.google.require_chrome()
    found: dict[str, dict[str, Any]] = {}
    for query in queries:
        token: str | None = None
        read = 0
        while read < PERSON_CAP:
            page = chrome.list_devices(
                query,
                projection="FULL",
                max_results=PAGE_SIZE,
                page_token=token,
                fields=CHROME_FIELDS,
            )
            counts.pages += 1
            for raw in page.items[: PERSON_CAP - read]:
                found.setdefault(str(raw.get("deviceId") or ""), raw)
            read += len(page.items)
            counts.chrome = len(found)
            on_page(counts)
            token = page.next_page_token
            if not token:
                break
    yield from (
        chrome_row(raw)
        for raw in sorted(
            found.values(),
            key=lambda r: (str(r.get("serialNumber") or "").upper(), str(r.get("deviceId"))),
        )
    )


def android_rows(svc: Services, query: str, counts: Counts) -> Iterator[list[str]]:
    """Every Android device of the local index matching `query` (no Google call)."""
    if svc.google.android is None:
        return
    where = plan_query(query).android
    if where is None:  # an operator Android devices lack (location:, asset_id:, …), platform:
        return
    svc.devices.ensure_android_index()
    sql, args = where
    for rows in svc.store.stream(
        "SELECT r.raw FROM android_index i JOIN android_raw r ON r.name = i.name"
        f" WHERE {sql} ORDER BY i.serial",
        list(args),
        size=1000,
    ):
        for (raw,) in rows:
            counts.android += 1
            yield android_row(json.loads(raw))


def build_csv(svc: Services, query: str, on_page: Callable[[Counts], None]) -> tuple[bytes, Counts]:
    """The CSV of every device matching `query` on both platforms, and how many of each."""
    counts = Counts()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in chrome_rows(svc, query, counts, on_page):
        writer.writerow([_cell(v) for v in row])
    for row in android_rows(svc, query, counts):
        writer.writerow([_cell(v) for v in row])
        if counts.android % 1000 == 0:
            on_page(counts)
    return out.getvalue().encode("utf-8"), counts


def run(svc: Services, user: str, query: str) -> None:
    """The export itself (on its own thread): read, build the CSV, upload it, audit it."""
    progress = Progress(svc, user, query)
    started = time.monotonic()
    try:
        content, counts = build_csv(svc, query, progress.reading)
        stamp = datetime.fromtimestamp(svc.clock(), UTC).strftime("%Y%m%d-%H%M%S")
        filename = f"devices-{stamp}.csv"
        total = counts.chrome + counts.android
        summary = (
            f"{total:,} devices ({counts.chrome:,} Chrome OS, {counts.android:,} Android)"
            f" for {progress.subject}"
        )
        progress.show(f":outbox_tray: Uploading {summary}…", force=True)
        file_id = svc.out.upload(
            progress.channel,
            filename,
            content,
            title=f"Devices: {query or 'all'}"[:250],
            comment=f"Device export: {summary}.",
        )
    except DeviceBotError as exc:
        progress.show(f":warning: The export stopped: {exc.message}", force=True)
        audit.record(
            svc.store, actor=user, event="export failed", detail={"query": query, "error": exc.code}
        )
        return
    except Exception:
        log.exception("export of %r for %s failed", query, user)
        progress.show(":warning: The export failed on our side; nothing was sent.", force=True)
        return
    took = time.monotonic() - started
    synced = svc.devices.android_index_synced_at() if counts.android else None
    note = (
        "Android rows come from the bot's device index, refreshed " + utc_minute(synced) + "."
        if synced
        else ""
    )
    progress.show(
        f":white_check_mark: Exported {summary} in {took:.0f} s: `{filename}` below.",
        note,
        force=True,
    )
    audit.record(
        svc.store,
        actor=user,
        event="export",
        detail={
            "query": query,
            "chrome": counts.chrome,
            "android": counts.android,
            "file": file_id,
            "bytes": len(content),
        },
    )
    log.info("export of %r for %s: %d devices in %.1fs", query, user, total, took)


class Exports:
    """Exports running in this process: one per person, MAX_RUNNING in all, each on a thread."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.runs = BackgroundRuns(
            "export",
            MAX_RUNNING,
            busy="Your previous export is still running; wait for its file.",
            full="Two exports are running already; try again in a minute.",
        )

    def start(self, user: str, query: str, tell: Callable[[str], None]) -> None:
        """Start an export for `user`; `tell` reaches them if it cannot even begin."""
        self.runs.start(
            user,
            lambda: run(self.svc, user, query),
            tell,
            ":warning: The export could not start: device-bot cannot write to you directly.",
        )


def export_command(inv: Invocation) -> None:
    """`/device export [query]`: start the export in the background and say where it goes."""
    query = inv.args.strip()
    if len(query) > MAX_QUERY:
        inv.reply(f":warning: A query has at most {MAX_QUERY} characters. Usage: `{EXPORT.usage}`")
        return
    exports: Exports = inv.svc.extras["exports"]
    try:
        exports.start(inv.user_id, query, inv.reply)
    except ValidationError as exc:
        inv.reply(f":warning: {exc.message}")
        return
    subject = f"`{esc(query)}`" if query else "all devices"
    inv.reply(
        f"Exporting {subject} to CSV. Progress and the file arrive in your direct messages"
        " with device-bot."
    )


EXPORT = Subcommand(
    "export",
    export_command,
    "/device export [query]",
    "Every matching device (both platforms) as a CSV file in your DMs: serial, model, status,"
    " OU, users, asset id, OS, last sync, MEID",
    "/device export status:ACTIVE",
)


def register(app: Any, svc: Services, commands: Commands) -> None:
    """Add `/device export`."""
    svc.extras["exports"] = Exports(svc)
    commands.add(EXPORT)
