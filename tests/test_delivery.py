"""Slack's re-deliveries and forged requests never make the bot act twice or at all."""

from __future__ import annotations

import urllib.parse

from conftest import OPERATOR, flatten, wait_until


def test_redelivered_slash_command_is_answered_once(bot):
    reply = bot.slash("help")
    assert reply.status == 200
    delivery = bot.emu.deliveries[-1]
    body = urllib.parse.urlencode(delivery.payload)
    again = bot.emu._deliver(
        "slash_command", body, delivery.payload, retry_num=1, retry_reason="http_timeout"
    )
    assert again.status == 200
    wait_until(lambda: len(bot.emu.responses) >= 1)
    # the retry could only have been answered by now if it were processed: give it a poll cycle
    bot.slash("cancel", user=OPERATOR)
    wait_until(lambda: any("Usage" in flatten(r.body) for r in bot.emu.responses))
    helps = [r for r in bot.emu.responses if "sub-commands" in flatten(r.body)]
    assert len(helps) == 1


def test_forged_and_stale_requests_are_rejected(bot):
    before = len(bot.emu.calls)
    forged = bot.emu.slash_command(OPERATOR, "help", sign=False)
    assert forged.status == 401
    stale = bot.emu.slash_command(OPERATOR, "help", timestamp=int(__import__("time").time()) - 600)
    assert stale.status == 401
    assert len(bot.emu.calls) == before
    assert not bot.emu.responses
