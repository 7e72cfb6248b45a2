"""Outcomes in words: what a finished command did, as the thread says it.

A succeeded request is told in the action's own words (`done_words`); a finished AMAPI
Operation or Chrome command is read the way the references say (the command-specific
status first, then `errorCode`, then the generic `error`) and told with what the device
reported. The words are mrkdwn: whatever the device or Google reported (error messages,
eSIM details, payloads, file names) is escaped here, where the words are built.
"""

from __future__ import annotations

from typing import Any

from bot.blocks import esc
from bot.request_model import Request, RequestState

DOWNLOAD_COMMANDS = ("TAKE_A_SCREENSHOT", "CAPTURE_LOGS", "FETCH_SUPPORT_PACKET")

ANDROID_ERRORS = {
    "API_LEVEL": "the device's Android version is too old for this command",
    "MANAGEMENT_MODE": "the device's management mode does not allow this command"
    " (for example a work profile on a personal device)",
    "INVALID_VALUE": "the device refused a parameter (for example a password its policy does not accept)",
    "UNSUPPORTED": "the device does not support this command; updating Android Device Policy"
    " on the device to the latest version may resolve this",
    "UNKNOWN": "the device reported an unknown error",
}
CLEARING_RESULTS = {
    "SUCCESS": "cleared",
    "APP_NOT_FOUND": "not installed",
    "APP_PROTECTED": "protected, not cleared",
    "API_LEVEL": "needs a newer Android version",
}
LOST_START = {
    "SUCCESS": "The device is in lost mode.",
    "RESET_PASSWORD_RECENTLY": "Not in lost mode: the password was reset recently (Android waits 12 h).",
    "USER_EXIT_LOST_MODE_RECENTLY": "Not in lost mode: the user left lost mode recently.",
    "ALREADY_IN_LOST_MODE": "The device was already in lost mode.",
}
LOST_STOP = {
    "SUCCESS": "The device is out of lost mode.",
    "NOT_IN_LOST_MODE": "The device was not in lost mode.",
}
ESIM = {
    "SUCCESS": "eSIM operation succeeded.",
    "ERROR_SETUP_IN_PROGRESS": "eSIM failed: the device's setup is still in progress.",
    "ERROR_USER_DENIED": "eSIM failed: the user declined.",
    "INTERNAL_ERROR": "eSIM failed with an internal error.",
    "ERROR_ICC_ID_NOT_FOUND": "eSIM failed: no eSIM with that ICC ID on the device.",
    "ERROR_MULTIPLE_ACTIVE_ESIMS_NO_AVAILABLE_SLOT": "eSIM failed: no free slot for another active eSIM.",
}
DEVICE_INFO = {
    "SUCCEEDED": "Device info received.",
    "USER_DECLINED": "The user declined to share the device info.",
    "UNSUPPORTED": "The device cannot report this information.",
}
#: the command-specific status fields, in the reference's order (clearAppsDataStatus has
#: per-app results instead of one status)
STATUS_FIELDS = (
    "startLostModeStatus",
    "stopLostModeStatus",
    "esimStatus",
    "requestDeviceInfoStatus",
)
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
#: what a succeeded action did, per (platform, action); {target} is the device(s) in words
DONE_WORDS: dict[tuple[str, str], str] = {
    ("chrome", "disable"): "{target} is now disabled.",
    ("chrome", "reenable"): "{target} is enabled again.",
    ("chrome", "deprovision"): "{target} is deprovisioned; its licence is free again.",
    ("chrome", "reboot"): "{target} restarted.",
    ("chrome", "powerwash"): "{target} was powerwashed: it is back to its factory state.",
    ("chrome", "wipe-users"): "Every user profile was removed from {target}.",
    ("chrome", "screenshot"): "Screenshot of {target}:",
    ("chrome", "volume"): "Volume of {target} set to {volume}.",
    ("chrome", "logs"): "System logs of {target}:",
    ("chrome", "support-packet"): "Support packet of {target}:",
    ("android", "lock"): "{target} is locked.",
    ("android", "reboot"): "{target} restarted.",
    ("android", "reset-password"): "New password set on {target}.",
    ("android", "relinquish"): "{target} is relinquished: its work profile is removed and the"
    " phone is now the person's own.",
    ("android", "clear-app-data"): "App data cleared on {target}:",
    ("android", "lost"): "{target} is locked in lost mode; the screen shows your message.",
    ("android", "found"): "{target} is out of lost mode.",
    ("android", "add-esim"): "eSIM added to {target}.",
    ("android", "remove-esim"): "eSIM removed from {target}.",
    ("android", "device-info"): "{target} shared its eSIM identifier.",
    ("android", "wipe"): "Phone wiped and removed from management.",
}
#: per-command status lines the action's own words already say
_SAID = {
    LOST_START["SUCCESS"],
    LOST_STOP["SUCCESS"],
    ESIM["SUCCESS"],
    DEVICE_INFO["SUCCEEDED"],
}


