"""Socket Mode end to end: the bot with SLACK_APP_TOKEN, Slack's envelopes over the emulator's WebSocket.

The emulator answers `apps.connections.open` with a `ws://` URL on itself; the bot's own
`SocketModeHandler` (slack_sdk's built-in client) connects, and commands, clicks and modal
submissions arrive as envelopes whose acks carry what the HTTP answer would have carried.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest
from conftest import (
    OPERATOR,
    Bot,
    Claims,
    flatten,
    serial,
    start_bot,
    wait_until,
)
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import ids

APP_TOKEN = "xapp-1-test"


# ---- helpers ----------------------------------------------------------------------------------


def http_status(url: str, data: bytes | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def settled_modal(bot: Bot, view_id: str) -> dict[str, Any] | None:
    view = bot.emu.open_view(OPERATOR)
    if not view or view["id"] != view_id or ":hourglass" in flatten(view):
        return None
    return view


def open_action_modal(bot: Bot, text: str) -> dict[str, Any]:
    mark = bot.emu.mark()
    bot.slash(text)
    opened = bot.emu.wait_for_call("views.open", since=mark)
    assert opened.ok, opened
    view: dict[str, Any] = wait_until(
        lambda: settled_modal(bot, opened.response["view"]["id"]), 15, f"the modal of {text!r}"
    )
    return view


def socket_mode_threads() -> set[threading.Thread]:
    """Threads of slack_sdk's Socket Mode client (its runners and worker pool)."""
    found = set()
    for thread in threading.enumerate():
        target = getattr(thread, "_target", None)
        owner = getattr(target, "__self__", None)
        module = type(owner).__module__ if owner is not None else ""
        if module.startswith(("slack_sdk.socket_mode", "concurrent.futures")) and thread.is_alive():
            found.add(thread)
    return found


def lingering(before: set[threading.Thread]) -> set[str]:
    """Threads started since `before` still alive, bar the ones that outlive stop() by design:
    the work pool (shut down without waiting), HTTP handler threads of keep-alive clients, and
    the process's one metrics flusher (started by the first bot of the process, which is this
    test's when it runs first)."""
    return {
        t.name
        for t in set(threading.enumerate()) - before
        if not t.name.startswith("device-bot-work")
        and "process_request_thread" not in t.name
        and t.name != "metrics-flush"
    }


class RawWebSocket:
    """A minimal client for checking the emulator's side of RFC 6455 by hand."""

    def __init__(self, url: str) -> None:
        rest = url.removeprefix("ws://")
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self.file = self.sock.makefile("rb")
        self.pings = 0
        self.status = int(self.file.readline().split()[1])
        self.headers: dict[str, str] = {}
        while (line := self.file.readline().strip()) and b":" in line:
            name, _, value = line.decode().partition(":")
            self.headers[name.strip().lower()] = value.strip()
        guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        self.expected_accept = base64.b64encode(hashlib.sha1((key + guid).encode()).digest())

    def send(self, opcode: int, data: bytes, *, mask: bool = True, fin: bool = True) -> None:
        head = bytes([(0x80 if fin else 0) | opcode])
        size = len(data)
        length = bytes([size]) if size < 126 else bytes([126]) + struct.pack("!H", size)
        if mask:
            key = os.urandom(4)
            data = bytes(b ^ key[i % 4] for i, b in enumerate(data))
            self.sock.sendall(head + bytes([length[0] | 0x80]) + length[1:] + key + data)
        else:
            self.sock.sendall(head + length + data)

    def recv(self) -> tuple[int, bytes]:
        """The next frame other than the server's pings (which it answers)."""
        while True:
            b1, b2 = self.file.read(2)
            size = b2 & 0x7F
            if size == 126:
                size = struct.unpack("!H", self.file.read(2))[0]
            elif size == 127:
                size = struct.unpack("!Q", self.file.read(8))[0]
            assert not b2 & 0x80, "server frames are never masked"
            opcode, data = b1 & 0x0F, self.file.read(size)
            if opcode != 0x9:
                return opcode, data
            self.pings += 1
            self.send(0xA, data)

    def close(self) -> None:
        self.file.close()
        self.sock.close()


# ---- the bot over Socket Mode -----------------------------------------------------------------


