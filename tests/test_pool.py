"""The look-up pool serves its callers in turn: unit tests of FairExecutor."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError, Future
from typing import Any

import pytest

from bot.pool import FairExecutor
from bot.sandbox.testing import wait_for

DEADLINE = 10


def submit_from_thread(pool: FairExecutor, n: int, fn: Any) -> list[Future[Any]]:
    """Submit `n` tasks from a thread of their own (= a lane of their own)."""
    futures: list[Future[Any]] = []
    t = threading.Thread(target=lambda: futures.extend(pool.submit(fn, i) for i in range(n)))
    t.start()
    t.join()
    return futures


def test_a_second_lane_is_served_before_the_first_lanes_backlog():
    pool = FairExecutor(1)
    gate = threading.Event()
    order: list[str] = []
    blocker = pool.submit(gate.wait, DEADLINE)  # hold the only worker
    big = submit_from_thread(pool, 100, lambda i: order.append(f"big{i}"))
    small = submit_from_thread(pool, 2, lambda i: order.append(f"small{i}"))
    gate.set()
    for f in [blocker, *big, *small]:
        f.result(DEADLINE)
    # FIFO would run small0 at position 100; round-robin interleaves the lanes
    assert order.index("small0") <= 1 and order.index("small1") <= 3, order[:6]
    assert [x for x in order if x.startswith("big")] == [f"big{i}" for i in range(100)]
    pool.shutdown()


def test_one_lane_never_holds_more_than_its_limit():
    pool = FairExecutor(4, lane_limit=2)
    release = threading.Event()
    running = 0
    peak = 0
    lock = threading.Lock()

    def hold(_: int) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        release.wait(DEADLINE)
        with lock:
            running -= 1

    big = submit_from_thread(pool, 10, hold)
    # another lane runs at once while the first one's ten tasks wait for its two workers
    other = submit_from_thread(pool, 1, lambda i: "done")
    assert other[0].result(DEADLINE) == "done"
    wait_for(lambda: running == 2, DEADLINE, "two of the first lane's tasks running")
    assert pool.queued() == 8  # the other eight wait for the lane's two workers
    release.set()
    for f in big:
        f.result(DEADLINE)
    assert peak == 2
    pool.shutdown()


def test_errors_reach_the_future_and_shutdown_cancels_what_waits():
    pool = FairExecutor(1)

    def boom(_: int) -> None:
        raise ValueError("nope")

    with pytest.raises(ValueError):
        pool.submit(boom, 0).result(DEADLINE)
    gate, started = threading.Event(), threading.Event()

    def hold() -> bool:
        started.set()
        return gate.wait(DEADLINE)

    running = pool.submit(hold)
    waiting = pool.submit(lambda: 1)
    assert started.wait(DEADLINE)
    pool.shutdown(wait=False, cancel_futures=True)
    gate.set()
    assert running.result(DEADLINE) is True
    with pytest.raises(CancelledError):
        waiting.result(DEADLINE)
    with pytest.raises(RuntimeError):
        pool.submit(lambda: 1)


def test_map_and_many_threads():
    pool = FairExecutor(8)
    assert list(pool.map(lambda x: x * 2, range(50))) == [x * 2 for x in range(50)]
    results: list[int] = []
    lock = threading.Lock()

    def caller(k: int) -> None:
        values = [f.result(DEADLINE) for f in [pool.submit(lambda i=i: i + k) for i in range(20)]]
        with lock:
            results.extend(values)

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 200
    pool.shutdown()
