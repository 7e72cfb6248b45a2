"""Changes made outside the bot: Chrome device events read from the Admin console's audit log.

A scheduled job (`reports-sync`, run by the jobs lease holder) reads the Admin SDK Reports
API (`activities.list`, userKey `all`, application `admin`) one time window at a time:
from the end of the last window read (kept in `meta`) to now minus `REPORTS_LAG` (Google
writes its log with some delay). Each window is read once, page by page; the window's end
is stored only once every page was read, so a window whose reading failed is read again
with the next one, and activities already stored (by `id.time` + `id.uniqueQualifier`)
are not stored twice.

Device events (status changes, moves, annotations, commands) are kept per serial number
for `/device history`, marked "outside the bot". Events whose actor is the admin the bot
itself acts as are skipped: the bot's own audit log already has them. An outside change
to a device with an open request (pending or approved) is said in that request's threads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot import dates, requests, threads
from bot.blocks import esc
from bot.jobs import JobSpec
from bot.requests import RequestState
from bot.services import Services
from bot.store import Store

log = logging.getLogger(__name__)

WINDOW_KEY = "reports.window_end"
#: a new database starts reading this far back
FIRST_LOOKBACK = 24 * 3600.0
PAGE_SIZE = 1000

STATE_EVENTS = frozenset({"CHANGE_DEVICE_STATE", "CHANGE_CHROME_OS_DEVICE_STATE"})
ANNOTATION = "CHANGE_CHROME_OS_DEVICE_ANNOTATION"
MOVE = "MOVE_DEVICE_TO_ORG_UNIT_DETAILED"
COMMAND = "SEND_CHROME_OS_DEVICE_COMMAND"
DEVICE_EVENTS = STATE_EVENTS | {ANNOTATION, MOVE, COMMAND}

#: the request actions an outside change can make pointless, by the change it takes
_MOOT_STATES = {"disable": "DISABLED", "reenable": "ACTIVE", "deprovision": "DEPROVISIONED"}
_STATE_WORDS = {"DISABLED": "disabled", "DEPROVISIONED": "deprovisioned"}
_FIELD_WORDS = {
    "annotatedUser": "user",
    "annotatedLocation": "location",
    "annotatedAssetId": "asset id",
    "notes": "notes",
}


@dataclass(frozen=True)
class SyncResult:
    """What one run of the reader did."""

    start: str | None
    end: str | None
    pages: int = 0
    stored: int = 0  # new outside events
    own: int = 0  # the bot's own changes, skipped
    told: int = 0  # thread messages about open requests


def rfc3339(epoch: float) -> str:
    """Seconds since the epoch → `2026-05-01T12:34:56.789Z` (milliseconds, truncated)."""
    ms = int(epoch * 1000)
    stamp = datetime.fromtimestamp(ms / 1000, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _at(google_time: str) -> str:
    """Google's id.time in the form audit events use (microseconds, Z): they sort together."""
    try:
        stamp = datetime.fromisoformat(google_time.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return google_time
    return stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")


def own_actors(svc: Services) -> frozenset[str]:
    """The admin(s) the bot acts as: events by them are the bot's own changes."""
    names = set()
    if svc.settings.google_admin_email:
        names.add(svc.settings.google_admin_email.lower())
    if svc.settings.sandbox or svc.sandbox is not None:
        from bot.sandbox.fleet import SANDBOX_ADMIN

        names.add(SANDBOX_ADMIN)
        if svc.sandbox is not None:
            names.add(str(svc.sandbox.fleet.admin_email).lower())
    return frozenset(names)


def _params(event: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in event.get("parameters") or []:
        if not isinstance(p, dict) or not p.get("name"):
            continue
        if "value" in p:
            value: Any = p["value"]
        elif "multiValue" in p:
            value = ", ".join(str(v) for v in p["multiValue"])
        elif "intValue" in p:
            value = p["intValue"]
        elif "boolValue" in p:
            value = p["boolValue"]
        else:
            continue
        out[str(p["name"])] = str(value)
    return out


def _actor(activity: dict[str, Any]) -> str:
    actor = activity.get("actor") or {}
    return str(actor.get("email") or actor.get("profileId") or actor.get("callerType") or "?")


# ---- reading -------------------------------------------------------------------------------


def sync(svc: Services, *, page_size: int = PAGE_SIZE) -> SyncResult:
    """Read the next window of the audit log; store the outside device events in it."""
    api = svc.google.reports
    if api is None:
        return SyncResult(None, None)
    store = svc.store
    now = svc.clock()
    end = rfc3339(now - svc.settings.reports_lag)
    row = store.db().execute("SELECT value FROM meta WHERE key = ?", [WINDOW_KEY]).fetchone()
    start = row[0] if row and row[0] else rfc3339(now - svc.settings.reports_lag - FIRST_LOOKBACK)
    if (dates.epoch_of(start) or 0.0) >= (dates.epoch_of(end) or 0.0):
        return SyncResult(start, end)  # the clock went back, or the lag grew: nothing new
    own = own_actors(svc)
    pages = stored = skipped = 0
    new: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = api.list_activities(
            start_time=start, end_time=end, page_token=token, max_results=page_size
        )
        pages += 1
        rows, mine = _rows(page.items, own, svc.clock())
        skipped += mine
        with store.transaction() as db:
            for r in rows:
                cursor = db.conn.execute(
                    "INSERT OR IGNORE INTO outside_events (time, qualifier, idx, at, name, actor,"
                    " serial, device_id, params, read_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [r[k] for k in _COLUMNS],
                )
                if cursor.rowcount == 1:
                    stored += 1
                    new.append(r)
        token = page.next_page_token
        if not token:
            break
    with store.transaction() as db:
        db.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", [WINDOW_KEY, end])
    told = _tell_open_requests(svc, new)
    if stored or skipped:
        log.info(
            "audit log %s → %s: %d outside device events, %d of the bot's own skipped",
            start,
            end,
            stored,
            skipped,
        )
    return SyncResult(start, end, pages, stored, skipped, told)


_COLUMNS = (
    "time",
    "qualifier",
    "idx",
    "at",
    "name",
    "actor",
    "serial",
    "device_id",
    "params",
    "read_at",
)


def _rows(
    items: Iterable[dict[str, Any]], own: frozenset[str], now: float
) -> tuple[list[dict[str, Any]], int]:
    """The outside device events of a page, as table rows; and how many were the bot's own."""
    rows: list[dict[str, Any]] = []
    mine = 0
    for activity in items:
        ident = activity.get("id") or {}
        time, qualifier = str(ident.get("time") or ""), str(ident.get("uniqueQualifier") or "")
        if not time:
            continue
        actor = _actor(activity)
        for idx, event in enumerate(activity.get("events") or []):
            if not isinstance(event, dict) or event.get("name") not in DEVICE_EVENTS:
                continue
            if actor.lower() in own:
                mine += 1
                continue
            params = _params(event)
            rows.append(
                {
                    "time": time,
                    "qualifier": qualifier,
                    "idx": idx,
                    "at": _at(time),
                    "name": str(event["name"]),
                    "actor": actor,
                    "serial": params.get("DEVICE_SERIAL_NUMBER") or None,
                    "device_id": params.get("DEVICE_ID") or None,
                    "params": json.dumps(params, sort_keys=True),
                    "read_at": now,
                }
            )
    return rows, mine


# ---- words ---------------------------------------------------------------------------------


def describe(name: str, params: dict[str, str]) -> str:
    """An outside event in words: `disabled`, `moved to /Sales`, `asset id set to "A-1"`."""
    if name in STATE_EVENTS:
        new = params.get("DEVICE_NEW_STATE", "")
        previous = params.get("DEVICE_PREVIOUS_STATE", "")
        if new == "ACTIVE":
            return "re-enabled" if previous == "DISABLED" else "made active"
        return _STATE_WORDS.get(new, f"state changed to {new or 'unknown'}")
    if name == MOVE:
        return f"moved to {params.get('NEW_VALUE') or params.get('ORG_UNIT_NAME') or '?'}"
    if name == ANNOTATION:
        field = params.get("SETTING_NAME", "annotation")
        value = params.get("NEW_VALUE")
        what = _FIELD_WORDS.get(field, field)
        return f'{what} set to "{value}"' if value else f"{what} cleared"
    if name == COMMAND:
        return f"sent the command {params.get('DEVICE_COMMAND_TYPE') or '?'}"
    return name


def outside_events_for(
    store: Store, device_id: str | None, serial: str | None, *, limit: int | None = None
) -> list[dict[str, Any]]:
    """A device's outside events, newest first, shaped like audit events (`at`, `event`,
    `actor`, `detail`) plus `outside: True`: ready to merge into its history."""
    keys = [(col, v) for col, v in (("device_id", device_id), ("serial", serial)) if v]
    if not keys:
        return []
    where = " OR ".join(f"{col} = ?" for col, _ in keys)
    sql = f"SELECT * FROM outside_events WHERE {where} ORDER BY at DESC, qualifier DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    out = []
    for row in store.db().query(sql, [v for _, v in keys]):
        params = json.loads(row["params"] or "{}")
        out.append(
            {
                "at": row["at"],
                "event": describe(row["name"], params),
                "actor": row["actor"],
                "detail": {"Google event": row["name"]},
                "outside": True,
            }
        )
    return out


def count_for(store: Store, device_id: str | None, serial: str | None) -> int:
    keys = [(col, v) for col, v in (("device_id", device_id), ("serial", serial)) if v]
    if not keys:
        return 0
    where = " OR ".join(f"{col} = ?" for col, _ in keys)
    row = store.db().execute(
        f"SELECT COUNT(*) FROM outside_events WHERE {where}", [v for _, v in keys]
    )
    return int(row.fetchone()[0])


# ---- open requests -------------------------------------------------------------------------


def _moot(request: requests.Request, name: str, params: dict[str, str]) -> bool:
    """Whether the outside change already did what the request asks."""
    if name in STATE_EVENTS:
        return _MOOT_STATES.get(request.action) == params.get("DEVICE_NEW_STATE")
    if name == MOVE and request.action == "move":
        return bool(params.get("NEW_VALUE")) and params.get("NEW_VALUE") == request.params.get("ou")
    return False


def notice(request: requests.Request, row: dict[str, Any]) -> str:
    """The thread message about an outside change to a device of an open request."""
    params = json.loads(row["params"] or "{}")
    what = describe(row["name"], params)
    device = row.get("serial") or row.get("device_id") or "the device"
    head = f"{esc(device)} was {esc(what)} in the Admin console by {esc(row['actor'])}"
    if row["name"] in (ANNOTATION, COMMAND):
        head = f"{esc(device)}: {esc(what)} in the Admin console by {esc(row['actor'])}"
    if _moot(request, row["name"], params):
        return f"{head}: the request is no longer needed."
    return f"{head} while this request is open: check that it still makes sense."


def _tell_open_requests(svc: Services, rows: list[dict[str, Any]]) -> int:
    """Say each new outside change in the threads of the open requests on that device."""
    if not rows:
        return 0

    open_rows = requests.not_yet_running(svc)
    if not open_rows:
        return 0
    told = 0
    for r in open_rows:
        ids = set(json.loads(r["device_ids"] or "[]"))
        serials = {
            d.get("serial") for d in json.loads(r["devices"] or "[]") if isinstance(d, dict)
        } - {None, ""}
        for row in sorted(rows, key=lambda x: x["at"]):
            if not (row["serial"] in serials or row["device_id"] in ids):
                continue
            if (dates.epoch_of(row["time"]) or 0.0) < float(r["created_at"]):
                continue  # done before the request was made: its card showed the result
            request = requests.load(svc, r["id"])
            if request.state not in (RequestState.PENDING, RequestState.APPROVED):
                continue
            threads.tell_threads(svc, request, notice(request, row))
            told += 1
    return told


def register(app: Any, svc: Services, commands: Any) -> None:
    """No command or button of its own: what it reads shows in `/device history` and in
    the request threads."""


def jobs(svc: Services) -> list[JobSpec]:
    """The audit log reader, when the Reports API is configured (it comes with Chrome)."""
    if svc.google.reports is None:
        return []
    return [JobSpec("reports-sync", sync, svc.settings.reports_sync_interval)]
