"""The playground's web API and start-up, without a browser: state per user, gestures, events."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import store_url, wait_until
from slack_sdk import WebClient

from bot.playground.main import APPROVALS, APPROVER1, HELPDESK, OPERATOR, start_playground

# the playground keeps its own SQLite file, one for the module: on SQLite alone
pytestmark = pytest.mark.sqlite_only("the playground's own SQLite file, one for the module")

ALEX = "U0APPROVER1"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from bot.sandbox import Sandbox

    sandbox = Sandbox(devices=60, seed=11, command_delay=0.2).start()
    running = start_playground(
        port=0, sandbox=sandbox, database=tmp_path_factory.mktemp("pg") / "pg.db"
    )
    yield running
    running.stop()


@pytest.fixture
def slack(pg: Any) -> WebClient:
    """The bot's own Web API client: what it posts, the page shows."""
    return WebClient(token=pg.server.settings.slack_bot_token.get(), base_url=pg.emulator.api_url)


def get(pg: Any, path: str, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(pg.url + path, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def post(pg: Any, path: str, body: Any, content_type: str = "application/json") -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        pg.url + path, data=data, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode()


def state(pg: Any, user: str) -> dict[str, Any]:
    status, _, body = get(pg, f"/api/state?user={user}")
    assert status == 200
    return json.loads(body)


def texts(messages: list[dict[str, Any]]) -> str:
    return json.dumps(messages)


def test_page_and_assets_are_served_with_a_strict_policy(pg: Any) -> None:
    status, headers, body = get(pg, "/")
    assert status == 200 and b"SANDBOX" in body and b"/static/app.js" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    for name, kind in (("app.js", "javascript"), ("app.css", "css")):
        status, headers, _ = get(pg, f"/static/{name}")
        assert status == 200 and kind in headers["Content-Type"]
    assert get(pg, "/static/../main.py")[0] == 404
    assert get(pg, "/static/main.py")[0] == 404
    assert get(pg, "/healthz")[0] == 200  # still the bot's own route


def test_foreign_hosts_and_form_posts_are_refused(pg: Any) -> None:
    assert get(pg, "/api/state?user=U0OPERATOR", host="evil.example:8000")[0] == 403
    status, _ = post(
        pg, "/api/message", b"user=U0OPERATOR&text=hi", "application/x-www-form-urlencoded"
    )
    assert status == 415
    status, body = post(pg, "/api/message", {"user": "U0NOBODY", "channel": HELPDESK, "text": "hi"})
    assert status == 400 and "unknown user" in body["error"]
    assert post(pg, "/api/message", {"user": OPERATOR, "channel": "C0NOPE", "text": "hi"})[0] == 400


def test_state_shows_the_people_and_channels(pg: Any) -> None:
    st = state(pg, OPERATOR)
    names = {p["name"]: p["role"] for p in st["people"]}
    assert names == {
        "Olivia Operator": "operator",
        "Alex Approver": "approver",
        "Sam Approver": "approver",
        "Oscar Outsider": "not allowed",
    }
    assert {c["name"] for c in st["channels"]} >= {"help-desk", "device-approvals", "lost-devices"}
    assert "/device help" in st["hints"]


def test_slash_command_reaches_the_bot_signed_with_response_url_and_trigger(pg: Any) -> None:
    mark = len(pg.emulator.deliveries)
    status, body = post(
        pg, "/api/message", {"user": OPERATOR, "channel": HELPDESK, "text": "/device help"}
    )
    assert status == 200 and body["ok"], body
    delivery = pg.emulator.deliveries[mark]
    assert delivery.kind == "slash_command" and delivery.reply.status == 200
    assert delivery.payload["text"] == "help" and delivery.payload["command"] == "/device"
    assert delivery.payload["response_url"] and delivery.payload["trigger_id"]
    mine = wait_until(
        lambda: [e for e in state(pg, OPERATOR)["ephemerals"] if "sub-commands" in texts([e])],
        message="the help answer",
    )
    assert mine[-1]["channel"] == HELPDESK
    assert "sub-commands" not in texts(state(pg, ALEX)["ephemerals"])


def test_plain_text_is_the_users_message_and_threads_work(pg: Any, slack: WebClient) -> None:
    parent = slack.chat_postMessage(channel=HELPDESK, text="a bot message to reply to")["ts"]
    status, body = post(
        pg, "/api/message", {"user": OPERATOR, "channel": HELPDESK, "text": "hello *all*"}
    )
    assert status == 200 and body["ok"]
    status, reply = post(
        pg,
        "/api/message",
        {"user": ALEX, "channel": HELPDESK, "text": "in the thread", "thread_ts": parent},
    )
    assert status == 200
    msgs = state(pg, ALEX)["messages"][HELPDESK]
    mine = next(m for m in msgs if m["text"] == "hello *all*")
    assert mine["user"] == OPERATOR and "thread_ts" not in mine
    threaded = next(m for m in msgs if m["text"] == "in the thread")
    assert threaded["thread_ts"] == parent and threaded["user"] == ALEX


def test_unknown_command_gets_a_slackbot_notice_for_that_user_only(pg: Any) -> None:
    status, body = post(
        pg, "/api/message", {"user": OPERATOR, "channel": HELPDESK, "text": "/giphy cats"}
    )
    assert status == 200 and body == {"ok": False, "error": "unknown_command"}
    notices = [e for e in state(pg, OPERATOR)["ephemerals"] if e["user"] == "USLACKBOT"]
    assert "`/giphy` is not a valid command" in notices[-1]["text"]
    assert not [e for e in state(pg, ALEX)["ephemerals"] if "/giphy" in e["text"]]


def test_ephemerals_and_modals_belong_to_their_user(pg: Any, slack: WebClient) -> None:
    slack.chat_postEphemeral(channel=HELPDESK, user=OPERATOR, text="for Olivia's eyes only")
    slack.views_open(
        trigger_id=pg.emulator.issue_trigger(OPERATOR),
        view={
            "type": "modal",
            "title": {"type": "plain_text", "text": "Hers"},
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hers"}}],
        },
    )
    assert "for Olivia's eyes only" in texts(state(pg, OPERATOR)["ephemerals"])
    assert "for Olivia's eyes only" not in json.dumps(state(pg, ALEX))
    assert [v["title"]["text"] for v in state(pg, OPERATOR)["views"]] == ["Hers"]
    assert state(pg, ALEX)["views"] == []
    assert post(pg, "/api/close", {"user": OPERATOR, "all": True}) == (
        200,
        {"ok": True, "closed": 1},
    )
    assert state(pg, OPERATOR)["views"] == []


def test_click_and_submit_are_delivered_as_slack_payloads(pg: Any, slack: WebClient) -> None:
    blocks = [
        {
            "type": "actions",
            "block_id": "api_test",
            "elements": [
                {
                    "type": "button",
                    "action_id": "api_test_go",
                    "text": {"type": "plain_text", "text": "Go"},
                    "value": "v1",
                },
                {
                    "type": "static_select",
                    "action_id": "api_test_pick",
                    "options": [{"text": {"type": "plain_text", "text": "One"}, "value": "one"}],
                },
            ],
        }
    ]
    ts = slack.chat_postMessage(channel=APPROVALS, text="buttons", blocks=blocks)["ts"]
    mark = len(pg.emulator.deliveries)
    status, body = post(
        pg, "/api/click", {"user": ALEX, "action_id": "api_test_go", "channel": APPROVALS, "ts": ts}
    )
    assert status == 200, body
    status, body = post(
        pg,
        "/api/click",
        {
            "user": ALEX,
            "action_id": "api_test_pick",
            "channel": APPROVALS,
            "ts": ts,
            "value": "one",
        },
    )
    assert status == 200, body
    go, pick = (d.payload for d in pg.emulator.deliveries[mark : mark + 2])
    assert go["type"] == "block_actions" and go["actions"][0]["value"] == "v1"
    assert go["user"]["id"] == ALEX and go["container"]["message_ts"] == ts and go["response_url"]
    assert pick["actions"][0]["selected_option"]["value"] == "one"
    assert post(
        pg, "/api/click", {"user": ALEX, "action_id": "nope", "channel": APPROVALS, "ts": ts}
    )[1]["error"] == ("element_not_found")

    view = slack.views_open(
        trigger_id=pg.emulator.issue_trigger(ALEX),
        view={
            "type": "modal",
            "callback_id": "api_test_form",
            "title": {"type": "plain_text", "text": "Form"},
            "submit": {"type": "plain_text", "text": "Send"},
            "blocks": [
                {
                    "type": "input",
                    "block_id": "why",
                    "label": {"type": "plain_text", "text": "Why"},
                    "element": {"type": "plain_text_input", "action_id": "why_input"},
                },
                {
                    "type": "input",
                    "block_id": "flags",
                    "label": {"type": "plain_text", "text": "Flags"},
                    "element": {
                        "type": "checkboxes",
                        "action_id": "flags_input",
                        "options": [
                            {"text": {"type": "plain_text", "text": "A"}, "value": "a"},
                            {"text": {"type": "plain_text", "text": "B"}, "value": "b"},
                        ],
                    },
                },
            ],
        },
    )["view"]
    values = {"why": {"why_input": "because"}, "flags": {"flags_input": ["b"]}}
    status, body = post(pg, "/api/submit", {"user": ALEX, "view_id": view["id"], "values": values})
    assert status == 200
    submitted = pg.emulator.deliveries[-1].payload
    assert submitted["type"] == "view_submission"
    got = submitted["view"]["state"]["values"]
    assert got["why"]["why_input"]["value"] == "because"
    assert [o["value"] for o in got["flags"]["flags_input"]["selected_options"]] == ["b"]
    post(pg, "/api/close", {"user": ALEX, "all": True})


def test_home_tab_and_workflow_step_through_the_page_api(pg: Any) -> None:
    assert post(pg, "/api/home", {"user": "U0NOBODY"})[0] == 400
    assert post(pg, "/api/step", {"user": OPERATOR, "action": "disable"})[0] == 400
    status, answer = post(pg, "/api/home", {"user": OPERATOR})
    assert status == 200 and answer["ok"]
    home = wait_until(lambda: state(pg, OPERATOR)["home"], message="the published Home tab")
    assert home["type"] == "home" and "Your open requests" in json.dumps(home["blocks"])
    status, answer = post(
        pg, "/api/step", {"user": OPERATOR, "device": "NO-SUCH-SERIAL", "action": "disable"}
    )
    assert status == 200 and answer["execution_id"].startswith("Fx")
    step = wait_until(
        lambda: next((s for s in state(pg, OPERATOR)["steps"] if s["state"] == "failed"), None),
        message="the step to fail",
    )
    assert step["inputs"]["requested_by"] == OPERATOR and step["error"]
    assert state(pg, APPROVER1)["steps"] == []  # another person's steps are not shown


def test_event_stream_pushes_each_change(pg: Any, slack: WebClient) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", int(pg.url.rsplit(":", 1)[1]), timeout=10)
    conn.request("GET", f"/api/events?user={OPERATOR}")
    response = conn.getresponse()
    assert response.status == 200 and response.headers["Content-Type"].startswith(
        "text/event-stream"
    )

    def next_state() -> dict[str, Any]:
        event, data = "", ""
        while True:
            line = response.fp.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
            elif line == "" and event == "state":
                return json.loads(data)

    try:
        first = next_state()
        assert first["me"] == OPERATOR
        slack.chat_postMessage(channel=HELPDESK, text="streamed to the page")
        deadline = time.monotonic() + 10
        while "streamed to the page" not in json.dumps(next_state()["messages"]):
            assert time.monotonic() < deadline, "the stream never carried the new message"
    finally:
        conn.close()


@pytest.mark.both_stores
def test_python_m_bot_playground_starts_and_stops_on_sigterm(tmp_path: Path, backend: str) -> None:
    """`python -m bot playground` serves its page and stops on SIGTERM; with `--database-url`
    the bot keeps its state in that PostgreSQL database."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "AUDIT_KEY": "playground-audit-key-" + "k" * 20}
    url_args = ["--database-url", store_url() or ""] if backend == "postgresql" else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "playground", "--port", "0", "--devices", "40", *url_args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        url = ""
        deadline = time.monotonic() + 20
        while not url and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "open http://" in line:
                url = line.split("open ", 1)[1].split()[0].rstrip("/")
        assert url, "".join(lines)
        assert "press Ctrl-C to stop" in proc.stdout.readline() + proc.stdout.readline()
        with urllib.request.urlopen(url + "/", timeout=5) as response:
            assert b"device-bot playground" in response.read()
        if backend == "postgresql":
            import psycopg

            def leased() -> bool:  # the bot's jobs lease is a row of this database
                with psycopg.connect(store_url() or "") as conn:
                    return bool(conn.execute("select count(*) from leases").fetchone()[0])

            wait_until(leased, 10)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if backend == "postgresql":  # the same database opens again under the same AUDIT_KEY
        again = start_playground(
            port=0, devices=10, database_url=store_url(), audit_key=env["AUDIT_KEY"]
        )
        again.stop()


def test_a_busy_port_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.playground.main import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["--port", str(port), "--devices", "10"]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_a_csv_picked_in_a_modal_reaches_the_bot_as_a_slack_file(pg: Any) -> None:
    """`/device bulk`'s file_input: the page sends the file, the bot downloads it with its token."""
    status, body = post(
        pg, "/api/message", {"user": OPERATOR, "channel": HELPDESK, "text": "/device bulk lock"}
    )
    assert status == 200 and body["ok"], body
    view = wait_until(lambda: (state(pg, OPERATOR)["views"] or [None])[-1], message="bulk form")
    upload = {"upload": {"name": "phones.csv", "text": "device\nNO-SUCH-PHONE\n"}}
    values = {"bulk_file": {"bulk_file": [upload]}}
    status, body = post(
        pg, "/api/submit", {"user": OPERATOR, "view_id": view["id"], "values": values}
    )
    assert status == 200 and body["ok"], body
    shown = wait_until(
        lambda: "1 rows read" in texts(state(pg, OPERATOR)["views"]),
        30,
        "the preview of the uploaded CSV",
    )
    assert shown
    assert "NO-SUCH-PHONE" in texts(state(pg, OPERATOR)["views"])


def test_a_modal_menu_of_the_bots_options_is_filled_through_block_suggestion(pg: Any) -> None:
    serial = next(
        d["serialNumber"] for d in pg.sandbox.fleet.chrome.values() if d["status"] == "ACTIVE"
    )
    status, body = post(
        pg,
        "/api/message",
        {"user": OPERATOR, "channel": HELPDESK, "text": f"/device move /Sales {serial}"},
    )
    assert status == 200 and body["ok"], body
    view = wait_until(
        lambda: next(
            (v for v in state(pg, OPERATOR)["views"] if v.get("callback_id") == "action_modal"),
            None,
        ),
        message="the move modal",
    )
    status, body = post(
        pg,
        "/api/suggest",
        {"user": OPERATOR, "view_id": view["id"], "block_id": "ou", "action_id": "ou"},
    )
    assert status == 200 and body["ok"], body
    assert "/Sales/EMEA" in [o["value"] for o in body["options"]]
    assert pg.emulator.deliveries[-1].kind == "block_suggestion"
    status, body = post(pg, "/api/suggest", {"user": OPERATOR, "action_id": "ou"})
    assert status == 400


def test_a_file_the_bot_shared_is_served_from_the_page_origin_and_a_persons_is_not(
    pg: Any,
) -> None:
    """The page shows a shared image from its own origin (its CSP allows no other); a file a
    person picked in a form is not served there (on the emulator it needs the bot token)."""
    client = WebClient(token=pg.server.settings.slack_bot_token.get(), base_url=pg.emulator.api_url)
    png = b"\x89PNG\r\n\x1a\nnot really the rest"
    shared = client.files_upload_v2(
        channel=HELPDESK, filename="shot.png", content=png, title="Screenshot"
    )["file"]
    status, headers, body = get(pg, f"/files/{shared['id']}/shot.png")
    assert (status, headers["Content-Type"], body) == (200, "image/png", png)
    assert "img-src 'self'" in headers["Content-Security-Policy"]
    private = pg.emulator.uploads.user_upload(OPERATOR, "devices.csv", b"device\nX1\n")
    assert get(pg, f"/files/{private['id']}/devices.csv")[0] == 404
    assert get(pg, "/files/FNOSUCH/x.png")[0] == 404
