"""Outcomes in words: what a finished command did, as the thread says it.

A succeeded request is told in the action's own words (`done_words`); a finished AMAPI
Operation or Chrome command is read the way the references say (the command-specific
status first, then `errorCode`, then the generic `error`) and told with what the device
reported. The words are mrkdwn: whatever the device or Google reported (error messages,
eSIM details, payloads, file names) is escaped here, where the words are built.
"""

from __future__ import annotations

from typing import Any

from bot import catalog
from bot.blocks import esc
from bot.catalog.specs import CommandStatus
from bot.request_model import Request, RequestState

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


#: the generic first line of a finished command, replaced by what the action did (done_words)
DONE = "Done: the device ran the command."


class _Words(dict[str, str]):
    """The values a spec's done words may name: {target}, and each parameter (escaped)."""

    def __missing__(self, key: str) -> str:
        return "?"


def done_words(request: Request) -> str:
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


def in_words(request: Request, text: str) -> str:
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
) -> tuple[RequestState, str, dict[str, Any]]:
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
        return RequestState.CANCELLED, "Cancelled before the device ran it.", detail
    if error.get("code") == 4 or "expire" in (error.get("message") or "").lower():
        if waiting == "PENDING_USER_ACTION":
            detail["waited"] = waiting
            return (
                RequestState.EXPIRED,
                "Expired: the person on the device did not act on it within the command's time limit.",
                detail,
            )
        if waiting:
            detail["waited"] = waiting
            return (
                RequestState.EXPIRED,
                "Expired while the device still reported it in progress; its outcome is unknown.",
                detail,
            )
        return (
            RequestState.EXPIRED,
            "Expired: the device did not run the command within its time limit.",
            detail,
        )
    if status in WAITING:
        # done, yet the device still says it waits: not something to call done
        detail["status"] = status
        if code:
            detail["errorCode"] = code
        return (
            RequestState.FAILED,
            f"Not confirmed: Google closed the command while the device still reported `{status}`"
            f" ({STILL_WAITING[status]}); check the device.",
            detail,
        )
    lines: list[str] = []
    state = RequestState.FAILED if error or code else RequestState.SUCCEEDED
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
        state = RequestState.SUCCEEDED if ok else RequestState.FAILED
    if code:
        detail["errorCode"] = code
        words = f"{ANDROID_ERRORS.get(code) or esc(code)} (`{esc(code)}`)"
        if not specific:
            return RequestState.FAILED, f"Failed: {words}.", detail
        lines.append(f"Google's error code: {words}.")
    if error:
        detail["error"] = error.get("message")
    if state == RequestState.SUCCEEDED:
        head = DONE
    elif lines:
        head = "Failed on the device."
    else:
        head = f"Failed: {esc(error.get('message') or 'Google reported an error')}."
    return state, "\n".join([head, *lines]), detail


def describe_chrome(command: dict[str, Any]) -> tuple[RequestState, str, dict[str, Any]] | None:
    """(final state, words, detail) of a finished Chrome command; None while it is still going."""
    state = command.get("state")
    detail: dict[str, Any] = {"commandId": command.get("commandId"), "state": state}
    if state == "EXPIRED":
        return (
            RequestState.EXPIRED,
            "Expired: the device did not pick the command up in time.",
            detail,
        )
    if state == "CANCELLED":
        return RequestState.CANCELLED, "Cancelled before the device ran it.", detail
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
        return RequestState.SUCCEEDED, text, detail
    if kind == "IGNORED":
        return (
            RequestState.FAILED,
            "The device ignored the command (not applicable in its current session).",
            detail,
        )
    message = result.get("errorMessage") or "no details"
    return RequestState.FAILED, f"Failed on the device: {esc(message)}", detail


def download_line(name: str, url: str) -> str:
    """A file a command produced as a link; Google's URL and file name are quoted safely.

    A URL that could break out of Slack's `<url|text>` (a `|`, `<` or `>` in it, or not
    http(s)) is shown as text, not as a link.
    """
    if url.startswith(("https://", "http://")) and not any(c in url for c in "|<> "):
        return f"Download: <{url.replace('&', '&amp;')}|{esc(name)}>"
    return f"Download {esc(name)}: `{esc(url)}`"
