"""The emulator's HTTP front: ``/api/<method>``, ``/response/<token>``, the Socket Mode upgrade."""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from bot.playground.slack_emulator import websocket
from bot.playground.slack_emulator.files import FILES_PATH, UPLOAD_PATH
from bot.playground.slack_emulator.records import JSON
from bot.playground.slack_emulator.socket_mode import SOCKET_MODE_PATH

if TYPE_CHECKING:
    from bot.playground.slack_emulator.web_api import WebApi


class Handler(BaseHTTPRequestHandler):
    """HTTP front of the emulator: ``/api/<method>``, ``/response/<token>``, ``/socket-mode``."""

    emu: WebApi
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        """Web API methods may be called with GET and a query string."""
        self._dispatch(b"")

    def do_POST(self) -> None:
        """Web API methods and response_urls."""
        self._dispatch(self._read_body())

    def _dispatch(self, raw: bytes) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/api/"):
            self._api(url.path[len("/api/") :], url.query, raw)
        elif url.path.startswith("/response/") and self.command == "POST":
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._send(400, b"invalid_payload", "text/plain", {})
                return
            status, text = self.emu.handle_response_url(url.path[len("/response/") :], body)
            kind = "application/json" if text.startswith("{") else "text/plain"
            self._send(status, text.encode(), kind, {})
        elif url.path.startswith(UPLOAD_PATH) and self.command == "POST":
            status, text = self.emu.uploads.receive(url.path[len(UPLOAD_PATH) :], raw)
            self._send(status, text.encode(), "text/plain", {})
        elif url.path.startswith(FILES_PATH) and self.command == "GET":
            auth = self.headers.get("Authorization") or ""
            token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
            status, data, kind = self.emu.uploads.download(url.path, token)
            self._send(status, data, kind, {})
        elif url.path == "/healthz":
            self._send(200, b"ok", "text/plain", {})
        elif url.path == SOCKET_MODE_PATH and self.command == "GET":
            self._websocket(url.query)
        else:
            self._send(404, b"not found", "text/plain", {})

    def _websocket(self, query: str) -> None:
        """Upgrade to a Socket Mode WebSocket (its ticket is good once), then serve it."""
        ticket = (urllib.parse.parse_qs(query).get("ticket") or [""])[-1]
        self.close_connection = True
        protocol = websocket.accept(
            self.connection,
            self.requestline,
            self.headers.items(),
            allowed=lambda: self.emu._take_socket_ticket(ticket),
        )
        if protocol is not None:
            conn = websocket.WebSocketConnection(self.connection, self.rfile, protocol)
            self.emu._serve_socket(conn)

    def _api(self, method: str, query: str, raw: bytes) -> None:
        args: JSON = {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}
        content_type = (self.headers.get("Content-Type") or "").lower()
        if raw:
            if content_type.startswith("application/json"):
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    parsed = None
                if not isinstance(parsed, dict):
                    self._send(200, b'{"ok":false,"error":"invalid_json"}', "application/json", {})
                    return
                args.update(parsed)
            else:
                form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
                args.update({k: v[-1] for k, v in form.items()})
                # Slack decodes JSON-valued form fields
                for key in ("blocks", "attachments", "view", "metadata"):
                    if isinstance(args.get(key), str) and args[key][:1] in "[{":
                        with contextlib.suppress(ValueError):
                            args[key] = json.loads(args[key])
        token = args.pop("token", None)
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Bearer "):
            token = auth[len("Bearer ") :]
        status, body, headers = self.emu.handle_api(method, args, token)
        self._send(status, json.dumps(body).encode(), "application/json; charset=utf-8", headers)
