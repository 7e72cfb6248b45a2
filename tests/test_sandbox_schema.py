"""Every JSON object the sandbox returns uses only names (and enum values) from Google's discovery docs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from googleapiclient.discovery_cache import get_static_doc

from bot.sandbox import Sandbox
from bot.sandbox.android import COMMAND_TYPE, EMPTY_TYPE
from bot.sandbox.testing import androidmanagement, directory, wait_for

DIRECTORY = json.loads(get_static_doc("admin", "directory_v1") or "{}")
AMAPI = json.loads(get_static_doc("androidmanagement", "v1") or "{}")
CUSTOMER = "my_customer"


def violations(doc: dict[str, Any], schema: dict[str, Any], value: Any, path: str) -> list[str]:
    """Names, types or enum values in `value` that the discovery `schema` does not define."""
    if "$ref" in schema:
        return violations(doc, doc["schemas"][schema["$ref"]], value, path)
    kind = schema.get("type")
    if kind == "any":
        return []
    if kind == "object" or "properties" in schema:
        if not isinstance(value, dict):
            return [f"{path}: expected object, got {type(value).__name__}"]
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        out: list[str] = []
        for k, v in value.items():
            if k in props:
                out += violations(doc, props[k], v, f"{path}.{k}")
            elif extra is not None:
                out += violations(doc, extra, v, f"{path}[{k!r}]")
            else:
                out.append(f"{path}.{k}: not in the schema")
        return out
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: expected array"]
        return [
            e
            for i, item in enumerate(value)
            for e in violations(doc, schema["items"], item, f"{path}[{i}]")
        ]
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected string, got {value!r}"]
        if "enum" in schema and value not in schema["enum"]:
            return [f"{path}: {value!r} not in enum"]
        return []
    if kind == "integer":
        return (
            []
            if isinstance(value, int) and not isinstance(value, bool)
            else [f"{path}: expected integer"]
        )
    if kind == "number":
        return [] if isinstance(value, int | float) else [f"{path}: expected number"]
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: expected boolean"]
    return [f"{path}: unhandled schema {schema}"]


def check(doc: dict[str, Any], name: str, value: Any) -> None:
    """Assert `value` fits schema `name`; an Operation's metadata is checked as a Command."""
    errors = violations(doc, {"$ref": name}, value, name)
    if name == "Operation":
        errors += _operation(value)
    elif name == "ListOperationsResponse":
        for op in value.get("operations", []):
            errors += _operation(op)
    assert not errors, "\n".join(errors[:20])


def _operation(op: dict[str, Any]) -> list[str]:
    meta = dict(op["metadata"])
    errors = [] if meta.pop("@type") == COMMAND_TYPE else ["metadata.@type"]
    errors += violations(AMAPI, {"$ref": "Command"}, meta, "Operation.metadata")
    if "response" in op and op["response"] != {"@type": EMPTY_TYPE}:
        errors.append(f"Operation.response: {op['response']}")
    return errors


def test_validator_catches_invented_fields() -> None:
    assert violations(DIRECTORY, {"$ref": "ChromeOsDevice"}, {"serial": "x"}, "d")
    assert violations(AMAPI, {"$ref": "Command"}, {"type": "EXPLODE"}, "c")
    assert not violations(
        AMAPI,
        {"$ref": "ClearAppsDataStatus"},
        {"results": {"a": {"clearingResult": "SUCCESS"}}},
        "s",
    )


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    sandbox = Sandbox(chrome=1500, android=1000, seed=9, command_delay=0.05).start()
    yield sandbox
    sandbox.stop()


