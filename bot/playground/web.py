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
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from importlib import resources
from typing import Any

from bot.playground.slack_emulator import JSON, Reply, SlackEmulator

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]

STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
}
HEARTBEAT_SECONDS = 15.0
STREAM_MAX_SECONDS = 600.0  # the browser's EventSource reconnects by itself
SLOW_ACK_SECONDS = 3.0  # Slack gives up on an app that has not acknowledged within 3 s
MAX_TEXT = 4000
MAX_UPLOAD = 2 * 1024 * 1024  # a file picked in a modal (bulk CSVs)
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
SLACKBOT = "USLACKBOT"
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


class BadRequest(Exception):
    """A gesture the page should not have sent; answered with 400 and the message."""


@dataclass(frozen=True)
class Person:
    """Someone the page lets you be, with the role the bot's settings give them."""

    user_id: str
    name: str
    role: str  # "operator" | "approver" | "not allowed"


class Playground:
    """The WSGI app of the playground page (mount it with ``BotServer(..., extra=...)``)."""

    def __init__(
        self,
        emulator: SlackEmulator,
        people: Iterable[Person],
        *,
        default_channel: str = "C0HELPDESK",
        hints: Iterable[str] = (),
        topics: dict[str, str] | None = None,
        title: str = "device-bot playground",
    ) -> None:
        self.emu = emulator
        self.people = list(people)
        if not self.people:
            raise ValueError("the playground needs at least one person to be")
        self.default_channel = default_channel
        self.hints = list(hints)
        self.topics = dict(topics or {})
        self.title = title
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._local: list[JSON] = []  # what users typed: echoes and Slackbot notices
        self._local_version = 0
        self._last_ts = 0.0
        self._closing = False
        self._streams = 0
        self._unsubscribe = emulator.subscribe(self._on_emulator_change)

    # ---- life cycle -----------------------------------------------------------------------
    def close(self) -> None:
        """End every open event stream (call before stopping the HTTP server)."""
        self._unsubscribe()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._streams == 0, timeout=2.0)

    def _on_emulator_change(self, event: JSON) -> None:
        # runs under the emulator's lock: only wake the streams, never call back into it
        with self._cond:
            self._cond.notify_all()

    def _bump(self) -> None:
        with self._cond:
            self._local_version += 1
            self._cond.notify_all()

    # ---- the model as one user sees it ----------------------------------------------------------
    def _ts(self) -> str:
        with self._lock:
            now = max(time.time(), self._last_ts + 0.000001)
            self._last_ts = now
            return f"{now:.6f}"

    def _add_local(self, item: JSON) -> JSON:
        item = {"ts": self._ts(), "local": True, **item}
        with self._lock:
            self._local.append(item)
        self._bump()
        return item

    def _notice(self, user: str, channel: str, text: str) -> None:
        """What Slack itself would tell the user (Slackbot, only visible to them)."""
        self._add_local(
            {
                "type": "message",
                "user": SLACKBOT,
                "channel": channel,
                "text": text,
                "is_ephemeral": True,
                "visible_to": user,
            }
        )

    def state(self, user: str) -> JSON:
        """Everything ``user`` can see: channels, messages, their ephemerals and modals."""
        self._person(user)
        snap = self.emu.snapshot()
        with self._lock:
            local = [dict(m) for m in self._local]
            local_version = self._local_version
        channels = [
            _channel_summary(c, self.topics.get(c["id"], ""))
            for c in snap["channels"]
            if not c.get("is_im") or c.get("user") == user
        ]
        visible = {c["id"] for c in channels}
        messages: dict[str, list[JSON]] = {cid: [] for cid in visible}
        for cid, msgs in snap["messages"].items():
            if cid in visible:
                messages[cid].extend(msgs)
        ephemerals = [e for e in snap["ephemerals"] if e.get("user") == user]
        for item in local:
            cid = item.get("channel", "")
            if cid not in messages:
                continue
            if item.get("is_ephemeral"):
                if item.get("visible_to") == user:
                    ephemerals.append(item)
            else:
                messages[cid].append(item)
        for msgs in messages.values():
            msgs.sort(key=lambda m: float(m.get("ts") or 0))
        ephemerals.sort(key=lambda m: float(m.get("ts") or 0))
        views = []
        for view in snap["views"].get(user, []):
            view = dict(view)
            view["errors"] = snap["view_errors"].get(view["id"], {})
            views.append(view)
        return {
            "version": f"{snap['version']}.{local_version}",
            "title": self.title,
            "me": user,
            "team_id": snap["team_id"],
            "default_channel": self.default_channel,
            "hints": self.hints,
            "people": [{"id": p.user_id, "name": p.name, "role": p.role} for p in self.people],
            "users": {
                u["id"]: {
                    "id": u["id"],
                    "name": u.get("name", ""),
                    "real_name": u.get("real_name") or u.get("name", ""),
                    "is_bot": bool(u.get("is_bot")),
                }
                for u in snap["users"]
            },
            "channels": channels,
            "messages": messages,
            "ephemerals": ephemerals,
            "views": views,
            "home": snap["homes"].get(user),
            "steps": [
                {k: e.get(k) for k in ("id", "inputs", "state", "outputs", "error", "started")}
                for e in snap["executions"]
                if (e.get("inputs") or {}).get("requested_by") == user
            ][-10:],
            "problems": list(self.emu.problems[-20:]),
        }

    def _person(self, user: Any) -> str:
        if not isinstance(user, str) or not any(p.user_id == user for p in self.people):
            raise BadRequest(f"unknown user {user!r}")
        return user

    def _channel(self, channel: Any) -> str:
        known = {c["id"] for c in self.emu.channels}
        if not isinstance(channel, str) or channel not in known:
            raise BadRequest(f"unknown channel {channel!r}")
        return channel

    # ---- gestures ------------------------------------------------------------------------------
    def send_message(self, body: JSON) -> JSON:
        """The message box: ``/device …`` goes to the bot; anything else is the user's message."""
        user = self._person(body.get("user"))
        channel = self._channel(body.get("channel"))
        text = str(body.get("text") or "").strip()
        if not text:
            raise BadRequest("empty message")
        if len(text) > MAX_TEXT:
            raise BadRequest(f"message longer than {MAX_TEXT} characters")
        thread_ts = body.get("thread_ts") or None
        if text.startswith("/"):
            command, _, rest = text.partition(" ")
            self._add_local(
                {
                    "type": "message",
                    "user": user,
                    "channel": channel,
                    "text": text,
                    "is_ephemeral": True,
                    "visible_to": user,
                    "command": True,
                }
            )
            if command != "/device":
                self._notice(
                    user, channel, f"`{command}` is not a valid command here. Try `/device help`."
                )
                return {"ok": False, "error": "unknown_command"}
            reply = self.emu.slash_command(user, rest.strip(), command=command, channel_id=channel)
            return self._outcome(reply, user, channel, f"{command} failed with the error")
        message: JSON = {"type": "message", "user": user, "channel": channel, "text": text}
        if thread_ts:
            message["thread_ts"] = str(thread_ts)
        stored = self._add_local(message)
        return {"ok": True, "ts": stored["ts"]}

    def click(self, body: JSON) -> JSON:
        """A button, select or overflow used in a message or in a modal."""
        user = self._person(body.get("user"))
        action_id = body.get("action_id")
        if not isinstance(action_id, str) or not action_id:
            raise BadRequest("action_id is required")
        kwargs: JSON = {}
        if body.get("block_id"):
            kwargs["block_id"] = str(body["block_id"])
        if body.get("view_id"):
            kwargs["view"] = str(body["view_id"])
        elif body.get("ts"):
            kwargs["message"] = {
                "channel": self._channel(body.get("channel")),
                "ts": str(body["ts"]),
                "is_ephemeral": bool(body.get("ephemeral")),
            }
        if body.get("value") is not None:
            kwargs["value"] = body["value"]
        try:
            reply = self.emu.click(user, action_id, **kwargs)
        except AssertionError as exc:  # the element vanished (message updated meanwhile)
            return {"ok": False, "error": "element_not_found", "detail": str(exc)[:300]}
        channel = str(body.get("channel") or self.default_channel)
        return self._outcome(reply, user, channel, "device-bot did not handle that click:")

    def submit(self, body: JSON) -> JSON:
        """A modal's submit button."""
        user = self._person(body.get("user"))
        values = body.get("values") or {}
        if not isinstance(values, dict):
            raise BadRequest("values must be an object")
        view_id = body.get("view_id") or None
        values = self._uploads(user, values)
        try:
            reply = self.emu.submit_view(user, view_id, values)
        except AssertionError as exc:
            return {"ok": False, "error": "view_not_open", "detail": str(exc)[:300]}
        out = self._outcome(
            reply, user, self.default_channel, "device-bot did not accept the form:"
        )
        if view_id:
            out["errors"] = self.emu.view_errors(str(view_id))
        return out

    def _uploads(self, user: str, values: JSON) -> JSON:
        """A file picked in a file_input arrives as {"upload": {name, text}}: store it as the
        person's upload and put its file object in the state, as Slack does."""
        out: JSON = {}
        for block_id, by_action in values.items():
            if not isinstance(by_action, dict):
                out[block_id] = by_action
                continue
            out[block_id] = {}
            for action_id, value in by_action.items():
                if (
                    isinstance(value, list)
                    and value
                    and all(
                        isinstance(v, dict) and isinstance(v.get("upload"), dict) for v in value
                    )
                ):
                    value = [
                        self.emu.uploads.user_upload(
                            user,
                            str(v["upload"].get("name") or "upload.csv")[:200],
                            str(v["upload"].get("text") or "").encode()[:MAX_UPLOAD],
                        )
                        for v in value[:1]
                    ]
                out[block_id][action_id] = value
        return out

    def suggest(self, body: JSON) -> JSON:
        """An external_select of a modal asks the bot for its options (block_suggestion)."""
        user = self._person(body.get("user"))
        action_id, view_id = body.get("action_id"), body.get("view_id")
        if not isinstance(action_id, str) or not action_id or not view_id:
            raise BadRequest("action_id and view_id are required")
        block_id = str(body["block_id"]) if body.get("block_id") else None
        try:
            options = self.emu.suggest(
                user, action_id, str(body.get("value") or ""), view=str(view_id), block_id=block_id
            )
        except AssertionError as exc:
            return {"ok": False, "error": "view_not_open", "detail": str(exc)[:300]}
        return {"ok": True, "options": options}

    def close_view(self, body: JSON) -> JSON:
        """The close button (top modal) or the × (the whole stack)."""
        user = self._person(body.get("user"))
        closed = 0
        while self.emu.open_view(user) is not None:
            top = self.emu.open_view(user) or {}
            if body.get("view_id") and not body.get("all") and top.get("id") != body["view_id"]:
                break
            self.emu.close_view(user)
            closed += 1
            if not body.get("all"):
                break
        return {"ok": True, "closed": closed}

    def open_home(self, body: JSON) -> JSON:
        """The app's Home tab was opened: Slack sends app_home_opened, the bot publishes."""
        user = self._person(body.get("user"))
        reply = self.emu.open_home(user)
        return {"ok": reply.status == 200, "status": reply.status}

    def run_step(self, body: JSON) -> JSON:
        """A workflow ran "Request a device action" with the form's inputs, for this user."""
        from bot import ids

        user = self._person(body.get("user"))
        inputs = {
            k: str(body.get(k) or "").strip()[:MAX_TEXT] for k in ("device", "action", "reason")
        }
        if not inputs["device"] or not inputs["action"]:
            raise BadRequest("device and action are required")
        execution_id = self.emu.run_step(ids.STEP_REQUEST_ACTION, {**inputs, "requested_by": user})
        return {"ok": True, "execution_id": execution_id}

    def _outcome(self, reply: Reply, user: str, channel: str, failure: str) -> JSON:
        """Turn the bot's HTTP answer into what Slack would show when it goes wrong."""
        if reply.status != 200:
            self._notice(user, channel, f"{failure} `http_error_{reply.status}`")
            return {"ok": False, "error": f"http_{reply.status}", "status": reply.status}
        if reply.elapsed > SLOW_ACK_SECONDS:
            self._notice(user, channel, f"{failure} `operation_timeout`")
            return {"ok": False, "error": "operation_timeout", "status": reply.status}
        return {"ok": True, "status": reply.status}

    # ---- WSGI -------------------------------------------------------------------------------------
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
        user = (query.get("user") or [self.people[0].user_id])[-1]
        if path in ("/", "/index.html"):
            return _static(start_response, "index.html")
        if path.startswith("/static/"):
            name = path[len("/static/") :]
            if name in STATIC_FILES:
                return _static(start_response, name)
        if path == "/api/state":
            return _json(start_response, self.state(user))
        if path == "/api/events":
            self._person(user)
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
        if path == "/favicon.ico":
            start_response("204 No Content", [])
            return [b""]
        return _plain(start_response, "404 Not Found", "not found\n")

    def _post(
        self, path: str, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        routes: dict[str, Callable[[JSON], JSON]] = {
            "/api/message": self.send_message,
            "/api/click": self.click,
            "/api/submit": self.submit,
            "/api/close": self.close_view,
            "/api/home": self.open_home,
            "/api/step": self.run_step,
            "/api/suggest": self.suggest,
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
        with self._cond:
            self._streams += 1
        try:
            yield from self._stream(user)
        finally:
            with self._cond:
                self._streams -= 1
                self._cond.notify_all()

    def _stream(self, user: str) -> Iterator[bytes]:
        started = time.monotonic()
        sent = ""
        yield b"retry: 1000\n\n"
        while not self._closing and time.monotonic() - started < STREAM_MAX_SECONDS:
            key = self._key()
            state = self.state(user)
            data = json.dumps(state, separators=(",", ":"))
            visible = json.dumps({k: v for k, v in state.items() if k != "version"})
            if visible != sent:  # most changes (a Web API call, a delivery) show nothing new
                sent = visible
                yield f"id: {state['version']}\nevent: state\ndata: {data}\n\n".encode()
            with self._cond:
                self._cond.wait_for(partial(self._moved_on, key), timeout=HEARTBEAT_SECONDS)
            if self._key() == key and not self._closing:
                yield b": heartbeat\n\n"  # also how a closed tab is noticed: the write fails

    def _moved_on(self, key: tuple[int, int]) -> bool:
        return self._closing or self._key() != key

    def _key(self) -> tuple[int, int]:
        return self.emu.version, self._local_version


def _loopback(host_header: str) -> bool:
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host.split("]")[0] + "]"
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return host in LOOPBACK_HOSTS


def _channel_summary(channel: JSON, topic: str = "") -> JSON:
    return {
        "id": channel["id"],
        "name": channel.get("name") or "",
        "is_im": bool(channel.get("is_im")),
        "is_private": bool(channel.get("is_private")),
        "is_member": bool(channel.get("is_member")),
        "user": channel.get("user"),
        "purpose": topic or (channel.get("purpose") or {}).get("value", ""),
    }


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
