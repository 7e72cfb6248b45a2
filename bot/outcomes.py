"""Outcomes of commands the device runs later.

A sent command is stored as pending; the poll job asks Google about every due one
(Android: batched `operations.get`, ≤ 100 per HTTP request; Chrome: `commands.get`) and,
once it is done, ends its request with the outcome in words in both threads. Nothing
pending: no Google call at all. A command that keeps failing to poll backs off.

The words are mrkdwn: whatever the device or Google reported (error messages, eSIM
details, payloads, file names) is escaped here, where the words are built.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from slack_bolt import App

from bot import audit, catalog, requests, threads
from bot.blocks import esc
from bot.catalog.specs import CommandStatus
from bot.commands import Commands
from bot.errors import DeviceBotError, NotFound
from bot.jobs import JobSpec
from bot.services import Services

log = logging.getLogger(__name__)

DEFAULT_DURATION = 600.0  # AMAPI Command.duration default: 10 minutes
EXPIRY_GRACE = 30.0
MAX_BACKOFF = 300.0
MAX_POLL_FAILURES = 20
#: commands whose result is files on the device (each spec's `files`)
DOWNLOAD_COMMANDS = frozenset(s.google for s in catalog.all_specs() if s.files)

ANDROID_ERRORS = {
    "API_LEVEL": "the device's Android version is too old for this command",
    "MANAGEMENT_MODE": "the device's management mode does not allow this command"
    " (for example a work profile on a personal device)",
    "INVALID_VALUE": "the device refused a parameter (for example a password its policy does not accept)",
    "UNSUPPORTED": "the device does not support this command; updating Android Device Policy"
    " on the device to the latest version may resolve this",
    "UNKNOWN": "the device reported an unknown error",
}
#: the command-specific status fields, in the catalog's order (bot/catalog/statuses.py)
STATUS_FIELDS = catalog.status_fields()
#: statuses with which a command still waits on the device
WAITING = ("IN_PROGRESS", "PENDING_USER_ACTION")
STILL_WAITING = {
    "IN_PROGRESS": "still in progress",
    "PENDING_USER_ACTION": "waiting for the person on the device",
}
CHROME_PROGRESS = {
    "PENDING": "Waiting for the device to come online.",
    "SENT_TO_CLIENT": "Sent to the device.",
    "ACKED_BY_CLIENT": "The device acknowledged the command.",
}


def _seconds(duration: str | None) -> float:
    if not duration:
        return DEFAULT_DURATION
    try:
        return float(duration.rstrip("s"))
    except ValueError:
        return DEFAULT_DURATION


def _epoch(timestamp: str | None) -> float | None:
    if not timestamp:
        return None
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


# ---- describing outcomes in words --------------------------------------------------------

#: the generic first line of a finished command, replaced by what the action did (done_words)
DONE = "Done: the device ran the command."


class _Words(dict[str, str]):
    """The values a spec's done words may name: {target}, and each parameter (escaped)."""

    def __missing__(self, key: str) -> str:
        return "?"


def done_words(request: Any) -> str:
    """What a succeeded request did to its device(s), in the spec's words (mrkdwn-safe)."""
    spec = request.spec
    target = esc(request.target)
    params = request.params or {}
    if not spec.done:
        return f"Done: {esc(spec.label.lower())} {target}."
    device = (request.devices or [{}])[0]
    words = (spec.done_as(params, device) if spec.done_as else None) or spec.done
    values = _Words({k: esc(v) for k, v in params.items() if isinstance(v, str | int)})
    values["target"] = target
    return words.format_map(values)


def in_words(request: Any, text: str) -> str:
    """A succeeded command's outcome with the action's own words instead of the generic ones."""
    lines = text.split("\n")
    if not lines or lines[0] != DONE:
        return text
    files = request.spec.files  # the payload is the file's link
    said = {s.said for s in catalog.command_statuses()}
    rest = [
        line
        for line in lines[1:]
        if line not in said and not (files and line.startswith("Result: "))
    ]
    return "\n".join([done_words(request), *rest])


def _own_status(command: dict[str, Any]) -> tuple[CommandStatus, dict[str, Any]] | None:
    """The command-specific status object Google set in a Command, with how it reads."""
    for known in catalog.command_statuses():
        if known.key in command:
            return known, command[known.key] or {}
    return None


def command_status(command: dict[str, Any]) -> str | None:
    """The command-specific status Google set in a Command (lost mode, eSIM, device info)."""
    found = _own_status(command)
    if found is None or found[0].read is not None:
        return None  # per-item results (cleared apps) have no single status
    return str(found[1].get("status") or "STATUS_UNSPECIFIED")


def waiting_words(command_type: str, status: str) -> str:
    """A command waiting on the device, in words (PENDING_USER_ACTION: the person on it)."""
    if status == "PENDING_USER_ACTION":
        spec = catalog.android_command(command_type)
        what = spec.status.waiting if spec and spec.status and spec.status.waiting else "act on it"
        return f"Waiting for the person on the device to {what}."
    return "The device is working on it (in progress)."


