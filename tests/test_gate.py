"""The ack gate: work waits while acknowledgements are pending, never for long."""

from __future__ import annotations

import threading
import time

from bot.gate import AckGate, GatedExecutor, gated_ack


def test_work_waits_for_pending_acks():
    gate = AckGate()
    pool = GatedExecutor(gate, max_workers=2)
    token = gate.enter()
    started = threading.Event()
    future = pool.submit(started.set)
    assert not started.wait(0.1)  # held back while an ack is pending
    gate.leave(token)
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
    token = gate.enter()
    wrapped = gated_ack(gate, ack, token)
    assert wrapped.response is None
    t = time.monotonic()
    wrapped(response_action="errors", errors={"x": "y"})
    assert time.monotonic() - t < 0.2  # its own acknowledgement does not hold it back
    assert calls == [{"response_action": "errors", "errors": {"x": "y"}}]
    assert wrapped.response == "sent"
    assert gate.pending == 1  # until the server has written the answer
    other = gate.enter()
    t = time.monotonic()
    gated_ack(gate, ack, token)()
    assert time.monotonic() - t >= 0.3  # another request's pending ack does hold it back
    gate.leave(other)


def test_the_server_tags_each_request_and_listeners_release_it(bot):
    """End to end: after a burst of acknowledged commands nothing is left pending."""
    for _ in range(5):
        assert bot.slash("help").status == 200
    from conftest import wait_until

    wait_until(lambda: bot.svc.gate.pending == 0, 5, "the gate to empty")


def test_a_listener_knows_its_request(bot):
    """The server tags each request; the listener's ack wrapper gets that token."""
    seen: list[str | None] = []
    import bot.gate as gate_module

    original = gate_module.working_for

    def spy(token):
        seen.append(token)
        original(token)

    gate_module.working_for = spy
    try:
        bot.slash("help")
        from conftest import wait_until

        wait_until(lambda: any(t is not None for t in seen), 5)
    finally:
        gate_module.working_for = original


def test_work_waits_until_a_burst_has_settled():
    """A burst's requests do not arrive at once: work waits until none arrived for `settle`,
    but a request's own arrival never holds its own work back."""
    from bot.gate import working_for

    working_for(None)  # this thread works for no request (earlier tests may have set one)
    gate = AckGate(settle=0.3)
    other = gate.enter()
    gate.leave(other)  # answered, but it arrived just now: more may follow
    t = time.monotonic()
    gate.wait_quiet()
    assert time.monotonic() - t >= 0.25
    own = gate.enter()
    working_for(own)
    try:
        t = time.monotonic()
        gate.wait_quiet()
        assert time.monotonic() - t < 0.2
    finally:
        working_for(None)
        gate.leave(own)


def test_the_collector_runs_between_bursts_not_during_them():
    import gc

    from bot.gate import Collector

    collections: list[int] = []

    def note(phase, info):
        if phase == "start":
            collections.append(info["generation"])

    gate = AckGate(settle=0.0)
    collector = Collector(gate, interval=0.01, max_delay=30)
    token = gate.enter()
    gc.callbacks.append(note)
    collector.start()
    try:
        assert not gc.isenabled()
        cycles = []
        for _ in range(5000):  # well over the first generation's threshold
            cycle: list = []
            cycle.append(cycle)
            cycles.append(cycle)
        del cycles
        assert not threading.Event().wait(0.3) and not collections  # an ack is pending
        gate.leave(token)
        from conftest import wait_until

        wait_until(lambda: collections, 5, "a collection once nothing is pending")
    finally:
        collector.stop()
        gc.callbacks.remove(note)
    assert gc.isenabled()
