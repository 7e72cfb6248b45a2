"""Acknowledgements first.

Slack gives the bot 3 seconds to acknowledge, and one Python process has one GIL: during
a burst, the work that follows each ack (building Google requests, parsing answers)
competes for the CPU with the acks still to be sent. The gate counts Slack requests not
yet answered; work waits (briefly, bounded) until there are none, so a burst is
acknowledged first and worked on right after.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
MAX_WAIT = 0.5  # never hold work back longer than this


class AckGate:
    """How many Slack requests are waiting for their acknowledgement."""

    def __init__(self) -> None:
        self._pending = 0
        self._quiet = threading.Condition()

    def enter(self) -> None:
        with self._quiet:
            self._pending += 1

    def leave(self) -> None:
        with self._quiet:
            self._pending -= 1
            if self._pending <= 0:
                self._pending = 0
                self._quiet.notify_all()

    @property
    def pending(self) -> int:
        return self._pending

    def wait_quiet(self, timeout: float = MAX_WAIT) -> None:
        """Return once no acknowledgement is pending (or after `timeout`)."""
        if self._pending == 0:
            return
        with self._quiet:
            self._quiet.wait_for(lambda: self._pending == 0, timeout)


class GatedExecutor(ThreadPoolExecutor):
    """A thread pool whose tasks start only when no acknowledgement is pending."""

    def __init__(self, gate: AckGate, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:  # type: ignore[override]
        gate = self.gate

        def gated() -> T:
            gate.wait_quiet()
            return fn(*args, **kwargs)

        return super().submit(gated)


def gated_ack(gate: AckGate, ack: Any) -> Any:
    """Wrap Bolt's ack: acknowledge, then let pending acknowledgements go first."""

    def acknowledge(*args: Any, **kwargs: Any) -> Any:
        result = ack(*args, **kwargs)
        gate.wait_quiet()
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
