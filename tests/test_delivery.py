"""Slack's re-deliveries and forged requests never make the bot act twice or at all."""

from __future__ import annotations

import urllib.parse

from conftest import OPERATOR, flatten, wait_until

BOTH_STORES = True  # each test runs on SQLite and on PostgreSQL (conftest)


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


def test_redelivered_click_is_acted_on_once(bot, claims):
    """A button click Slack delivers again (X-Slack-Retry-Num) is answered 200 and does
    nothing: the card is refreshed once."""
    from bot import ids

    serial = claims.chrome()["serialNumber"]
    bot.slash(f"info {serial}")
    card = wait_until(
        lambda: next((e for e in bot.emu.ephemerals(OPERATOR) if serial in flatten(e)), None)
    )
    mark = len(bot.emu.responses)
    assert bot.emu.click(OPERATOR, ids.ActionId.SHOW_DEVICE, message=card).status == 200
    click = bot.emu.deliveries[-1]
    again = bot.emu._deliver_payload("block_actions", click.payload, retry_num=1)
    assert again.status == 200
    wait_until(lambda: len(bot.emu.responses) > mark, 10, "the refreshed card")
    # a later gesture's answer arrives after anything the retry could still have sent
    bot.slash("cancel")
    wait_until(lambda: any("Usage" in flatten(r.body) for r in bot.emu.responses[mark:]))
    cards = [r for r in bot.emu.responses[mark:] if serial in flatten(r.body)]
    assert len(cards) == 1


def test_the_acknowledgement_does_not_wait_for_the_de_duplication(bot):
    """The delivery key is claimed after the ack: a store that blocks on it does not hold
    Slack's answer back, and the gesture is still acted on once the claim is made."""
    import threading

    release = threading.Event()
    store = bot.store
    first_delivery = store.first_delivery

    def slow_first_delivery(key):
        release.wait(10)
        return first_delivery(key)

    store.first_delivery = slow_first_delivery
    try:
        reply = bot.slash("help")
        assert reply.status == 200 and reply.elapsed < 5  # not after the claim's 10 s
        assert not bot.emu.responses  # the work waits for the claim...
    finally:
        release.set()
        store.first_delivery = first_delivery
    wait_until(lambda: any("sub-commands" in flatten(r.body) for r in bot.emu.responses))


def test_the_server_keeps_serving_past_1024_open_descriptors(bot):
    """Each pool thread holds a SQLite connection and Google connections: the process can
    hold more than 1024 descriptors, which select() cannot watch."""
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1400:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1400, hard), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        assert max(held) > 1024
        assert bot.slash("help").status == 200
        wait_until(lambda: any("sub-commands" in flatten(r.body) for r in bot.emu.responses))
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
