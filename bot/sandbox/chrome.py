"""Admin SDK Directory API: ChromeOS devices (`admin/directory/v1/customer/{c}/devices/chromeos…`).

Rules follow the API reference: status changes (disable only ACTIVE, reenable only
DISABLED, deprovision ACTIVE or DISABLED with a reason; anything else is `412 Illegal
device state transition`; an ACTIVE device holds a licence, so disabling or
deprovisioning frees one and reenabling with no free licence is `412 Insufficient
licenses`), `maxResults` ≤ 300, ≤ 50 ids for `moveDevicesToOu` and
`batchChangeStatus`. Commands walk PENDING → SENT_TO_CLIENT → ACKED_BY_CLIENT →
EXECUTED_BY_CLIENT over `command_delay` seconds, or stay PENDING until they EXPIRE
on a device set never to acknowledge. TAKE_A_SCREENSHOT adds to the device's
`screenshotFiles`, CAPTURE_LOGS and FETCH_SUPPORT_PACKET to its `deviceFiles`
(download links served by the sandbox); the command's `commandResultPayload` then
carries `{"downloadUrl": …}` too.
The rules here that are our reading rather than documented fact are listed, with their
reasons, in `bot/sandbox/ASSUMPTIONS.md`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import tarfile
import zipfile
import zlib
from typing import Any
from urllib.parse import unquote

from bot.google import discovery
from bot.sandbox import reports
from bot.sandbox.api import ApiError, Request, Response, rfc3339, rpc_status
from bot.sandbox.devices import Json
from bot.sandbox.fleet import ChromeCommand, Fleet
from bot.sandbox.query import search

PREFIX = "admin/directory/v1/customer/"
MAX_RESULTS = 300
MAX_IDS = 50
PATCHABLE = ("annotatedUser", "annotatedLocation", "annotatedAssetId", "notes", "orgUnitPath")
ORDER_BY = discovery.enum(discovery.DIRECTORY, "chromeosdevices.list?orderBy")
FULL_ONLY = frozenset(
    {
        "recentUsers",
        "activeTimeRanges",
        "cpuStatusReports",
        "cpuInfo",
        "diskVolumeReports",
        "systemRamFreeReports",
        "lastKnownNetwork",
        "deviceFiles",
        "screenshotFiles",
        "tpmVersionInfo",
        "osUpdateStatus",
        "backlightInfo",
        "fanInfo",
        "bluetoothAdapterInfo",
        "diskSpaceUsage",
    }
)
#: names and enums from the discovery document (`bot.google.discovery`)
COMMAND_TYPES = discovery.enum(
    discovery.DIRECTORY, "DirectoryChromeosdevicesIssueCommandRequest.commandType"
)
_BATCH = "BatchChangeChromeOsDeviceStatusRequest"
_BATCH_ACTIONS = {
    value: value.removeprefix("CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_").lower()
    for value in discovery.enum(
        discovery.DIRECTORY, f"{_BATCH}.changeChromeOsDeviceStatusAction", unspecified=True
    )
}
#: "Can only be set by Repair Service Center during RMA" (its enum description)
REPAIR_CENTER = "DEPROVISION_REASON_REPAIR_CENTER"
#: the deprecated `action` method's reasons, as its reference page lists them
LEGACY_REASONS = {
    short: f"DEPROVISION_REASON_{short.upper()}"
    for short in (
        "different_model_replacement",
        "retiring_device",
        "same_model_replacement",
        "upgrade_transfer",
    )
}
ILLEGAL = "Illegal device state transition"
NO_LICENSE = "Insufficient licenses"


def _png(width: int = 320, height: int = 200) -> bytes:
    """A real PNG (8-bit RGB): a kiosk screen of stripes, as a screenshot would look."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = []
    for y in range(height):
        band = (y * 6) // height
        colour = bytes(((40 + band * 30) % 256, (90 + band * 20) % 256, 160))
        rows.append(b"\x00" + colour * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


def _archive(kind: str, names: dict[str, str]) -> bytes:
    """A real `.tar.gz` (kind "tar.gz") or `.zip` holding `names` (file name → text)."""
    out = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, text in names.items():
                archive.writestr(name, text)
        return out.getvalue()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, text in names.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


_PNG = _png()
_LOGS = _archive(
    "tar.gz",
    {
        "var/log/messages": "sandbox: kiosk app started\nsandbox: network online\n",
        "var/log/chrome/chrome": "sandbox: session running\n",
    },
)
_SUPPORT_PACKET = _archive("zip", {"support_packet/system_logs.txt": "sandbox support packet\n"})


def handle(fleet: Fleet, req: Request) -> Response:
    """Route one Directory API ChromeOS request (path starts with PREFIX)."""
    rest = req.path[len(PREFIX) :]
    customer, sep, tail = rest.partition("/orgunits")
    if sep and tail == "" and "/" not in customer:
        _customer(fleet, customer)
        _method(req.method, "GET")
        return _list_org_units(fleet, req)
    customer, sep, rest = rest.partition("/devices/chromeos")
    if not sep:
        raise ApiError(404, "Method not found.")
    _customer(fleet, customer)
    m = req.method
    if rest == "":
        _method(m, "GET")
        return _list(fleet, req)
    if rest == ":batchChangeStatus":
        _method(m, "POST")
        return _batch_change_status(fleet, req)
    if rest == ":countChromeOsDevices":
        _method(m, "GET")
        return _count(fleet, req)
    if not rest.startswith("/"):
        raise ApiError(404, "Method not found.")
    parts = rest[1:].split("/")
    if parts == ["moveDevicesToOu"]:
        _method(m, "POST")
        return _move(fleet, req)
    if len(parts) == 1:
        raw = parts[0]
        if raw.endswith(":issueCommand"):
            _method(m, "POST")
            return _issue_command(fleet, req, unquote(raw[: -len(":issueCommand")]))
        device_id = unquote(raw)
        if m == "GET":
            return Response(200, _view(_device(fleet, device_id), req.param("projection")))
        if m in ("PATCH", "PUT"):
            return _patch(fleet, req, device_id)
        raise ApiError(404, "Method not found.")
    if len(parts) == 2 and parts[1] == "action":
        _method(m, "POST")
        return _action(fleet, req, unquote(parts[0]))
    if len(parts) == 3 and parts[1] == "commands":
        _method(m, "GET")
        return _get_command(fleet, unquote(parts[0]), unquote(parts[2]))
    raise ApiError(404, "Method not found.")


def _customer(fleet: Fleet, customer: str) -> None:
    if unquote(customer) not in ("my_customer", fleet.customer_id):
        raise ApiError(403, "Not Authorized to access this resource/api", reason="forbidden")


def _org_unit_json(fleet: Fleet, path: str) -> Json:
    """An OrgUnit as orgunits.list answers it."""
    parent = path.rsplit("/", 1)[0] or "/"
    out: Json = {
        "kind": "admin#directory#orgUnit",
        "etag": f'"{fleet.org_units[path][3:]}"',
        "name": path.rsplit("/", 1)[-1] or "/",
        "description": "",
        "orgUnitPath": path,
        "orgUnitId": fleet.org_units[path],
    }
    if path != "/":
        out["parentOrgUnitPath"] = parent
        out["parentOrgUnitId"] = fleet.org_units[parent]
    return out


def _list_org_units(fleet: Fleet, req: Request) -> Response:
    """orgunits.list: `type` all / children (the default) / allIncludingParent, under
    `orgUnitPath` (a path or `id:…`, the root by default)."""
    raw = req.param("orgUnitPath") or "/"
    base = fleet.resolve_org_unit(raw)
    if base is None:
        raise ApiError(400, "Invalid Input: Inconsistent Orgunit id and path")
    kind = (req.param("type") or "children").lower()
    prefix = "/" if base == "/" else base + "/"
    below = [p for p in fleet.org_units if p != base and p.startswith(prefix)]
    if kind == "children":
        below = [p for p in below if "/" not in p[len(prefix) :]]
    elif kind == "allincludingparent":
        below = [base, *below]
    units = [_org_unit_json(fleet, p) for p in sorted(below)]
    return Response(
        200, {"kind": "admin#directory#orgUnits", "etag": '"ous"', "organizationUnits": units}
    )


def _method(actual: str, expected: str) -> None:
    if actual != expected:
        raise ApiError(404, "Method not found.")


def _device(fleet: Fleet, device_id: str) -> Json:
    d = fleet.chrome_get(device_id)
    if d is None:
        raise ApiError(404, "Resource Not Found: deviceId", reason="notFound")
    return d


def _view(d: Json, projection: str | None) -> Json:
    p = (projection or "FULL").upper()
    if p not in ("BASIC", "FULL"):
        raise ApiError(400, f"Invalid value for projection: {projection}")
    if p == "FULL":
        return d
    return {k: v for k, v in d.items() if k not in FULL_ONLY}


# ------------------------------------------------------------------------------ list


def _list(fleet: Fleet, req: Request) -> Response:
    max_results = req.int_param("maxResults", 100, 1, MAX_RESULTS)
    projection = req.param("projection")
    _view({}, projection)  # validates
    order_by = req.param("orderBy")
    if order_by is not None and order_by not in ORDER_BY:
        lowered = {o.lower(): o for o in ORDER_BY}
        if order_by.lower() not in lowered:
            raise ApiError(400, f"Invalid value for orderBy: {order_by}")
        order_by = lowered[order_by.lower()]
    sort_order = (req.param("sortOrder") or "ASCENDING").upper()
    if sort_order not in ("ASCENDING", "DESCENDING"):
        raise ApiError(400, f"Invalid value for sortOrder: {req.param('sortOrder')}")
    ou_param = req.param("orgUnitPath")
    include_children = req.bool_param("includeChildOrgunits")
    org_unit: str | None = None
    if ou_param:
        org_unit = fleet.resolve_org_unit(ou_param)
        if org_unit is None:
            raise ApiError(400, "Invalid Input: Inconsistent Orgunit id and path")
    elif include_children:
        raise ApiError(400, "Invalid Input: includeChildOrgunits requires orgUnitPath")
    query = req.param("query") or ""

    key_src = json.dumps([query, org_unit, include_children, order_by, sort_order])
    key = hashlib.sha1(key_src.encode()).hexdigest()[:12]
    offset = 0
    token = req.param("pageToken")
    if token:
        try:
            tkey, _, off = base64.urlsafe_b64decode(token.encode() + b"==").decode().partition(":")
            offset = int(off)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "Invalid page token") from None
        if tkey != key or offset < 0:
            raise ApiError(400, "Invalid page token")

    cache = fleet.list_cache  # result lists of recent queries: paging does not re-run them
    hit = cache.get(key)
    if hit is not None and hit[0] == fleet.version:
        ids = hit[1]
    else:
        found = search(fleet, query, org_unit=org_unit, include_children=include_children)
        if order_by:
            found.sort(
                key=lambda d: str(d.get(order_by, "")).lower(),
                reverse=sort_order == "DESCENDING",
            )
        ids = [d["deviceId"] for d in found]
        if len(cache) > 64:
            cache.clear()
        cache[key] = (fleet.version, ids)

    page = ids[offset : offset + max_results]
    body: Json = {
        "kind": "admin#directory#chromeosdevices",
        "etag": f'"{key}/{fleet.version}"',
    }
    if page:
        chrome = fleet.chrome
        body["chromeosdevices"] = [_view(chrome[i], projection) for i in page if i in chrome]
    if offset + max_results < len(ids):
        nxt = f"{key}:{offset + max_results}"
        body["nextPageToken"] = base64.urlsafe_b64encode(nxt.encode()).decode().rstrip("=")
    return Response(200, body)


