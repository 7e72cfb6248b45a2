"""The sandbox's Android Management API, driven through googleapiclient over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from bot.sandbox import Sandbox
from bot.sandbox.android import COMMAND_TYPE
from bot.sandbox.testing import androidmanagement, wait_for

DELAY = 0.05


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    sandbox = Sandbox(chrome=0, android=400, seed=5, command_delay=DELAY).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def amapi(sb: Sandbox) -> Any:
    return androidmanagement(sb.url)


def _issue(amapi: Any, name: str, body: dict[str, Any]) -> dict[str, Any]:
    return amapi.enterprises().devices().issueCommand(name=name, body=body).execute()


def _get(amapi: Any, op_name: str) -> dict[str, Any]:
    return amapi.enterprises().devices().operations().get(name=op_name).execute()


def _run(amapi: Any, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Issue a command and wait for its operation to be done."""
    op = _issue(amapi, name, body)
    return wait_for(lambda: (o := _get(amapi, op["name"])).get("done") and o)


def test_list_and_get(sb: Sandbox, amapi: Any) -> None:
    page = amapi.enterprises().devices().list(parent=sb.enterprise).execute()
    assert len(page["devices"]) == 10  # AMAPI's default page size
    names: list[str] = []
    req = amapi.enterprises().devices().list(parent=sb.enterprise, pageSize=1000)
    pages = 0
    while req is not None:
        resp = req.execute()
        pages += 1
        names += [d["name"] for d in resp["devices"]]
        req = amapi.enterprises().devices().list_next(req, resp)
    assert pages == 4  # pageSize is coerced to 100
    assert len(set(names)) == 400
    d = amapi.enterprises().devices().get(name=names[0]).execute()
    assert d["name"] == names[0] and d["hardwareInfo"]["serialNumber"]
    devices = sb.fleet.android.values()
    assert {x["managementMode"] for x in devices} == {"DEVICE_OWNER", "PROFILE_OWNER"}
    assert {x["ownership"] for x in devices} == {"COMPANY_OWNED", "PERSONALLY_OWNED"}
    assert min(x["apiLevel"] for x in devices) < 30 < max(x["apiLevel"] for x in devices)
    with pytest.raises(HttpError) as exc:
        amapi.enterprises().devices().get(name=f"{sb.enterprise}/devices/nope").execute()
    assert exc.value.resp.status == 404
    with pytest.raises(HttpError) as exc:
        amapi.enterprises().devices().list(parent="enterprises/LCother").execute()
    assert exc.value.resp.status == 403


def test_serial_lookup_helper(sb: Sandbox) -> None:
    d = sb.fleet.android[sb.fleet.android_order[7]]
    assert sb.fleet.android_by_serial(d["hardwareInfo"]["serialNumber"].lower()) is d
    assert sb.fleet.android_device(d["name"].rsplit("/", 1)[1]) is d


def test_lock_succeeds_with_command_in_metadata(sb: Sandbox, amapi: Any) -> None:
    d = sb.fleet.android_where()
    op = _issue(amapi, d["name"], {"type": "LOCK"})
    assert op["name"].startswith(d["name"] + "/operations/")
    meta = op["metadata"]
    assert meta["@type"] == COMMAND_TYPE
    assert meta["type"] == "LOCK" and meta["duration"] == "600s" and meta["createTime"]
    assert meta["userName"] == d["userName"]
    assert "done" not in op
    done = wait_for(lambda: (o := _get(amapi, op["name"])).get("done") and o)
    assert done["response"] == {"@type": "type.googleapis.com/google.protobuf.Empty"}
    assert "error" not in done and "errorCode" not in done["metadata"]


