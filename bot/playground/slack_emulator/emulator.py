"""A local Slack: answers the Web API like Slack, records every call, and talks to the bot as Slack does.

Standalone on purpose (standard library, slack_sdk and websockets only): the end-to-end tests
and the browser playground share this one emulator. Every ``blocks`` and ``view`` the bot sends
is held to Block Kit as Slack checks it (``blockkit``); what Slack would refuse is answered
``invalid_blocks`` and kept in ``refusals``.

Two sides:
- the Web API (``POST /api/<method>``, form-encoded or JSON, ``Authorization: Bearer``) and
  ``response_url``s (``POST /response/<token>``), served by a ``ThreadingHTTPServer``;
- delivery to the bot (``slash_command``, ``click``, ``submit_view``, ``close_view``): signed
  ``POST``s to ``bot_url`` with the bodies and headers Slack sends, or, once the bot has opened
  a Socket Mode connection (``apps.connections.open`` with an ``xapp-`` token, then a WebSocket
  on ``/socket-mode``), envelopes over that WebSocket, answered by the bot's ack (``delivery``).

Everything lands in one model (channels, messages, threads, ephemerals, open modals) guarded by
one lock; ``version`` and ``changed`` (a ``threading.Condition``) let a UI stream changes.

The class is built up a layer per module, each on the one before: ``workspace`` (the model and
its queries), ``views``, ``socket_mode``, ``web_api`` (the method table and response_urls),
``gestures``, ``events``; this module adds the server's lifecycle.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer

from slack_sdk.signature import SignatureVerifier

from bot.playground.slack_emulator.events import Events
from bot.playground.slack_emulator.files import FileUploads
from bot.playground.slack_emulator.http_handler import Handler as _Handler
from bot.playground.slack_emulator.records import JSON
from bot.playground.slack_emulator.workspace import BOT_USER_ID, DEFAULT_CHANNELS, DEFAULT_USERS


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # a burst of the bot's answers (bench/load.py: 200 a second) overflowed the stdlib's
    # backlog of 5, and the bot's response_url posts were reset
    request_queue_size = 256


class SlackEmulator(Events):
    """A fake Slack workspace with a Web API, response_urls and signed delivery to a bot."""

    def __init__(
        self,
        signing_secret: str = "test-secret",
        bot_token: str = "xoxb-test",
        bot_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        team_id: str = "T0SANDBOX",
        *,
        team_domain: str = "sandbox",
        clock: Callable[[], float] = time.time,
        delivery_timeout: float = 10.0,
        app_token: str | None = None,
        delivery: str = "auto",
    ) -> None:
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        self.bot_url = bot_url
        self.host = host
        self.port = port
        self.team_id = team_id
        self.team_domain = team_domain
        self.clock = clock
        self.delivery_timeout = delivery_timeout
        # Socket Mode: the app-level token apps.connections.open accepts (None: any ``xapp-``)
        self.app_token = app_token
        # "auto": over Socket Mode while a connection is open, else signed HTTP to bot_url;
        # "socket": always Socket Mode (waits up to delivery_timeout for a connection); "http"
        self.delivery = delivery
        # Slack pings Socket Mode clients; frequent pings also wake slack_sdk's built-in client,
        # which holds its receive lock in a 3 s recv, so its close() and refreshes end promptly
        self.socket_ping_interval: float | None = 0.25
        self.verification_token = "sandbox-verification-token"
        self._verifier = SignatureVerifier(signing_secret)

        super().__init__()
        self.uploads = FileUploads(self)  # files.getUploadURLExternal / completeUploadExternal
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

        self.add_user(BOT_USER_ID, name="device-bot", real_name="Device Bot", is_bot=True)
        for uid, name, real_name in DEFAULT_USERS:
            self.add_user(uid, name=name, real_name=real_name)
        for cid, cname in DEFAULT_CHANNELS:
            self.add_channel(cid, cname)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> SlackEmulator:
        """Serve the Web API and response_urls in daemon threads; return self."""
        emulator = self

        class Handler(_Handler):
            emu = emulator

        server = _Server((self.host, self.port), Handler)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.01,), name="slack-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (closing Socket Mode connections first)."""
        with self._lock:
            sockets = list(self._sockets)
            for pending in self._acks.values():
                pending.done.set()  # nobody will ack any more
        for conn in sockets:
            conn.close(1001, "server shutting down")
        for conn in sockets:
            conn.join(timeout=5)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SlackEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def snapshot(self) -> JSON:
        """The whole model as JSON-able data (for a UI)."""
        with self._lock:
            return copy.deepcopy(
                {
                    "version": self.version,
                    "team_id": self.team_id,
                    "users": list(self._users.values()),
                    "channels": list(self._channels.values()),
                    "messages": self._messages,
                    "ephemerals": self._ephemerals,
                    "views": {u: [self._views[v] for v in s] for u, s in self._stacks.items()},
                    "homes": {u: self._views[v] for u, v in self._home.items()},
                    "executions": list(self._executions.values()),
                    "view_errors": self._view_errors,
                }
            )
