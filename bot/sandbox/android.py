"""Android Management API: `v1/enterprises/{e}/devices…` and their command operations.

`issueCommand` validates the Command's parameters at once (400 INVALID_ARGUMENT) and
returns an Operation whose `metadata` is the Command
(`@type: type.googleapis.com/google.android.devicemanagement.v1.Command`). The device
"executes" it `command_delay` seconds later: the Operation becomes `done` with a
`response` (google.protobuf.Empty) or an `error`, and the Command in the metadata
gains `errorCode` and the command-specific status fields.

Device-side rules (the AMAPI reference, Command.type / errorCode):

- REBOOT: fully managed (DEVICE_OWNER) only, API ≥ 24.
- RELINQUISH_OWNERSHIP: company-owned device with a work profile (PROFILE_OWNER +
  COMPANY_OWNED), API ≥ 26; the device is then deleted.
- RESET_PASSWORD: work profile needs API ≥ 24; a numeric password shorter than 6 on
  API ≥ 34 → INVALID_VALUE.
- CLEAR_APP_DATA: API ≥ 28; per-app result SUCCESS / APP_NOT_FOUND / APP_PROTECTED.
- START_LOST_MODE / STOP_LOST_MODE: company-owned (fully managed or work profile)
  only, API ≥ 30; statuses ALREADY_IN_LOST_MODE / NOT_IN_LOST_MODE.
- ADD_ESIM / REMOVE_ESIM: API ≥ 35 (Android 15); REMOVE_ESIM of an unknown iccId →
  ERROR_ICC_ID_NOT_FOUND.
- REQUEST_DEVICE_INFO (EID): personally-owned work profile only, API ≥ 33.
- WIPE: any device; the device is then deleted (devices.get → 404).
- LOCK: any device.

Wrong management mode → errorCode MANAGEMENT_MODE, too old → API_LEVEL (Operation
error code 9 FAILED_PRECONDITION; INVALID_VALUE → 3; UNKNOWN → 2; UNSUPPORTED → 12).
A command-specific status other than SUCCESS(EDED) also ends in an Operation error
(code 9). A command the device never acknowledges expires after its `duration`
(default 600s): done with error code 4 (DEADLINE_EXCEEDED), no errorCode. A
cancelled one: done with error code 1 (CANCELLED), no errorCode.
Device reads and writes (get, list, patch) are in `bot.sandbox.android_devices`.
The rules here that are our reading rather than documented fact are listed, with their
reasons, in `bot/sandbox/ASSUMPTIONS.md`.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import unquote

from bot.google import discovery
from bot.sandbox import android_devices
from bot.sandbox.api import (
    ApiError,
    Request,
    Response,
    format_duration,
    parse_duration,
    rfc3339,
    rpc_status,
)
from bot.sandbox.devices import Json
from bot.sandbox.fleet import AndroidOperation, Fleet
from bot.sandbox.pools import PROTECTED_PACKAGES

PREFIX = "v1/enterprises/"
COMMAND_TYPE = "type.googleapis.com/google.android.devicemanagement.v1.Command"
EMPTY_TYPE = "type.googleapis.com/google.protobuf.Empty"
#: Command's `…Params` fields → their command type, from the discovery document (names,
#: types and enum values of a Command are checked against it by `bot.sandbox.schema`)
PARAMS = discovery.command_params()
_ERROR_RPC = {
    "API_LEVEL": (
        "FAILED_PRECONDITION",
        "The API level of the device does not support this command.",
    ),
    "MANAGEMENT_MODE": (
        "FAILED_PRECONDITION",
        "The management mode of the device does not support this command.",
    ),
    "INVALID_VALUE": ("INVALID_ARGUMENT", "The command has an invalid parameter value."),
    "UNSUPPORTED": ("UNIMPLEMENTED", "The device doesn't support the command."),
    "UNKNOWN": ("UNKNOWN", "An unknown error occurred."),
}


def handle(fleet: Fleet, req: Request) -> Response:
    """Route one AMAPI request (path starts with PREFIX)."""
    parts = req.path[len("v1/") :].split("/")
    if len(parts) < 3 or parts[2] != "devices":
        raise ApiError(404, "Method not found.")
    enterprise = "enterprises/" + unquote(parts[1])
    if enterprise != fleet.enterprise:
        raise ApiError(403, "The caller does not have permission", reason="forbidden")
    m = req.method
    rest = parts[3:]
    if not rest:
        _method(m, "GET")
        return android_devices.list_devices(fleet, req)
    raw = rest[0]
    if len(rest) == 1 and raw.endswith(":issueCommand"):
        _method(m, "POST")
        return _issue(fleet, req, f"{enterprise}/devices/{unquote(raw[: -len(':issueCommand')])}")
    name = f"{enterprise}/devices/{unquote(raw)}"
    if len(rest) == 1:
        if m == "GET":
            return Response(200, android_devices.device(fleet, name))
        if m == "PATCH":
            return android_devices.patch(fleet, req, name)
        if m == "DELETE":
            android_devices.device(fleet, name)
            fleet.remove_android(name)
            return Response(200, {})
        raise ApiError(404, "Method not found.")
    if rest[1] != "operations":
        raise ApiError(404, "Method not found.")
    if len(rest) == 2:
        _method(m, "GET")
        return _list_operations(fleet, req, name)
    if len(rest) == 3:
        op_raw = rest[2]
        if op_raw.endswith(":cancel"):
            _method(m, "POST")
            return _cancel(fleet, f"{name}/operations/{unquote(op_raw[: -len(':cancel')])}")
        _method(m, "GET")
        return Response(
            200, operation_view(_operation(fleet, f"{name}/operations/{unquote(op_raw)}"))
        )
    raise ApiError(404, "Method not found.")


def _method(actual: str, expected: str) -> None:
    if actual != expected:
        raise ApiError(404, "Method not found.")


def _operation(fleet: Fleet, name: str) -> AndroidOperation:
    op = fleet.operations.get(name)
    if op is None:
        raise ApiError(404, android_devices.NOT_FOUND)
    return op


# ------------------------------------------------------------------------------ commands


def _message_len(msg: Any) -> int:
    if not isinstance(msg, dict):
        return 0
    texts = [msg.get("defaultMessage") or ""] + list((msg.get("localizedMessages") or {}).values())
    return max(len(str(t)) for t in texts)


def _bad(message: str) -> ApiError:
    return ApiError(400, message)


def validate(body: Json) -> str:
    """Check a Command's parameters (400 INVALID_ARGUMENT); returns its type.

    Names, JSON types and enum values were already checked against the discovery
    document (`bot.sandbox.schema`); these are the rules the reference adds.
    """
    given = [p for p in PARAMS if body.get(p) is not None]
    if len(given) > 1:
        raise _bad(f"Only one of {', '.join(given)} may be set.")
    ctype = body.get("type")
    if given:
        inferred = PARAMS[given[0]]
        if ctype and ctype != "COMMAND_TYPE_UNSPECIFIED" and ctype != inferred:
            raise _bad(f"{given[0]} cannot be used with a command of type {ctype}.")
        ctype = inferred
    if not ctype or ctype == "COMMAND_TYPE_UNSPECIFIED":
        raise _bad("Command type must be specified.")
    if ctype != "RESET_PASSWORD" and (body.get("newPassword") or body.get("resetPasswordFlags")):
        raise _bad("newPassword and resetPasswordFlags are only allowed for RESET_PASSWORD.")
    if ctype == "CLEAR_APP_DATA":
        pkgs = (body.get("clearAppsDataParams") or {}).get("packageNames") or []
        if not pkgs or not all(pkgs):
            raise _bad("clearAppsDataParams.packageNames must list at least one package.")
    elif ctype == "START_LOST_MODE":
        p = body.get("startLostModeParams") or {}
        # "At least one of the parameters, not including the organization name, must be provided"
        if not any(
            _message_len(p.get(k)) if k != "lostEmailAddress" else p.get(k)
            for k in ("lostMessage", "lostPhoneNumber", "lostEmailAddress", "lostStreetAddress")
        ):
            raise _bad(
                "At least one of lostMessage, lostPhoneNumber, lostEmailAddress or "
                "lostStreetAddress must be provided."
            )
    elif ctype == "ADD_ESIM":
        p = body.get("addEsimParams") or {}
        if not p.get("activationCode"):
            raise _bad("addEsimParams.activationCode is required.")
        if not p.get("activationState"):
            raise _bad("addEsimParams.activationState is required.")
    elif ctype == "REMOVE_ESIM":
        if not (body.get("removeEsimParams") or {}).get("iccId"):
            raise _bad("removeEsimParams.iccId is required.")
    elif ctype == "REQUEST_DEVICE_INFO":
        info = (body.get("requestDeviceInfoParams") or {}).get("deviceInfo")
        if not info or info == "DEVICE_INFO_UNSPECIFIED":
            raise _bad("requestDeviceInfoParams.deviceInfo is required.")
    elif ctype == "WIPE":
        p = body.get("wipeParams") or {}
        if _message_len(p.get("wipeReason")) > 200:
            raise _bad("wipeParams.wipeReason must be at most 200 characters.")
    return str(ctype)


def _issue(fleet: Fleet, req: Request, name: str) -> Response:
    body = req.json()
    ctype = validate(body)
    duration = parse_duration(body["duration"]) if body.get("duration") else 600.0
    d = android_devices.device(fleet, name)
    if (
        ctype == "ADD_ESIM"
        and d["ownership"] == "PERSONALLY_OWNED"
        and body["addEsimParams"].get("activationState") == "ACTIVATED"
    ):
        raise _bad("ACTIVATED is not allowed for personally-owned devices.")
    now = fleet.now()
    command: Json = {
        "type": ctype,
        "createTime": rfc3339(now),
        "duration": format_duration(duration),
    }
    for key in (*PARAMS, "resetPasswordFlags"):
        if body.get(key) is not None:
            command[key] = copy.deepcopy(body[key])
    command["userName"] = d.get("userName", "")
    op_name = f"{name}/operations/{1_700_000_000_000 + fleet.next_id()}"
    never = name in fleet.never_ack
    expire = now + duration
    complete = expire if never or now + fleet.command_delay > expire else now + fleet.command_delay
    op = AndroidOperation(
        name=op_name,
        device_name=name,
        command=command,
        issue_time=now,
        complete_time=complete,
        expire_time=expire,
        extra={"newPassword": body.get("newPassword")},
    )
    fleet.operations[op_name] = op
    fleet.device_operations.setdefault(name, []).append(op_name)
    if complete >= expire:
        fleet.schedule(expire, lambda: _expire(op))
    else:
        fleet.schedule(complete, lambda: _execute(fleet, op))
    return Response(200, operation_view(op))


def operation_view(op: AndroidOperation) -> Json:
    """The Operation JSON (metadata = the Command)."""
    out: Json = {"name": op.name, "metadata": {"@type": COMMAND_TYPE, **op.command}}
    if op.done:
        out["done"] = True
        if op.error is not None:
            out["error"] = op.error
        else:
            out["response"] = {"@type": EMPTY_TYPE}
    return out


def _expire(op: AndroidOperation) -> None:
    if op.done:
        return
    op.done = True
    op.error = rpc_status("DEADLINE_EXCEEDED", "The command expired before the device executed it.")


def _cancel(fleet: Fleet, name: str) -> Response:
    op = _operation(fleet, name)
    if not op.done:
        op.done = True
        op.error = rpc_status("CANCELLED", "The operation was cancelled.")
    return Response(200, {})


def _list_operations(fleet: Fleet, req: Request, name: str) -> Response:
    _device_or_known(fleet, name)
    size, offset = android_devices.page(req, 100, 1000)
    names = fleet.device_operations.get(name, [])
    flt = (req.param("filter") or "").replace(" ", "").lower()
    ops = [fleet.operations[n] for n in names]
    if flt in ("done=true", "done=false"):
        want = flt == "done=true"
        ops = [o for o in ops if o.done == want]
    page = ops[offset : offset + size]
    body: Json = {}
    if page:
        body["operations"] = [operation_view(o) for o in page]
    if offset + size < len(ops):
        body["nextPageToken"] = android_devices.token(offset + size)
    return Response(200, body)


def _device_or_known(fleet: Fleet, name: str) -> None:
    if fleet.android_get(name) is None and name not in fleet.device_operations:
        raise ApiError(404, android_devices.NOT_FOUND)


#: the command types whose device-side behaviour this sandbox models (`validate`,
#: `_rule_error`, `_execute`); the catalog's Android commands must all be here
#: (tests/test_catalog.py), so a new command comes with its behaviour in the sandbox
COMMANDS = frozenset(
    {
        "LOCK",
        "RESET_PASSWORD",
        "REBOOT",
        "RELINQUISH_OWNERSHIP",
        "CLEAR_APP_DATA",
        "START_LOST_MODE",
        "STOP_LOST_MODE",
        "ADD_ESIM",
        "REMOVE_ESIM",
        "REQUEST_DEVICE_INFO",
        "WIPE",
    }
)


def _rule_error(d: Json, ctype: str, op: AndroidOperation) -> str | None:
    api = int(d["apiLevel"])
    mode, owner = d["managementMode"], d["ownership"]
    fully_managed = mode == "DEVICE_OWNER"
    work_profile_company = mode == "PROFILE_OWNER" and owner == "COMPANY_OWNED"
    byod = mode == "PROFILE_OWNER" and owner == "PERSONALLY_OWNED"
    if ctype == "REBOOT":
        return "MANAGEMENT_MODE" if not fully_managed else "API_LEVEL" if api < 24 else None
    if ctype == "RELINQUISH_OWNERSHIP":
        return "MANAGEMENT_MODE" if not work_profile_company else "API_LEVEL" if api < 26 else None
    if ctype == "RESET_PASSWORD":
        if mode == "PROFILE_OWNER" and api < 24:
            return "API_LEVEL"
        pw = op.extra.get("newPassword") or ""
        if pw.isdigit() and len(pw) < 6 and api >= 34:
            return "INVALID_VALUE"
        return None
    if ctype == "CLEAR_APP_DATA":
        return "API_LEVEL" if api < 28 else None
    if ctype in ("START_LOST_MODE", "STOP_LOST_MODE"):
        if owner != "COMPANY_OWNED":
            return "MANAGEMENT_MODE"
        return "API_LEVEL" if api < 30 else None
    if ctype in ("ADD_ESIM", "REMOVE_ESIM"):
        return "API_LEVEL" if api < 35 else None
    if ctype == "REQUEST_DEVICE_INFO":
        return "MANAGEMENT_MODE" if not byod else "API_LEVEL" if api < 33 else None
    return None


def _fail(op: AndroidOperation, code: str, forced_message: str | None = None) -> None:
    rpc, message = _ERROR_RPC.get(code, ("UNKNOWN", "An unknown error occurred."))
    message = forced_message or message
    op.command["errorCode"] = code
    op.error = rpc_status(rpc, message)
    op.done = True


def _execute(fleet: Fleet, op: AndroidOperation) -> None:
    """The device acknowledges and runs a command (scheduled at issue time + command_delay)."""
    if op.done:
        return
    d = fleet.android_get(op.device_name)
    if d is None:
        op.done = True
        op.error = rpc_status("NOT_FOUND", "The device no longer exists.")
        return
    outcome = fleet.outcomes.get(op.device_name, {})
    ctype = op.command["type"]
    code = outcome.get("error_code") or _rule_error(d, ctype, op)
    forced = outcome.get("status")
    if code and not (forced and outcome.get("error_code")):
        _fail(op, code, outcome.get("error_message"))
        return
    cmd = op.command
    now = fleet.now()
    status: str | None = None
    if ctype == "CLEAR_APP_DATA":
        installed = fleet.installed_packages(op.device_name)
        forced_apps = outcome.get("app_results") or {}
        results: Json = {}
        for pkg in cmd["clearAppsDataParams"]["packageNames"]:
            if pkg in forced_apps:
                r = forced_apps[pkg]
            elif pkg in PROTECTED_PACKAGES:
                r = "APP_PROTECTED"
            else:
                r = "SUCCESS" if pkg in installed else "APP_NOT_FOUND"
            results[pkg] = {"clearingResult": r}
        cmd["clearAppsDataStatus"] = {"results": results}
    elif ctype == "START_LOST_MODE":
        status = forced or ("ALREADY_IN_LOST_MODE" if d["appliedState"] == "LOST" else "SUCCESS")
        cmd["startLostModeStatus"] = {"status": status}
        if status == "SUCCESS":
            d["state"] = d["appliedState"] = "LOST"
    elif ctype == "STOP_LOST_MODE":
        status = forced or ("SUCCESS" if d["appliedState"] == "LOST" else "NOT_IN_LOST_MODE")
        cmd["stopLostModeStatus"] = {"status": status}
        if status == "SUCCESS":
            d["state"] = d["appliedState"] = "ACTIVE"
    elif ctype in ("ADD_ESIM", "REMOVE_ESIM"):
        status = _esim(fleet, d, op, forced, outcome.get("esim_details"))
    elif ctype == "REQUEST_DEVICE_INFO":
        eids = [c["eid"] for c in d["hardwareInfo"].get("euiccChipInfo", []) if c.get("eid")]
        status = forced or ("SUCCEEDED" if eids else "UNSUPPORTED")
        rdi: Json = {"status": status}
        if status == "SUCCEEDED":
            rdi["eidInfo"] = {"eids": [{"eid": e} for e in eids]}
        cmd["requestDeviceInfoStatus"] = rdi
    elif forced:
        _fail(op, code or forced)
        return
    if status in ("IN_PROGRESS", "PENDING_USER_ACTION"):
        # waits for the user; the command expires unless something else happens
        fleet.schedule(op.expire_time, lambda: _expire(op))
        return
    if code:  # set_outcome(error_code=…, status=…): both fields, as Google may send them
        _fail(op, code)
        return
    op.done = True
    if status is not None and status not in ("SUCCESS", "SUCCEEDED"):
        op.error = rpc_status("FAILED_PRECONDITION", f"The command did not succeed: {status}")
        return
    d["lastStatusReportTime"] = rfc3339(now)
    fleet.touch()
    if ctype in ("WIPE", "RELINQUISH_OWNERSHIP"):
        fleet.remove_android(op.device_name)


def _esim(
    fleet: Fleet, d: Json, op: AndroidOperation, forced: str | None, details: Json | None = None
) -> str:
    cmd = op.command
    infos = d["networkInfo"].setdefault("telephonyInfos", [])
    es: Json = {}
    if cmd["type"] == "ADD_ESIM":
        status = forced or "SUCCESS"
        if status == "SUCCESS":
            icc = f"8988{fleet.next_id():015d}"
            state = cmd["addEsimParams"].get("activationState") or "ACTIVATED"
            if state == "ACTIVATION_STATE_UNSPECIFIED":
                state = "ACTIVATED" if d["ownership"] == "COMPANY_OWNED" else "NOT_ACTIVATED"
            infos.append({"iccId": icc, "activationState": state, "configMode": "ADMIN_CONFIGURED"})
            es["esimInfo"] = {"iccId": icc}
    else:
        icc = cmd["removeEsimParams"]["iccId"]
        present = [t for t in infos if t.get("iccId") == icc]
        status = forced or ("SUCCESS" if present else "ERROR_ICC_ID_NOT_FOUND")
        if status == "SUCCESS":
            d["networkInfo"]["telephonyInfos"] = [t for t in infos if t.get("iccId") != icc]
            es["esimInfo"] = {"iccId": icc}
    if details is not None:
        es["internalErrorDetails"] = dict(details)
    elif status == "INTERNAL_ERROR":
        es["internalErrorDetails"] = {
            "errorCode": "1",
            "errorCodeDetail": "ERROR_CONNECTION_ERROR",
            "operationCode": "10",
            "operationCodeDetail": "OPERATION_SMDX",
        }
    es["status"] = status
    cmd["esimStatus"] = es
    return status


# ------------------------------------------------------------------------------ test control

#: the command-specific status field of the commands whose status can wait on the device
_WAITING_FIELD = {
    "ADD_ESIM": "esimStatus",
    "REMOVE_ESIM": "esimStatus",
    "REQUEST_DEVICE_INFO": "requestDeviceInfoStatus",
}
WAITING = ("IN_PROGRESS", "PENDING_USER_ACTION")


def set_command_status(fleet: Fleet, operation: str, status: str, *, close: bool = False) -> None:
    """Test control: the device reports `status` for a command that is still open.

    A waiting status (IN_PROGRESS, PENDING_USER_ACTION) leaves the operation open, unless
    `close`: then it is done without an error while the status still says waiting. A final
    status ends it as `_execute` would (SUCCESS/SUCCEEDED: a response; others: error 9).
    Only for ADD_ESIM, REMOVE_ESIM and REQUEST_DEVICE_INFO operations; KeyError otherwise.
    """
    with fleet.lock:
        op = fleet.operations[operation]
        key = _WAITING_FIELD[op.command["type"]]
        if op.done:
            raise KeyError(f"{operation} is already done")
        op.command.setdefault(key, {})["status"] = status
        if status in WAITING and not close:
            return
        op.done = True
        if status not in (*WAITING, "SUCCESS", "SUCCEEDED"):
            op.error = rpc_status("FAILED_PRECONDITION", f"The command did not succeed: {status}")
