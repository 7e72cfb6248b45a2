"""The acknowledgement path: Slack is answered the instant a listener acks, the listener
works on after the answer, and a gesture Slack delivers twice is still acted on once."""

from __future__ import annotations

import threading
import urllib.parse
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

    out = SimpleNamespace(respond=lambda url, text, *a, **k: told.append(text))
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


def _delivered_twice_at_once(body: Any, **options: Any) -> tuple[list[FakeAck], list[int]]:
    """One gesture reaching two wrapped deliveries together; (their acks, the listener's runs)
    once the pool has finished both."""
    svc, _ = _svc()
    runs: list[int] = []
    both_in = threading.Barrier(2)

    def listener(ack: Any, body: Any) -> None:
        ack()
        runs.append(1)

    acks = [FakeAck(), FakeAck()]
    with ThreadPoolExecutor(4) as pool:
        wrapped = guard(svc, listener, pool, **options)

        def deliver(ack: FakeAck) -> None:
            both_in.wait(5)
            wrapped(ack=ack, body=body)

        threads = [threading.Thread(target=deliver, args=(a,)) for a in acks]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    return acks, runs


def test_the_same_gesture_delivered_twice_at_once_is_acted_on_once():
    """A delivery and its retry reach the wrappers together: both are answered, one claims
    the gesture after its ack, the other stops there."""
    acks, runs = _delivered_twice_at_once(BODY)
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


def _routed_app(svc: Any) -> tuple[Any, Any]:
    import re

    from fakes import SyncExecutor
    from slack_bolt import App
    from slack_bolt.authorization import AuthorizeResult

    from bot.listeners import GuardedApp

    app = App(
        signing_secret="unused",
        token_verification_enabled=False,
        request_verification_enabled=False,
        process_before_response=True,
        authorize=lambda **_: AuthorizeResult(enterprise_id=None, team_id="T1", bot_token="xoxb-1"),
    )
    return app, GuardedApp(app, svc, SyncExecutor(), route=True), re


def _click(app: Any, action_id: str) -> Any:
    import json

    from slack_bolt import BoltRequest

    payload = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": OPERATOR},
        "trigger_id": f"{action_id}.1.2",
        "actions": [{"action_id": action_id, "block_id": "b", "action_ts": "1"}],
    }
    body = "payload=" + urllib.parse.quote(json.dumps(payload))
    return app.dispatch(BoltRequest(body=body, headers={}))


def test_exact_ids_share_one_bolt_listener_and_reach_their_own():
    """Buttons registered by exact id go through one Bolt listener that picks theirs; a
    pattern listener keeps its requests; an id nobody registered is Bolt's 404."""
    svc, _ = _svc()
    app, guarded, re = _routed_app(svc)
    ran: list[str] = []

    def listener(name: str) -> Any:
        def run(ack: Any, body: Any, action: Any) -> None:
            ack()
            ran.append(f"{name}:{action['action_id']}")

        return run

    guarded.action("approve")(listener("approve"))
    guarded.action(re.compile(r"^device_action:"))(listener("pattern"))
    guarded.action("deny")(listener("deny"))
    guarded.view("form")(listener("form"))
    assert len(app._listeners) == 3  # the action router, the pattern, the view router

    for action_id in ("deny", "approve", "device_action:wipe"):
        assert _click(app, action_id).status == 200
    assert _click(app, "nobody").status == 404
    assert ran == ["deny:deny", "approve:approve", "pattern:device_action:wipe"]


def test_a_pattern_registered_first_keeps_the_ids_it_matches():
    """Bolt runs the first listener that matches: an exact id registered after a pattern
    that matches it is not routed, so the pattern still takes it."""
    svc, _ = _svc()
    app, guarded, re = _routed_app(svc)
    ran: list[str] = []

    def listener(name: str) -> Any:
        def run(ack: Any) -> None:
            ack()
            ran.append(name)

        return run

    guarded.action("first")(listener("exact-first"))  # the router exists from here
    guarded.action(re.compile(r"^shared"))(listener("pattern"))
    guarded.action("shared_id")(listener("exact-later"))  # Bolt would never run it
    guarded.action("other")(listener("exact-other"))
    for action_id in ("shared_id", "other", "first"):
        _click(app, action_id)
    assert ran == ["pattern", "exact-other", "exact-first"]


CLICK = dict(BODY, type="block_actions", actions=[{"action_id": "x", "action_ts": "1"}])


def test_a_click_is_answered_before_its_listener_starts():
    """A block action's ack carries nothing Slack reads: the wrapper answers, then hands the
    listener over; the listener's own ack() only returns the answer."""
    from bot.listeners import is_click

    svc, _ = _svc()
    release, started, done = threading.Event(), threading.Event(), threading.Event()
    seen: list[Any] = []

    def listener(ack: Any, body: Any) -> None:
        started.set()
        release.wait(10)
        seen.append(ack())
        done.set()

    with ThreadPoolExecutor(2) as pool:
        ack = FakeAck()
        guard(svc, listener, pool, ack_at_once=is_click)(ack=ack, body=CLICK)
        assert ack.calls == 1 and ack.response == "answered"  # before the listener got far
        release.set()
        assert done.wait(5)
    assert started.is_set() and seen == ["answered"] and ack.calls == 1


def test_a_click_delivered_twice_at_once_is_answered_twice_and_acted_on_once():
    from bot.listeners import is_click

    acks, runs = _delivered_twice_at_once(CLICK, ack_at_once=is_click)
    assert [a.calls for a in acks] == [1, 1]
    assert runs == [1]


