"""Outcomes of commands the device runs later.

A sent command is stored as pending; the poll job asks Google about every due one
(Android: batched `operations.get`, ≤ 100 per HTTP request; Chrome: `commands.get`) and,
once it is done, ends its request with the outcome in words in both threads. Nothing
pending: no Google call at all. A command that keeps failing to poll backs off.
The words are `bot/outcome_words.py`'s.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App

from bot import audit, dates, outcome_words, requests, threads
from bot.blocks import esc
from bot.commands import Commands
from bot.errors import DeviceBotError, NotFound
from bot.jobs import JobSpec
from bot.requests import RequestState
from bot.services import Services

log = logging.getLogger(__name__)

DEFAULT_DURATION = 600.0  # AMAPI Command.duration default: 10 minutes
EXPIRY_GRACE = 30.0
MAX_BACKOFF = 300.0
MAX_POLL_FAILURES = 20


def _seconds(duration: str | None) -> float:
    if not duration:
        return DEFAULT_DURATION
    try:
        return float(duration.rstrip("s"))
    except ValueError:
        return DEFAULT_DURATION


# ---- tracking and polling ----------------------------------------------------------------


def track(
    svc: Services,
    request: requests.Request,
    google_ref: str,
    operation: dict[str, Any] | None = None,
) -> None:
    """Remember a sent command; the poll job follows it from here."""
    now = svc.clock()
    duration = _seconds(((operation or {}).get("metadata") or {}).get("duration"))
    with svc.store.transaction() as db:
        db.execute(
            "INSERT OR IGNORE INTO pending_commands(request_id, platform, device_id, google_ref, command_type,"
            " state, created_at, expires_at, next_poll_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [
                request.id,
                request.platform,
                request.device_ids[0],
                google_ref,
                request.spec.google,
                "PENDING",
                now,
                now + duration,
                now + svc.settings.poll_interval,
            ],
        )
        requests.mark_sent(svc, request.id, google_ref)
        audit.record(
            svc.store,
            actor="device-bot",
            event="command_sent",
            request_id=request.id,
            platform=request.platform,
            device_id=request.device_ids[0],
            detail={"ref": google_ref, "type": request.spec.google},
        )

    threads.tell_threads(
        svc, requests.load(svc, request.id), "Sent to Google; waiting for the device to run it."
    )
    if operation is not None and operation.get("done"):
        _android_result(svc, _row(svc, "android", google_ref), operation)


def _row(svc: Services, platform: str, google_ref: str) -> dict[str, Any]:
    rows = list(
        svc.store.db().query(
            "SELECT * FROM pending_commands WHERE platform = ? AND google_ref = ?",
            [platform, google_ref],
        )
    )
    return rows[0]


def poll(svc: Services) -> int:
    """One poll cycle over every due pending command; returns how many were asked about."""
    now = svc.clock()
    # due by half a cycle from now: a command rescheduled one interval after the last cycle
    # (a moment after its tick) is asked at the next tick, not every second one
    due = now + svc.settings.poll_interval / 2
    rows = svc.store.claim_due_commands(due, hold=2 * svc.settings.google_timeout, limit=2000)
    if not rows:
        return 0
    android = [r for r in rows if r["platform"] == "android"]
    chrome = [r for r in rows if r["platform"] == "chrome"]
    # the commands still running are rescheduled together, in one transaction at the end;
    # each ending one is marked done in its own (conditional: once)
    later: list[list[Any]] = []
    try:
        if android:
            refs = [r["google_ref"] for r in android]
            results = svc.google.require_android().get_operations(refs)
            for row in android:
                result = results.get(row["google_ref"])
                if isinstance(result, dict):
                    _android_result(svc, row, result, later)
                else:
                    _poll_failed(svc, row, result, later)
        if chrome:
            api = svc.google.require_chrome()
            futures = [
                (row, svc.executor.submit(api.get_command, row["device_id"], row["google_ref"]))
                for row in chrome
            ]
            for row, future in futures:
                try:
                    _chrome_result(svc, row, future.result(), later)
                except DeviceBotError as exc:
                    _poll_failed(svc, row, exc, later)
    finally:
        _reschedule(svc, later)
    return len(rows)


def _done(svc: Services, row: dict[str, Any], state: str) -> bool:
    """Mark a pending command done, once (the row count decides)."""
    with svc.store.transaction() as db:
        cursor = db.execute(
            "UPDATE pending_commands SET done = 1, state = ? WHERE id = ? AND done = 0",
            [state, row["id"]],
        )
        return cursor.rowcount == 1


def _later(
    svc: Services,
    row: dict[str, Any],
    later: list[list[Any]] | None,
    state: str | None = None,
    failures: int | None = None,
) -> None:
    """Ask again later (backing off after failures): into the cycle's batch, or now."""
    failures = row["poll_failures"] if failures is None else failures
    delay = (
        svc.settings.poll_interval * (2 ** min(failures, 10))
        if failures
        else svc.settings.poll_interval
    )
    update = [svc.clock() + min(delay, MAX_BACKOFF), failures, state or row["state"], row["id"]]
    if later is None:
        _reschedule(svc, [update])
    else:
        later.append(update)