def test_the_bot_works_over_socket_mode(
    tmp_path: Any, sandbox: Any, emu: Any, claims: Claims
) -> None:
    before, everything = socket_mode_threads(), set(threading.enumerate())
    emu.delivery = "socket"  # never fall back to HTTP
    bot = start_bot(tmp_path, sandbox, emu, SLACK_APP_TOKEN=APP_TOKEN, SLACK_SIGNING_SECRET="")
    try:
        emu.wait_for_socket()
        opened = emu.calls_to("apps.connections.open")
        assert len(opened) == 1 and opened[0].ok
        assert opened[0].response["url"].startswith(f"ws://127.0.0.1:{emu.port}/socket-mode?")

        # HTTP serves health only: Slack cannot post to a Socket Mode app
        assert http_status(bot.url + "/healthz") == 200
        assert http_status(bot.url + "/slack/events", b"payload=%7B%7D") == 404

        # a command: acked over the socket, answered through the Web API
        reply = bot.slash("help")
        assert reply.status == 200
        assert "/device info <device>" in bot.wait_ephemeral("/device sub-commands")

        device = claims.chrome_kiosk()  # volume only in kiosk and guest sessions
        bot.slash(f"info {serial(device)}")
        card_text = bot.wait_ephemeral(f"Chrome OS {serial(device)}: ACTIVE", timeout=15)
        assert serial(device) in card_text

        # a modal whose validation errors come back in the ack's payload
        view = open_action_modal(bot, f"volume 40 {serial(device)}")
        assert view["callback_id"] == str(ids.CallbackId.ACTION)
        reply = emu.submit_view(OPERATOR, view["id"], {"volume": "200"})
        assert reply.status == 200
        assert reply.json is not None and reply.json["response_action"] == "errors"
        assert list(reply.json["errors"]) == ["volume"]
        assert emu.view_errors(view["id"]) == reply.json["errors"]
        assert emu.open_view(OPERATOR)["id"] == view["id"]  # the modal stays open
        emu.close_view(OPERATOR)

        # a button on the card: an interactive envelope (block_actions)
        card = next(e for e in reversed(emu.ephemerals(OPERATOR)) if card_text == flatten(e))
        mark = emu.mark()
        reply = emu.click(OPERATOR, ids.device_action_id("disable"), message=card)
        assert reply.status == 200 and reply.body == ""
        assert emu.wait_for_call("views.open", since=mark).ok

        kinds = [d.kind for d in emu.deliveries]
        assert {"slash_command", "view_submission", "block_actions"} <= set(kinds)
        assert all(d.via == "socket" for d in emu.deliveries)
        assert not emu.problems, emu.dump()
    finally:
        bot.server.stop()
    # stop closes the connection and every thread of the Socket Mode client ends
    wait_until(lambda: emu.socket_connections == 0, 5, "the socket to close")
    wait_until(lambda: not (socket_mode_threads() - before), 5, "socket mode threads to end")
    wait_until(lambda: not lingering(everything), 5, "the bot's threads to end")


def test_refresh_moves_the_bot_to_a_new_connection(tmp_path: Any, sandbox: Any, emu: Any) -> None:
    bot = start_bot(tmp_path, sandbox, emu, SLACK_APP_TOKEN=APP_TOKEN, SLACK_SIGNING_SECRET="")
    try:
        emu.wait_for_socket()
        assert emu.refresh_sockets() == 1
        wait_until(
            lambda: emu.socket_connects == 2 and emu.socket_connections == 1, 10, "reconnect"
        )
        assert len(emu.calls_to("apps.connections.open")) == 2
        assert bot.slash("help").status == 200  # "auto" delivery picks the socket
        bot.wait_ephemeral("/device sub-commands")
        assert emu.deliveries[-1].via == "socket"
    finally:
        bot.server.stop()


# ---- the emulator's side of the protocol ------------------------------------------------------


def test_connections_open_needs_an_app_token(emu: Any) -> None:
    for token, error in ((emu.bot_token, "invalid_auth"), ("xoxp-user", "invalid_auth")):
        with pytest.raises(SlackApiError) as caught:
            WebClient(base_url=emu.api_url).apps_connections_open(app_token=token)
        assert caught.value.response["error"] == error
    url = WebClient(base_url=emu.api_url).apps_connections_open(app_token="xapp-anything")["url"]
    assert url.startswith("ws://127.0.0.1:")
    emu.app_token = "xapp-only-this"
    with pytest.raises(SlackApiError):
        WebClient(base_url=emu.api_url).apps_connections_open(app_token="xapp-anything")