def _count(fleet: Fleet, req: Request) -> Response:
    """customer.devices.chromeos.countChromeOsDevices: how many devices match `filter`
    (the list's query language) in `orgUnitPath` (and its children)."""
    ou_param = req.param("orgUnitPath")
    include_children = req.bool_param("includeChildOrgunits")
    org_unit: str | None = None
    if ou_param:
        org_unit = fleet.resolve_org_unit(ou_param)
        if org_unit is None:
            raise ApiError(400, "Invalid Input: Inconsistent Orgunit id and path")
    elif include_children:
        raise ApiError(400, "Invalid Input: includeChildOrgunits requires orgUnitPath")
    found = search(
        fleet, req.param("filter") or "", org_unit=org_unit, include_children=include_children
    )
    return Response(200, {"count": str(len(found))})  # int64: a decimal string


# ------------------------------------------------------------------------------ patch / move


def _patch(fleet: Fleet, req: Request, device_id: str) -> Response:
    d = _device(fleet, device_id)
    body = req.json()
    if d["status"] == "DEPROVISIONED":
        raise ApiError(412, "Device is deprovisioned", reason="conditionNotMet")
    if "orgUnitPath" in body and body["orgUnitPath"] is not None:
        ou = fleet.resolve_org_unit(str(body["orgUnitPath"]))
        if ou is None:
            raise ApiError(400, "Invalid Input: Inconsistent Orgunit id and path")
        body["orgUnitPath"] = ou
    changed = False
    for key in PATCHABLE:
        if key not in body:
            continue
        value = body[key]
        if value is not None and not isinstance(value, str):
            raise ApiError(400, f"Invalid value for {key}")
        old = d.get(key)
        if key == "orgUnitPath":
            if value and value != old:
                d["orgUnitPath"] = value
                d["orgUnitId"] = fleet.org_units[value]
                reports.record_move(fleet, d, old)
                changed = True
            continue
        new = value or None
        if new == old:
            continue
        if new is None:
            d.pop(key, None)
        else:
            d[key] = new
        fleet.reindex_chrome(device_id, key, old, new)
        reports.record_annotation(fleet, d, key, old, new)
        changed = True
    if changed:
        fleet.bump(d)
    return Response(200, _view(d, req.param("projection")))


