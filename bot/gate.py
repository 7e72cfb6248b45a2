"""Acknowledgements first.

Slack gives the bot 3 seconds to acknowledge, and one Python process has one GIL: during
a burst, the work that follows each ack (building Google requests, parsing answers)
competes for the CPU with the acks still to be sent. The gate counts Slack requests not
yet answered; work waits (briefly, bounded) until there are none and no more are coming,
so a burst is acknowledged first and worked on right after.
"""

from __future__ import annotations

import bisect
import gc
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, TypeVar

from bot.pool import FairExecutor

T = TypeVar("T")
log = logging.getLogger(__name__)
#: a deferred start: (rank of its request, sequence, monotonic time deferred, start, the
#: event its work sets once it has begun)
Deferred = tuple[int, int, float, Callable[[], object], threading.Event | None]
#: how long the releaser waits for one request's work to begin before starting the next's
READY_WAIT = 0.05
MAX_WAIT = 0.5  # never hold work back longer than this
#: a burst is over when no request arrived for this long. A burst's requests do not reach
#: the bot at the same instant (on 2 busy cores, up to ~15 ms apart), and work started in
#: a gap competes with the acknowledgements of the requests still to come.
SETTLE = 0.03


class AckGate:
    """The Slack requests still waiting for their acknowledgement, by token.

    Work for a request (after its ack) starts once no other acknowledgement is pending and
    the burst it belongs to has settled — no request arrived for `settle` seconds. Three
    rules keep the order of sequential requests:

    - a request that arrived alone (none in the `settle` before it) and was followed by none
      starts its work at once, before the next request can even arrive;
    - held work is released oldest request first;
    - work done before a request's own ack (options computed for the answer) is never held
      for the settle: it is part of that acknowledgement.

    What every request does — `enter`, `acked`, `defer`, `leave` — takes no lock: each is
    a few operations the GIL makes atomic (a set's add or discard, a list's append, one
    attribute bound to a tuple). With a lock, a burst's thirty HTTP threads queued on it:
    a thread that lost the GIL inside held it for all, and the requests of one burst in
    three or four waited 10–40 ms in `enter` and `leave` (traced per request). The lock is
    taken only by waiters (`wait_quiet`, the releaser) and by `leave` when it ends a burst.
    """

    HEADER = (
        "X-Device-Bot-Request"  # set by the server on each request (any client value is replaced)
    )

    def __init__(self, settle: float = SETTLE) -> None:
        self._pending: set[str] = set()
        self._acked: set[str] = set()  # pending, but the listener has acknowledged
        self._quiet = threading.Lock()
        self._next = itertools.count()
        self.settle = settle
        # the latest arrival: (monotonic time, token, whether it came `settle` after the one
        # before), bound as one tuple so that readers never see half of an update
        self._arrival: tuple[float, str | None, bool] = (-math.inf, None, False)
        # held work after an ack, oldest request first: only the first is woken (it wakes
        # the next as it goes), so a burst's hundred waiters do not all wake at every change
        self._held: list[tuple[int, int, threading.Event]] = []
        self._loose: set[threading.Event] = set()  # other waiters: woken when nothing is pending
        self._seq = itertools.count()
        self._backlog: Callable[[], int] = lambda: 0
        # work handed over with `defer`, not yet started (see `Deferred`). Requests append
        # to `_incoming`; the releaser thread moves it to `_deferred` (oldest request first)
        # and starts it when the gate is quiet
        self._incoming: list[Deferred] = []
        self._deferred: list[Deferred] = []
        self._wake = threading.Event()  # the releaser looks again
        # when the releaser wakes by itself (monotonic; inf while it is busy)
        self._wake_at = math.inf
        self._releaser: threading.Thread | None = None

    def watch(self, backlog: Callable[[], int]) -> None:
        """Count `backlog()` requests (received, waiting for an HTTP thread) as pending too:
        a request the server holds before it reaches the gate is an acknowledgement to come.
        Each of them enters and leaves the gate in turn, which wakes the waiters."""
        self._backlog = backlog

    def enter(self) -> str:
        """A request arrived; returns its token."""
        token = str(next(self._next))
        self._pending.add(token)
        now = time.monotonic()
        self._arrival = (now, token, now - self._arrival[0] >= self.settle)
        return token

    def acked(self, token: str | None) -> None:
        """The request's listener has acknowledged (its answer is on its way)."""
        if token is not None and token in self._pending:
            self._acked.add(token)

    def leave(self, token: str | None) -> None:
        """The request's answer has been written."""
        if token is None:
            return
        self._pending.discard(token)
        self._acked.discard(token)
        if self._pending:
            return
        # the last answer of a burst (or a request alone): tell whoever waits. The releaser
        # only when it would sleep past the instant the burst settles (it may be asleep until
        # that instant already) and no request waits for an HTTP thread (each will leave too)
        if (
            (self._incoming or self._deferred)
            and self._wake_at > self._arrival[0] + self.settle
            and not self._backlog()
        ):
            self._wake.set()
        if self._loose or self._held:
            with self._quiet:
                for event in self._loose:
                    event.set()
                # the held work's first waiter wakes itself when the burst settles; waking
                # it now would only cost this thread (answering a burst) the GIL
                if self._held and time.monotonic() >= self._arrival[0] + self.settle:
                    self._held[0][2].set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _before_ack(self, own: str | None) -> bool:
        return own is not None and own in self._pending and own not in self._acked

    def _calm_in(self, own: str | None) -> float:
        """Seconds until the gate is quiet for `own`'s work; 0: quiet now; inf: another
        acknowledgement is pending."""
        if self._pending - {own} or self._backlog():
            return math.inf
        last, latest, alone = self._arrival
        if self._before_ack(own) or (own == latest and alone):
            return 0.0
        return max(0.0, last + self.settle - time.monotonic())

    def quiet(self) -> bool:
        """No acknowledgement pending and none arrived in the last `settle` seconds."""
        return self._calm_in(None) == 0.0

    def _first_deferred(self) -> int | None:
        """The rank of the oldest request whose deferred work has not started."""
        return min((d[0] for d in [*self._incoming, *self._deferred[:1]]), default=None)

    def wait_quiet(self, timeout: float = MAX_WAIT) -> None:
        """Return once no other request's acknowledgement is pending and the burst has
        settled (see the class), or after `timeout`.

        "Other": the request this thread works for (see `working_for`) does not count —
        its own answer never holds its own work back.
        """
        own: str | None = getattr(_local, "token", None)
        deadline = time.monotonic() + timeout
        event = threading.Event()
        with self._quiet:
            ranked = own is not None and own.isdigit() and not self._before_ack(own)
            entry = (int(own) if ranked and own is not None else -1, next(self._seq), event)
            if ranked:
                bisect.insort(self._held, entry)
            else:
                self._loose.add(event)
        try:
            while True:
                with self._quiet:
                    left = deadline - time.monotonic()
                    wait = self._calm_in(own)
                    first = self._first_deferred()
                    if ranked and (
                        self._held[0] is not entry or (first is not None and first < entry[0])
                    ):
                        wait = math.inf  # an older request's work goes first; it wakes this
                    elif ranked and wait == math.inf:
                        wait = max(self.settle, 0.005)  # answers pending: look again later
                    if wait <= 0.0 or left <= 0.0:
                        return
                    event.clear()
                event.wait(min(wait, left))
        finally:
            with self._quiet:
                if ranked:
                    self._held.remove(entry)
                    if self._held:
                        self._held[0][2].set()  # the next may go (it checks)
                else:
                    self._loose.discard(event)

    def defer(
        self, token: str | None, start: Callable[[], object], ready: threading.Event | None = None
    ) -> None:
        """Call `start()` — it hands the request's work to a pool — once the gate is quiet
        for the work of `token`'s request (see `wait_quiet`): at once if it is, otherwise
        from the gate's releaser thread, oldest request first, within MAX_WAIT, each after
        the one before has set its `ready` (or READY_WAIT has passed).

        Nothing waits in the meantime: a burst's answers do not share the GIL with a hundred
        pool threads waking up only to wait (what `wait_quiet` in each would cost)."""
        if not self._incoming and not self._deferred and self._calm_in(token) == 0.0:
            start()
            return
        rank = int(token) if token is not None and token.isdigit() else -1
        self._incoming.append((rank, next(self._seq), time.monotonic(), start, ready))
        # no wake-up here: the request's own `leave` wakes the releaser once the burst is
        # answered, and the releaser looks at least every MAX_WAIT (waking it at each
        # deferral cost a burst some fifty turns of the releaser, each taking the GIL)
        if self._releaser is None:
            with self._quiet:
                if self._releaser is None:
                    self._releaser = threading.Thread(
                        target=self._release, name="ack-gate", daemon=True
                    )
                    self._releaser.start()

    def _release(self) -> None:
        """The releaser (one thread per gate, from the first deferral on): starts deferred
        work when the gate is quiet, or what has waited MAX_WAIT."""
        while True:
            self._wake.clear()
            self._wake_at = math.inf
            with self._quiet:
                while self._incoming:
                    bisect.insort(self._deferred, self._incoming.pop(0))
                now = time.monotonic()
                due: list[Deferred] = []
                # nothing deferred: look again within MAX_WAIT (work deferred meanwhile is due
                # by then at the latest), or when a `leave` wakes this thread
                wait = MAX_WAIT
                if self._deferred:
                    calm = self._calm_in(None)
                    if calm == 0.0:
                        due, self._deferred = self._deferred, []
                    else:
                        # the bound: what has waited MAX_WAIT goes, in order; the rest later
                        cut = 0
                        while (
                            cut < len(self._deferred) and self._deferred[cut][2] + MAX_WAIT <= now
                        ):
                            cut += 1
                        due, self._deferred[:cut] = self._deferred[:cut], []
                        if self._deferred:
                            wait = min(calm, self._deferred[0][2] + MAX_WAIT - now)
                if due and self._held:
                    self._held[0][2].set()  # a ranked waiter behind the released may go
            for _, _, _, start, ready in due:
                try:
                    start()
                except Exception:  # a pool shut down: its work is dropped, as a submit would
                    log.debug("deferred work could not start", exc_info=True)
                    continue
                if ready is not None:
                    # the next request's work starts once this one's has begun (its
                    # claim written): work released together keeps the order of its
                    # requests, e.g. two gestures of one user open their modals in turn
                    ready.wait(READY_WAIT)
            if not due:
                self._wake_at = now + wait
                self._wake.wait(wait)


