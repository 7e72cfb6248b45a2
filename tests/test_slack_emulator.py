"""The local Slack emulator answers like Slack and talks to a real Bolt app like Slack does."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from slack_bolt import Ack, App, Respond
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.playground.slack_emulator import SlackEmulator, validate_blocks

SECRET = "test-secret"
TOKEN = "xoxb-test"
HELPDESK = "C0HELPDESK"
OPERATOR = "U0OPERATOR"


class FakeClock:
    """Real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(clock: FakeClock) -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(signing_secret=SECRET, bot_token=TOKEN, clock=clock).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def client(emu: SlackEmulator) -> WebClient:
    return WebClient(token=TOKEN, base_url=emu.api_url)


@pytest.fixture
def app(emu: SlackEmulator, client: WebClient) -> Iterator[App]:
    """A real Bolt app served over HTTP, wired to the emulator both ways."""
    bolt = App(signing_secret=SECRET, client=client)
    server = make_server(
        "127.0.0.1",
        0,
        SlackRequestHandler(bolt),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    emu.bot_url = f"http://127.0.0.1:{server.server_address[1]}/slack/events"
    yield bolt
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _section(text: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if block_id:
        block["block_id"] = block_id
    return block


def _button(action_id: str, value: str, label: str = "Go") -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "value": value,
        "text": {"type": "plain_text", "text": label},
    }


def _modal(blocks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "disable_device",
        "title": {"type": "plain_text", "text": "Disable device"},
        "submit": {"type": "plain_text", "text": "Disable"},
        "blocks": blocks,
        **extra,
    }


def _option(value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": value.title()}, "value": value}


FORM_BLOCKS = [
    {
        "type": "input",
        "block_id": "reason",
        "label": {"type": "plain_text", "text": "Reason"},
        "element": {"type": "plain_text_input", "action_id": "reason_input"},
    },
    {
        "type": "input",
        "block_id": "kind",
        "label": {"type": "plain_text", "text": "Kind"},
        "element": {
            "type": "static_select",
            "action_id": "kind_select",
            "options": [_option("lost"), _option("stolen")],
        },
    },
    {
        "type": "input",
        "block_id": "flags",
        "optional": True,
        "label": {"type": "plain_text", "text": "Flags"},
        "element": {
            "type": "checkboxes",
            "action_id": "flags_check",
            "options": [_option("notify"), _option("force")],
        },
    },
    {
        "type": "input",
        "block_id": "when",
        "label": {"type": "plain_text", "text": "When"},
        "element": {
            "type": "radio_buttons",
            "action_id": "when_radio",
            "options": [_option("now"), _option("later")],
            "initial_option": _option("now"),
        },
    },
    {
        "type": "input",
        "block_id": "ous",
        "optional": True,
        "label": {"type": "plain_text", "text": "OUs"},
        "element": {
            "type": "multi_static_select",
            "action_id": "ous_select",
            "options": [_option("sales"), _option("labs")],
        },
    },
]


# ------------------------------------------------------------------ Web API


def test_auth_and_unknown_methods(emu: SlackEmulator, client: WebClient) -> None:
    assert client.auth_test()["team_id"] == "T0SANDBOX"
    with pytest.raises(SlackApiError) as bad_token:
        WebClient(token="xoxb-wrong", base_url=emu.api_url).auth_test()
    assert bad_token.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as unknown:
        client.api_call("files.upload.nope")
    assert unknown.value.response["error"] == "unknown_method"
    assert [c.method for c in emu.calls] == ["auth.test", "auth.test", "files.upload.nope"]
    assert [c.ok for c in emu.calls] == [True, False, False]


def test_messages_threads_and_ephemerals(emu: SlackEmulator, client: WebClient) -> None:
    parent = client.chat_postMessage(channel=HELPDESK, text="card", blocks=[_section("*card*")])
    assert parent["channel"] == HELPDESK and parent["message"]["text"] == "card"
    reply = client.chat_postMessage(channel=HELPDESK, text="outcome", thread_ts=parent["ts"])
    # replying to a reply lands in the same thread, as in Slack
    client.chat_postMessage(channel=HELPDESK, text="more", thread_ts=reply["ts"])
    eph = client.chat_postEphemeral(channel=HELPDESK, user=OPERATOR, text="only you")

    assert [m["text"] for m in emu.messages(HELPDESK)] == ["card"]
    assert [m["text"] for m in emu.messages(HELPDESK, thread_ts=parent["ts"])] == [
        "outcome",
        "more",
    ]
    thread = emu.thread(HELPDESK, parent["ts"])
    assert thread[0]["reply_count"] == 2 and len(thread) == 3
    assert emu.ephemerals(OPERATOR)[0]["ts"] == eph["message_ts"]
    assert emu.ephemerals("U0APPROVER1") == []

    client.chat_update(channel=HELPDESK, ts=parent["ts"], text="card v2")
    assert emu.message(HELPDESK, parent["ts"])["text"] == "card v2"  # type: ignore[index]
    link = client.chat_getPermalink(channel=HELPDESK, message_ts=parent["ts"])["permalink"]
    assert link.endswith("/archives/C0HELPDESK/p" + parent["ts"].replace(".", ""))
    client.chat_delete(channel=HELPDESK, ts=reply["ts"])
    assert emu.message(HELPDESK, reply["ts"]) is None

    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C0NOPE", text="x")
    assert err.value.response["error"] == "channel_not_found"
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel=HELPDESK, ts="1.000001", text="x")
    assert err.value.response["error"] == "message_not_found"


def test_ts_strictly_increasing_even_with_a_frozen_clock(clock: FakeClock) -> None:
    emulator = SlackEmulator(clock=lambda: 1_700_000_000.0).start()
    try:
        client = WebClient(token="xoxb-test", base_url=emulator.api_url)
        stamps = [client.chat_postMessage(channel=HELPDESK, text=str(i))["ts"] for i in range(5)]
    finally:
        emulator.stop()
    assert stamps[0] == "1700000000.000000"
    assert stamps == sorted(stamps) and len(set(stamps)) == 5
    assert all(len(s.split(".")[1]) == 6 for s in stamps)


def test_concurrent_posts_get_unique_ordered_ts(emu: SlackEmulator) -> None:
    def post(n: int) -> None:
        client = WebClient(token=TOKEN, base_url=emu.api_url)
        for i in range(20):
            client.chat_postMessage(channel=HELPDESK, text=f"{n}-{i}")

    threads = [threading.Thread(target=post, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps = [m["ts"] for m in emu.messages(HELPDESK)]
    assert len(stamps) == len(set(stamps)) == 80 and stamps == sorted(stamps)
    assert len(emu.calls_to("chat.postMessage")) == 80


def test_directory_methods(emu: SlackEmulator, client: WebClient) -> None:
    emu.add_usergroup("S0APPROVERS", ["U0APPROVER1", "U0APPROVER2"])
    emu.add_channel("C0PRIVATE", "secret-room", is_member=False)
    assert client.usergroups_users_list(usergroup="S0APPROVERS")["users"] == [
        "U0APPROVER1",
        "U0APPROVER2",
    ]
    assert client.users_info(user=OPERATOR)["user"]["real_name"] == "Olivia Operator"
    assert client.conversations_info(channel=HELPDESK)["channel"]["name"] == "help-desk"
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C0PRIVATE", text="hi")
    assert err.value.response["error"] == "not_in_channel"
    assert client.conversations_join(channel="C0PRIVATE")["channel"]["is_member"] is True
    client.chat_postMessage(channel="C0PRIVATE", text="hi")
    for call, arg, error in [
        (client.usergroups_users_list, {"usergroup": "S0NOPE"}, "no_such_subteam"),
        (client.users_info, {"user": "U0NOPE"}, "user_not_found"),
        (client.conversations_info, {"channel": "C0NOPE"}, "channel_not_found"),
    ]:
        with pytest.raises(SlackApiError) as exc:
            call(**arg)
        assert exc.value.response["error"] == error


def test_form_encoded_calls_with_token_in_body(emu: SlackEmulator) -> None:
    form = {
        "token": TOKEN,
        "channel": HELPDESK,
        "text": "form",
        "blocks": json.dumps([_section("from a form")]),
    }
    request = urllib.request.Request(
        emu.api_url + "chat.postMessage", data=urllib.parse.urlencode(form).encode()
    )
    with urllib.request.urlopen(request) as resp:
        body = json.loads(resp.read())
    assert body["ok"] is True
    assert emu.calls_to("chat.postMessage")[0].args["blocks"][0]["type"] == "section"
    assert "token" not in emu.calls_to("chat.postMessage")[0].args


def test_rate_limit_injection(emu: SlackEmulator, client: WebClient) -> None:
    emu.fail_next("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel=HELPDESK, text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"
    assert client.chat_postMessage(channel=HELPDESK, text="x")["ok"]


@pytest.mark.invalid_blocks_expected
@pytest.mark.parametrize(
    ("blocks", "needle"),
    [
        ([_section("x")] * 51, "must be less than 51 items"),
        ([_section("x" * 3001)], "must be less than 3001 characters"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "151"),
        ([{"type": "actions", "elements": [_button("a" * 256, "v")]}], "256 characters"),
        ([_section("")], "more than 0 characters"),
        ([_section("a", "same"), _section("b", "same")], "duplicate block_id"),
        ([{"type": "carousel"}], "valid enum value"),
    ],
)
def test_block_kit_limits_fail_like_slack(
    client: WebClient, blocks: list[dict[str, Any]], needle: str
) -> None:
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel=HELPDESK, text="x", blocks=blocks)
    assert err.value.response["error"] == "invalid_blocks"
    assert any(needle in m for m in err.value.response["response_metadata"]["messages"])


def test_fifty_blocks_are_fine() -> None:
    assert validate_blocks([_section("x" * 3000)] * 50) == []


# ------------------------------------------------------------------ signed delivery to Bolt


def test_bolt_accepts_signed_slash_command_and_rejects_forged_or_stale(
    emu: SlackEmulator, app: App
) -> None:
    seen: list[dict[str, Any]] = []

    def device(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        ack()
        seen.append(command)
        respond(f"looking up {command['text']}")

    app.command("/device")(device)

    reply = emu.slash_command(OPERATOR, "info SN123")
    assert reply.status == 200 and reply.elapsed < 3
    emu.wait_for(lambda: emu.ephemerals(OPERATOR))
    assert emu.ephemerals(OPERATOR)[0]["text"] == "looking up info SN123"
    assert seen[0]["user_id"] == OPERATOR and seen[0]["channel_id"] == HELPDESK
    assert seen[0]["response_url"].startswith(emu.base_url + "/response/")

    assert emu.slash_command(OPERATOR, "info forged", sign=False).status == 401
    stale = int(time.time()) - 6 * 60
    assert emu.slash_command(OPERATOR, "info stale", timestamp=stale).status == 401
    assert len(seen) == 1 and len(emu.ephemerals(OPERATOR)) == 1


def test_immediate_answers_show_like_slack(emu: SlackEmulator, app: App) -> None:
    def device(ack: Ack, command: dict[str, Any]) -> None:
        if command["text"] == "help":
            ack("usage: /device info <ref>")
        else:
            ack(response_type="in_channel", text="for everyone")

    app.command("/device")(device)
    emu.slash_command(OPERATOR, "help")
    assert emu.ephemerals(OPERATOR)[-1]["text"] == "usage: /device info <ref>"
    assert emu.messages(HELPDESK) == []
    emu.slash_command(OPERATOR, "shout")
    assert emu.messages(HELPDESK)[-1]["text"] == "for everyone"


def test_views_open_needs_a_fresh_trigger(
    emu: SlackEmulator, app: App, client: WebClient, clock: FakeClock
) -> None:
    results: list[str] = []
    delay = {"seconds": 0.0}

    def device(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        clock.offset += delay["seconds"]  # the bot was slow before calling views.open
        try:
            client.views_open(trigger_id=body["trigger_id"], view=_modal(FORM_BLOCKS))
            results.append("ok")
        except SlackApiError as exc:
            results.append(exc.response["error"])

    app.command("/device")(device)
    emu.slash_command(OPERATOR, "")
    emu.wait_for(lambda: results)
    assert results == ["ok"]
    view = emu.open_view(OPERATOR)
    assert view is not None and view["callback_id"] == "disable_device"

    delay["seconds"] = 3.5
    emu.slash_command(OPERATOR, "")
    emu.wait_for(lambda: len(results) == 2)
    assert results[1] == "expired_trigger_id"

    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id="123.456.nope", view=_modal(FORM_BLOCKS))
    assert err.value.response["error"] == "invalid_trigger_id"


@pytest.mark.invalid_blocks_expected
def test_view_limits(emu: SlackEmulator, client: WebClient) -> None:
    trigger = emu.issue_trigger(OPERATOR)
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id=trigger, view=_modal([_section("x")] * 101))
    assert err.value.response["error"] == "invalid_arguments"
    with pytest.raises(SlackApiError) as err:
        long_title = _modal([_section("x")], title={"type": "plain_text", "text": "t" * 25})
        client.views_open(trigger_id=emu.issue_trigger(OPERATOR), view=long_title)
    assert "must be less than 25 characters" in str(err.value.response["response_metadata"])
    no_submit = {k: v for k, v in _modal(FORM_BLOCKS).items() if k != "submit"}
    with pytest.raises(SlackApiError):
        client.views_open(trigger_id=emu.issue_trigger(OPERATOR), view=no_submit)
    assert emu.open_view(OPERATOR) is None
    client.views_open(trigger_id=emu.issue_trigger(OPERATOR), view=_modal([_section("x")] * 100))


def test_block_action_and_response_url_replace(emu: SlackEmulator, app: App) -> None:
    clicks: list[dict[str, Any]] = []

    def disable(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        clicks.append(body)
        respond(replace_original=True, text="Disabling…")

    app.action("device_disable")(disable)
    posted = app.client.chat_postMessage(
        channel=HELPDESK,
        text="card",
        blocks=[
            _section("SN123", "card"),
            {
                "type": "actions",
                "block_id": "acts",
                "elements": [_button("device_disable", "SN123")],
            },
        ],
    )
    message = emu.message(HELPDESK, posted["ts"])
    assert message is not None

    reply = emu.click(OPERATOR, "device_disable", message=message)
    assert reply.status == 200
    emu.wait_for(lambda: emu.message(HELPDESK, posted["ts"])["text"] == "Disabling…")  # type: ignore[index]
    body = clicks[0]
    assert body["actions"][0]["value"] == "SN123" and body["actions"][0]["block_id"] == "acts"
    assert body["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": HELPDESK,
        "is_ephemeral": False,
    }
    assert body["message"]["ts"] == posted["ts"] and body["trigger_id"]

    # without a message, the newest visible element with that action_id is clicked
    app.client.chat_postMessage(channel=HELPDESK, text="card 2", blocks=message["blocks"])
    assert emu.click(OPERATOR, "device_disable", sign=False).status == 401
    assert len(clicks) == 1


def test_view_submission_values_errors_and_close(emu: SlackEmulator, app: App) -> None:
    submissions: list[dict[str, Any]] = []

    def submit(ack: Ack, view: dict[str, Any]) -> None:
        submissions.append(view["state"]["values"])
        reason = view["state"]["values"]["reason"]["reason_input"]["value"]
        if not reason or len(reason) > 200:
            ack(response_action="errors", errors={"reason": "Give a reason of at most 200 chars"})
        else:
            ack()

    app.view("disable_device")(submit)
    app.client.views_open(trigger_id=emu.issue_trigger(OPERATOR), view=_modal(FORM_BLOCKS))

    reply = emu.submit_view(OPERATOR, values={"reason": {"reason_input": ""}})
    assert reply.status == 200 and reply.json is not None
    assert reply.json["errors"] == {"reason": "Give a reason of at most 200 chars"}
    view = emu.open_view(OPERATOR)
    assert view is not None and emu.view_errors(view["id"])["reason"].startswith("Give")
    first = submissions[0]
    assert first["reason"]["reason_input"] == {"type": "plain_text_input", "value": None}
    assert first["kind"]["kind_select"] == {"type": "static_select", "selected_option": None}
    assert first["when"]["when_radio"]["selected_option"]["value"] == "now"  # initial_option
    assert first["flags"]["flags_check"] == {"type": "checkboxes", "selected_options": []}

    reply = emu.submit_view(
        OPERATOR,
        values={
            "reason": {"reason_input": "lost on a train"},
            "kind": {"kind_select": "stolen"},
            "flags": {"flags_check": ["notify", "force"]},
            "when": "later",  # shorthand for a one-element block
            "ous": {"ous_select": ["labs"]},
        },
    )
    assert reply.status == 200 and reply.body == ""
    values = submissions[1]
    assert values["reason"]["reason_input"]["value"] == "lost on a train"
    assert values["kind"]["kind_select"]["selected_option"]["value"] == "stolen"
    assert [o["value"] for o in values["flags"]["flags_check"]["selected_options"]] == [
        "notify",
        "force",
    ]
    assert values["when"]["when_radio"]["selected_option"]["value"] == "later"
    assert values["ous"]["ous_select"]["type"] == "multi_static_select"
    assert emu.open_view(OPERATOR) is None


def test_view_submission_update_push_and_views_update(
    emu: SlackEmulator, app: App, client: WebClient
) -> None:
    def submit(ack: Ack, view: dict[str, Any]) -> None:
        if view["private_metadata"] == "push":
            ack(response_action="push", view=_modal([_section("pushed")], callback_id="second"))
        else:
            ack(response_action="update", view=_modal([_section("done")], callback_id="done"))

    app.view("disable_device")(submit)
    opened = client.views_open(
        trigger_id=emu.issue_trigger(OPERATOR), view=_modal(FORM_BLOCKS, private_metadata="push")
    )["view"]
    emu.submit_view(OPERATOR, values={"reason": "r", "kind": "lost"})
    assert [v["callback_id"] for v in emu.view_stack(OPERATOR)] == ["disable_device", "second"]

    with pytest.raises(SlackApiError) as err:
        client.views_update(view_id=opened["id"], hash="stale-hash", view=_modal(FORM_BLOCKS))
    assert err.value.response["error"] == "hash_conflict"
    client.views_update(view_id=opened["id"], hash=opened["hash"], view=_modal(FORM_BLOCKS))
    emu.close_view(OPERATOR)
    emu.submit_view(OPERATOR, values={"reason": "r", "kind": "lost"})
    top = emu.open_view(OPERATOR)
    assert top is not None and top["callback_id"] == "done" and top["id"] == opened["id"]


def test_close_view_notifies_when_asked(emu: SlackEmulator, app: App) -> None:
    closed: list[str] = []

    def on_close(ack: Ack, view: dict[str, Any]) -> None:
        ack()
        closed.append(view["id"])

    app.view_closed("disable_device")(on_close)
    view = app.client.views_open(
        trigger_id=emu.issue_trigger(OPERATOR), view=_modal(FORM_BLOCKS, notify_on_close=True)
    )["view"]
    reply = emu.close_view(OPERATOR)
    assert reply is not None and reply.status == 200
    assert closed == [view["id"]] and emu.open_view(OPERATOR) is None


# ------------------------------------------------------------------ raw shapes and response_urls


class _Recorder:
    """A bare HTTP endpoint that records what Slack (the emulator) sends."""

    def __init__(self, answer: bytes = b"") -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[tuple[dict[str, str], str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                recorder.requests.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slack/events"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_slash_command_form_and_retry_headers(emu: SlackEmulator) -> None:
    recorder = _Recorder()
    emu.bot_url = recorder.url
    try:
        emu.slash_command(OPERATOR, "find user:olivia", retry_num=1, retry_reason="http_timeout")
    finally:
        recorder.close()
    headers, body = recorder.requests[0]
    form = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
    assert {"token", "team_id", "team_domain", "channel_id", "channel_name", "user_id"} <= set(form)
    assert {"user_name", "command", "text", "api_app_id", "response_url", "trigger_id"} <= set(form)
    assert form["command"] == "/device" and form["text"] == "find user:olivia"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert headers["X-Slack-Retry-Num"] == "1"
    assert headers["X-Slack-Retry-Reason"] == "http_timeout"
    assert headers["X-Slack-Signature"].startswith("v0=")


@pytest.mark.invalid_blocks_expected
def test_response_url_posts(emu: SlackEmulator) -> None:
    recorder = _Recorder()
    emu.bot_url = recorder.url
    try:
        emu.slash_command(OPERATOR, "info SN1")
    finally:
        recorder.close()
    form = {k: v[0] for k, v in urllib.parse.parse_qs(recorder.requests[0][1]).items()}
    url = form["response_url"]

    def post(target: str, body: dict[str, Any]) -> int:
        request = urllib.request.Request(
            target, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    assert post(url, {"text": "just you"}) == 200
    assert post(url, {"response_type": "in_channel", "text": "everyone"}) == 200
    parent = emu.messages(HELPDESK)[-1]
    assert parent["text"] == "everyone"
    assert (
        post(url, {"response_type": "in_channel", "text": "in thread", "thread_ts": parent["ts"]})
        == 200
    )
    assert emu.thread(HELPDESK, parent["ts"])[-1]["text"] == "in thread"
    assert post(url, {"blocks": [_section("x")] * 51}) == 400
    assert post(url, {"text": "4"}) == 200
    assert post(url, {"text": "5"}) == 200
    assert post(url, {"text": "6: too many"}) == 404  # a response_url is good for 5 uses
    assert post(emu.base_url + "/response/nope", {"text": "x"}) == 404
    assert [e["text"] for e in emu.ephemerals(OPERATOR)] == ["just you", "4", "5"]
    assert emu.ephemerals("U0APPROVER1") == []
    assert [r.status for r in emu.responses] == [200, 200, 200, 400, 200, 200, 404, 404]


def test_ephemeral_click_and_delete_original(emu: SlackEmulator, app: App) -> None:
    def pick(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        assert "message" not in body and body["container"]["is_ephemeral"] is True
        respond(delete_original=True)

    app.action("pick_device")(pick)
    app.client.chat_postEphemeral(
        channel=HELPDESK,
        user=OPERATOR,
        text="pick one",
        blocks=[{"type": "actions", "elements": [_button("pick_device", "SN1")]}],
    )
    emu.click(OPERATOR, "pick_device")
    emu.wait_for(lambda: not emu.ephemerals(OPERATOR))


# ------------------------------------------------------------------ waiting and streaming


def test_wait_for_times_out_with_a_dump(emu: SlackEmulator, client: WebClient) -> None:
    client.chat_postMessage(channel=HELPDESK, text="hello")
    with pytest.raises(AssertionError) as err:
        emu.wait_for_call("views.open", timeout=0.2)
    assert "chat.postMessage" in str(err.value)


def test_changes_are_streamed(emu: SlackEmulator, client: WebClient) -> None:
    events: list[dict[str, Any]] = []
    unsubscribe = emu.subscribe(events.append)
    before = emu.version
    client.chat_postMessage(channel=HELPDESK, text="hello")
    assert emu.wait_for_change(before, timeout=5) > before
    assert any(e["kind"] == "message" and e["channel"] == HELPDESK for e in events)
    unsubscribe()
    call = emu.wait_for_call("chat.postMessage", where=lambda c: c.args["text"] == "hello")
    assert call.ok and call.response["ts"]
