"""Socket Mode as Slack runs it: ``apps.connections.open`` tickets, the ``hello``, envelopes sent to
the bot and the acks it answers with, ``disconnect`` refreshes.

The WebSocket itself is ``websocket.py``'s (the websockets library's protocol).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any

from bot.playground.slack_emulator import websocket
from bot.playground.slack_emulator.records import JSON, Delivery, Reply
from bot.playground.slack_emulator.views import Views
from bot.playground.slack_emulator.workspace import APP_ID

# Socket Mode (https://api.slack.com/apis/socket-mode)
SOCKET_MODE_PATH = "/socket-mode"
SOCKET_HOST = "applink-emulator"  # what Slack reports as debug_info.host
SOCKET_CONNECTION_TIME = 18060  # seconds Slack says a connection lives (hello.debug_info)


@dataclass
class _PendingAck:
    """A delivered envelope waiting for the bot's ack."""

    done: threading.Event = field(default_factory=threading.Event)
    acked: bool = False
    payload: Any = None


class SocketMode(Views):
    """Delivery to the bot over Socket Mode connections."""

    host: str
    port: int
    app_token: str | None
    delivery: str
    delivery_timeout: float
    socket_ping_interval: float | None

    def __init__(self) -> None:
        super().__init__()
        self._sockets: list[websocket.WebSocketConnection] = []  # open, oldest first
        self._socket_tickets: set[str] = set()  # issued by apps.connections.open, used once
        self._acks: dict[str, _PendingAck] = {}  # envelope_id -> waiting delivery
        self._envelopes: set[str] = set()  # every envelope_id sent
        self.socket_connects = 0  # Socket Mode connections accepted so far

    # ----------------------------------------------------------------- Socket Mode

    @property
    def socket_connections(self) -> int:
        """How many Socket Mode connections are open."""
        with self._lock:
            return sum(1 for c in self._sockets if not c.closed)

    def wait_for_socket(self, timeout: float = 10.0, *, count: int = 1) -> int:
        """Wait until at least ``count`` Socket Mode connections are open; return how many."""
        result: int = self.wait_for(
            lambda: self.socket_connections >= count and self.socket_connections,
            timeout,
            message=f"{count} Socket Mode connection(s)",
        )
        return result

    def refresh_sockets(self, reason: str = "refresh_requested") -> int:
        """Send Slack's ``disconnect`` message to every open connection (clients reconnect)."""
        message = json.dumps(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": SOCKET_HOST}}
        )
        with self._lock:
            sockets = [c for c in self._sockets if not c.closed]
        for conn in sockets:
            with contextlib.suppress(OSError):
                conn.send_text(message)
        return len(sockets)

    def close_sockets(self, code: int = 1001, reason: str = "") -> None:
        """Close every Socket Mode connection with a close frame, as Slack does on restarts."""
        with self._lock:
            sockets = list(self._sockets)
        for conn in sockets:
            conn.close(code, reason)

    def _over_socket(self) -> bool:
        if self.delivery == "socket":
            return True
        if self.delivery == "http":
            return False
        if self.delivery != "auto":
            raise ValueError(f"delivery must be auto, socket or http, not {self.delivery!r}")
        return self.socket_connections > 0

    def _take_socket_ticket(self, ticket: str) -> bool:
        with self._lock:
            if ticket in self._socket_tickets:
                self._socket_tickets.discard(ticket)
                return True
            return False

    def _apps_connections_open(self, args: JSON) -> JSON:
        ticket = str(uuid.uuid4())
        with self._lock:
            self._socket_tickets.add(ticket)
        host = self.host if self.host not in ("", "0.0.0.0") else "127.0.0.1"
        query = urllib.parse.urlencode({"ticket": ticket, "app_id": APP_ID})
        return {"url": f"ws://{host}:{self.port}{SOCKET_MODE_PATH}?{query}"}

    def _serve_socket(self, conn: websocket.WebSocketConnection) -> None:
        """Run one accepted Socket Mode connection (in its HTTP handler thread) until it closes."""
        with self._lock:
            live = sum(1 for c in self._sockets if not c.closed)
        hello = {
            "type": "hello",
            "num_connections": live + 1,
            "debug_info": {
                "host": SOCKET_HOST,
                "build_number": 1,
                "approximate_connection_time": SOCKET_CONNECTION_TIME,
            },
            "connection_info": {"app_id": APP_ID},
        }
        try:
            conn.send_text(json.dumps(hello))
        except OSError:
            conn.close()
            return
        with self._lock:
            self._sockets.append(conn)
            self.socket_connects += 1
            self._changed({"kind": "socket_connected", "connection": conn.id})
        if self.socket_ping_interval:
            interval = self.socket_ping_interval
            threading.Thread(
                target=conn.keep_pinging, args=(interval,), name="socket-ping", daemon=True
            ).start()
        try:
            conn.run(self._on_socket_text)
        finally:
            with self._lock:
                if conn in self._sockets:
                    self._sockets.remove(conn)
                self._changed({"kind": "socket_closed", "connection": conn.id})

    def _on_socket_text(self, text: str) -> None:
        """A text frame from the bot: the ack of an envelope (``envelope_id`` + ``payload``)."""
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        with self._lock:
            envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
            pending = self._acks.get(str(envelope_id))
            if pending is not None and isinstance(message, dict):
                pending.payload = message.get("payload")
                pending.acked = True
                pending.done.set()
            elif envelope_id not in self._envelopes:  # a late ack is simply too late
                self.problems.append(f"socket mode: unexpected message {text[:200]!r}")

    def _deliver_socket(
        self, kind: str, payload: JSON, retry_num: int | None, retry_reason: str | None
    ) -> Reply:
        """Send ``payload`` in an envelope over Socket Mode and wait for the bot's ack."""
        envelope_id = str(uuid.uuid4())
        envelope: JSON = {
            "envelope_id": envelope_id,
            "type": {"slash_command": "slash_commands", "events_api": "events_api"}.get(
                kind, "interactive"
            ),
            "payload": payload,
            # Slack shows/applies an ack payload for commands and view submissions only
            "accepts_response_payload": kind in ("slash_command", "view_submission"),
        }
        if retry_num is not None:
            envelope["retry_attempt"] = retry_num
            envelope["retry_reason"] = retry_reason or "timeout"
        text = json.dumps(envelope)
        pending = _PendingAck()
        started = time.monotonic()
        deadline = started + self.delivery_timeout
        with self._lock:
            self._acks[envelope_id] = pending
            self._envelopes.add(envelope_id)
        reply: Reply | None = None
        try:
            while reply is None:
                with self.changed:
                    self.changed.wait_for(
                        lambda: any(not c.closed for c in self._sockets) or pending.done.is_set(),
                        timeout=max(0.0, deadline - time.monotonic()),
                    )
                    live = [c for c in self._sockets if not c.closed]
                if not live or pending.done.is_set():
                    reply = Reply(
                        503, "no Socket Mode connection", None, time.monotonic() - started
                    )
                    break
                try:
                    live[-1].send_text(text)  # Slack picks one of the app's connections
                except OSError:
                    live[-1].close()
                    continue
                if pending.done.wait(max(0.0, deadline - time.monotonic())) and pending.acked:
                    ack = pending.payload if isinstance(pending.payload, dict) else None
                    body = json.dumps(ack) if ack else ""
                    reply = Reply(200, body, ack if ack else None, time.monotonic() - started)
                else:
                    reply = Reply(504, "no ack", None, time.monotonic() - started)
        finally:
            with self._lock:
                self._acks.pop(envelope_id, None)
        with self._lock:
            self._deliveries.append(Delivery(kind=kind, payload=payload, reply=reply, via="socket"))
            self._changed({"kind": "delivery", "type": kind})
        return reply