def done_words(request: Request) -> str:
    """What a succeeded request did to its device(s), in words (mrkdwn-safe)."""
    target = esc(request.target)
    params = request.params or {}
    key = (request.platform, request.action)
    words = DONE_WORDS.get(key)
    if words is None:
        return f"Done: {esc(request.spec.label.lower())} {target}."
    device = (request.devices or [{}])[0]
    if key == ("android", "wipe") and device.get("ownership") == "PERSONALLY_OWNED":
        words = "Work profile removed from {target}; the person's own apps and data stay."
    elif key == ("android", "reset-password") and params.get("clear_password"):
        words = "The password of {target} is cleared."
    elif key == ("android", "lost") and not params.get("message"):
        words = "{target} is locked in lost mode; the screen shows how to reach you."
    text = words.format(target=target, volume=esc(params.get("volume")))
    if key == ("android", "reset-password") and "LOCK_NOW" in (params.get("flags") or ()):
        text += " The device is locked."
    return text


def in_words(request: Request, text: str) -> str:
    """A succeeded command's outcome with the action's own words instead of the generic ones."""
    lines = text.split("\n")
    if not lines or lines[0] != DONE:
        return text
    files = request.spec.google in DOWNLOAD_COMMANDS  # the payload is the file's link
    rest = [
        line
        for line in lines[1:]
        if line not in _SAID and not (files and line.startswith("Result: "))
    ]
    return "\n".join([done_words(request), *rest])


def command_status(command: dict[str, Any]) -> str | None:
    """The command-specific status Google set in a Command (lost mode, eSIM, device info)."""
    for key in STATUS_FIELDS:
        if key in command:
            return str((command[key] or {}).get("status") or "STATUS_UNSPECIFIED")
    return None


def waiting_words(command_type: str, status: str) -> str:
    """A command waiting on the device, in words (PENDING_USER_ACTION: the person on it)."""
    if status == "PENDING_USER_ACTION":
        what = (
            "allow sharing the device info"
            if command_type == "REQUEST_DEVICE_INFO"
            else "confirm the eSIM operation"
        )
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
    specific = "clearAppsDataStatus" in command or status is not None
    if "clearAppsDataStatus" in command:
        state = RequestState.SUCCEEDED
        results = (command["clearAppsDataStatus"] or {}).get("results") or {}
        for package, result in sorted(results.items()):
            outcome = (result or {}).get("clearingResult", "UNKNOWN")
            lines.append(f"• `{esc(package)}`: {CLEARING_RESULTS.get(outcome) or esc(outcome)}")
            if outcome != "SUCCESS":
                state = RequestState.FAILED
        detail["clearAppsData"] = {k: (v or {}).get("clearingResult") for k, v in results.items()}
    if "startLostModeStatus" in command and status is not None:
        lines.append(LOST_START.get(status) or f"Lost mode: {esc(status)}.")
        detail["lostMode"] = status
        state = (
            RequestState.SUCCEEDED
            if status in ("SUCCESS", "ALREADY_IN_LOST_MODE")
            else RequestState.FAILED
        )
    if "stopLostModeStatus" in command and status is not None:
        lines.append(LOST_STOP.get(status) or f"Lost mode: {esc(status)}.")
        detail["lostMode"] = status
        # NOT_IN_LOST_MODE: what was wanted (a device out of lost mode) holds already
        state = (
            RequestState.SUCCEEDED
            if status in ("SUCCESS", "NOT_IN_LOST_MODE")
            else RequestState.FAILED
        )
    if "esimStatus" in command and status is not None:
        esim = command["esimStatus"] or {}
        lines.append(ESIM.get(status) or f"eSIM: {esc(status)}.")
        internal = esim.get("internalErrorDetails") or {}
        if internal:
            parts = [f"{esc(k)}={esc(v)}" for k, v in sorted(internal.items())]
            lines.append("Internal error details: " + ", ".join(parts))
        detail["esim"] = status
        state = RequestState.SUCCEEDED if status == "SUCCESS" else RequestState.FAILED
    if "requestDeviceInfoStatus" in command and status is not None:
        info = command["requestDeviceInfoStatus"] or {}
        lines.append(DEVICE_INFO.get(status) or f"Device info: {esc(status)}.")
        eids = [
            e.get("eid") for e in ((info.get("eidInfo") or {}).get("eids") or []) if e.get("eid")
        ]
        if eids:
            lines.append("EID: " + ", ".join(f"`{esc(e)}`" for e in eids))
        detail["deviceInfo"] = status
        state = RequestState.SUCCEEDED if status == "SUCCEEDED" else RequestState.FAILED
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