def _move(fleet: Fleet, req: Request) -> Response:
    raw_ou = req.param("orgUnitPath")
    if not raw_ou:
        raise ApiError(400, "Missing required field: orgUnitPath", reason="required")
    ou = fleet.resolve_org_unit(raw_ou)
    if ou is None:
        raise ApiError(400, "Invalid Input: Inconsistent Orgunit id and path")
    ids = req.json().get("deviceIds")
    if not isinstance(ids, list) or not ids:
        raise ApiError(400, "Missing required field: deviceIds", reason="required")
    if len(ids) > MAX_IDS:
        raise ApiError(
            400, f"Invalid Input: at most {MAX_IDS} devices may be moved at once ({len(ids)} given)"
        )
    devices = [_device(fleet, str(i)) for i in ids]
    for d in devices:
        if d["status"] == "DEPROVISIONED":
            raise ApiError(412, "Device is deprovisioned", reason="conditionNotMet")
    for d in devices:
        if d["orgUnitPath"] != ou:
            previous = d["orgUnitPath"]
            d["orgUnitPath"] = ou
            d["orgUnitId"] = fleet.org_units[ou]
            fleet.bump(d)
            reports.record_move(fleet, d, previous)
    return Response(200)  # the guide: "A successful request returns an HTTP 200 status code"


