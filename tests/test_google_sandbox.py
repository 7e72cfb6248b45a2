"""The Google layer end to end: googleapiclient over HTTP against the sandbox Google."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bot.errors import (
    BadRequest,
    DeviceNotFound,
    Forbidden,
    GoogleError,
    GoogleUnavailable,
    IllegalTransition,
    InsufficientLicenses,
    OutcomeUnknown,
    RateLimited,
    ValidationError,
)
from bot.google import AndroidApi, CallCounter, ChromeApi, GoogleClients, RetryPolicy, short_id
from bot.sandbox import Sandbox
from bot.settings import Secret, Settings


@pytest.fixture(scope="module")
def google_sandbox() -> Iterator[Any]:
    sb = Sandbox(devices=500, seed=1, command_delay=0.0).start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture()
def google_sb(google_sandbox: Any) -> Any:
    """The module's sandbox with no faults left over and an empty request log."""
    google_sandbox.faults.clear()
    google_sandbox.faults.latency = 0.0
    google_sandbox.log.clear()
    return google_sandbox


@pytest.fixture()
def google_clients(google_sb: Any) -> GoogleClients:
    settings = Settings(
        slack_bot_token=Secret("xoxb-test"),
        slack_signing_secret=Secret("secret"),
        google_customer_id=google_sb.customer_id,
        android_enterprise=google_sb.enterprise,
        google_timeout=5.0,
    )
    policy = RetryPolicy(attempts=5, sleep=lambda _s: None)
    return GoogleClients.from_settings(
        settings, endpoint=google_sb.url, policy=policy, on_call=CallCounter()
    )


@pytest.fixture()
def chrome(google_clients: GoogleClients) -> ChromeApi:
    return google_clients.require_chrome()


@pytest.fixture()
def android(google_clients: GoogleClients) -> AndroidApi:
    return google_clients.require_android()


def calls(clients: GoogleClients) -> CallCounter:
    assert isinstance(clients.on_call, CallCounter)
    return clients.on_call


def chrome_ids(chrome: ChromeApi, status: str, n: int) -> list[str]:
    page = chrome.list_devices(f"status:{status}", projection="BASIC", max_results=300)
    ids = [d["deviceId"] for d in page.items if d["status"] == status]
    assert len(ids) >= n, f"the sandbox fleet has fewer than {n} {status} Chrome devices"
    return ids[:n]


# ---- Chrome reads ------------------------------------------------------------------------------