def test_websocket_handshake_frames_and_close(emu: Any) -> None:
    url = WebClient(base_url=emu.api_url).apps_connections_open(app_token="xapp-x")["url"]
    ws = RawWebSocket(url)
    try:
        assert ws.status == 101
        assert ws.headers["sec-websocket-accept"].encode() == ws.expected_accept
        opcode, data = ws.recv()
        hello = json.loads(data)
        assert opcode == 0x1 and hello["type"] == "hello" and hello["num_connections"] == 1
        emu.wait_for_socket()

        ws.sock.settimeout(2)
        assert ws.file.read(1)[0] & 0x0F == 0x9  # the server pings (nothing else is pending)
        ws.file.read(ws.file.read(1)[0])
        ws.send(0x9, b"are you there")
        assert ws.recv() == (0xA, b"are you there")

        # a delivery waits for the ack, whose payload becomes the reply's JSON
        emu.add_channel("C0SOCKET", "socket")
        result: dict[str, Any] = {}
        worker = threading.Thread(
            target=lambda: result.update(
                reply=emu.slash_command(OPERATOR, "x", channel_id="C0SOCKET")
            )
        )
        worker.start()
        opcode, data = ws.recv()
        envelope = json.loads(data)
        assert envelope["type"] == "slash_commands" and envelope["accepts_response_payload"]
        assert envelope["payload"]["command"] == "/device" and envelope["payload"]["text"] == "x"
        ack = {"envelope_id": envelope["envelope_id"], "payload": {"text": "x" * 300}}
        ws.send(0x1, json.dumps(ack).encode())  # > 125 bytes: a 16-bit length
        worker.join(30)
        assert not worker.is_alive(), "the delivery never returned"
        assert result["reply"].status == 200 and result["reply"].json == ack["payload"]
        assert emu.ephemerals(OPERATOR, "C0SOCKET")[-1]["text"] == "x" * 300

        ws.send(0x8, struct.pack("!H", 1000))
        assert ws.recv()[0] == 0x8
        wait_until(lambda: emu.socket_connections == 0, 5, "the close")
    finally:
        ws.close()


def test_handshake_refuses_unknown_tickets_and_unmasked_frames(emu: Any) -> None:
    bad = RawWebSocket(f"ws://127.0.0.1:{emu.port}/socket-mode?ticket=forged")
    assert bad.status == 401
    bad.close()

    url = WebClient(base_url=emu.api_url).apps_connections_open(app_token="xapp-x")["url"]
    once = RawWebSocket(url)
    assert once.status == 101
    again = RawWebSocket(url)  # tickets are single use
    assert again.status == 401
    again.close()
    assert once.recv()[0] == 0x1  # hello
    once.send(0x1, b"{}", mask=False)
    opcode, data = once.recv()
    assert opcode == 0x8 and struct.unpack("!H", data[:2])[0] == 1002
    once.close()


def test_a_fragmented_ack_counts_and_binary_data_is_refused(emu: Any) -> None:
    url = WebClient(base_url=emu.api_url).apps_connections_open(app_token="xapp-x")["url"]
    ws = RawWebSocket(url)
    try:
        assert ws.recv()[0] == 0x1  # hello
        emu.wait_for_socket()
        result: dict[str, Any] = {}
        worker = threading.Thread(
            target=lambda: result.update(reply=emu.slash_command(OPERATOR, "x"))
        )
        worker.start()
        envelope = json.loads(ws.recv()[1])
        ack = json.dumps({"envelope_id": envelope["envelope_id"], "payload": {"text": "in two"}})
        half = len(ack) // 2
        ws.send(0x1, ack[:half].encode(), fin=False)  # a text frame, then its continuation
        ws.send(0x0, ack[half:].encode())
        worker.join(5)
        assert result["reply"].status == 200 and result["reply"].json == {"text": "in two"}

        ws.send(0x2, b"\x00\x01")  # Slack speaks text only
        opcode, data = ws.recv()
        assert opcode == 0x8 and struct.unpack("!H", data[:2])[0] == 1003
        wait_until(lambda: emu.socket_connections == 0, 5, "the close")
    finally:
        ws.close()


def test_no_ack_is_a_timeout(emu: Any) -> None:
    emu.delivery_timeout = 0.5
    emu.delivery = "socket"
    reply = emu.slash_command(OPERATOR, "help")  # nobody connected
    assert reply.status == 503
    url = WebClient(base_url=emu.api_url).apps_connections_open(app_token="xapp-x")["url"]
    ws = RawWebSocket(url)
    try:
        ws.recv()  # hello
        emu.wait_for_socket()
        reply = emu.slash_command(OPERATOR, "help")  # delivered, never acked
        assert reply.status == 504 and reply.elapsed >= 0.5
        assert json.loads(ws.recv()[1])["type"] == "slash_commands"
    finally:
        ws.close()