@pytest.mark.sqlite_only("no store: it changes the module's sandbox, so it runs once")
def test_chrome_responses_fit_the_schema(sb: Sandbox) -> None:
    admin = directory(sb.url)
    for projection in ("FULL", "BASIC"):
        req = admin.chromeosdevices().list(
            customerId=CUSTOMER, maxResults=300, projection=projection
        )
        while req is not None:
            resp = req.execute()
            check(DIRECTORY, "ChromeOsDevices", resp)
            req = admin.chromeosdevices().list_next(req, resp)
    d = sb.fleet.chrome_by_status("ACTIVE")
    did = d["deviceId"]
    check(
        DIRECTORY,
        "ChromeOsDevice",
        admin.chromeosdevices().get(customerId=CUSTOMER, deviceId=did).execute(),
    )
    patched = (
        admin.chromeosdevices()
        .patch(customerId=CUSTOMER, deviceId=did, body={"notes": "n", "annotatedUser": ""})
        .execute()
    )
    check(DIRECTORY, "ChromeOsDevice", patched)
    cros = admin.customer().devices().chromeos()
    ids = [did, sb.fleet.chrome_by_status("DEPROVISIONED")["deviceId"], "missing"]
    res = cros.batchChangeStatus(
        customerId=CUSTOMER,
        body={
            "deviceIds": ids,
            "changeChromeOsDeviceStatusAction": "CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_DISABLE",
        },
    ).execute()
    check(DIRECTORY, "BatchChangeChromeOsDeviceStatusResponse", res)

    kiosk = sb.fleet.chrome_by_status("ACTIVE")
    kiosk["deviceLicenseType"] = "kioskUpgrade"  # screenshots and logs only in kiosk mode
    active = kiosk["deviceId"]
    never = sb.fleet.chrome_by_status("ACTIVE", skip=1)["deviceId"]
    failing = sb.fleet.chrome_by_status("ACTIVE", skip=2)["deviceId"]
    sb.fleet.set_never_ack(never, expire_after=0.1)
    sb.fleet.set_outcome(failing, result="FAILURE", error_message="offline")
    issued = []
    for device, body in (
        (active, {"commandType": "TAKE_A_SCREENSHOT"}),
        (active, {"commandType": "CAPTURE_LOGS"}),
        (active, {"commandType": "FETCH_SUPPORT_PACKET"}),
        (active, {"commandType": "SET_VOLUME", "payload": '{"volume": 10}'}),
        (never, {"commandType": "REBOOT"}),
        (failing, {"commandType": "REMOTE_POWERWASH"}),
    ):
        out = cros.issueCommand(customerId=CUSTOMER, deviceId=device, body=body).execute()
        check(DIRECTORY, "DirectoryChromeosdevicesIssueCommandResponse", out)
        issued.append((device, out["commandId"]))
        check(
            DIRECTORY,
            "DirectoryChromeosdevicesCommand",
            cros.commands()
            .get(customerId=CUSTOMER, deviceId=device, commandId=out["commandId"])
            .execute(),
        )

    def final() -> list[dict[str, Any]] | None:
        cmds = [
            cros.commands().get(customerId=CUSTOMER, deviceId=dv, commandId=c).execute()
            for dv, c in issued
        ]
        return cmds if all(c["state"] in ("EXECUTED_BY_CLIENT", "EXPIRED") for c in cmds) else None

    for cmd in wait_for(final):
        check(DIRECTORY, "DirectoryChromeosdevicesCommand", cmd)
    full = admin.chromeosdevices().get(customerId=CUSTOMER, deviceId=active).execute()
    assert full["screenshotFiles"] and full["deviceFiles"]
    check(DIRECTORY, "ChromeOsDevice", full)