@pytest.mark.parametrize(
    ("criteria", "body", "code"),
    [
        ({"mode": "PROFILE_OWNER"}, {"type": "REBOOT"}, "MANAGEMENT_MODE"),
        ({"ownership": "PERSONALLY_OWNED"}, {"type": "RELINQUISH_OWNERSHIP"}, "MANAGEMENT_MODE"),
        (
            {"ownership": "PERSONALLY_OWNED"},
            {"startLostModeParams": {"lostMessage": {"defaultMessage": "Call IT"}}},
            "MANAGEMENT_MODE",
        ),
        (
            {"ownership": "COMPANY_OWNED", "api_max": 29},
            {"startLostModeParams": {"lostPhoneNumber": {"defaultMessage": "+441234"}}},
            "API_LEVEL",
        ),
        ({"api_max": 27}, {"clearAppsDataParams": {"packageNames": ["com.Slack"]}}, "API_LEVEL"),
        (
            {"api_max": 34},
            {"addEsimParams": {"activationCode": "LPA:1$x$y", "activationState": "NOT_ACTIVATED"}},
            "API_LEVEL",
        ),
        ({"api_min": 34}, {"type": "RESET_PASSWORD", "newPassword": "1234"}, "INVALID_VALUE"),
        (
            {"mode": "DEVICE_OWNER"},
            {"requestDeviceInfoParams": {"deviceInfo": "EID"}},
            "MANAGEMENT_MODE",
        ),
    ],
)
def test_device_side_errors(
    sb: Sandbox, amapi: Any, criteria: dict[str, Any], body: dict[str, Any], code: str
) -> None:
    d = sb.fleet.android_where(**criteria)
    done = _run(amapi, d["name"], body)
    assert done["metadata"]["errorCode"] == code
    assert done["error"]["code"] in (3, 9)
    assert "response" not in done


def test_password_rules_depend_on_api_level(sb: Sandbox, amapi: Any) -> None:
    old = sb.fleet.android_where(api_max=33, mode="DEVICE_OWNER")
    done = _run(
        amapi,
        old["name"],
        {"type": "RESET_PASSWORD", "newPassword": "1234", "resetPasswordFlags": ["LOCK_NOW"]},
    )
    assert "error" not in done
    assert done["metadata"]["resetPasswordFlags"] == ["LOCK_NOW"]
    assert "newPassword" not in done["metadata"]
    new = sb.fleet.android_where(api_min=34)
    assert "error" not in _run(
        amapi, new["name"], {"type": "RESET_PASSWORD", "newPassword": "123456"}
    )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"type": "COMMAND_TYPE_UNSPECIFIED"},
        {"type": "SELF_DESTRUCT"},
        {"type": "CLEAR_APP_DATA"},
        {"clearAppsDataParams": {"packageNames": []}},
        {"type": "START_LOST_MODE"},
        {"startLostModeParams": {"lostOrganization": {"defaultMessage": "ACME"}}},
        {"type": "LOCK", "clearAppsDataParams": {"packageNames": ["a.b"]}},
        {"type": "ADD_ESIM", "addEsimParams": {"activationState": "ACTIVATED"}},
        {"type": "REMOVE_ESIM", "removeEsimParams": {}},
        {
            "type": "REQUEST_DEVICE_INFO",
            "requestDeviceInfoParams": {"deviceInfo": "DEVICE_INFO_UNSPECIFIED"},
        },
        {"wipeParams": {"wipeReason": {"defaultMessage": "x" * 201}}},
        {"type": "LOCK", "newPassword": "123456"},
        {"type": "LOCK", "duration": "ten minutes"},
    ],
)
def test_parameter_validation_is_400(sb: Sandbox, amapi: Any, body: dict[str, Any]) -> None:
    d = sb.fleet.android_where()
    with pytest.raises(HttpError) as exc:
        _issue(amapi, d["name"], body)
    assert exc.value.resp.status == 400
    assert json.loads(exc.value.content)["error"]["status"] == "INVALID_ARGUMENT"