def describe_android(
    operation: dict[str, Any], seen: str | None = None
) -> tuple[str, str, dict[str, Any]]:
    """(final state, words, detail) of a finished AMAPI Operation.

    As the reference says, the command-specific status is read first, then `errorCode`,
    then the Operation's generic `error`. `seen` is the last waiting status the poller saw.
    """
    command = operation.get("metadata") or {}
    error = operation.get("error") or {}
    detail: dict[str, Any] = {"operation": operation.get("name")}
    code = command.get("errorCode")
    if code == "COMMAND_ERROR_CODE_UNSPECIFIED":
        code = None
    status = command_status(command)
    waiting = status if status in WAITING else seen if seen in WAITING else None
    if error.get("code") == 1 or "cancel" in (error.get("message") or "").lower():
        return "cancelled", "Cancelled before the device ran it.", detail
    if error.get("code") == 4 or "expire" in (error.get("message") or "").lower():
        if waiting == "PENDING_USER_ACTION":
            detail["waited"] = waiting
            return (
                "expired",
                "Expired: the person on the device did not act on it within the command's time limit.",
                detail,
            )
        if waiting:
            detail["waited"] = waiting
            return (
                "expired",
                "Expired while the device still reported it in progress; its outcome is unknown.",
                detail,
            )
        return (
            "expired",
            "Expired: the device did not run the command within its time limit.",
            detail,
        )
    if status in WAITING:
        # done, yet the device still says it waits: not something to call done
        detail["status"] = status
        if code:
            detail["errorCode"] = code
        return (
            "failed",
            f"Not confirmed: Google closed the command while the device still reported `{status}`"
            f" ({STILL_WAITING[status]}); check the device.",
            detail,
        )
    lines: list[str] = []
    state = "failed" if error or code else "succeeded"
    own = _own_status(command)
    specific = own is not None
    if own is not None:
        known, obj = own
        if known.read is not None:
            ok, lines, more = known.read(obj)
        else:
            status = str(obj.get("status") or "STATUS_UNSPECIFIED")
            lines = [known.words.get(status) or f"{known.other}: {esc(status)}."]
            lines += known.more(obj) if known.more else []
            ok, more = status in known.ok, {known.detail: status}
        detail.update(more)
        state = "succeeded" if ok else "failed"
    if code:
        detail["errorCode"] = code
        words = f"{ANDROID_ERRORS.get(code) or esc(code)} (`{esc(code)}`)"
        if not specific:
            return "failed", f"Failed: {words}.", detail
        lines.append(f"Google's error code: {words}.")
    if error:
        detail["error"] = error.get("message")
    if state == "succeeded":
        head = DONE
    elif lines:
        head = "Failed on the device."
    else:
        head = f"Failed: {esc(error.get('message') or 'Google reported an error')}."
    return state, "\n".join([head, *lines]), detail