def test_list_pages_through_the_fleet(chrome: ChromeApi, google_clients: GoogleClients) -> None:
    first = chrome.list_devices(max_results=100, order_by="serialNumber", sort_order="ASCENDING")
    assert len(first.items) == 100
    assert first.next_page_token
    serials = [d["serialNumber"] for d in first.items]
    assert serials == sorted(serials)
    second = chrome.list_devices(
        page_token=first.next_page_token, max_results=100, order_by="serialNumber"
    )
    assert not {d["deviceId"] for d in first.items} & {d["deviceId"] for d in second.items}
    calls(google_clients).clear()
    everything = list(chrome.iter_devices(page_size=300))
    assert len({d["deviceId"] for d in everything}) == len(everything)
    assert calls(google_clients).count("chromeosdevices.list") == -(-len(everything) // 300)


def test_query_and_get(chrome: ChromeApi) -> None:
    device = chrome.list_devices(max_results=1).items[0]
    found = chrome.list_devices(f"id:{device['serialNumber']}").items
    assert device["deviceId"] in {d["deviceId"] for d in found}
    full = chrome.get(device["deviceId"])
    assert full["serialNumber"] == device["serialNumber"]
    basic = chrome.get(device["deviceId"], projection="BASIC")
    assert basic["deviceId"] == device["deviceId"]


def test_get_unknown_device_is_not_found(chrome: ChromeApi) -> None:
    with pytest.raises(DeviceNotFound) as info:
        chrome.get("no-such-device")
    assert info.value.status == 404


def test_max_results_over_300_is_refused_locally(chrome: ChromeApi, google_sb: Any) -> None:
    with pytest.raises(ValidationError):
        chrome.list_devices(max_results=301)
    assert google_sb.log.count() == 0


# ---- retries ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 503])
def test_read_retried_after_injected_errors(chrome: ChromeApi, google_sb: Any, status: int) -> None:
    device_id = chrome.list_devices(max_results=1).items[0]["deviceId"]
    google_sb.log.clear()
    google_sb.faults.add(status=status, count=2, path_contains=device_id)
    assert chrome.get(device_id)["deviceId"] == device_id
    assert google_sb.log.count(method="GET", path_contains=device_id) == 3


def test_read_retries_exhausted(chrome: ChromeApi, google_sb: Any) -> None:
    device_id = chrome.list_devices(max_results=1).items[0]["deviceId"]
    google_sb.log.clear()
    google_sb.faults.add(status=503, count=10, path_contains=device_id)
    with pytest.raises(GoogleUnavailable, match="after 5 attempts"):
        chrome.get(device_id)
    assert google_sb.log.count(path_contains=device_id) == 5
    google_sb.faults.clear()
    google_sb.faults.add(status=429, count=10, path_contains=device_id)
    with pytest.raises(RateLimited):
        chrome.get(device_id)


def test_read_timeout_is_retried(google_sb: Any, google_clients: GoogleClients) -> None:
    settings = Settings(
        slack_bot_token=Secret("xoxb-test"),
        slack_signing_secret=Secret("secret"),
        google_customer_id=google_sb.customer_id,
        google_timeout=0.3,
    )
    policy = RetryPolicy(attempts=3, sleep=lambda _s: None)
    chrome = GoogleClients.from_settings(
        settings, endpoint=google_sb.url, policy=policy
    ).require_chrome()
    device_id = chrome.list_devices(max_results=1).items[0]["deviceId"]
    google_sb.faults.add(status=None, count=1, path_contains=device_id, latency=1.0)
    assert chrome.get(device_id)["deviceId"] == device_id


@pytest.mark.parametrize("reason", ["rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"])
def test_rate_limit_403_is_retried(chrome: ChromeApi, google_sb: Any, reason: str) -> None:
    device_id = chrome.list_devices(max_results=1).items[0]["deviceId"]
    google_sb.log.clear()
    google_sb.faults.add(status=403, count=2, path_contains=device_id, reason=reason)
    assert chrome.get(device_id)["deviceId"] == device_id
    assert google_sb.log.count(path_contains=device_id) == 3


@pytest.mark.parametrize("status", [401, 403])
def test_forbidden_is_not_retried(chrome: ChromeApi, google_sb: Any, status: int) -> None:
    device_id = chrome.list_devices(max_results=1).items[0]["deviceId"]
    google_sb.log.clear()
    google_sb.faults.add(
        status=status,
        count=1,
        path_contains=device_id,
        reason="forbidden",
        message="Not Authorized to access this resource/api",
    )
    with pytest.raises(Forbidden, match="domain-wide delegation") as info:
        chrome.get(device_id)
    assert info.value.detail == "Not Authorized to access this resource/api"
    assert google_sb.log.count(path_contains=device_id) == 1


def test_mutation_retried_after_429(chrome: ChromeApi, google_sb: Any) -> None:
    device_id = chrome_ids(chrome, "ACTIVE", 1)[0]
    google_sb.faults.add(status=429, count=2, path_contains=":issueCommand")
    command_id = chrome.issue_command(device_id, "REBOOT")
    assert command_id
    assert google_sb.log.count(method="POST", path_contains=":issueCommand") == 3


def test_mutation_hitting_503_is_not_resent(chrome: ChromeApi, google_sb: Any) -> None:
    device_id = chrome_ids(chrome, "ACTIVE", 1)[0]
    google_sb.faults.add(status=503, count=1, path_contains=":issueCommand", after_apply=True)
    with pytest.raises(OutcomeUnknown) as info:
        chrome.issue_command(device_id, "REBOOT")
    assert "may or may not have happened" in str(info.value)
    assert google_sb.log.count(method="POST", path_contains=":issueCommand") == 1


def test_mutation_timeout_is_outcome_unknown(google_sb: Any) -> None:
    settings = Settings(
        slack_bot_token=Secret("xoxb-test"),
        slack_signing_secret=Secret("secret"),
        google_customer_id=google_sb.customer_id,
        google_timeout=0.3,
    )
    policy = RetryPolicy(attempts=5, sleep=lambda _s: None)
    chrome = GoogleClients.from_settings(
        settings, endpoint=google_sb.url, policy=policy
    ).require_chrome()
    device_id = chrome_ids(chrome, "ACTIVE", 1)[0]
    google_sb.log.clear()
    google_sb.faults.add(status=None, count=1, path_contains=":issueCommand", latency=1.0)
    with pytest.raises(OutcomeUnknown, match="no answer within 0.3 s"):
        chrome.issue_command(device_id, "REBOOT")
    assert google_sb.log.count(method="POST", path_contains=":issueCommand") == 1


# ---- Chrome mutations -------------------------------------------------------------------------


def test_patch_annotations(chrome: ChromeApi) -> None:
    device_id = chrome_ids(chrome, "ACTIVE", 1)[0]
    updated = chrome.patch(device_id, {"annotatedLocation": "Room 12", "notes": "checked"})
    assert updated["annotatedLocation"] == "Room 12"
    assert chrome.get(device_id)["notes"] == "checked"
    with pytest.raises(ValidationError):
        chrome.patch(device_id, {"status": "DISABLED"})


def test_change_status_disable_and_reenable(chrome: ChromeApi) -> None:
    device_id = chrome_ids(chrome, "ACTIVE", 1)[0]
    [result] = chrome.change_status([device_id], "DISABLE")
    assert result.ok and result.error is None
    assert chrome.get(device_id)["status"] == "DISABLED"
    [again] = chrome.change_status([device_id], "REENABLE")
    assert again.ok, again.error
    assert chrome.get(device_id)["status"] == "ACTIVE"


def test_change_status_per_device_errors(chrome: ChromeApi) -> None:
    active = chrome_ids(chrome, "ACTIVE", 1)[0]
    deprovisioned = chrome_ids(chrome, "DEPROVISIONED", 1)[0]
    results = chrome.change_status([active, deprovisioned, "no-such-device"], "DISABLE")
    by_id = {r.device_id: r for r in results}
    assert by_id[active].ok
    assert isinstance(by_id[deprovisioned].error, IllegalTransition)
    assert "current state does not allow it" in str(by_id[deprovisioned].error)
    assert isinstance(by_id["no-such-device"].error, DeviceNotFound)
    chrome.change_status([active], "REENABLE")


def test_deprovision_without_reason_is_a_bad_request(chrome: ChromeApi) -> None:
    device_id = chrome_ids(chrome, "ACTIVE", 1)[0]
    [result] = chrome.change_status([device_id], "DEPROVISION")
    assert isinstance(result.error, BadRequest)
    assert "eprovision" in str(result.error)
    with pytest.raises(BadRequest, match="eprovision"):
        chrome.legacy_action(device_id, "deprovision")
    assert chrome.get(device_id)["status"] == "ACTIVE"


def test_deprovision_with_reason(chrome: ChromeApi) -> None:
    device_id = chrome_ids(chrome, "ACTIVE", 1)[0]
    [result] = chrome.change_status(
        [device_id], "DEPROVISION", deprovision_reason="retiring_device"
    )
    assert result.ok, result.error
    assert chrome.get(device_id)["status"] == "DEPROVISIONED"
    with pytest.raises(IllegalTransition):
        chrome.legacy_action(device_id, "reenable")


def test_legacy_action(chrome: ChromeApi) -> None:
    device_id = chrome_ids(chrome, "ACTIVE", 1)[0]
    chrome.legacy_action(device_id, "disable")
    assert chrome.get(device_id)["status"] == "DISABLED"
    chrome.legacy_action(device_id, "reenable")
    assert chrome.get(device_id)["status"] == "ACTIVE"
    with pytest.raises(DeviceNotFound):
        chrome.legacy_action("no-such-device", "disable")


def test_reenable_without_free_license(chrome: ChromeApi, google_sb: Any) -> None:
    disabled = chrome_ids(chrome, "DISABLED", 1)[0]
    fleet = google_sb.fleet
    saved = fleet.licenses
    fleet.set_free_licenses(0)  # re-enabling a DISABLED device needs a free licence
    try:
        [result] = chrome.change_status([disabled], "REENABLE")
        assert isinstance(result.error, InsufficientLicenses), result.error
        with pytest.raises(InsufficientLicenses, match="no free Chrome license"):
            chrome.legacy_action(disabled, "reenable")
        assert chrome.get(disabled)["status"] == "DISABLED"
    finally:
        fleet.licenses = saved


def test_change_status_chunks_by_50(chrome: ChromeApi, google_sb: Any) -> None:
    ids = chrome_ids(chrome, "ACTIVE", 120)
    google_sb.log.clear()
    results = chrome.change_status(ids, "DISABLE")
    assert [r.device_id for r in results] == ids
    assert all(r.ok for r in results)
    assert google_sb.log.count(method="POST", path_contains="batchChangeStatus") == 3
    assert all(r.ok for r in chrome.change_status(ids, "REENABLE"))


def test_move_chunks_by_50_and_a_failed_chunk_does_not_stop_the_others(
    chrome: ChromeApi, google_sb: Any, google_clients: GoogleClients
) -> None:
    ids = [d["deviceId"] for d in chrome.list_devices(max_results=120, projection="BASIC").items]
    google_sb.log.clear()
    calls(google_clients).clear()
    google_sb.faults.add(status=400, count=1, path_contains="moveDevicesToOu")
    results = chrome.move(ids, "/")
    assert google_sb.log.count(method="POST", path_contains="moveDevicesToOu") == 3
    assert calls(google_clients).count("moveDevicesToOu") == 3
    assert [r.ok for r in results] == [False] * 50 + [True] * 70
    assert isinstance(results[0].error, BadRequest)


def test_move_to_an_ou(chrome: ChromeApi, google_sb: Any) -> None:
    device = chrome.get(chrome_ids(chrome, "ACTIVE", 1)[0])
    target = next(ou for ou in google_sb.fleet.org_units if ou != device["orgUnitPath"])
    [result] = chrome.move([device["deviceId"]], target)
    assert result.ok, result.error
    assert chrome.get(device["deviceId"])["orgUnitPath"] == target
    deprovisioned = chrome_ids(chrome, "DEPROVISIONED", 1)[0]
    [refused] = chrome.move([deprovisioned], target)
    assert isinstance(refused.error, IllegalTransition)
    assert "deprovisioned" in str(refused.error)


def test_chrome_commands(chrome: ChromeApi) -> None:
    device_id = chrome_ids(chrome, "ACTIVE", 1)[0]
    command_id = chrome.issue_command(device_id, "SET_VOLUME", {"volume": 50})
    command = chrome.get_command(device_id, command_id)
    assert command["type"] == "SET_VOLUME"
    assert command["state"] in {
        "PENDING",
        "SENT_TO_CLIENT",
        "ACKED_BY_CLIENT",
        "EXECUTED_BY_CLIENT",
        "EXPIRED",
    }
    with pytest.raises(DeviceNotFound):
        chrome.get_command(device_id, "999999999")


def test_command_on_deprovisioned_device_is_refused(chrome: ChromeApi) -> None:
    device_id = chrome_ids(chrome, "DEPROVISIONED", 1)[0]
    with pytest.raises(GoogleError):
        chrome.issue_command(device_id, "REBOOT")


# ---- thread safety -----------------------------------------------------------------------------


def test_many_threads_share_one_api(chrome: ChromeApi, google_sb: Any) -> None:
    devices = chrome.list_devices(max_results=160, projection="BASIC").items
    google_sb.faults.latency = 0.002
    errors: list[BaseException] = []
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def worker(mine: list[dict[str, Any]]) -> None:
        try:
            for device in mine:
                got = chrome.get(device["deviceId"], projection="BASIC")
                with lock:
                    seen.append((device["deviceId"], got["deviceId"]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(devices[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(seen) == len(devices) == 160
    assert all(asked == got for asked, got in seen)
    assert chrome.services.https >= 8  # each thread its own Http
    assert chrome.services.builds == 1  # one service, shared


# ---- Android ------------------------------------------------------------------------------------


def test_android_list_and_get(android: AndroidApi, google_clients: GoogleClients) -> None:
    page = android.list_devices(page_size=50)
    assert len(page.items) == 50
    assert page.next_page_token
    device = page.items[0]
    assert android.get(device["name"])["name"] == device["name"]
    assert android.get(short_id(device["name"]))["name"] == device["name"]
    calls(google_clients).clear()
    everything = list(android.iter_devices(page_size=100))
    assert len({d["name"] for d in everything}) == len(everything)
    assert calls(google_clients).count("devices.list") == -(-len(everything) // 100)
    with pytest.raises(DeviceNotFound):
        android.get("no-such-device")


def android_device(google_sb: Any, skip: int = 0) -> str:
    return str(google_sb.fleet.android_where(mode="DEVICE_OWNER", skip=skip)["name"])


def wait_done(android: AndroidApi, name: str, deadline: float = 10.0) -> dict[str, Any]:
    end = time.monotonic() + deadline
    while True:
        op = android.get_operation(name)
        if op.get("done") or time.monotonic() > end:
            return op
        time.sleep(0.02)


def test_android_command_and_operation(android: AndroidApi, google_sb: Any) -> None:
    name = android_device(google_sb)
    op = android.issue_command(name, {"type": "LOCK"})
    assert op["name"].startswith(name + "/operations/")
    done = wait_done(android, op["name"])
    assert done["done"] is True
    assert op["name"] in {o["name"] for o in android.list_operations(name)}


def test_reset_password_never_comes_back(android: AndroidApi, google_sb: Any) -> None:
    name = android_device(google_sb)
    op = android.issue_command(name, {"type": "RESET_PASSWORD", "newPassword": "Zq-9981-secret"})
    assert "Zq-9981-secret" not in repr(op)
    assert "Zq-9981-secret" not in repr(android.get_operation(op["name"]))
    assert "Zq-9981-secret" not in repr(android.get_operations([op["name"]]))
    assert "Zq-9981-secret" not in repr(android.list_operations(name))


def test_android_bad_command_is_a_bad_request(android: AndroidApi, google_sb: Any) -> None:
    name = android_device(google_sb)
    with pytest.raises(BadRequest):
        android.issue_command(name, {"type": "CLEAR_APP_DATA"})  # no clearAppsDataParams


def test_android_mutation_503_not_resent(android: AndroidApi, google_sb: Any) -> None:
    name = android_device(google_sb)
    google_sb.log.clear()
    google_sb.faults.add(status=503, count=1, path_contains=":issueCommand")
    with pytest.raises(OutcomeUnknown):
        android.issue_command(name, {"type": "LOCK"})
    assert google_sb.log.count(method="POST", path_contains=":issueCommand") == 1


def test_cancel_operation(android: AndroidApi, google_sb: Any) -> None:
    name = android_device(google_sb, skip=1)
    google_sb.fleet.set_never_ack(name)
    try:
        op = android.issue_command(name, {"type": "REBOOT"})
        assert not op.get("done")
        android.cancel_operation(op["name"])
        cancelled = android.get_operation(op["name"])
        assert cancelled["done"] is True
        assert cancelled["error"]["code"] == 1  # google.rpc.Code CANCELLED
    finally:
        google_sb.fleet.set_never_ack(name, on=False)
    with pytest.raises(DeviceNotFound):
        android.cancel_operation(name + "/operations/no-such-op")


def test_get_operations_in_batches_of_100(
    android: AndroidApi, google_sb: Any, google_clients: GoogleClients
) -> None:
    devices = [d["name"] for d in android.iter_devices()][:50]
    names = [
        android.issue_command(devices[i % len(devices)], {"type": "LOCK"})["name"]
        for i in range(250)
    ]
    google_sb.log.clear()
    calls(google_clients).clear()
    missing = devices[0] + "/operations/no-such-op"
    results = android.get_operations([*names, missing])
    assert google_sb.log.count(method="POST", path_contains="batch") == 3
    assert calls(google_clients).count("batch") == 3
    assert [results[n]["name"] for n in names] == names  # type: ignore[index]
    assert isinstance(results[missing], DeviceNotFound)


def test_get_operations_retries_rate_limited_sub_requests(
    android: AndroidApi, google_sb: Any
) -> None:
    device = android_device(google_sb)
    names = [android.issue_command(device, {"type": "LOCK"})["name"] for _ in range(3)]
    google_sb.log.clear()
    google_sb.faults.add(status=429, count=2, path_contains="/operations/")
    results = android.get_operations(names)
    assert all(isinstance(results[n], dict) for n in names), results
    assert google_sb.log.count(method="POST", path_contains="batch") == 2  # 3 parts, then the 2


def test_get_operations_retries_a_failed_batch(android: AndroidApi, google_sb: Any) -> None:
    device = android_device(google_sb)
    names = [android.issue_command(device, {"type": "LOCK"})["name"] for _ in range(3)]
    google_sb.log.clear()
    google_sb.faults.add(status=503, count=1, path_contains="/batch")
    results = android.get_operations(names)
    assert all(isinstance(results[n], dict) for n in names), results
    assert google_sb.log.count(method="POST", path_contains="batch") == 2


def test_get_devices_batches_and_reports_unknown_ones(google_sb):
    from bot.errors import DeviceNotFound
    from bot.google import GoogleClients
    from bot.settings import load_settings

    sb = google_sb
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "s",
            "APPROVAL_REQUIRED": "none",
            "GOOGLE_API_ENDPOINT": sb.url,
            "ANDROID_ENTERPRISE": sb.enterprise,
        }
    )
    android = GoogleClients.from_settings(settings).require_android()
    names = list(sb.fleet.android_order)[:150] + [sb.enterprise + "/devices/nope"]
    sb.log.clear()
    got = android.get_devices(names)
    assert sb.log.count() == 2  # 151 devices: two batch requests
    assert all(isinstance(got[n], dict) and got[n]["name"] == n for n in names[:150])
    assert isinstance(got[names[-1]], DeviceNotFound)