_local = threading.local()


def working_for(token: str | None) -> None:
    """Mark the calling thread as working for the request `token`."""
    _local.token = token


def answered_upstream(ready: threading.Event | None) -> None:
    """Mark the calling thread as dispatching a request whose answer the server has already
    sent (`SlackIngress`): its listener runs here and then, and sets `ready` once it has
    begun (the gate starts the next request's work then). None: the mark is cleared."""
    _local.answered = ready


def upstream_ready() -> threading.Event | None:
    """The `ready` of `answered_upstream`, when this thread dispatches such a request."""
    return getattr(_local, "answered", None)


class GatedExecutor(FairExecutor):
    """A fair thread pool (one lane per Slack request) whose tasks start only when no
    acknowledgement is pending."""

    def __init__(self, gate: AckGate, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate

    def lane(self) -> Hashable:
        token = getattr(_local, "token", None)  # the request the submitter works for
        return ("request", token) if token is not None else super().lane()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:  # type: ignore[override]
        gate = self.gate
        token = getattr(_local, "token", None)  # the request the submitter works for

        def gated() -> T:
            working_for(token)
            try:
                gate.wait_quiet()
                return fn(*args, **kwargs)
            finally:
                working_for(None)

        return super().submit(gated)


def gated_ack(
    gate: AckGate,
    ack: Any,
    token: str | None = None,
    then: Callable[[], None] | None = None,
    sent: Callable[[], None] | None = None,
) -> Any:
    """Wrap Bolt's ack: acknowledge, call `sent` (the answer may go out now), let the other
    pending acknowledgements go first, then run `then` (what must precede the listener's
    work but not its answer; it may raise)."""

    def acknowledge(*args: Any, **kwargs: Any) -> Any:
        result = ack(*args, **kwargs)
        gate.acked(token)
        if sent is not None:
            sent()
        working_for(token)
        gate.wait_quiet()
        if then is not None:
            then()
        return result

    return _AckProxy(ack, acknowledge)


class _AckProxy:
    """Callable like Bolt's Ack, exposing its `response`."""

    def __init__(self, ack: Any, call: Callable[..., Any]) -> None:
        self._ack = ack
        self._call = call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(*args, **kwargs)

    @property
    def response(self) -> Any:
        return self._ack.response


class Collector:
    """Python's cyclic garbage collector, run between bursts instead of inside them.

    A collection holds the GIL: a full one over the bot's objects took 100–450 ms on a
    busy 2-core machine while each thread built Google services of its own, and when it falls
    inside a burst every acknowledgement of the burst waits for it. `start()` turns the
    automatic collector off; a thread then runs the young collections Python's thresholds
    ask for whenever no acknowledgement is pending (and regardless once one has been held
    back for `max_delay` seconds).

    It looks every `interval` (10 ms), so that what it collects stays as small as the
    automatic collector's batches: looking every 50 ms left piles whose collection held
    the GIL for 20–250 ms. A full collection runs at most every `full_interval` seconds:
    the automatic collector skips most of those its count asks for (it runs one only once
    the long-lived objects grew by a quarter, which Python does not expose), and the bot
    makes next to no cyclic garbage.
    """

    def __init__(
        self,
        gate: AckGate,
        interval: float = 0.01,
        max_delay: float = 2.0,
        full_interval: float = 60.0,
    ) -> None:
        self.gate = gate
        self.interval = interval
        self.max_delay = max_delay
        self.full_interval = full_interval
        self._last_full = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        gc.disable()
        self._thread = threading.Thread(target=self._run, name="gc", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        gc.enable()

    def due(self) -> int | None:
        """The generation to collect now, if any: what Python's thresholds ask for, but a
        full collection only `full_interval` after the last one (the middle one before)."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        due = None
        for generation in range(3):
            if thresholds[generation] and counts[generation] >= thresholds[generation]:
                due = generation
            else:
                break
        if due == 2 and time.monotonic() - self._last_full < self.full_interval:
            due = 1
        return due

    def _run(self) -> None:
        waiting_since: float | None = None
        while not self._stop.wait(self.interval):
            generation = self.due()
            if generation is None:
                waiting_since = None
                continue
            now = time.monotonic()
            waiting_since = waiting_since or now
            if not self.gate.quiet() and now - waiting_since < self.max_delay:
                continue
            gc.collect(generation)
            if generation == 2:
                self._last_full = time.monotonic()
            waiting_since = None