def test_clear_app_data_per_package(sb: Sandbox, amapi: Any) -> None:
    d = sb.fleet.android_where(api_min=28)
    pkgs = ["com.google.android.gm", "com.android.vending", "com.not.installed"]
    done = _run(amapi, d["name"], {"clearAppsDataParams": {"packageNames": pkgs}})
    meta = done["metadata"]
    assert meta["type"] == "CLEAR_APP_DATA"
    assert meta["clearAppsDataStatus"]["results"] == {
        "com.google.android.gm": {"clearingResult": "SUCCESS"},
        "com.android.vending": {"clearingResult": "APP_PROTECTED"},
        "com.not.installed": {"clearingResult": "APP_NOT_FOUND"},
    }


def test_lost_mode_statuses(sb: Sandbox, amapi: Any) -> None:
    d = sb.fleet.android_where(mode="DEVICE_OWNER", api_min=30)
    name = d["name"]
    stop = _run(amapi, name, {"type": "STOP_LOST_MODE"})
    assert stop["metadata"]["stopLostModeStatus"] == {"status": "NOT_IN_LOST_MODE"}
    assert stop["error"]["code"] == 9
    params = {
        "lostMessage": {"defaultMessage": "This phone belongs to ACME"},
        "lostPhoneNumber": {"defaultMessage": "+44 20 7946 0000"},
        "lostEmailAddress": "it@example.com",
        "lostStreetAddress": {"defaultMessage": "1 Main St"},
        "lostOrganization": {"defaultMessage": "ACME"},
    }
    start = _run(amapi, name, {"startLostModeParams": params})
    assert start["metadata"]["startLostModeStatus"] == {"status": "SUCCESS"}
    assert start["metadata"]["startLostModeParams"] == params
    assert "error" not in start
    assert amapi.enterprises().devices().get(name=name).execute()["appliedState"] == "LOST"
    again = _run(amapi, name, {"startLostModeParams": params})
    assert again["metadata"]["startLostModeStatus"] == {"status": "ALREADY_IN_LOST_MODE"}
    stop = _run(amapi, name, {"stopLostModeParams": {}})
    assert stop["metadata"]["stopLostModeStatus"] == {"status": "SUCCESS"} and "error" not in stop
    sb.fleet.set_outcome(name, status="RESET_PASSWORD_RECENTLY")
    forced = _run(amapi, name, {"startLostModeParams": params})
    assert forced["metadata"]["startLostModeStatus"] == {"status": "RESET_PASSWORD_RECENTLY"}


def test_esim_and_device_info(sb: Sandbox, amapi: Any) -> None:
    d = sb.fleet.android_where(api_min=35, ownership="COMPANY_OWNED")
    added = _run(
        amapi,
        d["name"],
        {
            "addEsimParams": {
                "activationCode": "LPA:1$smdp.example$CODE",
                "activationState": "ACTIVATED",
            }
        },
    )
    es = added["metadata"]["esimStatus"]
    assert es["status"] == "SUCCESS" and es["esimInfo"]["iccId"]
    removed = _run(amapi, d["name"], {"removeEsimParams": {"iccId": es["esimInfo"]["iccId"]}})
    assert removed["metadata"]["esimStatus"]["status"] == "SUCCESS"
    missing = _run(amapi, d["name"], {"removeEsimParams": {"iccId": "89000000000000000000"}})
    assert missing["metadata"]["esimStatus"]["status"] == "ERROR_ICC_ID_NOT_FOUND"
    assert missing["error"]["code"] == 9

    byod = next(
        x
        for x in sb.fleet.android.values()
        if x["ownership"] == "PERSONALLY_OWNED"
        and x["apiLevel"] >= 33
        and x["hardwareInfo"].get("euiccChipInfo")
    )
    info = _run(amapi, byod["name"], {"requestDeviceInfoParams": {"deviceInfo": "EID"}})
    rdi = info["metadata"]["requestDeviceInfoStatus"]
    assert rdi["status"] == "SUCCEEDED"
    assert rdi["eidInfo"]["eids"][0]["eid"] == byod["hardwareInfo"]["euiccChipInfo"][0]["eid"]
    sb.fleet.set_outcome(byod["name"], status="USER_DECLINED")
    declined = _run(amapi, byod["name"], {"requestDeviceInfoParams": {"deviceInfo": "EID"}})
    assert declined["metadata"]["requestDeviceInfoStatus"] == {"status": "USER_DECLINED"}
    with pytest.raises(HttpError) as exc:  # ACTIVATED is refused on personally-owned devices
        _issue(
            amapi,
            byod["name"],
            {"addEsimParams": {"activationCode": "LPA:1$a$b", "activationState": "ACTIVATED"}},
        )
    assert exc.value.resp.status == 400


