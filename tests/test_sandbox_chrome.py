"""The sandbox's Directory API (ChromeOS devices), driven through googleapiclient over HTTP."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from bot.sandbox import Sandbox
from bot.sandbox.testing import directory, wait_for

CUSTOMER = "my_customer"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    sandbox = Sandbox(chrome=600, android=0, seed=3, command_delay=0.1).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def admin(sb: Sandbox) -> Any:
    return directory(sb.url)


def _error(exc: pytest.ExceptionInfo[HttpError]) -> dict[str, Any]:
    return json.loads(exc.value.content)["error"]


def _list_all(admin: Any, **kw: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    req = admin.chromeosdevices().list(customerId=CUSTOMER, **kw)
    while req is not None:
        resp = req.execute()
        out += resp.get("chromeosdevices", [])
        req = admin.chromeosdevices().list_next(req, resp)
    return out


def test_list_pages_through_the_whole_fleet(sb: Sandbox, admin: Any) -> None:
    first = admin.chromeosdevices().list(customerId=CUSTOMER).execute()
    assert first["kind"] == "admin#directory#chromeosdevices"
    assert len(first["chromeosdevices"]) == 100  # the default maxResults
    everything = _list_all(admin, maxResults=300)
    assert len(everything) == 600
    assert len({d["deviceId"] for d in everything}) == 600
    statuses = {d["status"] for d in everything}
    assert {"ACTIVE", "DISABLED", "DEPROVISIONED"} <= statuses
    d = everything[0]
    assert d["kind"] == "admin#directory#chromeosdevice" and d["etag"].startswith('"')


def test_fleet_is_deterministic_by_seed() -> None:
    a, b, c = (Sandbox(chrome=50, android=20, seed=s) for s in (7, 7, 8))
    assert [d["serialNumber"] for d in a.fleet.iter_chrome()] == [
        d["serialNumber"] for d in b.fleet.iter_chrome()
    ]
    assert list(a.fleet.android) == list(b.fleet.android)
    assert [d["serialNumber"] for d in a.fleet.iter_chrome()] != [
        d["serialNumber"] for d in c.fleet.iter_chrome()
    ]


def test_max_results_over_300_is_400(admin: Any) -> None:
    with pytest.raises(HttpError) as exc:
        admin.chromeosdevices().list(customerId=CUSTOMER, maxResults=301).execute()
    assert exc.value.resp.status == 400
    assert _error(exc)["status"] == "INVALID_ARGUMENT"


def test_order_by_and_sort_order(admin: Any) -> None:
    asc = _list_all(admin, orderBy="serialNumber", sortOrder="ASCENDING", maxResults=250)
    serials = [d["serialNumber"].lower() for d in asc]
    assert serials == sorted(serials)
    desc = (
        admin.chromeosdevices()
        .list(customerId=CUSTOMER, orderBy="lastSync", sortOrder="DESCENDING")
        .execute()
    )
    syncs = [d["lastSync"] for d in desc["chromeosdevices"]]
    assert syncs == sorted(syncs, reverse=True)


def test_query_by_serial_full_and_partial(sb: Sandbox, admin: Any) -> None:
    d = sb.fleet.chrome_by_status("ACTIVE")
    serial = d["serialNumber"]
    got = admin.chromeosdevices().list(customerId=CUSTOMER, query=f"id:{serial}").execute()
    assert [x["deviceId"] for x in got["chromeosdevices"]] == [d["deviceId"]]
    partial = (
        admin.chromeosdevices()
        .list(customerId=CUSTOMER, query=f"id:{serial[:5].lower()}")
        .execute()
    )
    assert d["deviceId"] in [x["deviceId"] for x in partial["chromeosdevices"]]
    assert all(
        x["serialNumber"].upper().startswith(serial[:5].upper()) for x in partial["chromeosdevices"]
    )
    # fewer than 3 characters: exact match only
    short = admin.chromeosdevices().list(customerId=CUSTOMER, query=f"id:{serial[:2]}").execute()
    assert "chromeosdevices" not in short


def test_query_operators(sb: Sandbox, admin: Any) -> None:
    d = next(
        x for x in sb.fleet.iter_chrome() if x.get("annotatedUser") and x.get("annotatedAssetId")
    )
    user = d["annotatedUser"]
    by_user = _list_all(admin, query=f"user:{user}")
    assert d["deviceId"] in {x["deviceId"] for x in by_user}
    assert all(x["annotatedUser"] == user for x in by_user)
    by_asset = _list_all(admin, query=f"asset_id:{d['annotatedAssetId']}")
    assert [x["deviceId"] for x in by_asset] == [d["deviceId"]]
    disabled = _list_all(admin, query="status:disabled")
    assert disabled and all(x["status"] == "DISABLED" for x in disabled)
    loc = _list_all(admin, query='location:"London HQ"')
    assert loc and all("London HQ" in x["annotatedLocation"] for x in loc)
    day = d["lastSync"][:10]
    synced = _list_all(admin, query=f"sync:{day}..{day}")
    assert d["deviceId"] in {x["deviceId"] for x in synced}
    assert all(x["lastSync"][:10] == day for x in synced)
    before = _list_all(admin, query=f"sync:..{day}")
    assert all(x["lastSync"][:10] <= day for x in before)
    after = _list_all(admin, query=f"register:{day}..")
    assert all(x["lastEnrollmentTime"][:10] >= day for x in after)
    combined = _list_all(admin, query=f"user:{user} status:{d['status']}")
    assert d["deviceId"] in {x["deviceId"] for x in combined}
    bare = _list_all(admin, query=user.split("@")[0])
    assert d["deviceId"] in {x["deviceId"] for x in bare}
    model = _list_all(admin, query="Pixelbook")
    assert all("Pixelbook" in x["model"] for x in model)


def test_projection_basic_leaves_out_reports(sb: Sandbox, admin: Any) -> None:
    d = sb.fleet.chrome_by_status("ACTIVE")
    full = (
        admin.chromeosdevices()
        .get(customerId=CUSTOMER, deviceId=d["deviceId"], projection="FULL")
        .execute()
    )
    basic = (
        admin.chromeosdevices()
        .get(customerId=CUSTOMER, deviceId=d["deviceId"], projection="BASIC")
        .execute()
    )
    assert "recentUsers" in full and "lastKnownNetwork" in full
    assert "recentUsers" not in basic and basic["serialNumber"] == full["serialNumber"]


def test_org_unit_filter(admin: Any) -> None:
    emea = _list_all(admin, orgUnitPath="/Sales/EMEA")
    assert emea and all(x["orgUnitPath"] == "/Sales/EMEA" for x in emea)
    sales = _list_all(admin, orgUnitPath="Sales", includeChildOrgunits=True)
    assert {x["orgUnitPath"] for x in sales} >= {"/Sales/EMEA", "/Sales/AMER"}


def test_get_unknown_is_404(admin: Any) -> None:
    with pytest.raises(HttpError) as exc:
        admin.chromeosdevices().get(customerId=CUSTOMER, deviceId="no-such-device").execute()
    assert exc.value.resp.status == 404
    assert _error(exc)["message"] == "Resource Not Found: deviceId"


def test_wrong_customer_is_refused(admin: Any) -> None:
    with pytest.raises(HttpError) as exc:
        admin.chromeosdevices().list(customerId="C0other").execute()
    assert exc.value.resp.status == 403


def test_patch_annotations_and_reindex(sb: Sandbox, admin: Any) -> None:
    d = sb.fleet.chrome_by_status("ACTIVE")
    etag = d["etag"]
    body = {
        "annotatedUser": "zed.quux@example.com",
        "annotatedLocation": "Lisbon",
        "annotatedAssetId": "TAG-999",
        "notes": "checked",
        "orgUnitPath": "/Loaners",
    }
    out = (
        admin.chromeosdevices()
        .patch(customerId=CUSTOMER, deviceId=d["deviceId"], body=body)
        .execute()
    )
    assert {k: out[k] for k in body} == body
    assert out["etag"] != etag
    found = admin.chromeosdevices().list(customerId=CUSTOMER, query="user:zed.quux").execute()
    assert [x["deviceId"] for x in found["chromeosdevices"]] == [d["deviceId"]]
    found = admin.chromeosdevices().list(customerId=CUSTOMER, query="asset_id:TAG-999").execute()
    assert [x["deviceId"] for x in found["chromeosdevices"]] == [d["deviceId"]]
    upd = (
        admin.chromeosdevices()
        .update(customerId=CUSTOMER, deviceId=d["deviceId"], body={"notes": "put"})
        .execute()
    )
    assert upd["notes"] == "put"
    with pytest.raises(HttpError) as exc:
        admin.chromeosdevices().patch(
            customerId=CUSTOMER, deviceId=d["deviceId"], body={"orgUnitPath": "/Nowhere"}
        ).execute()
    assert exc.value.resp.status == 400


def test_state_machine_through_deprecated_action(sb: Sandbox, admin: Any) -> None:
    d = sb.fleet.chrome_by_status("ACTIVE")
    act = admin.chromeosdevices().action
    did = d["deviceId"]
    with pytest.raises(HttpError) as exc:
        act(customerId=CUSTOMER, resourceId=did, body={"action": "reenable"}).execute()
    assert exc.value.resp.status == 412
    err = _error(exc)
    assert err["message"] == "Illegal device state transition"
    assert (
        err["status"] == "FAILED_PRECONDITION" and err["errors"][0]["reason"] == "conditionNotMet"
    )
    act(customerId=CUSTOMER, resourceId=did, body={"action": "disable"}).execute()
    assert sb.fleet.chrome[did]["status"] == "DISABLED"
    with pytest.raises(HttpError) as exc:
        act(customerId=CUSTOMER, resourceId=did, body={"action": "disable"}).execute()
    assert exc.value.resp.status == 412
    act(customerId=CUSTOMER, resourceId=did, body={"action": "reenable"}).execute()
    with pytest.raises(HttpError) as exc:
        act(customerId=CUSTOMER, resourceId=did, body={"action": "deprovision"}).execute()
    assert exc.value.resp.status == 400  # no deprovisionReason
    act(
        customerId=CUSTOMER,
        resourceId=did,
        body={"action": "deprovision", "deprovisionReason": "retiring_device"},
    ).execute()
    got = admin.chromeosdevices().get(customerId=CUSTOMER, deviceId=did).execute()
    assert got["status"] == "DEPROVISIONED"
    assert got["deprovisionReason"] == "DEPROVISION_REASON_RETIRING_DEVICE"
    for action in ("disable", "reenable"):
        with pytest.raises(HttpError) as exc:
            act(customerId=CUSTOMER, resourceId=did, body={"action": action}).execute()
        assert exc.value.resp.status == 412
    with pytest.raises(HttpError) as exc:
        admin.chromeosdevices().patch(
            customerId=CUSTOMER, deviceId=did, body={"notes": "x"}
        ).execute()
    assert exc.value.resp.status == 412


def test_reenable_without_a_free_license(sb: Sandbox, admin: Any) -> None:
    d = sb.fleet.chrome_by_status("DISABLED")
    sb.fleet.set_free_licenses(0)
    with pytest.raises(HttpError) as exc:
        admin.chromeosdevices().action(
            customerId=CUSTOMER, resourceId=d["deviceId"], body={"action": "reenable"}
        ).execute()
    assert exc.value.resp.status == 412
    assert _error(exc)["message"] == "Insufficient licenses"
    # freeing a license (deprovisioning another device) makes room
    other = sb.fleet.chrome_by_status("ACTIVE")
    admin.chromeosdevices().action(
        customerId=CUSTOMER,
        resourceId=other["deviceId"],
        body={"action": "deprovision", "deprovisionReason": "retiring_device"},
    ).execute()
    admin.chromeosdevices().action(
        customerId=CUSTOMER, resourceId=d["deviceId"], body={"action": "reenable"}
    ).execute()
    assert sb.fleet.chrome[d["deviceId"]]["status"] == "ACTIVE"


def test_batch_change_status_answers_per_device(sb: Sandbox, admin: Any) -> None:
    active = sb.fleet.chrome_by_status("ACTIVE")
    deprov = sb.fleet.chrome_by_status("DEPROVISIONED")
    bcs = admin.customer().devices().chromeos().batchChangeStatus
    body = {
        "deviceIds": [active["deviceId"], deprov["deviceId"], "missing"],
        "changeChromeOsDeviceStatusAction": "CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_DISABLE",
    }
    res = bcs(customerId=CUSTOMER, body=body).execute()["changeChromeOsDeviceStatusResults"]
    assert [r["deviceId"] for r in res] == body["deviceIds"]
    assert res[0] == {"deviceId": active["deviceId"], "response": {}}
    assert res[1]["error"] == {"code": 9, "message": "Illegal device state transition"}
    assert res[2]["error"]["code"] == 5
    assert sb.fleet.chrome[active["deviceId"]]["status"] == "DISABLED"

    deprovision = {
        "deviceIds": [active["deviceId"]],
        "changeChromeOsDeviceStatusAction": "CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_DEPROVISION",
    }
    with pytest.raises(HttpError) as exc:
        bcs(customerId=CUSTOMER, body=deprovision).execute()
    assert exc.value.resp.status == 400
    deprovision["deprovisionReason"] = "DEPROVISION_REASON_RETIRING_DEVICE"
    res = bcs(customerId=CUSTOMER, body=deprovision).execute()["changeChromeOsDeviceStatusResults"]
    assert res == [{"deviceId": active["deviceId"], "response": {}}]

    too_many = {**body, "deviceIds": [active["deviceId"]] * 51}
    with pytest.raises(HttpError) as exc:
        bcs(customerId=CUSTOMER, body=too_many).execute()
    assert exc.value.resp.status == 400


def test_move_devices_to_ou(sb: Sandbox, admin: Any) -> None:
    ids = [d["deviceId"] for d in sb.fleet.iter_chrome() if d["status"] == "ACTIVE"][:50]
    admin.chromeosdevices().moveDevicesToOu(
        customerId=CUSTOMER, orgUnitPath="/Kiosks", body={"deviceIds": ids}
    ).execute()
    assert {sb.fleet.chrome[i]["orgUnitPath"] for i in ids} == {"/Kiosks"}
    with pytest.raises(HttpError) as exc:
        admin.chromeosdevices().moveDevicesToOu(
            customerId=CUSTOMER, orgUnitPath="/Sales", body={"deviceIds": ids + ids[:1]}
        ).execute()
    assert exc.value.resp.status == 400
    assert {sb.fleet.chrome[i]["orgUnitPath"] for i in ids} == {"/Kiosks"}
    with pytest.raises(HttpError) as exc:
        admin.chromeosdevices().moveDevicesToOu(
            customerId=CUSTOMER, orgUnitPath="/Nope", body={"deviceIds": ids[:1]}
        ).execute()
    assert exc.value.resp.status == 400


def _command(admin: Any, device_id: str, command_id: str) -> dict[str, Any]:
    return (
        admin.customer()
        .devices()
        .chromeos()
        .commands()
        .get(customerId=CUSTOMER, deviceId=device_id, commandId=command_id)
        .execute()
    )


def test_command_lifecycle_and_screenshot_link(sb: Sandbox, admin: Any) -> None:
    d = sb.fleet.chrome_by_status("ACTIVE")
    d["deviceLicenseType"] = "kioskUpgrade"  # screenshots only in kiosk mode
    did = d["deviceId"]
    issue = admin.customer().devices().chromeos().issueCommand
    cid = issue(
        customerId=CUSTOMER, deviceId=did, body={"commandType": "TAKE_A_SCREENSHOT"}
    ).execute()["commandId"]
    first = _command(admin, did, cid)
    assert first["state"] in ("PENDING", "SENT_TO_CLIENT", "ACKED_BY_CLIENT")
    assert first["type"] == "TAKE_A_SCREENSHOT" and first["commandId"] == cid
    seen = {first["state"]}

    def executed() -> dict[str, Any] | None:
        c = _command(admin, did, cid)
        seen.add(c["state"])
        return c if c["state"] == "EXECUTED_BY_CLIENT" else None

    done = wait_for(executed, interval=0.01)
    assert len(seen) >= 2
    assert done["commandResult"]["result"] == "SUCCESS"
    assert done["commandResult"]["executeTime"] >= done["issueTime"]
    dev = admin.chromeosdevices().get(customerId=CUSTOMER, deviceId=did).execute()
    shot = dev["screenshotFiles"][0]
    assert shot["type"] == "SCREENSHOT_FILE" and shot["downloadUrl"].startswith(sb.url)
    with urllib.request.urlopen(shot["downloadUrl"]) as resp:
        assert resp.read().startswith(b"\x89PNG")

    logs = issue(customerId=CUSTOMER, deviceId=did, body={"commandType": "CAPTURE_LOGS"}).execute()[
        "commandId"
    ]
    wait_for(lambda: _command(admin, did, logs)["state"] == "EXECUTED_BY_CLIENT")
    dev = admin.chromeosdevices().get(customerId=CUSTOMER, deviceId=did).execute()
    assert dev["deviceFiles"][0]["downloadUrl"].startswith(sb.url)


def test_command_validation(sb: Sandbox, admin: Any) -> None:
    d = sb.fleet.chrome_by_status("ACTIVE")
    issue = admin.customer().devices().chromeos().issueCommand
    for body in (
        {"commandType": "SET_VOLUME"},
        {"commandType": "SET_VOLUME", "payload": json.dumps({"volume": 101})},
        {"commandType": "SET_VOLUME", "payload": "not json"},
        {"commandType": "COMMAND_TYPE_UNSPECIFIED"},
    ):
        with pytest.raises(HttpError) as exc:
            issue(customerId=CUSTOMER, deviceId=d["deviceId"], body=body).execute()
        assert exc.value.resp.status == 400, body
    ok = issue(
        customerId=CUSTOMER,
        deviceId=d["deviceId"],
        body={"commandType": "SET_VOLUME", "payload": json.dumps({"volume": 40})},
    ).execute()
    assert _command(admin, d["deviceId"], ok["commandId"])["payload"] == '{"volume": 40}'
    deprov = sb.fleet.chrome_by_status("DEPROVISIONED")
    with pytest.raises(HttpError) as exc:
        issue(
            customerId=CUSTOMER, deviceId=deprov["deviceId"], body={"commandType": "REBOOT"}
        ).execute()
    assert exc.value.resp.status == 412
    with pytest.raises(HttpError) as exc:
        _command(admin, d["deviceId"], "123")
    assert exc.value.resp.status == 404


def test_command_expires_on_a_device_that_never_acknowledges(sb: Sandbox, admin: Any) -> None:
    d = sb.fleet.chrome_by_status("ACTIVE")
    sb.fleet.set_never_ack(d["deviceId"], expire_after=0.3)
    cid = (
        admin.customer()
        .devices()
        .chromeos()
        .issueCommand(customerId=CUSTOMER, deviceId=d["deviceId"], body={"commandType": "REBOOT"})
        .execute()["commandId"]
    )
    assert _command(admin, d["deviceId"], cid)["state"] == "PENDING"
    expired = wait_for(
        lambda: (c := _command(admin, d["deviceId"], cid))["state"] == "EXPIRED" and c
    )
    assert "commandResult" not in expired


def test_forced_failure_outcome(sb: Sandbox, admin: Any) -> None:
    d = sb.fleet.chrome_by_status("ACTIVE")
    sb.fleet.set_outcome(d["serialNumber"], result="FAILURE", error_message="Device is offline")
    cid = (
        admin.customer()
        .devices()
        .chromeos()
        .issueCommand(
            customerId=CUSTOMER, deviceId=d["deviceId"], body={"commandType": "WIPE_USERS"}
        )
        .execute()["commandId"]
    )
    done = wait_for(
        lambda: (c := _command(admin, d["deviceId"], cid))["state"] == "EXECUTED_BY_CLIENT" and c
    )
    assert done["commandResult"] == {
        "result": "FAILURE",
        "errorMessage": "Device is offline",
        "executeTime": done["commandResult"]["executeTime"],
    }


def test_check_in_updates_last_sync(sb: Sandbox, admin: Any) -> None:
    d = sb.fleet.chrome_by_status("ACTIVE")
    sb.fleet.check_in(d["serialNumber"], at=1_735_689_600.0, ip="10.1.2.3", wan_ip="198.51.100.7")
    got = admin.chromeosdevices().get(customerId=CUSTOMER, deviceId=d["deviceId"]).execute()
    assert got["lastSync"] == "2025-01-01T00:00:00.000Z"
    assert got["lastKnownNetwork"] == [{"ipAddress": "10.1.2.3", "wanIpAddress": "198.51.100.7"}]


def test_licence_pool_follows_the_reference(sb: Sandbox, admin: Any) -> None:
    """An ACTIVE device holds a licence; disabling frees it; re-enabling takes one or is 412."""
    cros = admin.customer().devices().chromeos()
    first = sb.fleet.chrome_by_status("DISABLED")["deviceId"]
    second = sb.fleet.chrome_by_status("DISABLED", skip=1)["deviceId"]
    active = sb.fleet.chrome_by_status("ACTIVE")["deviceId"]

    def status(device_id: str, action: str) -> dict[str, Any]:
        out = cros.batchChangeStatus(
            customerId=CUSTOMER,
            body={
                "deviceIds": [device_id],
                "changeChromeOsDeviceStatusAction": f"CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_{action}",
            },
        ).execute()
        result: dict[str, Any] = out["changeChromeOsDeviceStatusResults"][0]
        return result

    sb.fleet.set_free_licenses(0)
    used = sb.fleet.licenses_used()
    refused = status(first, "REENABLE")
    assert refused["error"] == {"code": 9, "message": "Insufficient licenses"}
    assert status(active, "DISABLE") == {"deviceId": active, "response": {}}
    assert sb.fleet.licenses_used() == used - 1 and sb.fleet.free_licenses() == 1
    assert "response" in status(first, "REENABLE")  # takes the freed licence
    assert sb.fleet.free_licenses() == 0
    assert status(second, "REENABLE")["error"]["message"] == "Insufficient licenses"
    assert sb.fleet.chrome[second]["status"] == "DISABLED"


def test_licence_control_interface(sb: Sandbox) -> None:
    url = sb.url + "sandbox/licenses"

    def call(body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    status, pool = call()
    assert status == 200 and pool["free"] == pool["total"] - pool["used"] > 0
    status, pool = call({"free": 0})
    assert status == 200 and pool["free"] == 0 and sb.fleet.free_licenses() == 0
    status, pool = call({"total": pool["used"] + 3})
    assert status == 200 and pool["free"] == 3
    status, err = call({"free": "lots"})
    assert status == 400 and "free" in err["error"]["message"]
    assert sb.fleet.free_licenses() == 3
