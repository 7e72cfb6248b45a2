"""The sandbox's batch endpoint, fault injection, request log, index use and CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from bot.sandbox import Sandbox
from bot.sandbox.testing import androidmanagement, batch, directory, wait_for

CUSTOMER = "my_customer"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    sandbox = Sandbox(300, seed=11, command_delay=0.05).start()
    yield sandbox
    sandbox.stop()


def test_batch_of_100_operation_gets_is_one_http_request(sb: Sandbox) -> None:
    amapi = androidmanagement(sb.url)
    devices = list(sb.fleet.android.values())[:100]
    ops = [
        amapi.enterprises()
        .devices()
        .issueCommand(name=d["name"], body={"type": "LOCK"})
        .execute()["name"]
        for d in devices
    ]

    def all_done() -> bool:
        sb.fleet.tick()  # due events are otherwise applied at the next request
        return all(sb.fleet.operations[o].done for o in ops)

    wait_for(all_done)
    sb.log.clear()
    results: dict[str, Any] = {}

    def callback(request_id: str, response: Any, exception: Exception | None) -> None:
        results[request_id] = exception or response

    b = batch(amapi, sb.url, callback)
    for i, name in enumerate(ops[:99]):
        b.add(amapi.enterprises().devices().operations().get(name=name), request_id=str(i))
    b.add(
        amapi.enterprises().devices().operations().get(name=devices[0]["name"] + "/operations/404"),
        request_id="missing",
    )
    b.execute()
    assert sb.log.count() == 1 and sb.log.count("POST", "/batch") == 1
    assert sb.log.count(parts=True) == 100
    assert len(results) == 100
    for i, name in enumerate(ops[:99]):
        assert results[str(i)]["name"] == name and results[str(i)]["done"] is True
    missing = results["missing"]
    assert isinstance(missing, HttpError) and missing.resp.status == 404


def test_batch_mixes_apis_and_mutations(sb: Sandbox) -> None:
    admin = directory(sb.url)
    amapi = androidmanagement(sb.url)
    chrome = sb.fleet.chrome_by_status("ACTIVE")
    android = sb.fleet.android_where()
    results: dict[str, Any] = {}
    b = batch(admin, sb.url, lambda rid, resp, exc: results.__setitem__(rid, exc or resp))
    b.add(
        admin.chromeosdevices().get(customerId=CUSTOMER, deviceId=chrome["deviceId"]),
        request_id="get",
    )
    b.add(
        admin.chromeosdevices().patch(
            customerId=CUSTOMER, deviceId=chrome["deviceId"], body={"notes": "batched"}
        ),
        request_id="patch",
    )
    b.add(amapi.enterprises().devices().get(name=android["name"]), request_id="android")
    b.add(admin.chromeosdevices().list(customerId=CUSTOMER, maxResults=500), request_id="bad")
    b.execute()
    assert results["get"]["deviceId"] == chrome["deviceId"]
    assert results["patch"]["notes"] == "batched"
    assert results["android"]["name"] == android["name"]
    assert isinstance(results["bad"], HttpError) and results["bad"].resp.status == 400


def test_fault_429_then_success(sb: Sandbox) -> None:
    admin = directory(sb.url)
    sb.faults.add(status=429, count=2, path_contains="/devices/chromeos")
    for _ in range(2):
        with pytest.raises(HttpError) as exc:
            admin.chromeosdevices().list(customerId=CUSTOMER, maxResults=1).execute()
        assert exc.value.resp.status == 429
        err = json.loads(exc.value.content)["error"]
        assert err["status"] == "RESOURCE_EXHAUSTED" and err["code"] == 429
    assert (
        admin.chromeosdevices().list(customerId=CUSTOMER, maxResults=1).execute()["chromeosdevices"]
    )
    assert sb.faults.pending() == 0


def test_fault_403_rate_limit_reason_and_retry_after(sb: Sandbox) -> None:
    admin = directory(sb.url)
    sb.faults.add(status=403, reason="userRateLimitExceeded", retry_after=2, method="GET")
    with pytest.raises(HttpError) as exc:
        admin.chromeosdevices().list(customerId=CUSTOMER, maxResults=1).execute()
    assert exc.value.resp.status == 403
    assert exc.value.resp["retry-after"] == "2"
    assert json.loads(exc.value.content)["error"]["errors"][0]["reason"] == "userRateLimitExceeded"
    sb.faults.add(status=403)
    with pytest.raises(HttpError) as exc:
        admin.chromeosdevices().list(customerId=CUSTOMER, maxResults=1).execute()
    assert json.loads(exc.value.content)["error"]["errors"][0]["reason"] == "rateLimitExceeded"


def test_fault_method_and_path_filters(sb: Sandbox) -> None:
    admin = directory(sb.url)
    d = sb.fleet.chrome_by_status("ACTIVE")
    sb.faults.add(status=500, method="PATCH")
    admin.chromeosdevices().get(customerId=CUSTOMER, deviceId=d["deviceId"]).execute()
    with pytest.raises(HttpError) as exc:
        admin.chromeosdevices().patch(
            customerId=CUSTOMER, deviceId=d["deviceId"], body={"notes": "x"}
        ).execute()
    assert exc.value.resp.status == 500
    assert (
        "notes" not in sb.fleet.chrome[d["deviceId"]]
        or sb.fleet.chrome[d["deviceId"]]["notes"] != "x"
    )


def test_fault_after_apply_mutates_then_answers_503(sb: Sandbox) -> None:
    admin = directory(sb.url)
    d = sb.fleet.chrome_by_status("ACTIVE")
    sb.faults.add(status=503, after_apply=True, path_contains=":batchChangeStatus")
    body = {
        "deviceIds": [d["deviceId"]],
        "changeChromeOsDeviceStatusAction": "CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_DISABLE",
    }
    with pytest.raises(HttpError) as exc:
        admin.customer().devices().chromeos().batchChangeStatus(
            customerId=CUSTOMER, body=body
        ).execute()
    assert exc.value.resp.status == 503
    assert json.loads(exc.value.content)["error"]["status"] == "UNAVAILABLE"
    assert (
        admin.chromeosdevices().get(customerId=CUSTOMER, deviceId=d["deviceId"]).execute()["status"]
        == "DISABLED"
    )


def test_latency_global_and_per_fault(sb: Sandbox) -> None:
    admin = directory(sb.url)
    sb.faults.latency = 0.15
    t0 = time.perf_counter()
    admin.chromeosdevices().list(customerId=CUSTOMER, maxResults=1).execute()
    assert time.perf_counter() - t0 >= 0.15
    sb.faults.clear()
    sb.faults.add(status=None, latency=0.2, path_contains="maxResults=2")
    t0 = time.perf_counter()
    assert (
        admin.chromeosdevices().list(customerId=CUSTOMER, maxResults=2).execute()["chromeosdevices"]
    )
    assert time.perf_counter() - t0 >= 0.2


def test_fault_on_one_batch_part(sb: Sandbox) -> None:
    amapi = androidmanagement(sb.url)
    names = sb.fleet.android_order[:3]
    sb.faults.add(status=429, path_contains=names[1])
    results: dict[str, Any] = {}
    b = batch(amapi, sb.url, lambda rid, resp, exc: results.__setitem__(rid, exc or resp))
    for i, n in enumerate(names):
        b.add(amapi.enterprises().devices().get(name=n), request_id=str(i))
    b.execute()
    assert results["0"]["name"] == names[0] and results["2"]["name"] == names[2]
    assert isinstance(results["1"], HttpError) and results["1"].resp.status == 429


def test_serial_lookup_uses_the_index() -> None:
    sb = Sandbox(chrome=20000, android=100, seed=2).start()
    try:
        admin = directory(sb.url)
        d = sb.fleet.chrome[sb.fleet.chrome_order[12345]]
        scans = sb.fleet.scans
        t0 = time.perf_counter()
        got = (
            admin.chromeosdevices()
            .list(customerId=CUSTOMER, query=f"id:{d['serialNumber']}")
            .execute()
        )
        elapsed = time.perf_counter() - t0
        assert [x["deviceId"] for x in got["chromeosdevices"]] == [d["deviceId"]]
        assert sb.fleet.scans == scans  # no full scan
        user = next(x["annotatedUser"] for x in sb.fleet.chrome.values() if x.get("annotatedUser"))
        admin.chromeosdevices().list(customerId=CUSTOMER, query=f"user:{user}").execute()
        assert sb.fleet.scans == scans
        assert elapsed < 1.0  # generous: the bench measures the real figure
    finally:
        sb.stop()


def test_log_records_requests(sb: Sandbox) -> None:
    sb.log.clear()
    with urllib.request.urlopen(sb.url) as resp:
        assert json.loads(resp.read())["sandbox"] is True
    assert list(sb.log) == [("GET", "/")]
    assert sb.log.count("GET") == 1 and sb.log.count(path_contains="/devices") == 0


def test_cli_serves_until_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.sandbox", "--port", "0", "--devices", "50", "--seed", "4"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        admin = directory(url)
        assert (
            len(admin.chromeosdevices().list(customerId=CUSTOMER).execute()["chromeosdevices"])
            == 30
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
