"""The playground's web page: a small Slack in the browser over the one Slack emulator.

A WSGI app that `BotServer` mounts next to `/slack/events` (`extra=`). It serves the page and
its static files, the emulator's model as JSON filtered for one user (ephemerals and modals are
per user), a stream of that state as server-sent events, and one POST endpoint per user gesture:
each calls the emulator, which delivers to the bot exactly as Slack would (signed, with
response_url and trigger_id).

URL layout (all JSON bodies, all answers JSON except the page, static files and the stream):

- ``GET  /``                          the page
- ``GET  /static/<app.css|app.js>``   its assets
- ``GET  /api/state?user=U…``         the state as that user sees it
- ``GET  /api/events?user=U…``        ``text/event-stream``: an ``event: state`` on connect and
                                      after every change that user can see; a comment every 15 s
- ``POST /api/message``  ``{user, channel, text, thread_ts?}``   ``/device …`` goes to the bot
                         as a slash command; anything else is echoed as the user's message
- ``POST /api/click``    ``{user, action_id, block_id?, channel?, ts?, ephemeral?, view_id?,
                         value?}``   a button, select, overflow… in a message or a modal
- ``POST /api/submit``   ``{user, view_id, values: {block_id: {action_id: value}}}``
- ``POST /api/close``    ``{user, view_id?, all?}``   the close button / the × of a modal
- ``POST /api/home``     ``{user}``   the user opens the app's Home tab (``app_home_opened``)
- ``POST /api/step``     ``{user, device, action, reason}``   a workflow runs the custom step
                         "Request a device action" for the user (``function_executed``)

POSTs must be ``application/json`` and every request must name a loopback Host, so another web
site open in the same browser can neither drive the bot nor read the page (DNS rebinding).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from importlib import resources
from typing import Any

from bot.playground.page import BadRequest, Page
from bot.playground.slack_emulator import JSON

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]

STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
}
HEARTBEAT_SECONDS = 15.0
STREAM_MAX_SECONDS = 600.0  # the browser's EventSource reconnects by itself
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' https: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
]


class Playground:
    """The WSGI app of the playground page (mount it with ``BotServer(..., extra=...)``)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self._closing = False
        self._streams = 0

    def close(self) -> None:
        """End every open event stream (call before stopping the HTTP server)."""
        self.page.close()
        with self.page.changed:
            self._closing = True
            self.page.changed.notify_all()
            self.page.changed.wait_for(lambda: self._streams == 0, timeout=2.0)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Route one request."""
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "") or "/"
        if not _loopback(environ.get("HTTP_HOST", "")):
            return _plain(
                start_response, "403 Forbidden", "the playground answers on loopback only\n"
            )
        try:
            if method in ("GET", "HEAD"):
                return self._get(path, environ, start_response)
            if method == "POST":
                return self._post(path, environ, start_response)
            return _plain(start_response, "405 Method Not Allowed", "method not allowed\n")
        except BadRequest as exc:
            return _json(start_response, {"ok": False, "error": str(exc)}, "400 Bad Request")

    def _get(
        self, path: str, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        user = (query.get("user") or [self.page.people[0].user_id])[-1]
        if path in ("/", "/index.html"):
            return _static(start_response, "index.html")
        if path.startswith("/static/"):
            name = path[len("/static/") :]
            if name in STATIC_FILES:
                return _static(start_response, name)
        if path == "/api/state":
            return _json(start_response, self.page.state(user))
        if path == "/api/events":
            self.page.person(user)
            start_response(
                "200 OK",
                [
                    ("Content-Type", "text/event-stream; charset=utf-8"),
                    ("Cache-Control", "no-store"),
                    ("X-Accel-Buffering", "no"),
                    *SECURITY_HEADERS,
                ],
            )
            return self._events(user)
        if path.startswith("/files/"):
            return self._file(path, start_response)
        if path == "/favicon.ico":
            start_response("204 No Content", [])
            return [b""]
        return _plain(start_response, "404 Not Found", "not found\n")

    def _file(self, path: str, start_response: StartResponse) -> list[bytes]:
        """`GET /files/<id>/<name>`: a file the bot shared, from this page's own origin (the page
        shows an image inline; its CSP keeps images to its origin). A person's own upload needs
        the bot token on the emulator, and is not served here."""
        status, body, ctype = self.page.emu.uploads.download(path)
        if status != 200:
            return _plain(start_response, "404 Not Found", "not found\n")
        start_response(
            "200 OK",
            [
                ("Content-Type", ctype),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                *SECURITY_HEADERS,
            ],
        )
        return [body]

    def _post(
        self, path: str, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        routes: dict[str, Callable[[JSON], JSON]] = {
            "/api/message": self.page.send_message,
            "/api/click": self.page.click,
            "/api/submit": self.page.submit,
            "/api/close": self.page.close_view,
            "/api/home": self.page.open_home,
            "/api/step": self.page.run_step,
            "/api/suggest": self.page.suggest,
        }
        handler = routes.get(path)
        if handler is None:
            return _plain(start_response, "404 Not Found", "not found\n")
        if not (environ.get("CONTENT_TYPE") or "").startswith("application/json"):
            return _plain(start_response, "415 Unsupported Media Type", "send application/json\n")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > 1_000_000:
            return _plain(start_response, "413 Payload Too Large", "too large\n")
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise BadRequest("invalid JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("expected a JSON object")
        return _json(start_response, handler(body))

    def _events(self, user: str) -> Iterator[bytes]:
        """Server-sent events: the user's state whenever it changes, heartbeats in between."""
        with self.page.changed:
            self._streams += 1
        try:
            yield from self._stream(user)
        finally:
            with self.page.changed:
                self._streams -= 1
                self.page.changed.notify_all()

    def _stream(self, user: str) -> Iterator[bytes]:
        started = time.monotonic()
        sent = ""
        yield b"retry: 1000\n\n"
        while not self._closing and time.monotonic() - started < STREAM_MAX_SECONDS:
            key = self.page.key()
            state = self.page.state(user)
            data = json.dumps(state, separators=(",", ":"))
            visible = json.dumps({k: v for k, v in state.items() if k != "version"})
            if visible != sent:  # most changes (a Web API call, a delivery) show nothing new
                sent = visible
                yield f"id: {state['version']}\nevent: state\ndata: {data}\n\n".encode()
            with self.page.changed:
                self.page.changed.wait_for(partial(self._moved_on, key), timeout=HEARTBEAT_SECONDS)
            if self.page.key() == key and not self._closing:
                yield b": heartbeat\n\n"  # also how a closed tab is noticed: the write fails

    def _moved_on(self, key: tuple[int, int]) -> bool:
        return self._closing or self.page.key() != key


def _loopback(host_header: str) -> bool:
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host.split("]")[0] + "]"
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return host in LOOPBACK_HOSTS


def _plain(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *SECURITY_HEADERS,
        ],
    )
    return [body]


def _json(start_response: StartResponse, data: Any, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(data, separators=(",", ":")).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            *SECURITY_HEADERS,
        ],
    )
    return [body]


def _static(start_response: StartResponse, name: str) -> list[bytes]:
    body = resources.files("bot.playground").joinpath("static", name).read_bytes()
    start_response(
        "200 OK",
        [
            ("Content-Type", STATIC_FILES[name]),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
            *SECURITY_HEADERS,
        ],
    )
    return [body]
