"""Directory API ChromeOS status changes: disable, reenable, deprovision.

One device through the deprecated `action` method, up to MAX_IDS through `batchChangeStatus`;
both apply `change_status`, which the Admin console's outside changes use too.
"""

from __future__ import annotations

from bot.google import discovery
from bot.sandbox import reports
from bot.sandbox.api import ApiError, Request, Response, rfc3339, rpc_status
from bot.sandbox.chrome_devices import MAX_IDS, device
from bot.sandbox.devices import Json
from bot.sandbox.fleet import Fleet

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


def action(fleet: Fleet, req: Request, device_id: str) -> Response:
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
    d = device(fleet, device_id)
    change_status(fleet, d, action, reason)
    return Response(200)  # the reference: 200 with an empty body


def batch_change_status(fleet: Fleet, req: Request) -> Response:
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
