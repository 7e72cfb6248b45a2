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