def describe_chrome(command: dict[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
    """(final state, words, detail) of a finished Chrome command; None while it is still going."""
    state = command.get("state")
    detail: dict[str, Any] = {"commandId": command.get("commandId"), "state": state}
    if state == "EXPIRED":
        return "expired", "Expired: the device did not pick the command up in time.", detail
    if state == "CANCELLED":
        return "cancelled", "Cancelled before the device ran it.", detail
    if state != "EXECUTED_BY_CLIENT":
        return None
    result = command.get("commandResult") or {}
    kind = result.get("result")
    detail["result"] = kind
    if kind == "SUCCESS":
        text = DONE
        payload = result.get("commandResultPayload")
        if payload:
            text += f"\nResult: `{esc(payload[:500])}`"
        return "succeeded", text, detail
    if kind == "IGNORED":
        return (
            "failed",
            "The device ignored the command (not applicable in its current session).",
            detail,
        )
    message = result.get("errorMessage") or "no details"
    return "failed", f"Failed on the device: {esc(message)}", detail


# ---- tracking and polling ----------------------------------------------------------------


def track(
    svc: Services, request: Any, google_ref: str, operation: dict[str, Any] | None = None
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
        db.execute(
            "UPDATE requests SET google_ref = ?, reconcile = 0 WHERE id = ?",
            [google_ref, request.id],
        )
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
    rows = list(
        svc.store.db().query(
            "SELECT * FROM pending_commands WHERE done = 0 AND next_poll_at <= ? ORDER BY next_poll_at LIMIT 2000",
            [now],
        )
    )
    if not rows:
        return 0
    android = [r for r in rows if r["platform"] == "android"]
    chrome = [r for r in rows if r["platform"] == "chrome"]
    if android:
        results = svc.google.require_android().get_operations([r["google_ref"] for r in android])
        for row in android:
            result = results.get(row["google_ref"])
            if isinstance(result, dict):
                _android_result(svc, row, result)
            else:
                _poll_failed(svc, row, result)
    if chrome:
        api = svc.google.require_chrome()
        futures = [
            (row, svc.executor.submit(api.get_command, row["device_id"], row["google_ref"]))
            for row in chrome
        ]
        for row, future in futures:
            try:
                _chrome_result(svc, row, future.result())
            except DeviceBotError as exc:
                _poll_failed(svc, row, exc)
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
    svc: Services, row: dict[str, Any], state: str | None = None, failures: int | None = None
) -> None:
    failures = row["poll_failures"] if failures is None else failures
    delay = (
        svc.settings.poll_interval * (2 ** min(failures, 10))
        if failures
        else svc.settings.poll_interval
    )
    with svc.store.transaction() as db:
        db.execute(
            "UPDATE pending_commands SET next_poll_at = ?, poll_failures = ?, state = ? WHERE id = ?",
            [svc.clock() + min(delay, MAX_BACKOFF), failures, state or row["state"], row["id"]],
        )


def _finish(
    svc: Services,
    row: dict[str, Any],
    state: str,
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
    if state == "succeeded" and request is not None:
        text = in_words(request, text)
    fetched: list[tuple[str, bytes]] = []
    for name, url in files or ():
        try:
            fetched.append((name, svc.google.require_chrome().download(url)))
        except DeviceBotError as exc:
            log.warning("could not fetch %s of %s: %s", name, row["device_id"], exc.message)
            text += "\n" + download_line(name, url)
    threads.finish(svc, row["request_id"], state, text, detail)
    for name, content in fetched if request is not None else ():
        _upload(svc, request, name, content)


def _upload(svc: Services, request: Any, name: str, content: bytes) -> None:
    """A command's file, shared in the requester's thread (Slack's external upload flow)."""
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
            svc, request, f"The file `{esc(name)}` could not be shared here.", approval=False
        )


def _poll_failed(svc: Services, row: dict[str, Any], error: Any) -> None:
    if isinstance(error, NotFound):
        _finish(
            svc,
            row,
            "failed",
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
            "failed",
            f"Gave up asking Google about the command after {failures} failures.",
            {},
        )
        return
    _later(svc, row, failures=failures)


def _android_result(svc: Services, row: dict[str, Any], operation: dict[str, Any]) -> None:
    seen = row["state"] if row["state"] in WAITING else None
    if operation.get("done"):
        state, text, detail = describe_android(operation, seen)
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
        _finish(svc, row, *describe_android(expired, seen))
        return
    status = command_status(operation.get("metadata") or {})
    if status in WAITING and status != row["state"]:
        _progress(svc, row, "android", status, waiting_words(row["command_type"], status))
    _later(svc, row, state=status if status in WAITING else None, failures=0)


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


def _chrome_result(svc: Services, row: dict[str, Any], command: dict[str, Any]) -> None:
    described = describe_chrome(command)
    state = command.get("state", "PENDING")
    if described is None:
        if state != row["state"] and state in CHROME_PROGRESS:
            _progress(svc, row, "chrome", state, CHROME_PROGRESS[state])
        _later(svc, row, state=state, failures=0)
        return
    final, text, detail = described
    links: list[tuple[str, str]] = []
    if final == "succeeded" and row["command_type"] in DOWNLOAD_COMMANDS:
        links = download_links(svc, row["device_id"], command.get("issueTime"))
        if links:
            detail["downloads"] = [url for _, url in links]
        else:
            text += "\nGoogle listed no file for it on the device."
    _finish(svc, row, final, text, detail, files=links)


def download_line(name: str, url: str) -> str:
    """A file a command produced as a link; Google's URL and file name are quoted safely.

    A URL that could break out of Slack's `<url|text>` (a `|`, `<` or `>` in it, or not
    http(s)) is shown as text, not as a link.
    """
    if url.startswith(("https://", "http://")) and not any(c in url for c in "|<> "):
        return f"Download: <{url.replace('&', '&amp;')}|{esc(name)}>"
    return f"Download {esc(name)}: `{esc(url)}`"


def download_links(svc: Services, device_id: str, since: str | None) -> list[tuple[str, str]]:
    """Files a screenshot / logs / support-packet command produced (deviceFiles, screenshotFiles)."""
    try:
        raw = svc.google.require_chrome().get(device_id)
    except DeviceBotError:
        return []
    start = _epoch(since) or 0.0
    links = []
    for key in ("screenshotFiles", "deviceFiles"):
        for item in raw.get(key) or []:
            created = _epoch(item.get("createTime")) or 0.0
            if item.get("downloadUrl") and created >= start - 1:
                links.append(
                    (str(item.get("name") or item.get("type") or key), str(item["downloadUrl"]))
                )
    return links[:5]


def find_operation(svc: Services, request: Any) -> dict[str, Any] | None:
    """After a crash: the operation this request created at Google, if it did."""
    since = (request.executing_at or request.created_at) - 5
    for operation in svc.google.require_android().list_operations(request.device_ids[0]):
        command = operation.get("metadata") or {}
        created = _epoch(command.get("createTime"))
        if command.get("type") == request.spec.google and (created is None or created >= since):
            return dict(operation)
    return None


def jobs(svc: Services) -> list[JobSpec]:
    """The poll job."""
    return [JobSpec("poll-outcomes", poll, svc.settings.poll_interval)]


def register(app: App, svc: Services, commands: Commands) -> None:
    """Outcomes have no listeners of their own: they arrive through the poll job."""