@pytest.mark.sqlite_only("no store: it changes the module's sandbox, so it runs once")
def test_android_responses_fit_the_schema(sb: Sandbox) -> None:
    amapi = androidmanagement(sb.url)
    devices = amapi.enterprises().devices()
    req = devices.list(parent=sb.enterprise, pageSize=100)
    while req is not None:
        resp = req.execute()
        check(AMAPI, "ListDevicesResponse", resp)
        req = devices.list_next(req, resp)
    fleet = sb.fleet
    fm = fleet.android_where(mode="DEVICE_OWNER", api_min=35)
    wp = fleet.android_where(ownership="COMPANY_OWNED", mode="PROFILE_OWNER", api_min=26)
    byod = fleet.android_where(ownership="PERSONALLY_OWNED", api_min=33)
    old = fleet.android_where(api_max=27)
    esim_err = fleet.android_where(mode="DEVICE_OWNER", api_min=35, skip=1)
    fleet.set_outcome(esim_err["name"], status="INTERNAL_ERROR")
    used = {x["name"] for x in (fm, wp, byod, old, esim_err)}
    never = next(x for x in fleet.android.values() if x["name"] not in used)
    fleet.set_never_ack(never["name"])
    lost = {
        "lostMessage": {"defaultMessage": "Lost", "localizedMessages": {"fr": "Perdu"}},
        "lostEmailAddress": "it@example.com",
    }
    plan = [
        (fm, {"type": "LOCK"}),
        (fm, {"type": "REBOOT"}),
        (
            fm,
            {
                "type": "RESET_PASSWORD",
                "newPassword": "12",
                "resetPasswordFlags": ["REQUIRE_ENTRY"],
            },
        ),
        (
            fm,
            {"clearAppsDataParams": {"packageNames": ["com.Slack", "com.android.vending", "x.y"]}},
        ),
        (fm, {"startLostModeParams": lost}),
        (fm, {"stopLostModeParams": {}}),
        (fm, {"addEsimParams": {"activationCode": "LPA:1$a$b", "activationState": "ACTIVATED"}}),
        (fm, {"removeEsimParams": {"iccId": "8900"}}),
        (
            esim_err,
            {"addEsimParams": {"activationCode": "LPA:1$a$b", "activationState": "NOT_ACTIVATED"}},
        ),
        (byod, {"requestDeviceInfoParams": {"deviceInfo": "EID"}}),
        (old, {"startLostModeParams": lost}),
        (wp, {"type": "RELINQUISH_OWNERSHIP"}),
        (
            byod,
            {
                "wipeParams": {
                    "wipeDataFlags": ["WIPE_EXTERNAL_STORAGE"],
                    "wipeReason": {"defaultMessage": "bye"},
                }
            },
        ),
        (never, {"type": "LOCK", "duration": "0.2s"}),
        (never, {"type": "REBOOT", "duration": "30s"}),
    ]
    names = []
    for d, body in plan:
        op = devices.issueCommand(name=d["name"], body=body).execute()
        check(AMAPI, "Operation", op)
        names.append(op["name"])
        if body.get("type") == "LOCK":
            check(AMAPI, "Device", devices.get(name=d["name"]).execute())
    devices.operations().cancel(name=names[-1]).execute()

    def final() -> list[dict[str, Any]] | None:
        ops = [devices.operations().get(name=n).execute() for n in names]
        return ops if all(o.get("done") for o in ops) else None

    ops = wait_for(final)
    for op in ops:
        check(AMAPI, "Operation", op)
    for field in (
        "clearAppsDataStatus",
        "startLostModeStatus",
        "stopLostModeStatus",
        "esimStatus",
        "requestDeviceInfoStatus",
        "errorCode",
    ):
        assert any(field in o["metadata"] for o in ops), field
    check(
        AMAPI,
        "ListOperationsResponse",
        devices.operations().list(name=fm["name"] + "/operations").execute(),
    )
    check(
        AMAPI,
        "Device",
        devices.patch(name=fm["name"], updateMask="state", body={"state": "DISABLED"}).execute(),
    )
    check(AMAPI, "Device", devices.get(name=fm["name"]).execute())


# ---- requests: the sandbox refuses what Google's discovery documents do not allow ----------


