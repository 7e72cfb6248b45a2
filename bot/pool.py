"""The look-up pool: a thread pool that serves the requests using it in turn.

A plain ThreadPoolExecutor is one FIFO queue: a `/device move` of 1 500 devices queues
3 000 Google look-ups, and another user's `/device info` waits behind all of them. Here
each caller (a *lane*: the Slack request the submitting thread works for, else the thread)
has its own queue, and the workers take one task from each lane in turn (round-robin). A
lane also never holds more than `lane_limit` workers, so others find one free at once.

Only leaf tasks go to the pool (see DeviceDirectory): no task waits for another one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

T = TypeVar("T")

_Item = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class FairExecutor(Executor):
    """A thread pool with one queue per lane, served round-robin."""

    def __init__(
        self,
        max_workers: int,
        *,
        thread_name_prefix: str = "fair-pool",
        lane_limit: int | None = None,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self.lane_limit = max(1, min(lane_limit or max_workers, max_workers))
        self._prefix = thread_name_prefix
        self._cond = threading.Condition()
        self._lanes: OrderedDict[Hashable, deque[_Item]] = OrderedDict()
        self._running: dict[Hashable, int] = {}
        self._queued = 0
        self._waiting = 0  # workers waiting for a task they may take
        self._threads: list[threading.Thread] = []
        self._shutdown = False

    def lane(self) -> Hashable:
        """The lane of the calling thread's submissions (subclasses name the request)."""
        return threading.current_thread()  # an object, not an ident: idents are reused

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        lane = self.lane()
        with self._cond:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._lanes.setdefault(lane, deque()).append((future, fn, args, kwargs))
            self._queued += 1
            if self._queued > self._waiting and len(self._threads) < self.max_workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self._prefix}_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            self._cond.notify()
        return future

    def _take(self) -> tuple[Hashable, _Item] | None:
        """The next task, round-robin over lanes under their limit (caller holds the lock)."""
        for lane, queue in self._lanes.items():
            if self._running.get(lane, 0) >= self.lane_limit:
                continue
            item = queue.popleft()
            self._queued -= 1
            if queue:
                self._lanes.move_to_end(lane)  # its next task waits for every other lane's turn
            else:
                del self._lanes[lane]
            self._running[lane] = self._running.get(lane, 0) + 1
            return lane, item
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                while (taken := self._take()) is None:
                    if self._shutdown and not self._lanes:
                        return
                    self._waiting += 1
                    self._cond.wait()
                    self._waiting -= 1
            lane, (future, fn, args, kwargs) = taken
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn(*args, **kwargs)
                    except BaseException as exc:
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
            finally:
                del future, fn, args, kwargs
                with self._cond:
                    left = self._running[lane] - 1
                    if left:
                        self._running[lane] = left
                    else:
                        del self._running[lane]
                    if self._lanes:
                        self._cond.notify()  # a lane that was at its limit may go on

    def queued(self) -> int:
        """Tasks waiting for a worker."""
        with self._cond:
            return self._queued

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._cond:
            self._shutdown = True
            if cancel_futures:
                for queue in self._lanes.values():
                    for future, *_ in queue:
                        future.cancel()
                self._lanes.clear()
                self._queued = 0
            self._cond.notify_all()
            threads = list(self._threads)
        if wait:
            for thread in threads:
                thread.join()