# ------------------------------------------------------------------------------ status


def change_status(
    fleet: Fleet, d: Json, action: str, reason: str | None, *, actor: str | None = None
) -> None:
    """Apply disable / reenable / deprovision to one device, or raise the API's 412.

    The change goes into the audit log (Reports) with `actor`, by default the admin the
    Directory API acts as."""
    status = d["status"]
    if action == "disable":
        if status != "ACTIVE":
            raise ApiError(412, ILLEGAL)
        fleet.set_chrome_status(d, "DISABLED")
    elif action == "reenable":
        if status != "DISABLED":
            raise ApiError(412, ILLEGAL)
        if fleet.free_licenses() <= 0:  # re-enabling consumes a licence (the reference)
            raise ApiError(412, NO_LICENSE)
        fleet.set_chrome_status(d, "ACTIVE")
    elif action == "deprovision":
        if status not in ("ACTIVE", "DISABLED"):
            raise ApiError(412, ILLEGAL)
        d["deprovisionReason"] = reason
        d["lastDeprovisionTimestamp"] = rfc3339(fleet.now())
        fleet.set_chrome_status(d, "DEPROVISIONED")
    else:
        raise ApiError(400, f"Invalid action: {action}")
    reports.record_state(fleet, d, status, actor)


def _action(fleet: Fleet, req: Request, device_id: str) -> Response:
    body = req.json()
    action = str(body.get("action") or "").lower()
    if action not in ("disable", "reenable", "deprovision"):
        raise ApiError(400, "Invalid Input: action" if action else "Missing required field: action")
    reason = None
    if action == "deprovision":
        raw = body.get("deprovisionReason")
        if not raw:
            raise ApiError(400, "Missing required field: deprovisionReason", reason="required")
        reason = LEGACY_REASONS.get(str(raw).lower())
        if reason is None:
            raise ApiError(400, f"Invalid Input: deprovisionReason {raw!r}")
    d = _device(fleet, device_id)
    change_status(fleet, d, action, reason)
    return Response(200)  # the reference: 200 with an empty body


