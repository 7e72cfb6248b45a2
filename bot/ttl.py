"""Values kept a while: each remembered with the time it was made, fresh below an age limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Thread-safe values by key. The age limit is the reader's (two readers may want two);
    a value is made outside the lock, so a slow `make` holds up no other key."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._kept: dict[K, tuple[float, V]] = {}

    def get(self, key: K, max_age: float, make: Callable[[], V]) -> V:
        """The value kept for `key` when younger than `max_age` seconds, else `make()` kept
        (as made when it was asked for). What `make` raises passes through; nothing is kept."""
        now = self.clock()
        with self._lock:
            hit = self._kept.get(key)
        if hit is not None and now - hit[0] < max_age:
            return hit[1]
        value = make()
        with self._lock:
            self._kept[key] = (now, value)
        return value

    def last(self, key: K) -> V | None:
        """The value kept for `key` whatever its age (None: never made)."""
        with self._lock:
            hit = self._kept.get(key)
        return None if hit is None else hit[1]

    def forget(self) -> None:
        """Drop every kept value: the next reads make them anew."""
        with self._lock:
            self._kept.clear()