def _reschedule(svc: Services, updates: list[list[Any]]) -> None:
    """The next poll of commands still running, in one transaction (a done one stays done)."""
    if not updates:
        return
    with svc.store.transaction() as db:
        db.conn.executemany(
            "UPDATE pending_commands SET next_poll_at = ?, poll_failures = ?, state = ?"
            " WHERE id = ? AND done = 0",
            updates,
        )


def _finish(
    svc: Services,
    row: dict[str, Any],
    state: RequestState,
    text: str,
    detail: dict[str, Any],
    files: list[tuple[str, str]] | None = None,
) -> None:
    """End the command's request once, in the action's words; then its files in the thread."""

    if not _done(svc, row, state):
        return
    try:
        request = requests.load(svc, row["request_id"])
    except NotFound:  # no request behind the command (nothing to tell)
        request = None
    if state == RequestState.SUCCEEDED and request is not None:
        text = outcome_words.in_words(request, text)
    fetched: list[tuple[str, bytes]] = []
    for name, url in files or ():
        try:
            fetched.append((name, svc.google.require_chrome().download(url)))
        except DeviceBotError as exc:
            log.warning("could not fetch %s of %s: %s", name, row["device_id"], exc.message)
            text += "\n" + outcome_words.download_line(name, url)
    pointer = None
    if fetched and request is not None and request.approval_ts:
        pointer = file_pointer(svc, request, text, [name for name, _ in fetched])
    threads.finish(svc, row["request_id"], state, text, detail, approval_text=pointer)
    if request is not None:
        for name, content in fetched:
            _upload(svc, request, name, content)


def file_pointer(svc: Services, request: requests.Request, text: str, names: list[str]) -> str:
    """The approval thread's outcome of a command that produced files: the same words, and
    where the files are instead of the files.

    A screenshot or logs go to the person who asked for them, in their thread, and nowhere
    else: a kiosk's screen and a device's system logs can show people's data, and the
    approvers of a shared channel need to know that it ran, not what it captured.
    """
    first, *rest = text.split("\n")
    files = ", ".join(f"`{esc(n)}`" for n in names)
    channel, ts = request.requester_channel, request.requester_ts
    direct = channel == request.requester or str(channel).startswith("D")
    link = None if direct or not (channel and ts) else svc.out.permalink(channel, ts)
    if link:
        where = f"is in <@{request.requester}>'s thread (<{link}|open it>), not copied here."
    else:
        where = f"was sent to <@{request.requester}> only, not copied here."
    return "\n".join([f"{first.rstrip(':')}: {files} {where}", *rest])


def _upload(svc: Services, request: requests.Request, name: str, content: bytes) -> None:
    """A command's file, shared in the requester's thread only (Slack's external upload flow;
    the approval thread has a pointer to it, see file_pointer)."""
    channel, ts = request.requester_channel, request.requester_ts
    if not (channel and ts):
        return
    try:
        svc.out.upload(
            channel,
            name,
            content,
            title=f"{request.spec.label}: {request.target}"[:250],
            thread_ts=ts,
        )
    except Exception:
        log.exception("could not upload %s to the thread of %s", name, request.id)

        threads.tell_threads(
            svc, request, f"The file `{esc(name)}` could not be shared in the requester's thread."
        )


def _poll_failed(
    svc: Services, row: dict[str, Any], error: Any, later: list[list[Any]] | None = None
) -> None:
    if isinstance(error, NotFound):
        _finish(
            svc,
            row,
            RequestState.FAILED,
            "Google no longer knows this command; its outcome is unknown.",
            {"error": "not_found"},
        )
        return
    failures = row["poll_failures"] + 1
    log.warning("polling %s failed (%d): %s", row["google_ref"], failures, error)
    if failures >= MAX_POLL_FAILURES:
        _finish(
            svc,
            row,
            RequestState.FAILED,
            f"Gave up asking Google about the command after {failures} failures.",
            {},
        )
        return
    _later(svc, row, later, failures=failures)