def _batch_change_status(fleet: Fleet, req: Request) -> Response:
    body = req.json()
    action = _BATCH_ACTIONS.get(str(body.get("changeChromeOsDeviceStatusAction") or ""))
    if action is None or action == "unspecified":
        raise ApiError(
            400, "Missing required field: changeChromeOsDeviceStatusAction", reason="required"
        )
    ids = body.get("deviceIds")
    if not isinstance(ids, list) or not ids:
        raise ApiError(400, "Missing required field: deviceIds", reason="required")
    if len(ids) > MAX_IDS:
        raise ApiError(
            400, f"Invalid Input: at most {MAX_IDS} deviceIds per request ({len(ids)} given)"
        )
    reason = body.get("deprovisionReason")
    if action == "deprovision":
        if not reason or reason == "DEPROVISION_REASON_UNSPECIFIED":
            raise ApiError(400, "Missing required field: deprovisionReason", reason="required")
        if reason == REPAIR_CENTER:
            raise ApiError(
                400, f"Invalid value for deprovisionReason: {reason} (set only by a repair centre)"
            )
    results: list[Json] = []
    for raw in ids:
        device_id = str(raw)
        result: Json = {"deviceId": device_id}
        d = fleet.chrome_get(device_id)
        if d is None:
            result["error"] = rpc_status("NOT_FOUND", "Resource Not Found: deviceId")
        else:
            try:
                change_status(fleet, d, action, reason)
                result["response"] = {}
            except ApiError as e:
                result["error"] = rpc_status("FAILED_PRECONDITION", e.message)
        results.append(result)
    return Response(200, {"changeChromeOsDeviceStatusResults": results})


# ------------------------------------------------------------------------------ commands


def _issue_command(fleet: Fleet, req: Request, device_id: str) -> Response:
    body = req.json()
    ctype = body.get("commandType")
    if not ctype or ctype == "COMMAND_TYPE_UNSPECIFIED":
        raise ApiError(400, "Missing required field: commandType", reason="required")
    if ctype not in COMMAND_TYPES:
        raise ApiError(400, f"Invalid value for commandType: {ctype}")
    payload = body.get("payload")
    _validate_payload(ctype, payload)
    d = _device(fleet, device_id)
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
    if (session := _session_refusal(d, ctype)) is not None:
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


def _session_refusal(d: Json, ctype: str) -> str | None:
    """The device refuses a command its session cannot run (the commandType enum's words).

    A kiosk device is one with a Kiosk Upgrade licence (our reading: the API exposes no
    session type); REBOOT on a user's device needs ChromeOS 113.
    """
    kiosk = d.get("deviceLicenseType") == "kioskUpgrade"
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
    "TAKE_A_SCREENSHOT": ("screenshotFiles", "SCREENSHOT_FILE", "png", _PNG),
    "CAPTURE_LOGS": ("deviceFiles", "LOG_FILE", "tar.gz", _LOGS),
    "FETCH_SUPPORT_PACKET": ("deviceFiles", "SUPPORT_PACKET", "zip", _SUPPORT_PACKET),
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


def _get_command(fleet: Fleet, device_id: str, command_id: str) -> Response:
    _device(fleet, device_id)
    cmd = fleet.chrome_commands.get(device_id, {}).get(command_id)
    if cmd is None:
        raise ApiError(404, "Resource Not Found: commandId", reason="notFound")
    return Response(200, command_view(fleet, cmd))
