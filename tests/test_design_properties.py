"""The design properties the benchmarks' targets rely on (bench/), checked without timing.

- the batch poll reads N operations in at most ceil(N / 100) HTTP requests;
- a serial look-up sends its Chrome and Android queries at the same time, not one after
  the other;
- the scheduled jobs other than the index sync (poll, lost-device watch, approvals) make
  no Google call when there is nothing to do.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from conftest import base_env

from bot.google import CallRecord

LATENCY = 0.5


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    """A sandbox of its own: latency is injected, and devices never run their commands."""
    from bot.sandbox import Sandbox

    sb = Sandbox(chrome=40, android=300, seed=41, command_delay=86400.0).start()
    yield sb
    sb.stop()


@pytest.fixture
def svc(tmp_path: Any, sandbox: Any) -> Iterator[Any]:
    """The bot's services (no HTTP server, no scheduler) on the sandbox."""
    from bot.services import build_services
    from bot.settings import load_settings

    env = base_env(str(tmp_path / "bot.db"), "http://127.0.0.1:9/api/")
    services = build_services(load_settings(env), sandbox=sandbox)
    yield services
    sandbox.faults.latency = 0.0
    services.close()


class Intervals:
    """A call observer keeping (method id, start, end) of every Google round trip."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, float, float]] = []

    def __call__(self, record: CallRecord) -> None:
        end = time.monotonic()
        with self.lock:
            self.calls.append((record.method_id, end - record.duration, end))

    def of(self, fragment: str) -> list[tuple[str, float, float]]:
        with self.lock:
            return [c for c in self.calls if fragment in c[0]]


@pytest.fixture(scope="module")
def operations(sandbox: Any) -> list[str]:
    """250 pending LOCK operations on distinct devices (module-wide: creating them is the slow part)."""
    from bot.sandbox.testing import androidmanagement

    local = threading.local()

    def lock(name: str) -> dict[str, Any]:
        if not hasattr(local, "devices"):
            local.devices = androidmanagement(sandbox.url).enterprises().devices()
        return dict(local.devices.issueCommand(name=name, body={"type": "LOCK"}).execute())

    names = [d["name"] for d in sandbox.fleet.android.values() if d.get("state") == "ACTIVE"]
    with ThreadPoolExecutor(8) as pool:
        ops = list(pool.map(lock, names))
    pending = [op["name"] for op in ops if not op.get("done")]
    assert len(pending) >= 250
    return pending[:250]


@pytest.mark.parametrize("n", [1, 100, 101, 250])
def test_batch_poll_reads_n_operations_in_ceil_n_over_100_requests(
    svc: Any, sandbox: Any, operations: list[str], n: int
) -> None:
    sandbox.log.clear()
    results = svc.google.require_android().get_operations(operations[:n])
    assert len(sandbox.log) <= math.ceil(n / 100)
    assert sandbox.log.count("POST", "batch") == len(sandbox.log)
    assert sandbox.log.count(parts=True) == n
    assert all(isinstance(r, dict) and r["name"] == name for name, r in results.items())


def test_the_poll_job_batches_every_pending_command(
    svc: Any, sandbox: Any, operations: list[str]
) -> None:
    from bot import outcomes

    now = time.time()
    with svc.store.transaction() as db:
        for i, name in enumerate(operations):
            db.execute(
                "INSERT INTO pending_commands(request_id, platform, device_id, google_ref, command_type, state,"
                " created_at, expires_at, next_poll_at) VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    f"r{i}",
                    "android",
                    name.split("/operations/")[0],
                    name,
                    "LOCK",
                    "PENDING",
                    now,
                    now + 86400,
                    0,
                ],
            )
    sandbox.log.clear()
    assert outcomes.poll(svc) == len(operations)
    assert len(sandbox.log) <= math.ceil(len(operations) / 100)
    assert sandbox.log.count(parts=True) == len(operations)
    sandbox.log.clear()
    assert outcomes.poll(svc) == 0  # all rescheduled: nothing due, nothing asked
    assert len(sandbox.log) == 0


def _android_serial(sandbox: Any) -> str:
    device = next(d for d in sandbox.fleet.android.values() if d.get("state") == "ACTIVE")
    return str(device["hardwareInfo"]["serialNumber"])


def test_an_android_serial_look_up_queries_both_platforms_at_once(svc: Any, sandbox: Any) -> None:
    svc.devices.sync_android_index()  # warm index: the Android side is one devices.get
    serial = _android_serial(sandbox)
    intervals = Intervals()
    svc.google.on_call = intervals
    sandbox.faults.latency = LATENCY
    started = time.monotonic()
    device = svc.devices.resolve(serial)
    elapsed = time.monotonic() - started
    sandbox.faults.latency = 0.0
    assert device.serial == serial and device.platform == "android"
    chrome = intervals.of("chromeosdevices.list")
    android = intervals.of("androidmanagement.enterprises.devices.get")
    assert len(chrome) == 2 and len(android) == 1
    # every Chrome query was in flight while the Android one was: they overlap in time
    for _, start, end in chrome:
        assert start < android[0][2] and android[0][1] < end
    assert elapsed < 2 * LATENCY  # one round trip on the critical path, not two or three


def test_a_chrome_serial_look_up_is_one_round_trip(svc: Any, sandbox: Any) -> None:
    svc.devices.sync_android_index()
    device = next(d for d in sandbox.fleet.chrome.values() if d.get("status") == "ACTIVE")
    intervals = Intervals()
    svc.google.on_call = intervals
    sandbox.faults.latency = LATENCY
    started = time.monotonic()
    found = svc.devices.resolve(device["serialNumber"])
    elapsed = time.monotonic() - started
    sandbox.faults.latency = 0.0
    assert found.id == device["deviceId"]
    (_, s1, e1), (_, s2, e2) = intervals.of("chromeosdevices.list")  # id: and asset_id:
    assert s1 < e2 and s2 < e1
    assert elapsed < 2 * LATENCY


def test_many_concurrent_look_ups_finish(svc: Any, sandbox: Any) -> None:
    """More simultaneous references than pool workers: no look-up may wait for a starved pool."""
    serials = [d["serialNumber"] for d in list(sandbox.fleet.chrome.values())[:40]]
    with ThreadPoolExecutor(41) as pool:  # the pool's 32 workers would all wait: a deadlock
        many = pool.submit(svc.devices.resolve_many, serials)
        singles = [pool.submit(svc.devices.resolve, s) for s in serials]
        assert sorted(d.serial for d in many.result(timeout=60)) == sorted(serials)
        assert [f.result(timeout=60).serial for f in singles] == serials


def test_the_jobs_make_no_google_call_when_idle(svc: Any, sandbox: Any) -> None:
    from bot.app import job_specs
    from bot.google import CallCounter

    specs = {spec.id: spec for spec in job_specs(svc)}
    assert "poll-outcomes" in specs
    # a sync lists, by design: the Android index, the Admin console's audit log
    idle = [
        spec for spec in specs.values() if spec.id not in ("android-index-sync", "reports-sync")
    ]
    counter = CallCounter()
    svc.google.on_call = counter
    sandbox.log.clear()
    for _ in range(3):
        for spec in idle:
            spec.func(svc)
    assert counter.count() == 0, [r.method_id for r in counter.records]
    assert len(sandbox.log) == 0
