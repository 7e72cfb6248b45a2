"""The acknowledgement path: Slack is answered the instant a listener acks, the listener
works on after the answer, and a gesture Slack delivers twice is still acted on once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

from conftest import OPERATOR, flatten, wait_until

from bot.gate import AckGate
from bot.listeners import guard


class FakeAck:
    def __init__(self) -> None:
        self.response: Any = None
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.response = "answered"
        return self.response


def _svc() -> Any:
    told: list[str] = []
    first: set[str] = set()

    def first_delivery(key: str) -> bool:
        new = key not in first
        first.add(key)
        return new

    out = SimpleNamespace(respond=lambda url, text: told.append(text))
    return SimpleNamespace(
        gate=AckGate(settle=0.0), store=SimpleNamespace(first_delivery=first_delivery), out=out
    ), told


BODY = {"trigger_id": "1.2.3", "user_id": OPERATOR, "response_url": "https://hooks.test/1"}


def test_the_wrapper_returns_when_the_listener_acks_not_when_it_ends():
    svc, _ = _svc()
    release, done = threading.Event(), threading.Event()

    def listener(ack: Any, body: Any) -> None:
        ack()
        release.wait(10)
        done.set()

    with ThreadPoolExecutor(2) as pool:
        ack = FakeAck()
        guard(svc, listener, pool)(ack=ack, body=BODY)
        # returned while the listener still works: Bolt answers Slack now
        assert ack.calls == 1 and ack.response == "answered" and not done.is_set()
        release.set()
        assert done.wait(5)


def test_a_listener_failing_before_its_ack_is_answered_then_reported():
    svc, told = _svc()

    def listener(ack: Any, body: Any) -> None:
        raise RuntimeError("boom")

    with ThreadPoolExecutor(2) as pool:
        ack = FakeAck()
        guard(svc, listener, pool)(ack=ack, body=BODY)
        assert ack.calls == 1  # Slack is never left without an answer
        wait_until(lambda: told, 5, "the error told to the user")
    assert "Something went wrong" in told[0]


def test_a_listener_without_ack_is_handed_over_at_once():
    """An event's listener takes no ack (Bolt acknowledges it): the wrapper does not wait
    for its work."""
    svc, _ = _svc()
    release, done = threading.Event(), threading.Event()

    def listener(body: Any) -> None:
        release.wait(10)
        done.set()

    with ThreadPoolExecutor(2) as pool:
        guard(svc, listener, pool)(body={"event": {"type": "app_home_opened"}})
        assert not done.is_set()
        release.set()
        assert done.wait(5)


def test_the_same_gesture_delivered_twice_at_once_is_acted_on_once():
    """A delivery and its retry reach the wrappers together: both are answered, one claims
    the gesture after its ack, the other stops there."""
    svc, _ = _svc()
    runs: list[int] = []
    both_in = threading.Barrier(2)

    def listener(ack: Any, body: Any) -> None:
        ack()
        runs.append(1)

    acks = [FakeAck(), FakeAck()]
    with ThreadPoolExecutor(4) as pool:
        wrapped = guard(svc, listener, pool)

        def deliver(ack: FakeAck) -> None:
            both_in.wait(5)
            wrapped(ack=ack, body=BODY)

        threads = [threading.Thread(target=deliver, args=(a,)) for a in acks]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert [a.calls for a in acks] == [1, 1]  # both answered
    assert runs == [1]  # the pool has finished both: one acted


def test_a_click_and_its_retry_sent_together_refresh_the_card_once(bot, claims):
    """End to end over HTTP: Slack re-delivers a click (X-Slack-Retry-Num) while the first
    delivery is still in flight; both are answered 200 and the card is refreshed once."""
    from bot import ids

    serial = claims.chrome()["serialNumber"]
    bot.slash(f"info {serial}")
    card = wait_until(
        lambda: next((e for e in bot.emu.ephemerals(OPERATOR) if serial in flatten(e)), None)
    )
    mark = len(bot.emu.responses)
    assert bot.emu.click(OPERATOR, ids.ActionId.SHOW_DEVICE, message=card).status == 200
    wait_until(lambda: len(bot.emu.responses) > mark, 10, "the refreshed card")
    mark = len(bot.emu.responses)
    payload = dict(bot.emu.deliveries[-1].payload)
    payload["trigger_id"] = payload["trigger_id"] + "-2"  # a new gesture, delivered twice
    go = threading.Barrier(2)
    statuses: list[int] = []

    def deliver(retry: int | None) -> None:
        go.wait(5)
        statuses.append(bot.emu._deliver_payload("block_actions", payload, retry_num=retry).status)

    threads = [threading.Thread(target=deliver, args=(r,)) for r in (None, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert statuses == [200, 200]
    wait_until(lambda: len(bot.emu.responses) > mark, 10, "the refreshed card")
    # a later gesture's answer arrives after anything the retry could still have sent
    bot.slash("cancel")
    wait_until(lambda: any("Usage" in flatten(r.body) for r in bot.emu.responses[mark:]))
    cards = [r for r in bot.emu.responses[mark:] if serial in flatten(r.body)]
    assert len(cards) == 1


def test_bolt_runs_the_wrapper_before_it_answers(bot):
    """Bolt's runner would answer at its next 10 ms poll after the ack; the App runs the
    wrapper before answering (process_before_response) and the wrapper returns on the ack."""
    assert bot.server.app.process_before_response
    assert bot.slash("help").status == 200
    wait_until(lambda: any("sub-commands" in flatten(r.body) for r in bot.emu.responses))
