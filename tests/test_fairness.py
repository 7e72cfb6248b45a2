"""One user's big move does not hold up everyone's look-ups.

A move names at most MAX_DEVICES_PER_COMMAND devices (more: the bulk path), and the
look-up pool serves each Slack request in turn: another user's `/device info` is answered
while a move's look-ups are still going out, not after all of them. (How fast: bench/fairness.py.)
"""

from __future__ import annotations

import itertools

from conftest import APPROVER1, start_bot, wait_until

from bot.services import LOOKUP_LANE_LIMIT

_runs = itertools.count()


def fresh_tag(prefix: str) -> str:
    """A reference prefix no earlier run used: the session's sandbox keeps every run's log
    (and TEST_BOTH_STORES=1 runs each test twice on it)."""
    return f"{prefix}{next(_runs)}X"


def test_a_move_over_the_cap_is_refused_before_any_look_up(tmp_path, sandbox, emu):
    bot = start_bot(tmp_path, sandbox, emu, MAX_DEVICES_PER_COMMAND="5")
    try:
        tag = fresh_tag("ZZCAP")
        refs = [f"{tag}{i:04d}" for i in range(6)]
        mark = bot.emu.mark()
        bot.slash("move /Sales " + " ".join(refs))
        text = bot.wait_ephemeral("at most 5 devices")
        assert "you named 6" in text and "/device bulk move" in text
        assert "nothing was looked up" in text
        assert not [c for c in bot.emu.calls[mark:] if c.method == "views.open"]
        assert sandbox.log.count(path_contains=tag) == 0
        # at the cap it goes ahead (and says which references match nothing)
        bot.slash("move /Sales " + " ".join(refs[:5]))
        wait_until(lambda: sandbox.log.count(path_contains=tag) >= 10)
    finally:
        bot.server.stop()


def test_another_users_info_is_answered_while_a_big_move_resolves(tmp_path, sandbox, emu, claims):
    bot = start_bot(tmp_path, sandbox, emu, MAX_DEVICES_PER_COMMAND="1000")
    tag = fresh_tag("ZZFAIR")
    refs = [f"{tag}{i:04d}" for i in range(100)]  # 2 Chrome queries each: 200 look-ups
    # the move's look-ups hang (5 s each): none of them ends while the info is asked
    slow = sandbox.faults.add(status=None, count=200, path_contains=tag, latency=5.0)
    try:
        device = claims.chrome()
        bot.slash("move /Sales " + " ".join(refs))
        wait_until(
            lambda: sandbox.log.count(path_contains=tag) >= LOOKUP_LANE_LIMIT,
            15,
            "the move's look-ups",
        )
        bot.slash(f"info {device['serialNumber']}", user=APPROVER1)
        bot.wait_ephemeral(device["serialNumber"], APPROVER1, timeout=15)
        sent = sandbox.log.count(path_contains=tag)
        # The move holds at most LOOKUP_LANE_LIMIT of the pool's 128 workers, so the info
        # found a free worker at once; one FIFO queue gives the move all 128 and the info
        # waits for them.
        assert sent == LOOKUP_LANE_LIMIT, (
            f"{sent} of the move's look-ups went out before the info's answer"
        )
    finally:
        slow.count = 0  # the rest of the move goes fast
        bot.server.stop()