def _android_result(
    svc: Services,
    row: dict[str, Any],
    operation: dict[str, Any],
    later: list[list[Any]] | None = None,
) -> None:
    seen = row["state"] if row["state"] in outcome_words.WAITING else None
    if operation.get("done"):
        state, text, detail = outcome_words.describe_android(operation, seen)
        _finish(svc, row, state, text, detail)
        return
    if svc.clock() > (row["expires_at"] or 0) + EXPIRY_GRACE:
        # Google has not closed it yet; the command's own time limit is long past
        expired = {
            "name": operation.get("name"),
            "metadata": operation.get("metadata"),
            "done": True,
        }
        expired["error"] = {"code": 4, "message": "expired"}
        _finish(svc, row, *outcome_words.describe_android(expired, seen))
        return
    status = outcome_words.command_status(operation.get("metadata") or {})
    if status in outcome_words.WAITING and status != row["state"]:
        _progress(
            svc, row, "android", status, outcome_words.waiting_words(row["command_type"], status)
        )
    _later(svc, row, later, state=status if status in outcome_words.WAITING else None, failures=0)


def _progress(svc: Services, row: dict[str, Any], platform: str, state: str, words: str) -> None:
    """A pending command changed state on the device: say so in its threads, once per change."""

    threads.tell_threads(svc, requests.load(svc, row["request_id"]), words)
    audit.record(
        svc.store,
        actor="device-bot",
        event="command_progress",
        request_id=row["request_id"],
        platform=platform,
        device_id=row["device_id"],
        detail={"state": state},
    )


def _chrome_result(
    svc: Services,
    row: dict[str, Any],
    command: dict[str, Any],
    later: list[list[Any]] | None = None,
) -> None:
    described = outcome_words.describe_chrome(command)
    state = command.get("state", "PENDING")
    if described is None:
        if state != row["state"] and state in outcome_words.CHROME_PROGRESS:
            _progress(svc, row, "chrome", state, outcome_words.CHROME_PROGRESS[state])
        _later(svc, row, later, state=state, failures=0)
        return
    final, text, detail = described
    links: list[tuple[str, str]] = []
    if final == RequestState.SUCCEEDED and row["command_type"] in outcome_words.DOWNLOAD_COMMANDS:
        links = download_links(svc, row["device_id"], command.get("issueTime"))
        if links:
            detail["downloads"] = [url for _, url in links]
        else:
            text += "\nGoogle listed no file for it on the device."
    _finish(svc, row, final, text, detail, files=links)


def download_links(svc: Services, device_id: str, since: str | None) -> list[tuple[str, str]]:
    """Files a screenshot / logs / support-packet command produced (deviceFiles, screenshotFiles)."""
    try:
        raw = svc.google.require_chrome().get(device_id)
    except DeviceBotError:
        return []
    start = dates.epoch_of(since) or 0.0
    links = []
    for key in ("screenshotFiles", "deviceFiles"):
        for item in raw.get(key) or []:
            created = dates.epoch_of(item.get("createTime")) or 0.0
            if item.get("downloadUrl") and created >= start - 1:
                links.append(
                    (str(item.get("name") or item.get("type") or key), str(item["downloadUrl"]))
                )
    return links[:5]


def find_operation(svc: Services, request: requests.Request) -> dict[str, Any] | None:
    """After a crash: the operation this request created at Google, if it did."""
    since = (request.executing_at or request.created_at) - 5
    for operation in svc.google.require_android().list_operations(request.device_ids[0]):
        command = operation.get("metadata") or {}
        created = dates.epoch_of(command.get("createTime"))
        if command.get("type") == request.spec.google and (created is None or created >= since):
            return dict(operation)
    return None


def jobs(svc: Services) -> list[JobSpec]:
    """The poll job."""
    # PostgreSQL: every replica polls, claiming its rows; SQLite: the lease holder alone
    shared = svc.store.shared_polling
    return [JobSpec("poll-outcomes", poll, svc.settings.poll_interval, needs_lease=not shared)]


def register(app: App, svc: Services, commands: Commands) -> None:
    """Outcomes have no listeners of their own: they arrive through the poll job."""