def test_forced_error_code(sb: Sandbox, amapi: Any) -> None:
    d = sb.fleet.android_where()
    sb.fleet.set_outcome(d["hardwareInfo"]["serialNumber"], error_code="UNSUPPORTED")
    done = _run(amapi, d["name"], {"type": "LOCK"})
    assert done["metadata"]["errorCode"] == "UNSUPPORTED" and done["error"]["code"] == 12
    sb.fleet.clear_outcome(d["name"])
    assert "error" not in _run(amapi, d["name"], {"type": "LOCK"})


def test_never_acknowledged_command_expires_after_its_duration(sb: Sandbox, amapi: Any) -> None:
    d = sb.fleet.android_where()
    sb.fleet.set_never_ack(d["name"])
    op = _issue(amapi, d["name"], {"type": "LOCK", "duration": "0.4s"})
    assert op["metadata"]["duration"] == "0.4s"
    assert not _get(amapi, op["name"]).get("done")
    done = wait_for(lambda: (o := _get(amapi, op["name"])).get("done") and o)
    assert done["error"]["code"] == 4 and "errorCode" not in done["metadata"]


def test_cancel_and_list_operations(sb: Sandbox, amapi: Any) -> None:
    d = sb.fleet.android_where()
    sb.fleet.set_never_ack(d["name"])
    op = _issue(amapi, d["name"], {"wipeParams": {"wipeDataFlags": ["WIPE_EXTERNAL_STORAGE"]}})
    assert amapi.enterprises().devices().operations().cancel(name=op["name"]).execute() == {}
    got = _get(amapi, op["name"])
    assert got["done"] is True and got["error"]["code"] == 1
    ops = amapi.enterprises().devices().operations().list(name=d["name"] + "/operations").execute()
    assert [o["name"] for o in ops["operations"]] == [op["name"]]
    # the device was not wiped
    assert amapi.enterprises().devices().get(name=d["name"]).execute()["name"] == d["name"]
    with pytest.raises(HttpError) as exc:
        _get(amapi, d["name"] + "/operations/999")
    assert exc.value.resp.status == 404


def test_wipe_deletes_the_device(sb: Sandbox, amapi: Any) -> None:
    d = sb.fleet.android_where(ownership="PERSONALLY_OWNED")
    done = _run(amapi, d["name"], {"wipeParams": {"wipeReason": {"defaultMessage": "Leaver"}}})
    assert "error" not in done
    with pytest.raises(HttpError) as exc:
        amapi.enterprises().devices().get(name=d["name"]).execute()
    assert exc.value.resp.status == 404
    assert sb.fleet.android_by_serial(d["hardwareInfo"]["serialNumber"]) is None


def test_check_in_and_patch_state(sb: Sandbox, amapi: Any) -> None:
    d = sb.fleet.android_where()
    sb.fleet.check_in(d["name"], at=1_735_689_600.0, operator="Vodafone")
    got = amapi.enterprises().devices().get(name=d["name"]).execute()
    assert got["lastStatusReportTime"] == "2025-01-01T00:00:00.000Z"
    assert got["networkInfo"]["networkOperatorName"] == "Vodafone"
    out = (
        amapi.enterprises()
        .devices()
        .patch(name=d["name"], updateMask="state", body={"state": "DISABLED"})
        .execute()
    )
    assert out["state"] == "DISABLED"