def raw(sb: Sandbox, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    """One HTTP request to the sandbox without googleapiclient (which checks enums itself)."""
    import httplib2

    data = None if body is None else json.dumps(body)
    resp, content = httplib2.Http().request(
        sb.url + path, method, body=data, headers={"Content-Type": "application/json"}
    )
    return resp.status, json.loads(content) if content else {}


def refusal(sb: Sandbox, method: str, path: str, body: Any = None) -> str:
    status, out = raw(sb, method, path, body)
    assert status == 400, (status, out)
    assert out["error"]["status"] == "INVALID_ARGUMENT"
    message: str = out["error"]["message"]
    return message


def _issue_path(name: str) -> str:
    return f"v1/{name}:issueCommand"


def test_amapi_body_refusals_use_googles_words(sb: Sandbox) -> None:
    device = sb.fleet.android_where(mode="DEVICE_OWNER", api_min=30)["name"]
    before = len(sb.fleet.operations)
    path = _issue_path(device)
    assert (
        refusal(sb, "POST", path, {"type": "LOCK", "x": 1})
        == "Invalid JSON payload received. Unknown name \"x\" at 'command': Cannot find field."
    )
    assert refusal(
        sb, "POST", path, {"startLostModeParams": {"lostEmailAddress": {"defaultMessage": "a@b.c"}}}
    ).startswith(
        "Invalid value at 'command.start_lost_mode_params.lost_email_address' (TYPE_STRING), "
    )
    assert refusal(
        sb, "POST", path, {"startLostModeParams": {"lostMessage": {"defaultMesage": "hi"}}}
    ) == (
        'Invalid JSON payload received. Unknown name "defaultMesage" at '
        "'command.start_lost_mode_params.lost_message': Cannot find field."
    )
    assert refusal(sb, "POST", path, {"type": "EXPLODE"}) == (
        "Invalid value at 'command.type' (TYPE_ENUM), \"EXPLODE\""
    )
    assert "'command.reset_password_flags[1]'" in refusal(
        sb,
        "POST",
        path,
        {"type": "RESET_PASSWORD", "resetPasswordFlags": ["LOCK_NOW", "LOCK_LATER"]},
    )
    assert refusal(sb, "POST", path, {"type": "LOCK", "duration": "1e+06s"}) == (
        "Invalid value at 'command.duration' (type.googleapis.com/google.protobuf.Duration), "
        "Field 'duration', Invalid duration format, failed to parse seconds"
    )
    assert "'command.new_password' (TYPE_STRING), 123456" in refusal(
        sb, "POST", path, {"type": "RESET_PASSWORD", "newPassword": 123456}
    )
    assert "'command.wipe_params.wipe_data_flags' (TYPE_ENUM)" in refusal(
        sb, "POST", path, {"wipeParams": {"wipeDataFlags": "WIPE_ESIMS"}}
    )
    assert refusal(sb, "POST", path, {"clearAppsDataParams": ["com.example"]}) == (
        'Invalid JSON payload received. Unknown name "clearAppsDataParams" at '
        "'command': Proto field is not repeating, cannot start list."
    )
    assert refusal(sb, "POST", path, {"clearAppsDataParams": "com.example"}) == (
        "Invalid value at 'command.clear_apps_data_params' "
        "(type.googleapis.com/google.android.devicemanagement.v1.ClearAppsDataParams), "
        '"com.example"'
    )
    # every problem is listed, one per line, with a BadRequest detail per problem
    status, out = raw(sb, "POST", path, {"type": "NOPE", "a": 1, "duration": 5})
    assert status == 400
    assert len(out["error"]["message"].splitlines()) == 3
    [detail] = out["error"]["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert len(detail["fieldViolations"]) == 3
    # bad input changes nothing: no command was created
    assert len(sb.fleet.operations) == before
    # the patch body is a Device
    assert "Unknown name \"colour\" at 'device'" in refusal(
        sb, "PATCH", f"v1/{device}?updateMask=state", {"state": "ACTIVE", "colour": "red"}
    )
    assert "'device.state' (TYPE_ENUM), \"ASLEEP\"" in refusal(
        sb, "PATCH", f"v1/{device}?updateMask=state", {"state": "ASLEEP"}
    )


def test_amapi_accepts_what_the_documents_allow(sb: Sandbox) -> None:
    device = sb.fleet.android_where(mode="DEVICE_OWNER", api_min=30, skip=2)["name"]
    path = _issue_path(device)
    for body in (
        {"type": "LOCK", "duration": "1000000s"},
        {"type": "LOCK", "duration": "1.5s"},
        {"type": "LOCK", "duration": None},  # null is the default value in proto JSON
        # RESET_PASSWORD_FLAG_UNSPECIFIED: "This value is ignored."
        {"type": "RESET_PASSWORD", "resetPasswordFlags": ["RESET_PASSWORD_FLAG_UNSPECIFIED"]},
        {"startLostModeParams": {"lostEmailAddress": "it@example.com"}},
        {
            "type": "START_LOST_MODE",
            "startLostModeParams": {"lostMessage": {"defaultMessage": "x"}},
        },
    ):
        status, out = raw(sb, "POST", path, body)
        assert status == 200, (body, out)
        check(AMAPI, "Operation", out)


def test_lost_mode_needs_a_contact_besides_the_organisation(sb: Sandbox) -> None:
    device = sb.fleet.android_where(mode="DEVICE_OWNER", api_min=30, skip=3)["name"]
    message = refusal(
        sb,
        "POST",
        _issue_path(device),
        {"startLostModeParams": {"lostOrganization": {"defaultMessage": "ACME"}}},
    )
    assert "At least one of lostMessage" in message


def test_directory_body_refusals(sb: Sandbox) -> None:
    did = sb.fleet.chrome_by_status("ACTIVE", skip=5)["deviceId"]
    base = f"admin/directory/v1/customer/{CUSTOMER}/devices/chromeos"
    assert refusal(sb, "POST", f"{base}/{did}:issueCommand", {"commandType": "SELF_DESTRUCT"}) == (
        "Invalid value at 'command_type' (TYPE_ENUM), \"SELF_DESTRUCT\""
    )
    assert 'Unknown name "volume": Cannot find field.' in refusal(
        sb, "POST", f"{base}/{did}:issueCommand", {"commandType": "SET_VOLUME", "volume": 5}
    )
    assert "'payload' (TYPE_STRING), Starting an object" in refusal(
        sb, "POST", f"{base}/{did}:issueCommand", {"commandType": "SET_VOLUME", "payload": {}}
    )
    assert "'change_chrome_os_device_status_action' (TYPE_ENUM)" in refusal(
        sb,
        "POST",
        f"{base}:batchChangeStatus",
        {"deviceIds": [did], "changeChromeOsDeviceStatusAction": "DISABLE"},
    )
    assert "'deprovision_reason' (TYPE_ENUM)" in refusal(
        sb,
        "POST",
        f"{base}:batchChangeStatus",
        {
            "deviceIds": [did],
            "changeChromeOsDeviceStatusAction": "CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_DEPROVISION",
            "deprovisionReason": "retiring_device",
        },
    )
    assert "chrome_os_move_devices_to_ou.device_ids' (TYPE_STRING)" in refusal(
        sb, "POST", f"{base}/moveDevicesToOu?orgUnitPath=/Sales", {"deviceIds": did}
    )
    assert "Unknown name \"colour\" at 'chrome_os_device'" in refusal(
        sb, "PATCH", f"{base}/{did}", {"notes": "n", "colour": "red"}
    )
    assert sb.fleet.chrome[did]["status"] == "ACTIVE"


def test_query_parameters_are_checked(sb: Sandbox) -> None:
    device = sb.fleet.android_where(mode="DEVICE_OWNER", skip=4)["name"]
    did = sb.fleet.chrome_by_status("ACTIVE", skip=6)["deviceId"]
    base = f"admin/directory/v1/customer/{CUSTOMER}/devices/chromeos"
    assert refusal(sb, "GET", f"{base}?colour=red") == (
        'Invalid JSON payload received. Unknown name "colour": Cannot bind query parameter. '
        "Field 'colour' could not be found in request message."
    )
    assert "'projection' (TYPE_ENUM), \"WIDE\"" in refusal(sb, "GET", f"{base}?projection=WIDE")
    assert "'order_by'" in refusal(sb, "GET", f"{base}?orderBy=colour")
    assert "'sort_order'" in refusal(sb, "GET", f"{base}?sortOrder=UP")
    assert "'max_results' (TYPE_INT32)" in refusal(sb, "GET", f"{base}?maxResults=many")
    assert "'include_child_orgunits' (TYPE_BOOL)" in refusal(
        sb, "GET", f"{base}?orgUnitPath=/&includeChildOrgunits=maybe"
    )
    assert "'command_id' (TYPE_INT64)" in refusal(sb, "GET", f"{base}/{did}/commands/abc")
    # the guide itself writes `projection=full`: Directory query enums ignore case
    status, out = raw(sb, "GET", f"{base}/{did}?projection=full&alt=json&prettyPrint=false")
    assert status == 200 and out["deviceId"] == did
    assert "'page_size' (TYPE_INT32)" in refusal(
        sb, "GET", f"v1/{sb.enterprise}/devices?pageSize=ten"
    )
    assert "'wipe_data_flags' (TYPE_ENUM), \"EVERYTHING\"" in refusal(
        sb, "DELETE", f"v1/{device}?wipeDataFlags=WIPE_ESIMS&wipeDataFlags=EVERYTHING"
    )
    assert 'Unknown name "force"' in refusal(sb, "DELETE", f"v1/{device}?force=true")
    assert sb.fleet.android_get(device) is not None  # refused: not deleted
    status, _ = raw(sb, "GET", f"v1/{device}/operations?filter=done%3Dtrue&pageSize=5")
    assert status == 200


def test_every_route_the_sandbox_serves_is_a_discovery_method(sb: Sandbox) -> None:
    """Each request googleapiclient can make to the sandbox is matched (so it is validated)."""
    from bot.sandbox import schema

    admin = directory(sb.url)
    amapi = androidmanagement(sb.url).enterprises().devices()
    cros = admin.customer().devices().chromeos()
    did = sb.fleet.chrome_by_status("ACTIVE", skip=7)["deviceId"]
    dev = sb.fleet.android_where(mode="DEVICE_OWNER", skip=5)["name"]
    gone = sb.fleet.android_where(mode="DEVICE_OWNER", skip=6)["name"]
    sb.log.clear()
    admin.chromeosdevices().list(customerId=CUSTOMER, maxResults=1).execute()
    admin.chromeosdevices().get(customerId=CUSTOMER, deviceId=did).execute()
    admin.chromeosdevices().patch(customerId=CUSTOMER, deviceId=did, body={"notes": "a"}).execute()
    admin.chromeosdevices().update(customerId=CUSTOMER, deviceId=did, body={"notes": "b"}).execute()
    admin.chromeosdevices().moveDevicesToOu(
        customerId=CUSTOMER, orgUnitPath="/", body={"deviceIds": [did]}
    ).execute()
    admin.chromeosdevices().action(
        customerId=CUSTOMER, resourceId=did, body={"action": "disable"}
    ).execute()
    cros.batchChangeStatus(
        customerId=CUSTOMER,
        body={
            "deviceIds": [did],
            "changeChromeOsDeviceStatusAction": "CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_REENABLE",
        },
    ).execute()
    cid = cros.issueCommand(
        customerId=CUSTOMER, deviceId=did, body={"commandType": "WIPE_USERS"}
    ).execute()["commandId"]
    cros.commands().get(customerId=CUSTOMER, deviceId=did, commandId=cid).execute()
    amapi.list(parent=sb.enterprise, pageSize=1).execute()
    amapi.get(name=dev).execute()
    amapi.patch(name=dev, updateMask="state", body={"state": "ACTIVE"}).execute()
    op = amapi.issueCommand(name=dev, body={"type": "LOCK"}).execute()
    amapi.operations().get(name=op["name"]).execute()
    amapi.operations().list(name=dev + "/operations").execute()
    amapi.operations().cancel(name=op["name"]).execute()
    amapi.delete(name=gone, wipeDataFlags=["WIPE_EXTERNAL_STORAGE"]).execute()
    served = set()
    for method, target in list(sb.log):
        found = schema.match(method, target.split("?")[0].lstrip("/"))
        assert found is not None, (method, target)
        served.add(found[0].name)
    assert served == {
        "chromeosdevices.list",
        "chromeosdevices.get",
        "chromeosdevices.patch",
        "chromeosdevices.update",
        "chromeosdevices.moveDevicesToOu",
        "chromeosdevices.action",
        "customer.devices.chromeos.batchChangeStatus",
        "customer.devices.chromeos.issueCommand",
        "customer.devices.chromeos.commands.get",
        "enterprises.devices.list",
        "enterprises.devices.get",
        "enterprises.devices.patch",
        "enterprises.devices.issueCommand",
        "enterprises.devices.delete",
        "enterprises.devices.operations.get",
        "enterprises.devices.operations.list",
        "enterprises.devices.operations.cancel",
    }


def test_validator_types() -> None:
    from bot.sandbox.schema import check as check_value

    def errors(api: tuple[str, str], name: str, value: Any) -> list[str]:
        return [v.message for v in check_value(api, name, value, "x")]

    amapi, directory_api = ("androidmanagement", "v1"), ("admin", "directory_v1")
    # int64 travels as a decimal string (a number is accepted too)
    assert not errors(amapi, "MemoryInfo", {"totalRam": "4096", "totalInternalStorage": 12})
    assert errors(amapi, "MemoryInfo", {"totalRam": "4 GB"}) == [
        "Invalid value at 'x.total_ram' (TYPE_INT64), \"4 GB\""
    ]
    # maps (additionalProperties) check their values
    assert not errors(
        amapi, "ClearAppsDataStatus", {"results": {"a.b": {"clearingResult": "SUCCESS"}}}
    )
    assert errors(amapi, "ClearAppsDataStatus", {"results": {"a.b": {"clearingResult": "MAYBE"}}})
    # integers, booleans, timestamps
    assert errors(amapi, "Device", {"apiLevel": "thirty"})
    assert not errors(
        amapi, "Device", {"apiLevel": 34, "lastStatusReportTime": "2024-05-01T12:00:00Z"}
    )
    assert errors(amapi, "Device", {"lastStatusReportTime": "yesterday"})
    assert errors(directory_api, "ChromeOsDevice", {"willAutoRenew": "yes"})
    # google-duration: seconds with up to nine decimals and an "s"
    for good in ("600s", "1.5s", "0.000000001s", "-3s"):
        assert not errors(amapi, "Command", {"duration": good}), good
    for bad in ("1e+06s", "600", "10m", "1.0000000001s", 600):
        assert errors(amapi, "Command", {"duration": bad}), bad


# ---- through Slack: what the bot sends meets the documents; the reference's errors reach people ---


def _serial(device: dict[str, Any]) -> str:
    return str(device.get("serialNumber") or device["hardwareInfo"]["serialNumber"])


def _run_modal(bot: Any, text: str, values: dict[str, Any]) -> dict[str, Any]:
    """`/device <text>` → modal → submit `values`; the request row once it has finished."""
    from conftest import OPERATOR, wait_until
    from test_actions import request_rows, run

    action = text.split()[0]
    before = {r["id"] for r in request_rows(bot, action)}
    view = run(bot, text)
    reply = bot.emu.submit_view(OPERATOR, view["id"], values)
    assert reply.status == 200 and not reply.body.strip(), reply.body
    row: dict[str, Any] = wait_until(
        lambda: next(
            (
                r
                for r in request_rows(bot, action)
                if r["id"] not in before and r["state"] in ("succeeded", "failed")
            ),
            None,
        ),
        15,
        f"the {action} request to finish",
    )
    return row


def test_reenable_with_no_free_licence_is_told_through_slack(direct: Any, claims: Any) -> None:
    """The pool is emptied through the sandbox's control interface; Google's 412 reaches Slack."""
    device = claims.chrome("DISABLED")
    url = direct.sandbox.url + "sandbox/licenses"
    import httplib2

    http = httplib2.Http()
    _, before = http.request(url, "GET")
    saved = json.loads(before)["total"]
    resp, content = http.request(url, "POST", body=json.dumps({"free": 0}))
    assert resp.status == 200 and json.loads(content)["free"] == 0
    try:
        row = _run_modal(direct, f"reenable {_serial(device)}", {"reason": "found it"})
        assert row["state"] == "failed"
        assert "no free Chrome license" in row["result"], row["result"]
        assert direct.sandbox.fleet.chrome[device["deviceId"]]["status"] == "DISABLED"
    finally:
        http.request(url, "POST", body=json.dumps({"total": saved}))
    row = _run_modal(direct, f"reenable {_serial(device)}", {"reason": "found it"})
    assert row["state"] == "succeeded", row["result"]
    assert direct.sandbox.fleet.chrome[device["deviceId"]]["status"] == "ACTIVE"


def test_lost_mode_with_only_an_email_reaches_the_device(direct: Any, claims: Any) -> None:
    """The email address travels as the plain string the discovery document types it as."""
    device = claims.android(
        lambda d: (
            d["ownership"] == "COMPANY_OWNED"
            and d["managementMode"] == "DEVICE_OWNER"
            and d["apiLevel"] >= 30
        )
    )
    row = _run_modal(direct, f"lost {_serial(device)}", {"email": "it@example.com"})
    assert row["state"] == "succeeded", row["result"]
    op = next(
        o for o in direct.sandbox.fleet.operations.values() if o.device_name == device["name"]
    )
    assert op.command["startLostModeParams"] == {"lostEmailAddress": "it@example.com"}


def test_names_the_bot_uses_are_the_documents_names() -> None:
    """The bot's option lists and field names are members of the discovery documents' enums."""
    from bot import catalog
    from bot.catalog import params
    from bot.google import chrome, discovery

    batch = "BatchChangeChromeOsDeviceStatusRequest"
    reasons = discovery.enum(discovery.DIRECTORY, f"{batch}.deprovisionReason")
    for short in chrome.DEPROVISION_REASONS:
        assert f"DEPROVISION_REASON_{short.upper()}" in reasons, short
    assert set(params.RESET_PASSWORD_FLAGS) <= set(
        discovery.enum(discovery.AMAPI, "Command.resetPasswordFlags")
    )
    assert set(params.WIPE_FLAGS) <= set(
        discovery.enum(discovery.AMAPI, "WipeParams.wipeDataFlags")
    )
    assert set(params.ESIM_ACTIVATION_STATES) <= set(
        discovery.enum(discovery.AMAPI, "AddEsimParams.activationState", unspecified=True)
    )
    documented = set(discovery.fields(discovery.DIRECTORY, "ChromeOsDevice"))
    assert chrome.PATCHABLE_FIELDS.issubset(documented)
    for spec in catalog.all_specs():
        if spec.kind == "chrome_command":
            assert spec.google in chrome.COMMAND_TYPES, spec.name
        elif spec.kind == "android_command":
            assert spec.google in discovery.enum(discovery.AMAPI, "Command.type"), spec.name
        elif spec.kind == "status":
            assert spec.google in chrome.STATUS_ACTIONS, spec.name


def test_outcome_words_cover_names_of_the_documents() -> None:
    """Each status the bot puts in words is a value of the matching discovery enum."""
    from bot import catalog, outcome_words
    from bot.catalog import statuses
    from bot.google import discovery

    amapi = discovery.AMAPI
    tables = {
        "Command.errorCode": outcome_words.ANDROID_ERRORS,
        "PerAppResult.clearingResult": statuses.CLEARING_RESULTS,
    }
    command = discovery.schema(amapi, "Command")["properties"]
    for status in catalog.command_statuses():
        assert status.key in command, status.key
        if status.read is None:  # one status each: its schema's `status` enum
            tables[command[status.key]["$ref"] + ".status"] = status.words
            assert set(status.ok) <= set(
                discovery.enum(amapi, command[status.key]["$ref"] + ".status")
            )
    assert len(tables) == 6, tables.keys()  # lost start, lost stop, eSIM, device info
    for where, words in tables.items():
        unknown = set(words) - set(discovery.enum(amapi, where))
        assert not unknown, (where, unknown)
    assert set(outcome_words.STATUS_FIELDS) <= set(discovery.fields(amapi, "Command"))
    for waiting in outcome_words.WAITING:
        assert waiting in discovery.enum(amapi, "EsimCommandStatus.status") + discovery.enum(
            amapi, "RequestDeviceInfoStatus.status"
        )
    chrome_types = discovery.enum(
        discovery.DIRECTORY, "DirectoryChromeosdevicesIssueCommandRequest.commandType"
    )
    assert set(outcome_words.DOWNLOAD_COMMANDS) <= set(chrome_types)
