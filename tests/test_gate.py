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
    """The server tags each request; the listener's wrapper gets that token (the ack
    wrapper, or the guard when it answers a click or a command itself)."""
    seen: list[str | None] = []
    import bot.gate as gate_module
    import bot.listeners as listeners_module

    original = gate_module.working_for

    def spy(token):
        seen.append(token)
        original(token)

    gate_module.working_for = spy
    listeners_module.working_for = spy
    try:
        bot.slash("help")
        from conftest import wait_until

        wait_until(lambda: any(t is not None for t in seen), 5)
    finally:
        gate_module.working_for = original
        listeners_module.working_for = original


def _work_for(gate: AckGate, token: str | None, done: list[str], name: str) -> threading.Thread:
    """A listener thread's work for `token`, started once the gate lets it (appends `name`)."""
    from bot.gate import working_for

    def run() -> None:
        working_for(token)
        try:
            gate.wait_quiet(timeout=5)
            done.append(name)
        finally:
            working_for(None)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_work_waits_until_a_burst_has_settled():
    """A burst's requests do not arrive at once: an answered request's work waits until
    none arrived for `settle`, the latest request's work too."""
    gate = AckGate(settle=0.3)
    first = gate.enter()
    second = gate.enter()  # arrived right after: a burst
    for token in (first, second):
        gate.acked(token)
        gate.leave(token)
    done: list[str] = []
    t = time.monotonic()
    threads = [_work_for(gate, first, done, "first"), _work_for(gate, second, done, "second")]
    for thread in threads:
        thread.join()
    assert time.monotonic() - t >= 0.25  # both held for the settle after the second arrival
    assert sorted(done) == ["first", "second"]


def test_a_request_that_came_alone_starts_its_work_at_once():
    """Its own arrival never holds its own work back (sequential requests keep their order:
    the first one's work starts before the next one can arrive)."""
    gate = AckGate(settle=0.3)
    token = gate.enter()
    gate.acked(token)
    done: list[str] = []
    t = time.monotonic()
    _work_for(gate, token, done, "alone").join()
    assert time.monotonic() - t < 0.2 and done == ["alone"]
    gate.leave(token)
    later = gate.enter()  # a request right after: it is held, the earlier one no longer is
    gate.leave(later)
    t = time.monotonic()
    _work_for(gate, later, done, "later").join()
    assert time.monotonic() - t >= 0.25


def test_held_work_is_released_oldest_request_first():
    """The work of a burst's requests starts in their order of arrival, whichever listener
    asked first."""
    gate = AckGate(settle=0.2)
    tokens = [gate.enter() for _ in range(4)]
    for token in tokens:
        gate.leave(token)
    done: list[str] = []
    threads = []
    for token in reversed(tokens):  # the newest asks first
        threads.append(_work_for(gate, token, done, token))
        time.sleep(0.02)  # each is waiting before the next asks
    for thread in threads:
        thread.join()
    assert done == tokens


def test_work_before_the_own_ack_is_not_held_for_the_settle():
    """What a listener computes for its answer (options of a select) is part of its
    acknowledgement: only other pending acknowledgements hold it, never the settle."""
    gate = AckGate(settle=0.5)
    earlier = gate.enter()
    gate.leave(earlier)
    own = gate.enter()  # not alone: a burst, but its ack is still to be sent
    done: list[str] = []
    t = time.monotonic()
    _work_for(gate, own, done, "options").join()
    assert time.monotonic() - t < 0.3 and done == ["options"]
    gate.acked(own)  # after the ack the same request's work is held
    t = time.monotonic()
    _work_for(gate, own, done, "after").join()
    assert time.monotonic() - t >= 0.2
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


def test_a_full_collection_runs_at_most_every_full_interval():
    """Python's counts ask for a full collection every ten middle ones; the collector runs
    the middle one instead until `full_interval` has passed since the last full one."""
    import gc

    from bot.gate import Collector

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(12):
            gc.collect(1)  # each counts towards the full collection
        for _ in range(12):
            gc.collect(0)  # each counts towards the middle one
        young = [[] for _ in range(2000)]  # over the first generation's threshold
        assert gc.get_count()[2] >= gc.get_threshold()[2]
        assert Collector(AckGate(), full_interval=3600).due() == 1
        assert Collector(AckGate(), full_interval=0).due() == 2
        del young
    finally:
        if was_enabled:
            gc.enable()


def test_requests_waiting_for_an_http_thread_hold_work_back():
    """A request the server has received but not yet handed to a thread counts as pending:
    work waits until it has entered and left the gate."""
    from bot.gate import working_for

    working_for(None)
    gate = AckGate(settle=0.0)
    queued = [1]
    gate.watch(lambda: len(queued))
    done: list[str] = []
    worker = _work_for(gate, None, done, "work")
    assert not threading.Event().wait(0.2) and not done  # held while one waits for a thread
    queued.clear()
    token = gate.enter()  # the server's thread takes it
    gate.leave(token)
    worker.join(5)
    assert done == ["work"]


def test_deferred_work_starts_once_the_burst_is_answered_oldest_request_first():
    """`defer` holds no thread: the gate's releaser starts the work, in arrival order, once
    every answer has gone out and the burst has settled."""
    gate = AckGate(settle=0.1)
    tokens = [gate.enter() for _ in range(4)]
    started: list[str] = []
    for token in reversed(tokens):  # the newest hands its work over first
        gate.acked(token)
        gate.defer(token, lambda t=token: started.append(t))
    assert not threading.Event().wait(0.2) and started == []  # answers still pending
    t = time.monotonic()
    for token in tokens:
        gate.leave(token)
    from conftest import wait_until

    wait_until(lambda: len(started) == 4, 5, "the deferred work started")
    assert started == tokens
    assert time.monotonic() - t < 1.0
    # a second burst: the same releaser starts it
    again = [gate.enter() for _ in range(2)]
    for token in again:
        gate.acked(token)
        gate.defer(token, lambda t=token: started.append(t))
    assert len(started) == 4  # held while their answers are pending
    for token in again:
        gate.leave(token)
    wait_until(lambda: len(started) == 6, 5, "the second burst's work started")
    assert started[4:] == again


def test_deferred_work_of_a_request_that_came_alone_starts_at_once():
    gate = AckGate(settle=0.5)
    token = gate.enter()
    gate.acked(token)
    caller = []
    gate.defer(token, lambda: caller.append(threading.current_thread()))
    assert caller == [threading.current_thread()]  # started by the caller, before its answer
    gate.leave(token)


def test_deferred_work_is_never_held_longer_than_the_bound():
    from bot.gate import MAX_WAIT

    gate = AckGate(settle=0.0)
    gate.enter()  # never left
    token = gate.enter()
    started = threading.Event()
    t = time.monotonic()
    gate.defer(token, started.set)
    assert started.wait(MAX_WAIT + 2)
    assert time.monotonic() - t >= MAX_WAIT * 0.9
