"""Directory API ChromeOS commands: issueCommand, the device running them, commands.get.

A command walks PENDING → SENT_TO_CLIENT → ACKED_BY_CLIENT → EXECUTED_BY_CLIENT over
`command_delay` seconds, or stays PENDING until it EXPIRES on a device set never to
acknowledge; a file-producing command leaves its file on the device (`command_files`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.google import discovery
from bot.sandbox import reports
from bot.sandbox.api import ApiError, Request, Response, rfc3339
from bot.sandbox.chrome_devices import device
from bot.sandbox.command_files import LOGS, SCREENSHOT, SUPPORT_PACKET
from bot.sandbox.devices import Json
from bot.sandbox.fleet import ChromeCommand, Fleet

#: names and enums from the discovery document (`bot.google.discovery`)
COMMAND_TYPES = discovery.enum(
    discovery.DIRECTORY, "DirectoryChromeosdevicesIssueCommandRequest.commandType"
)


def issue_command(fleet: Fleet, req: Request, device_id: str) -> Response:
    body = req.json()
    ctype = body.get("commandType")
    if not ctype or ctype == "COMMAND_TYPE_UNSPECIFIED":
        raise ApiError(400, "Missing required field: commandType", reason="required")
    if ctype not in COMMAND_TYPES:
        raise ApiError(400, f"Invalid value for commandType: {ctype}")
    payload = body.get("payload")
    _validate_payload(ctype, payload)
    d = device(fleet, device_id)
    if d["status"] != "ACTIVE":
        raise ApiError(
            412, f"Commands can only be issued to ACTIVE devices (device is {d['status']})"
        )
    now = fleet.now()
    key = device_id
    never = key in fleet.never_ack
    ttl = fleet.never_ack.get(key) or fleet.chrome_command_ttl
    expire = now + ttl
    execute = float("inf") if never else now + fleet.command_delay
    if execute > expire:
        execute = float("inf")
    command_id = str(5_000_000_000 + fleet.next_id())
    outcome = fleet.outcomes.get(key, {})
    cmd = ChromeCommand(
        command_id=command_id,
        device_id=device_id,
        type=ctype,
        payload=payload,
        issue_time=now,
        execute_time=execute,
        expire_time=expire,
        result=outcome.get("result", "SUCCESS"),
        error_message=outcome.get("error_message"),
    )
    if (session := session_refusal(d, ctype, fleet.kiosk_org_units)) is not None:
        cmd.result, cmd.error_message = "FAILURE", session
    cmd.result_payload = outcome.get("result_payload")
    if cmd.result == "FAILURE" and not cmd.error_message:
        cmd.error_message = "The device could not execute the command."
    fleet.chrome_commands.setdefault(device_id, {})[command_id] = cmd
    reports.record_command(fleet, d, ctype)
    if execute != float("inf"):
        fleet.schedule(execute, lambda: _execute(fleet, cmd))
    return Response(200, {"commandId": command_id})


_KIOSK_ONLY = {
    "TAKE_A_SCREENSHOT": "Only available if the device is in Kiosk Mode.",
    "CAPTURE_LOGS": "Only available on kiosk devices.",
    "SET_VOLUME": "Can only be issued to Kiosk and managed guest session devices.",
}


def session_refusal(d: Json, ctype: str, kiosk_org_units: Sequence[str] = ()) -> str | None:
    """The device refuses a command its session cannot run (the commandType enum's words).

    A kiosk device is one with a Kiosk Upgrade licence, or one in an organisational unit of
    `kiosk_org_units` (whose policy launches a kiosk app) — our reading: the API exposes no
    session type; REBOOT on a user's device needs ChromeOS 113.
    """
    ou = str(d.get("orgUnitPath") or "").rstrip("/")
    kiosk = d.get("deviceLicenseType") == "kioskUpgrade" or any(
        ou == k.rstrip("/") or ou.startswith(k.rstrip("/") + "/") for k in kiosk_org_units
    )
    if ctype in _KIOSK_ONLY and not kiosk:
        return _KIOSK_ONLY[ctype]
    if ctype == "REBOOT" and not kiosk:
        milestone = str(d.get("osVersion", "")).split(".", 1)[0]
        if milestone.isdigit() and int(milestone) < 113:
            return "Reboot needs ChromeOS 113 or later outside kiosk and managed guest sessions."
    return None


def _validate_payload(ctype: str, payload: Any) -> None:
    if payload is None or payload == "":
        if ctype == "SET_VOLUME":
            raise ApiError(400, 'Invalid Input: SET_VOLUME needs a payload {"volume": 0-100}')
        return
    if not isinstance(payload, str):
        raise ApiError(400, "Invalid Input: payload must be a JSON string")
    try:
        data = json.loads(payload)
    except ValueError:
        raise ApiError(400, "Invalid Input: payload is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Invalid Input: payload must be a JSON object")
    if ctype == "SET_VOLUME":
        v = data.get("volume")
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 100:
            raise ApiError(400, "Invalid Input: volume must be an integer in [0, 100]")
    elif ctype == "REBOOT":
        v = data.get("user_session_delay_seconds", 0)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 300:
            raise ApiError(400, "Invalid Input: user_session_delay_seconds must be in [0, 300]")
    elif ctype not in ("FETCH_SUPPORT_PACKET", "DEVICE_START_CRD_SESSION"):
        raise ApiError(400, f"Invalid Input: {ctype} does not take a payload")


_FILES = {
    "TAKE_A_SCREENSHOT": ("screenshotFiles", "SCREENSHOT_FILE", "png", SCREENSHOT),
    "CAPTURE_LOGS": ("deviceFiles", "LOG_FILE", "tar.gz", LOGS),
    "FETCH_SUPPORT_PACKET": ("deviceFiles", "SUPPORT_PACKET", "zip", SUPPORT_PACKET),
}


def _execute(fleet: Fleet, cmd: ChromeCommand) -> None:
    """The device executes a command: apply its effect on the device."""
    cmd.applied = True
    d = fleet.chrome_get(cmd.device_id)
    if d is None or cmd.result != "SUCCESS":
        return
    when = rfc3339(cmd.execute_time)
    if cmd.type in _FILES:
        field, ftype, ext, content = _FILES[cmd.type]
        name = f"{cmd.type.lower()}-{cmd.command_id}.{ext}"
        path = f"sandbox/files/{cmd.device_id}/{name}"
        fleet.files[path] = content
        url = fleet.url + path
        d.setdefault(field, []).insert(
            0, {"name": name, "type": ftype, "createTime": when, "downloadUrl": url}
        )
        cmd.result_payload = json.dumps({"downloadUrl": url})
    elif cmd.type == "WIPE_USERS" or cmd.type == "REMOTE_POWERWASH":
        d.pop("recentUsers", None)
    elif cmd.type == "FETCH_CRD_AVAILABILITY_INFO":
        cmd.result_payload = json.dumps(
            {
                "deviceIdleTimeInSeconds": 42,
                "userSessionType": "AFFILIATED_USER",
                "remoteSupportAvailability": "AVAILABLE",
                "remoteAccessAvailability": "UNAVAILABLE",
            }
        )
    elif cmd.type == "DEVICE_START_CRD_SESSION":
        cmd.result_payload = json.dumps({"url": fleet.url + f"sandbox/crd/{cmd.command_id}"})
    d["lastSync"] = when
    fleet.bump(d)


def command_view(fleet: Fleet, cmd: ChromeCommand) -> Json:
    """The DirectoryChromeosdevicesCommand JSON for a command at the current time."""
    now = fleet.now()
    out: Json = {
        "commandId": cmd.command_id,
        "type": cmd.type,
        "issueTime": rfc3339(cmd.issue_time),
        "commandExpireTime": rfc3339(cmd.expire_time),
    }
    if cmd.payload:
        out["payload"] = cmd.payload
    if now >= cmd.execute_time:
        out["state"] = "EXECUTED_BY_CLIENT"
        result: Json = {"result": cmd.result, "executeTime": rfc3339(cmd.execute_time)}
        if cmd.error_message and cmd.result != "SUCCESS":
            result["errorMessage"] = cmd.error_message
        if cmd.result_payload:
            result["commandResultPayload"] = cmd.result_payload
        out["commandResult"] = result
    elif now >= cmd.expire_time:
        out["state"] = "EXPIRED"
    elif cmd.execute_time == float("inf"):
        out["state"] = "PENDING"
    else:
        span = cmd.execute_time - cmd.issue_time
        elapsed = now - cmd.issue_time
        out["state"] = (
            "PENDING"
            if elapsed < span * 0.2
            else "SENT_TO_CLIENT"
            if elapsed < span * 0.5
            else "ACKED_BY_CLIENT"
        )
    return out


def get_command(fleet: Fleet, device_id: str, command_id: str) -> Response:
    device(fleet, device_id)
    cmd = fleet.chrome_commands.get(device_id, {}).get(command_id)
    if cmd is None:
        raise ApiError(404, "Resource Not Found: commandId", reason="notFound")
    return Response(200, command_view(fleet, cmd))
