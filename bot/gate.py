"""Acknowledgements first.

Slack gives the bot 3 seconds to acknowledge, and one Python process has one GIL: during
a burst, the work that follows each ack (building Google requests, parsing answers)
competes for the CPU with the acks still to be sent. The gate counts Slack requests not
yet answered; work waits (briefly, bounded) until there are none, so a burst is
acknowledged first and worked on right after.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, TypeVar

from bot.pool import FairExecutor

T = TypeVar("T")
MAX_WAIT = 0.5  # never hold work back longer than this


class AckGate:
    """The Slack requests still waiting for their acknowledgement, by token."""

    HEADER = (
        "X-Device-Bot-Request"  # set by the server on each request (any client value is replaced)
    )

    def __init__(self) -> None:
        self._pending: set[str] = set()
        self._quiet = threading.Condition()
        self._next = itertools.count()

    def enter(self) -> str:
        """A request arrived; returns its token."""
        token = str(next(self._next))
        with self._quiet:
            self._pending.add(token)
        return token

    def leave(self, token: str | None) -> None:
        """The request's answer has been written."""
        if token is None:
            return
        with self._quiet:
            self._pending.discard(token)
            if not self._pending:
                self._quiet.notify_all()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def wait_quiet(self, timeout: float = MAX_WAIT) -> None:
        """Return once no other request's acknowledgement is pending (or after `timeout`).

        "Other": the request this thread works for (see `working_for`) does not count —
        its own answer never holds its own work back.
        """
        own = getattr(_local, "token", None)
        if not self._pending or self._pending == {own}:
            return
        with self._quiet:
            self._quiet.wait_for(lambda: not (self._pending - {own}), timeout)


_local = threading.local()


def working_for(token: str | None) -> None:
    """Mark the calling thread as working for the request `token`."""
    _local.token = token


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
    gate: AckGate, ack: Any, token: str | None = None, then: Callable[[], None] | None = None
) -> Any:
    """Wrap Bolt's ack: acknowledge, let the other pending acknowledgements go first, then
    run `then` (what must precede the listener's work but not its answer; it may raise)."""

    def acknowledge(*args: Any, **kwargs: Any) -> Any:
        result = ack(*args, **kwargs)
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