def test_a_click_whose_listener_fails_is_reported_once_and_not_answered_again():
    from bot.listeners import is_click

    svc, told = _svc()

    def listener(ack: Any, body: Any) -> None:
        raise RuntimeError("boom")

    with ThreadPoolExecutor(2) as pool:
        ack = FakeAck()
        guard(svc, listener, pool, ack_at_once=is_click)(ack=ack, body=CLICK)
        wait_until(lambda: told, 5, "the error told to the user")
    assert ack.calls == 1 and len(told) == 1


def test_an_ack_with_content_is_left_to_its_listener():
    """Anything but a block action (a dialog's ack can carry errors) is answered by the
    listener's own ack(), with what it passes."""
    from bot.listeners import is_click

    svc, _ = _svc()
    got: list[Any] = []

    class Recording(FakeAck):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            got.append(kwargs)
            return super().__call__(*args, **kwargs)

    def listener(ack: Any, body: Any) -> None:
        ack(errors=[{"name": "x", "error": "bad"}])

    with ThreadPoolExecutor(2) as pool:
        guard(svc, listener, pool, ack_at_once=is_click)(
            ack=Recording(), body=dict(BODY, type="dialog_submission")
        )
    assert got == [{"errors": [{"name": "x", "error": "bad"}]}]


def _signed_environ(body: str, secret: str) -> dict[str, Any]:
    import io
    import time

    from slack_sdk.signature import SignatureVerifier

    ts = str(int(time.time()))
    raw = body.encode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/slack/events",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
        "HTTP_X_SLACK_REQUEST_TIMESTAMP": ts,
        "HTTP_X_SLACK_SIGNATURE": SignatureVerifier(secret).generate_signature(
            timestamp=ts, body=body
        ),
    }


def test_a_click_is_answered_by_the_server_and_dispatched_to_bolt_after_its_answer():
    """SlackIngress answers a click (and `/device`) itself, 200 with no body, and Bolt
    dispatches it on the listener pool once the burst is answered: Bolt's matching and its
    listener arguments cost nothing before the answer. A form's submission, whose answer
    carries what the listener says, is still dispatched before it is answered."""
    import json
    import time

    from slack_bolt import App
    from slack_bolt.authorization import AuthorizeResult

    from bot.ingress import SlackIngress
    from bot.listeners import GuardedApp

    svc, _ = _svc()
    release = threading.Event()
    ran: list[tuple[str, str]] = []

    def approve(ack: Any, action: Any) -> None:
        ack()
        ran.append(("approve", threading.current_thread().name))

    def form(ack: Any) -> None:
        ack(response_action="errors", errors={"b": "no"})

    with ThreadPoolExecutor(4, thread_name_prefix="pool") as pool:
        app = App(
            signing_secret="unused",
            token_verification_enabled=False,
            request_verification_enabled=False,
            process_before_response=True,
            listener_executor=pool,
            authorize=lambda **_: AuthorizeResult(
                enterprise_id=None, team_id="T1", bot_token="xoxb-1"
            ),
        )
        dispatched: list[str] = []

        @app.middleware
        def note(body: Any, next: Any) -> None:  # noqa: A002 - Bolt's argument name
            dispatched.append(body["type"])
            if body["type"] == "block_actions":
                release.wait(10)  # Bolt's work on a click holds nothing up but itself
            next()

        guarded = GuardedApp(app, svc, pool, route=True)
        guarded.action("approve")(approve)
        guarded.view("form")(form)
        ingress = SlackIngress(app, svc.gate, "s3cret", executor=pool)

        def send(payload: dict[str, Any]) -> tuple[str, bytes]:
            answer: list[str] = []
            body = "payload=" + urllib.parse.quote(json.dumps(payload))
            out = ingress(_signed_environ(body, "s3cret"), lambda s, h, e=None: answer.append(s))
            return answer[0], b"".join(out)

        click = {
            "type": "block_actions",
            "team": {"id": "T1"},
            "user": {"id": OPERATOR},
            "trigger_id": "9.1.2",
            "actions": [{"action_id": "approve", "block_id": "b", "action_ts": "1"}],
        }
        started = time.monotonic()
        assert send(click) == ("200 OK", b"")
        assert time.monotonic() - started < 5, "the answer waited for Bolt"
        wait_until(lambda: dispatched, 5, "Bolt's dispatch of the click")
        assert ran == []  # answered while Bolt is still at it
        release.set()
        wait_until(lambda: ran, 5, "the click's listener after the answer")
        assert ran[0][1].startswith("pool")  # on the listener pool, not the HTTP thread

        # a click no listener takes is answered all the same (Slack reads nothing in it)
        other = {**click, "trigger_id": "9.1.3"}
        other["actions"] = [{"action_id": "nobody", "block_id": "b", "action_ts": "2"}]
        assert send(other) == ("200 OK", b"")

        submission = {
            "type": "view_submission",
            "team": {"id": "T1"},
            "user": {"id": OPERATOR},
            "trigger_id": "9.1.4",
            "view": {
                "id": "V1",
                "type": "modal",
                "callback_id": "form",
                "state": {"values": {}},
                "hash": "h",
            },
        }
        status, answer = send(submission)
        assert status == "200 OK"
        assert json.loads(answer) == {"response_action": "errors", "errors": {"b": "no"}}
        assert len(ran) == 1
