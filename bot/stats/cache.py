"""The last fleet overview, kept a while: one pass over the fleet serves every request in that time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.stats.counts import FleetStats


@dataclass
class Overview:
    stats: FleetStats
    png: bytes
    made: float  # time.monotonic() when made


class OverviewCache:
    """The last overview, for `seconds`; one pass at a time (later callers wait for it)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._value: Overview | None = None
        self.passes = 0  # passes over the fleet made (for tests and benchmarks)

    def fresh(self) -> Overview | None:
        value = self._value
        if value is not None and self.clock() - value.made < self.seconds:
            return value
        return None

    def get(self, make: Callable[[], tuple[FleetStats, bytes]]) -> tuple[Overview, bool]:
        """(the overview, whether it came from the cache)."""
        if (value := self.fresh()) is not None:
            return value, True
        with self._lock:
            if (value := self.fresh()) is not None:  # made while we waited
                return value, True
            stats, png = make()
            self.passes += 1
            value = Overview(stats, png, self.clock())
            if self.seconds > 0:
                self._value = value
            return value, False

    def clear(self) -> None:
        """Forget the kept overview: the next request makes a pass."""
        self._value = None

    def expires_at(self, value: Overview, wall: float) -> float | None:
        """The wall-clock time `value` stops being served, None when nothing is kept."""
        if self.seconds <= 0:
            return None
        return wall + (value.made + self.seconds - self.clock())
