"""TtlCache: a kept value is served while younger than the reader's limit, then made anew."""

from __future__ import annotations

import pytest

from bot.ttl import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_kept_for_the_readers_age_limit_then_made_anew() -> None:
    clock, made = Clock(), []
    cache: TtlCache[str, int] = TtlCache(clock)

    def make() -> int:
        made.append(1)
        return len(made)

    assert cache.get("k", 10, make) == 1
    clock.now += 9
    assert cache.get("k", 10, make) == 1  # still fresh
    assert cache.get("k", 5, make) == 2  # too old for this reader
    clock.now += 10
    assert cache.get("k", 10, make) == 3
    assert cache.get("other", 10, make) == 4  # keys are apart


def test_a_failed_make_keeps_nothing_and_the_last_value_stays_readable() -> None:
    clock = Clock()
    cache: TtlCache[str, str] = TtlCache(clock)
    assert cache.last("k") is None
    cache.get("k", 10, lambda: "old")
    clock.now += 20

    def fail() -> str:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        cache.get("k", 10, fail)
    assert cache.last("k") == "old"
    cache.forget()
    assert cache.last("k") is None
