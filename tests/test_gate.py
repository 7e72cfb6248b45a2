"""The ack gate: work waits while acknowledgements are pending, never for long."""

from __future__ import annotations

import threading
import time

from bot.gate import AckGate, GatedExecutor, gated_ack


def test_work_waits_for_pending_acks():
    gate = AckGate()
    pool = GatedExecutor(gate, max_workers=2)
    gate.enter()
    started = threading.Event()
    future = pool.submit(started.set)
    assert not started.wait(0.1)  # held back while an ack is pending
    gate.leave()
    future.result(timeout=2)
    assert started.is_set()
    pool.shutdown()


def test_work_is_never_held_longer_than_the_bound():
    gate = AckGate()
    pool = GatedExecutor(gate, max_workers=1)
    gate.enter()  # never left: the bound must release the work anyway
    t = time.monotonic()
    pool.submit(lambda: None).result(timeout=5)
    assert time.monotonic() - t < 2
    pool.shutdown()


def test_gated_ack_acknowledges_first_and_exposes_the_response():
    gate = AckGate()
    calls = []

    class FakeAck:
        response = None

        def __call__(self, **kwargs):
            calls.append(kwargs)
            self.response = "sent"

    ack = FakeAck()
    wrapped = gated_ack(gate, ack)
    assert wrapped.response is None
    wrapped(response_action="errors", errors={"x": "y"})
    assert calls == [{"response_action": "errors", "errors": {"x": "y"}}]
    assert wrapped.response == "sent"
