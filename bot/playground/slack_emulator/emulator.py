"""A local Slack: answers the Web API like Slack, records every call, and talks to the bot as Slack does.

Standalone on purpose (standard library + slack_sdk only): the end-to-end tests and the
browser playground share this one emulator.

Two sides:
- the Web API (``POST /api/<method>``, form-encoded or JSON, ``Authorization: Bearer``) and
  ``response_url``s (``POST /response/<token>``), served by a ``ThreadingHTTPServer``;
- delivery to the bot (``slash_command``, ``click``, ``submit_view``, ``close_view``): signed
  ``POST``s to ``bot_url`` with the bodies and headers Slack sends, or, once the bot has opened
  a Socket Mode connection (``apps.connections.open`` with an ``xapp-`` token, then a WebSocket
  on ``/socket-mode``), envelopes over that WebSocket, answered by the bot's ack (``delivery``).

Everything lands in one model (channels, messages, threads, ephemerals, open modals) guarded by
one lock; ``version`` and ``changed`` (a ``threading.Condition``) let a UI stream changes.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import itertools
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from slack_sdk.signature import SignatureVerifier

from bot.playground.slack_emulator import websocket
from bot.playground.slack_emulator.blockkit import (
    INPUT_TYPES,
    LIMITS,
    error_at,
    validate_blocks,
    validate_view,
)

JSON = dict[str, Any]

TRIGGER_TTL = 3.0  # seconds a trigger_id may be exchanged for a modal
RESPONSE_URL_USES = 5  # Slack: a response_url may be used up to 5 times within 30 minutes
RESPONSE_URL_TTL = 30 * 60
BOT_USER_ID = "U0DEVICEBOT"
BOT_ID = "B0DEVICEBOT"
APP_ID = "A0DEVICEBOT"

# Socket Mode (https://api.slack.com/apis/socket-mode)
SOCKET_MODE_PATH = "/socket-mode"
SOCKET_HOST = "applink-emulator"  # what Slack reports as debug_info.host
SOCKET_CONNECTION_TIME = 18060  # seconds Slack says a connection lives (hello.debug_info)

MAX_MESSAGE_TEXT = LIMITS["message_text"].value

DEFAULT_USERS: list[tuple[str, str, str]] = [
    ("U0OPERATOR", "olivia.operator", "Olivia Operator"),
    ("U0APPROVER1", "alex.approver", "Alex Approver"),
    ("U0APPROVER2", "blake.approver", "Blake Approver"),
    ("U0OUTSIDER", "oscar.outsider", "Oscar Outsider"),
]
DEFAULT_CHANNELS: list[tuple[str, str]] = [
    ("C0HELPDESK", "help-desk"),
    ("C0APPROVALS", "device-approvals"),
    ("C0LOSTDEVICES", "lost-devices"),
]


@dataclass(frozen=True)
class Call:
    """One Web API call the bot made, and what the emulator answered."""

    method: str
    args: JSON
    ts: float
    ok: bool
    error: str | None = None
    response: JSON = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """The bot's HTTP answer to something the emulator delivered."""

    status: int
    body: str
    json: JSON | None
    elapsed: float
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """One request the emulator sent to the bot, with the reply."""

    kind: str  # "slash_command" | "block_actions" | "view_submission" | "view_closed"
    payload: JSON
    reply: Reply
    via: str = "http"  # "http" (signed POST) | "socket" (Socket Mode envelope)


@dataclass(frozen=True)
class ResponsePost:
    """One POST the bot made to a response_url."""

    token: str
    body: JSON
    status: int
    context: JSON


@dataclass(frozen=True)
class Refusal:
    """A payload the emulator refused as real Slack would (invalid Block Kit)."""

    where: str  # the Web API method, "response_url", or the delivery whose answer held it
    error: str
    errors: list[str]
    payload: Any


class RefusalLog:
    """Every refusal by any emulator in this process, so a test harness can fail a test during
    which one refused Block Kit (whichever emulator, even one the test made and dropped)."""

    def __init__(self, keep: int = 1000) -> None:
        self._lock = threading.Lock()
        self._kept: collections.deque[Refusal] = collections.deque(maxlen=keep)
        self.total = 0

    def add(self, refusal: Refusal) -> None:
        with self._lock:
            self._kept.append(refusal)
            self.total += 1

    def since(self, total: int) -> list[Refusal]:
        """The refusals recorded after ``total`` was read (the most recent ``keep`` at most)."""
        with self._lock:
            return list(self._kept)[max(0, len(self._kept) - (self.total - total)) :]


REFUSALS = RefusalLog()


class SlackApiError(Exception):
    """Raised inside a Web API method to answer ``{"ok": false, "error": ...}``."""

    def __init__(
        self,
        error: str,
        messages: list[str] | None = None,
        status: int = 200,
        *,
        block_kit: bool = False,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []
        self.status = status
        self.block_kit = block_kit  # refused for its Block Kit: recorded in ``refusals``


# --------------------------------------------------------------------------- element state


def iter_elements(blocks: Any) -> Iterator[tuple[JSON, JSON]]:
    """Yield (block, element) for every interactive element in ``blocks``."""
    for block in blocks or []:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("accessory"), dict):
            yield block, block["accessory"]
        for el in block.get("elements") or []:
            if isinstance(el, dict) and "action_id" in el:
                yield block, el
        if isinstance(block.get("element"), dict):
            yield block, block["element"]


def _all_options(element: JSON) -> list[JSON]:
    if "option_groups" in element:
        return [o for g in element["option_groups"] or [] for o in g.get("options") or []]
    return list(element.get("options") or [])


def _find_option(element: JSON, wanted: Any) -> JSON:
    """Resolve ``wanted`` (a value, a label, or an option dict) against the element's options."""
    if isinstance(wanted, dict):
        return wanted
    options = _all_options(element)
    for opt in options:
        if opt.get("value") == wanted:
            return copy.deepcopy(opt)
    for opt in options:
        if (opt.get("text") or {}).get("text") == wanted:
            return copy.deepcopy(opt)
    if element.get("type") in ("external_select", "multi_external_select"):
        return {"text": {"type": "plain_text", "text": str(wanted)}, "value": str(wanted)}
    raise AssertionError(
        f"option {wanted!r} not in {element.get('action_id')!r}: "
        f"{[o.get('value') for o in options]}"
    )


def element_state(element: JSON, value: Any = None, *, touched: bool = True) -> JSON:
    """Slack's ``state.values`` entry for ``element`` holding ``value`` (or its initial value)."""
    kind = element.get("type", "")
    if isinstance(value, dict) and "type" in value:
        return value
    state: JSON = {"type": kind}
    if kind in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
        if touched:
            state["value"] = None if value is None or value == "" else str(value)
        else:
            state["value"] = element.get("initial_value")
    elif kind in ("static_select", "external_select", "radio_buttons", "overflow"):
        if touched:
            state["selected_option"] = None if value is None else _find_option(element, value)
        else:
            state["selected_option"] = copy.deepcopy(element.get("initial_option"))
    elif kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        if touched:
            values = value if isinstance(value, (list, tuple)) else [value]
            state["selected_options"] = [_find_option(element, v) for v in values if v is not None]
        else:
            state["selected_options"] = copy.deepcopy(element.get("initial_options") or [])
    elif kind == "users_select":
        state["selected_user"] = value if touched else element.get("initial_user")
    elif kind == "multi_users_select":
        state["selected_users"] = list(value or []) if touched else element.get("initial_users", [])
    elif kind == "conversations_select":
        state["selected_conversation"] = value if touched else element.get("initial_conversation")
    elif kind == "multi_conversations_select":
        state["selected_conversations"] = (
            list(value or []) if touched else element.get("initial_conversations", [])
        )
    elif kind == "channels_select":
        state["selected_channel"] = value if touched else element.get("initial_channel")
    elif kind == "multi_channels_select":
        state["selected_channels"] = (
            list(value or []) if touched else element.get("initial_channels", [])
        )
    elif kind == "datepicker":
        state["selected_date"] = value if touched else element.get("initial_date")
    elif kind == "timepicker":
        state["selected_time"] = value if touched else element.get("initial_time")
    elif kind == "datetimepicker":
        state["selected_date_time"] = value if touched else element.get("initial_date_time")
    else:
        state["value"] = value
    return state


# --------------------------------------------------------------------------- the emulator


class SlackEmulator:
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

        self._lock = threading.RLock()
        self.changed = threading.Condition(self._lock)
        self.version = 0
        self._subscribers: list[Callable[[JSON], None]] = []

        self._calls: list[Call] = []
        self._deliveries: list[Delivery] = []
        self._responses: list[ResponsePost] = []
        self.problems: list[str] = []  # things real Slack would have refused or shown as errors
        self.refusals: list[Refusal] = []  # Block Kit real Slack would refuse (never cleared)

        self._users: dict[str, JSON] = {}
        self._usergroups: dict[str, list[str]] = {}
        self._channels: dict[str, JSON] = {}
        self._messages: dict[str, list[JSON]] = {}  # channel -> messages in ts order
        self._ephemerals: list[JSON] = []
        self._views: dict[str, JSON] = {}  # view_id -> view (Slack's shape)
        self._view_owner: dict[str, str] = {}
        self._view_errors: dict[str, JSON] = {}
        self._stacks: dict[str, list[str]] = {}  # user -> open modal view ids, bottom first
        self._home: dict[str, str] = {}  # user -> home view id
        self._triggers: dict[str, JSON] = {}
        self._response_urls: dict[str, JSON] = {}
        self._faults: dict[str, list[JSON]] = {}
        self._last_ts_us = 0
        self._ids = itertools.count(1)

        self._sockets: list[
            websocket.WebSocketConnection
        ] = []  # open Socket Mode connections, oldest first
        self._socket_tickets: set[str] = set()  # issued by apps.connections.open, used once
        self._acks: dict[str, _PendingAck] = {}  # envelope_id -> waiting delivery
        self._envelopes: set[str] = set()  # every envelope_id sent
        self.socket_connects = 0  # Socket Mode connections accepted so far

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

        server = ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="slack-emulator", daemon=True
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

    @property
    def base_url(self) -> str:
        """Root URL of the emulator's HTTP server."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """Web API base URL, for ``WebClient(base_url=...)`` / ``SLACK_API_URL``."""
        return f"{self.base_url}/api/"

    # ----------------------------------------------------------------- directory

    def add_user(
        self, user_id: str, *, name: str, real_name: str = "", is_bot: bool = False, **extra: Any
    ) -> JSON:
        """Add (or replace) a workspace member."""
        user = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "real_name": real_name or name,
            "deleted": False,
            "is_bot": is_bot,
            "is_admin": False,
            "tz": "Europe/London",
            "profile": {
                "real_name": real_name or name,
                "display_name": name,
                "email": f"{name}@example.com",
            },
            **extra,
        }
        with self._lock:
            self._users[user_id] = user
            self._changed({"kind": "user", "user": user_id})
        return copy.deepcopy(user)

    def add_usergroup(self, usergroup_id: str, users: list[str], *, handle: str = "") -> None:
        """Add (or replace) a user group and its members."""
        with self._lock:
            self._usergroups[usergroup_id] = list(users)
            self._changed({"kind": "usergroup", "usergroup": usergroup_id})

    def add_channel(
        self, channel_id: str, name: str, *, is_private: bool = False, is_member: bool = True
    ) -> JSON:
        """Add (or replace) a channel; ``is_member`` says whether the bot is in it."""
        channel = {
            "id": channel_id,
            "name": name,
            "name_normalized": name,
            "is_channel": not is_private,
            "is_group": is_private,
            "is_im": False,
            "is_private": is_private,
            "is_archived": False,
            "is_general": False,
            "is_member": is_member,
            "created": int(self.clock()),
            "creator": "U0OPERATOR",
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }
        with self._lock:
            self._channels[channel_id] = channel
            self._messages.setdefault(channel_id, [])
            self._changed({"kind": "channel", "channel": channel_id})
        return copy.deepcopy(channel)

    @property
    def users(self) -> list[JSON]:
        """Workspace members."""
        with self._lock:
            return copy.deepcopy(list(self._users.values()))

    @property
    def channels(self) -> list[JSON]:
        """Channels (including DMs the bot opened)."""
        with self._lock:
            return copy.deepcopy(list(self._channels.values()))

    # ----------------------------------------------------------------- change stream

    def subscribe(self, callback: Callable[[JSON], None]) -> Callable[[], None]:
        """Call ``callback(event)`` after every model change; returns an unsubscribe function."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def wait_for_change(self, since_version: int, timeout: float = 10.0) -> int:
        """Block until ``version`` exceeds ``since_version`` (or timeout); return the version."""
        with self.changed:
            self.changed.wait_for(lambda: self.version > since_version, timeout=timeout)
            return self.version

    def _changed(self, event: JSON) -> None:
        # caller holds the lock; subscribers run under it too, so they must be quick
        self.version += 1
        event = {**event, "version": self.version}
        self.changed.notify_all()
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception as exc:  # a broken UI must not break the Web API
                self.problems.append(f"subscriber failed: {exc!r}")

    # ----------------------------------------------------------------- what the bot did

    @property
    def calls(self) -> list[Call]:
        """Every Web API call so far, oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        """Web API calls to ``method``."""
        with self._lock:
            return [c for c in self._calls if c.method == method]

    def mark(self) -> int:
        """The number of calls so far, for ``wait_for_call(..., since=...)``."""
        with self._lock:
            return len(self._calls)

    def clear_calls(self) -> None:
        """Forget recorded calls, deliveries and response_url posts (the model stays)."""
        with self._lock:
            self._calls.clear()
            self._deliveries.clear()
            self._responses.clear()
            self.problems.clear()

    @property
    def deliveries(self) -> list[Delivery]:
        """Every request sent to the bot, with its reply."""
        with self._lock:
            return list(self._deliveries)

    @property
    def responses(self) -> list[ResponsePost]:
        """Every POST the bot made to a response_url."""
        with self._lock:
            return list(self._responses)

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        *,
        status: int | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail (``ratelimited`` → HTTP 429)."""
        if status is None:
            status = 429 if error == "ratelimited" else 200
        if error == "ratelimited" and retry_after is None:
            retry_after = 1
        with self._lock:
            self._faults.setdefault(method, []).extend(
                {"error": error, "status": status, "retry_after": retry_after} for _ in range(times)
            )

    def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 10.0, message: str = ""
    ) -> Any:
        """Poll ``predicate`` until it returns something truthy; AssertionError with a dump if not."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                seen = self.version
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {message or predicate}\n" + self.dump()
                )
            with self.changed:
                if self.version == seen:
                    self.changed.wait(min(remaining, 0.05))

    def wait_for_call(
        self,
        method: str,
        where: Callable[[Call], bool] | None = None,
        timeout: float = 10.0,
        *,
        since: int = 0,
    ) -> Call:
        """Wait for a call to ``method`` (from index ``since``) matching ``where``; return it."""

        def find() -> Call | None:
            with self._lock:
                calls = self._calls[since:]
            for c in calls:
                if c.method == method and (where is None or where(c)):
                    return c
            return None

        result: Call = self.wait_for(find, timeout, message=f"a call to {method}")
        return result

    def dump(self, last: int = 30) -> str:
        """A readable summary of recent calls, deliveries and problems, for failure messages."""
        with self._lock:
            lines = [f"-- last {last} Web API calls (of {len(self._calls)}):"]
            for c in self._calls[-last:]:
                args = {k: v for k, v in c.args.items() if k not in ("blocks", "view")}
                text = json.dumps(args, default=str)[:300]
                lines.append(f"  {c.method} ok={c.ok} {c.error or ''} {text}")
            lines.append(f"-- deliveries ({len(self._deliveries)}):")
            for d in self._deliveries[-10:]:
                lines.append(f"  {d.kind} -> {d.reply.status} {d.reply.body[:200]!r}")
            lines.append(f"-- response_url posts ({len(self._responses)}):")
            for r in self._responses[-10:]:
                lines.append(f"  {r.status} {json.dumps(r.body, default=str)[:300]}")
            if self.problems:
                lines.append("-- problems:")
                lines += [f"  {p}" for p in self.problems[-10:]]
            return "\n".join(lines)

    # ----------------------------------------------------------------- model queries

    def messages(self, channel: str, thread_ts: str | None = None) -> list[JSON]:
        """Top-level messages of ``channel``; with ``thread_ts``, the replies of that thread."""
        with self._lock:
            msgs = self._messages.get(self._resolve_channel(channel), [])
            if thread_ts is None:
                out = [m for m in msgs if m.get("thread_ts") in (None, m["ts"])]
            else:
                out = [m for m in msgs if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts]
            return copy.deepcopy(out)

    def thread(self, channel: str, ts: str) -> list[JSON]:
        """The parent message and its replies, like ``conversations.replies``."""
        with self._lock:
            msgs = self._messages.get(self._resolve_channel(channel), [])
            out = [m for m in msgs if m["ts"] == ts or m.get("thread_ts") == ts]
            return copy.deepcopy(out)

    def message(self, channel: str, ts: str) -> JSON | None:
        """One stored message, or None."""
        with self._lock:
            found = self._find_message(self._resolve_channel(channel), ts)
            return copy.deepcopy(found)

    def ephemerals(self, user: str, channel: str | None = None) -> list[JSON]:
        """Ephemeral messages visible to ``user`` (optionally in one channel), oldest first."""
        with self._lock:
            return copy.deepcopy(
                [
                    e
                    for e in self._ephemerals
                    if e["user"] == user and (channel is None or e["channel"] == channel)
                ]
            )

    def open_view(self, user: str) -> JSON | None:
        """The modal on top of ``user``'s stack, or None."""
        with self._lock:
            stack = self._stacks.get(user) or []
            return copy.deepcopy(self._views[stack[-1]]) if stack else None

    def view_stack(self, user: str) -> list[JSON]:
        """All of ``user``'s open modals, bottom first."""
        with self._lock:
            return copy.deepcopy([self._views[v] for v in self._stacks.get(user) or []])

    def view_errors(self, view_id: str) -> JSON:
        """The field errors the bot last returned for ``view_id`` (block_id -> message)."""
        with self._lock:
            return dict(self._view_errors.get(view_id) or {})

    def home_view(self, user: str) -> JSON | None:
        """The App Home view published for ``user``."""
        with self._lock:
            vid = self._home.get(user)
            return copy.deepcopy(self._views[vid]) if vid else None

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
                    "view_errors": self._view_errors,
                }
            )

    # ----------------------------------------------------------------- internals: ids, model

    def _next_ts(self) -> str:
        with self._lock:
            us = int(self.clock() * 1_000_000)
            if us <= self._last_ts_us:
                us = self._last_ts_us + 1
            self._last_ts_us = us
            return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):010d}"

    def issue_trigger(self, user: str) -> str:
        """A trigger_id for ``user``, as Slack puts in a command or interaction (valid 3 s, once)."""
        n = next(self._ids)
        trigger = f"{n}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers[trigger] = {"user": user, "issued": self.clock(), "used": False}
        return trigger

    def _issue_response_url(self, context: JSON) -> str:
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._response_urls[token] = {**context, "issued": self.clock(), "uses": 0}
        return f"{self.base_url}/response/{token}"

    def _resolve_channel(self, channel: str) -> str:
        # a user id as channel means "the DM with that user", as chat.postMessage allows
        if channel.startswith(("U", "W")) and channel in self._users:
            dm = "D" + channel[1:]
            if dm not in self._channels:
                self._channels[dm] = {
                    "id": dm,
                    "is_im": True,
                    "is_channel": False,
                    "is_private": True,
                    "is_member": True,
                    "user": channel,
                    "created": int(self.clock()),
                }
                self._messages[dm] = []
            return dm
        if channel.startswith("#"):
            for cid, ch in self._channels.items():
                if ch.get("name") == channel[1:]:
                    return cid
        return channel

    def _channel(self, channel: Any, *, need_member: bool = False) -> str:
        if not channel or not isinstance(channel, str):
            raise SlackApiError("channel_not_found")
        cid = self._resolve_channel(channel)
        ch = self._channels.get(cid)
        if ch is None:
            raise SlackApiError("channel_not_found")
        if need_member and not ch.get("is_member"):
            raise SlackApiError("not_in_channel")
        return cid

    def _find_message(self, channel: str, ts: str) -> JSON | None:
        for m in self._messages.get(channel, []):
            if m["ts"] == ts:
                return m
        return None

    def _bot_message(self, text: str, blocks: Any, ts: str, extra: JSON | None = None) -> JSON:
        msg: JSON = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": self.team_id,
            "text": text,
            "ts": ts,
        }
        if blocks:
            msg["blocks"] = blocks
        if extra:
            msg.update(extra)
        return msg

    def _post(
        self, channel: str, text: str, blocks: Any, thread_ts: str | None = None, **extra: Any
    ) -> JSON:
        """Store a bot message in ``channel`` (caller validated); returns the stored dict."""
        with self._lock:
            ts = self._next_ts()
            msg = self._bot_message(text, blocks, ts, extra)
            msg["channel"] = channel
            if thread_ts:
                parent = self._find_message(channel, thread_ts)
                if parent is None:
                    raise SlackApiError("thread_not_found")
                root = parent.get("thread_ts") or parent["ts"]
                parent = self._find_message(channel, root) or parent
                msg["thread_ts"] = root
                msg["parent_user_id"] = parent.get("user")
                parent["thread_ts"] = root
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                users = parent.setdefault("reply_users", [])
                if msg["user"] not in users:
                    users.append(msg["user"])
                parent["reply_users_count"] = len(users)
                parent["latest_reply"] = ts
            self._messages[channel].append(msg)
            self._changed({"kind": "message", "channel": channel, "ts": ts, "thread_ts": thread_ts})
            return msg

    def _post_ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        blocks: Any,
        thread_ts: str | None = None,
        source: str = "api",
    ) -> JSON:
        with self._lock:
            ts = self._next_ts()
            eph = self._bot_message(text, blocks, ts)
            eph.update({"channel": channel, "user": user, "is_ephemeral": True, "source": source})
            eph["bot_user"] = BOT_USER_ID
            if thread_ts:
                eph["thread_ts"] = thread_ts
            self._ephemerals.append(eph)
            self._changed({"kind": "ephemeral", "channel": channel, "user": user, "ts": ts})
            return eph

    @staticmethod
    def _public(msg: JSON) -> JSON:
        """A stored message as Slack shows it to apps (no emulator-only keys)."""
        out = copy.deepcopy(msg)
        for key in ("channel", "is_ephemeral", "source", "bot_user"):
            out.pop(key, None)
        return out

    # ----------------------------------------------------------------- Web API dispatch

    def handle_api(
        self, method: str, args: JSON, token: str | None
    ) -> tuple[int, JSON, dict[str, str]]:
        """Answer one Web API call as Slack would and record it; returns (status, body, headers)."""
        headers: dict[str, str] = {}
        status = 200
        try:
            with self._lock:
                faults = self._faults.get(method)
                fault = faults.pop(0) if faults else None
            if token is None:
                raise SlackApiError("not_authed")
            if method == "apps.connections.open":  # the one method taking an app-level token
                if not token.startswith("xapp-") or self.app_token not in (None, token):
                    raise SlackApiError("invalid_auth")
            elif token != self.bot_token:
                raise SlackApiError("invalid_auth")
            if fault is not None:
                if fault["retry_after"] is not None:
                    headers["Retry-After"] = str(fault["retry_after"])
                raise SlackApiError(fault["error"], status=fault["status"])
            impl = self._methods().get(method)
            if impl is None:
                raise SlackApiError("unknown_method")
            body = {"ok": True, **impl(args)}
        except SlackApiError as exc:
            status = exc.status
            body = {"ok": False, "error": exc.error}
            if exc.messages:
                body["errors"] = [m.removeprefix("[ERROR] ") for m in exc.messages]
                body["response_metadata"] = {"messages": exc.messages}
                with self._lock:
                    self.problems.append(f"{method}: {exc.error}: {exc.messages[:3]}")
                    if exc.block_kit:
                        self._refuse(method, exc, args)
        call = Call(
            method=method,
            args=args,
            ts=self.clock(),
            ok=bool(body["ok"]),
            error=body.get("error"),
            response=body,
        )
        with self._lock:
            self._calls.append(call)
            self._changed({"kind": "call", "method": method})
        return status, body, headers

    def _methods(self) -> dict[str, Callable[[JSON], JSON]]:
        return {
            "api.test": lambda args: {"args": args},
            "apps.connections.open": self._apps_connections_open,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.info": self._conversations_info,
            "conversations.join": self._conversations_join,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "users.info": self._users_info,
            "usergroups.users.list": self._usergroups_users_list,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.push": self._views_push,
            "views.publish": self._views_publish,
        }

    def _auth_test(self, args: JSON) -> JSON:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": "Sandbox",
            "user": "device-bot",
            "team_id": self.team_id,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, args: JSON) -> JSON:
        ticket = str(uuid.uuid4())
        with self._lock:
            self._socket_tickets.add(ticket)
        host = self.host if self.host not in ("", "0.0.0.0") else "127.0.0.1"
        query = urllib.parse.urlencode({"ticket": ticket, "app_id": APP_ID})
        return {"url": f"ws://{host}:{self.port}{SOCKET_MODE_PATH}?{query}"}

    @staticmethod
    def _text_and_blocks(args: JSON, pointer: str = "/blocks") -> tuple[str, Any]:
        text = args.get("text") or ""
        blocks = args.get("blocks")
        if not text and not blocks and not args.get("attachments"):
            raise SlackApiError("no_text")
        if len(text) > MAX_MESSAGE_TEXT:
            raise SlackApiError("msg_too_long")
        if blocks is not None:
            errors = validate_blocks(blocks, surface="message", pointer=pointer)
            if errors:
                raise SlackApiError("invalid_blocks", errors, block_kit=True)
        return text, blocks

    def _chat_post_message(self, args: JSON) -> JSON:
        with self._lock:
            channel = self._channel(args.get("channel"), need_member=True)
            text, blocks = self._text_and_blocks(args)
            extra = {"attachments": args["attachments"]} if args.get("attachments") else {}
            if args.get("metadata"):
                extra["metadata"] = args["metadata"]
            msg = self._post(channel, text, blocks, args.get("thread_ts") or None, **extra)
            return {"channel": channel, "ts": msg["ts"], "message": self._public(msg)}

    def _chat_post_ephemeral(self, args: JSON) -> JSON:
        with self._lock:
            channel = self._channel(args.get("channel"))
            user = args.get("user")
            if user not in self._users:
                raise SlackApiError("user_not_found")
            text, blocks = self._text_and_blocks(args)
            eph = self._post_ephemeral(channel, user, text, blocks, args.get("thread_ts") or None)
            return {"message_ts": eph["ts"]}

    def _chat_update(self, args: JSON) -> JSON:
        with self._lock:
            channel = self._channel(args.get("channel"))
            msg = self._find_message(channel, str(args.get("ts") or ""))
            if msg is None:
                raise SlackApiError("message_not_found")
            if msg.get("bot_id") != BOT_ID:
                raise SlackApiError("cant_update_message")
            if "text" in args or "blocks" in args:
                text = args.get("text", msg.get("text", "")) or ""
                blocks = args.get("blocks", msg.get("blocks"))
                self._text_and_blocks({"text": text, "blocks": blocks or None, "attachments": 1})
                msg["text"] = text
                if blocks:
                    msg["blocks"] = blocks
                else:
                    msg.pop("blocks", None)
            msg["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
            self._changed({"kind": "message_changed", "channel": channel, "ts": msg["ts"]})
            return {
                "channel": channel,
                "ts": msg["ts"],
                "text": msg["text"],
                "message": self._public(msg),
            }

    def _chat_delete(self, args: JSON) -> JSON:
        with self._lock:
            channel = self._channel(args.get("channel"))
            ts = str(args.get("ts") or "")
            msg = self._find_message(channel, ts)
            if msg is None:
                raise SlackApiError("message_not_found")
            if msg.get("bot_id") != BOT_ID:
                raise SlackApiError("cant_delete_message")
            self._messages[channel].remove(msg)
            self._changed({"kind": "message_deleted", "channel": channel, "ts": ts})
            return {"channel": channel, "ts": ts}

    def _chat_get_permalink(self, args: JSON) -> JSON:
        with self._lock:
            channel = self._channel(args.get("channel"))
            ts = str(args.get("message_ts") or "")
            msg = self._find_message(channel, ts)
            if msg is None:
                raise SlackApiError("message_not_found")
            link = f"https://{self.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
            if msg.get("thread_ts") and msg["thread_ts"] != ts:
                link += f"?thread_ts={msg['thread_ts']}&cid={channel}"
            return {"channel": channel, "permalink": link}

    def _conversations_info(self, args: JSON) -> JSON:
        with self._lock:
            channel = self._channel(args.get("channel"))
            return {"channel": copy.deepcopy(self._channels[channel])}

    def _conversations_join(self, args: JSON) -> JSON:
        with self._lock:
            channel = self._channel(args.get("channel"))
            ch = self._channels[channel]
            if ch.get("is_private") or ch.get("is_im"):
                raise SlackApiError("method_not_supported_for_channel_type")
            was_member = ch.get("is_member")
            ch["is_member"] = True
            self._changed({"kind": "channel", "channel": channel})
            out: JSON = {"channel": copy.deepcopy(ch)}
            if was_member:
                out["warning"] = "already_in_channel"
                out["response_metadata"] = {"warnings": ["already_in_channel"]}
            return out

    def _conversations_open(self, args: JSON) -> JSON:
        users = args.get("users") or ""
        if isinstance(users, list):
            users = ",".join(users)
        with self._lock:
            ids = [u for u in str(users).split(",") if u]
            if len(ids) != 1 or ids[0] not in self._users:
                raise SlackApiError("user_not_found")
            return {"channel": {"id": self._resolve_channel(ids[0])}}

    def _conversations_history(self, args: JSON) -> JSON:
        with self._lock:
            channel = self._channel(args.get("channel"))
            limit = int(args.get("limit") or 100)
            msgs = [self._public(m) for m in reversed(self.messages(channel))]
            return {"messages": msgs[:limit], "has_more": len(msgs) > limit}

    def _conversations_replies(self, args: JSON) -> JSON:
        with self._lock:
            channel = self._channel(args.get("channel"))
            ts = str(args.get("ts") or "")
            if self._find_message(channel, ts) is None:
                raise SlackApiError("thread_not_found")
            return {
                "messages": [self._public(m) for m in self.thread(channel, ts)],
                "has_more": False,
            }

    def _users_info(self, args: JSON) -> JSON:
        with self._lock:
            user = self._users.get(str(args.get("user") or ""))
            if user is None:
                raise SlackApiError("user_not_found")
            return {"user": copy.deepcopy(user)}

    def _usergroups_users_list(self, args: JSON) -> JSON:
        with self._lock:
            members = self._usergroups.get(str(args.get("usergroup") or ""))
            if members is None:
                raise SlackApiError("no_such_subteam")
            return {"users": list(members)}

    # ----------------------------------------------------------------- views

    def _take_trigger(self, trigger_id: Any) -> str:
        """Exchange a trigger_id (once, within 3 s) and return the user it was issued for."""
        trig = self._triggers.get(str(trigger_id or ""))
        if trig is None:
            raise SlackApiError("invalid_trigger_id")
        if self.clock() - trig["issued"] > TRIGGER_TTL:
            raise SlackApiError("expired_trigger_id")
        if trig["used"]:
            raise SlackApiError("exchanged_trigger_id")
        trig["used"] = True
        return str(trig["user"])

    @staticmethod
    def _parse_view(args: JSON) -> JSON:
        view = args.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError as exc:
                raise SlackApiError(
                    "invalid_arguments", [error_at("invalid json", "/view")]
                ) from exc
        errors = validate_view(view)
        if errors:
            # a fault inside a block is invalid_blocks; one in the view's own fields (title,
            # private_metadata, the number of blocks) is invalid_arguments
            inside = any("[json-pointer:/view/blocks/" in e for e in errors)
            error = "invalid_blocks" if inside else "invalid_arguments"
            raise SlackApiError(error, errors, block_kit=True)
        assert isinstance(view, dict)
        return view

    def _make_view(
        self, spec: JSON, *, view_id: str | None = None, root: str | None = None
    ) -> JSON:
        view_id = view_id or self._new_id("V")
        view: JSON = {
            "id": view_id,
            "team_id": self.team_id,
            "type": spec.get("type", "modal"),
            "title": spec.get("title"),
            "blocks": copy.deepcopy(spec.get("blocks") or []),
            "close": spec.get("close"),
            "submit": spec.get("submit"),
            "private_metadata": spec.get("private_metadata", ""),
            "callback_id": spec.get("callback_id", ""),
            "external_id": spec.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"{int(self.clock())}.{secrets.token_hex(4)}",
            "clear_on_close": bool(spec.get("clear_on_close", False)),
            "notify_on_close": bool(spec.get("notify_on_close", False)),
            "submit_disabled": bool(spec.get("submit_disabled", False)),
            "root_view_id": root or view_id,
            "previous_view_id": None,
            "app_id": APP_ID,
            "app_installed_team_id": self.team_id,
            "bot_id": BOT_ID,
        }
        if external_id := spec.get("external_id"):
            for other in self._views.values():
                if other.get("external_id") == external_id and other["id"] != view_id:
                    raise SlackApiError("duplicate_external_id")
        return view

    def _open(self, user: str, spec: JSON) -> JSON:
        view = self._make_view(spec)
        self._views[view["id"]] = view
        self._view_owner[view["id"]] = user
        self._stacks[user] = [view["id"]]
        self._changed({"kind": "view_opened", "user": user, "view_id": view["id"]})
        return view

    def _push(self, user: str, spec: JSON) -> JSON:
        stack = self._stacks.get(user) or []
        if not stack:
            raise SlackApiError("not_found")
        if len(stack) >= 3:
            raise SlackApiError("push_limit_reached")
        view = self._make_view(spec, root=self._views[stack[0]]["id"])
        view["previous_view_id"] = stack[-1]
        self._views[view["id"]] = view
        self._view_owner[view["id"]] = user
        stack.append(view["id"])
        self._changed({"kind": "view_pushed", "user": user, "view_id": view["id"]})
        return view

    def _replace(self, view_id: str, spec: JSON) -> JSON:
        old = self._views[view_id]
        view = self._make_view(spec, view_id=view_id, root=old["root_view_id"])
        view["previous_view_id"] = old["previous_view_id"]
        self._views[view_id] = view
        self._view_errors.pop(view_id, None)
        self._changed(
            {"kind": "view_updated", "user": self._view_owner.get(view_id), "view_id": view_id}
        )
        return view

    def _close(self, user: str, *, clear: bool = False) -> None:
        stack = self._stacks.get(user) or []
        if clear:
            stack.clear()
        elif stack:
            stack.pop()
        self._changed({"kind": "view_closed", "user": user})

    def _views_open(self, args: JSON) -> JSON:
        with self._lock:
            user = self._take_trigger(args.get("trigger_id"))
            spec = self._parse_view(args)
            if spec.get("type") != "modal":
                raise SlackApiError("invalid_arguments", [error_at("must be modal", "/view/type")])
            return {"view": copy.deepcopy(self._open(user, spec))}

    def _views_push(self, args: JSON) -> JSON:
        with self._lock:
            user = self._take_trigger(args.get("trigger_id"))
            spec = self._parse_view(args)
            return {"view": copy.deepcopy(self._push(user, spec))}

    def _views_update(self, args: JSON) -> JSON:
        with self._lock:
            view_id = args.get("view_id")
            if not view_id and args.get("external_id"):
                for v in self._views.values():
                    if v.get("external_id") == args["external_id"]:
                        view_id = v["id"]
            if not view_id:
                raise SlackApiError("not_found")
            open_ids = {v for s in self._stacks.values() for v in s} | set(self._home.values())
            if view_id not in open_ids:
                raise SlackApiError("not_found")
            if args.get("hash") and args["hash"] != self._views[view_id]["hash"]:
                raise SlackApiError("hash_conflict")
            spec = self._parse_view(args)
            return {"view": copy.deepcopy(self._replace(view_id, spec))}

    def _views_publish(self, args: JSON) -> JSON:
        with self._lock:
            user = str(args.get("user_id") or "")
            if user not in self._users:
                raise SlackApiError("user_not_found")
            spec = self._parse_view(args)
            if spec.get("type") != "home":
                raise SlackApiError("invalid_arguments", [error_at("must be home", "/view/type")])
            current = self._home.get(user)
            if current and args.get("hash") and args["hash"] != self._views[current]["hash"]:
                raise SlackApiError("hash_conflict")
            view = self._make_view(spec, view_id=current)
            self._views[view["id"]] = view
            self._view_owner[view["id"]] = user
            self._home[user] = view["id"]
            self._changed({"kind": "home", "user": user})
            return {"view": copy.deepcopy(view)}

    def _refuse(self, where: str, exc: SlackApiError, payload: Any) -> None:
        """Record Block Kit real Slack would refuse (the test harness fails the test on it)."""
        with self._lock:
            refusal = Refusal(where, exc.error, list(exc.messages), payload)
            self.refusals.append(refusal)
            REFUSALS.add(refusal)
            self._changed({"kind": "refusal", "where": where})

    # ----------------------------------------------------------------- response_url

    def handle_response_url(self, token: str, body: JSON) -> tuple[int, str]:
        """Apply a POST to a response_url as Slack would; returns (status, text body)."""
        with self._lock:
            ctx = self._response_urls.get(token)
            status, text = self._apply_response(ctx, body)
            self._responses.append(
                ResponsePost(token=token, body=body, status=status, context=dict(ctx or {}))
            )
            self._changed({"kind": "response_url"})
            return status, text

    def _apply_response(self, ctx: JSON | None, body: JSON) -> tuple[int, str]:
        if ctx is None:
            return 404, "no_active_hooks"
        if self.clock() - ctx["issued"] > RESPONSE_URL_TTL:
            return 404, "expired_url"
        if ctx["uses"] >= RESPONSE_URL_USES:
            return 404, "used_url"
        channel, user = ctx["channel"], ctx["user"]
        original = ctx.get("message_ts")
        if body.get("delete_original"):
            ctx["uses"] += 1
            self._delete_original(ctx)
            return 200, "ok"
        text = body.get("text") or ""
        blocks = body.get("blocks")
        if not text and not blocks and not body.get("attachments"):
            return 500, "no_text"
        if blocks is not None and (errors := validate_blocks(blocks)):
            self.problems.append(f"response_url: invalid_blocks: {errors[:3]}")
            self._refuse("response_url", SlackApiError("invalid_blocks", errors), body)
            answer = {"ok": False, "error": "invalid_blocks", "errors": errors}
            return 400, json.dumps(answer)
        ctx["uses"] += 1
        if body.get("replace_original") and original:
            if ctx.get("ephemeral"):
                for e in self._ephemerals:
                    if e["ts"] == original and e["user"] == user:
                        e["text"] = text
                        e["blocks"] = blocks
                        if not blocks:
                            e.pop("blocks", None)
                self._changed({"kind": "ephemeral_changed", "user": user, "ts": original})
            else:
                msg = self._find_message(channel, original)
                if msg is None:
                    return 404, "message_not_found"
                msg["text"] = text
                if blocks:
                    msg["blocks"] = blocks
                else:
                    msg.pop("blocks", None)
                self._changed({"kind": "message_changed", "channel": channel, "ts": original})
            return 200, "ok"
        thread_ts = body.get("thread_ts") or ctx.get("thread_ts")
        if body.get("response_type") == "in_channel":
            try:
                self._post(channel, text, blocks, thread_ts)
            except SlackApiError as exc:
                return 404, exc.error
        else:
            self._post_ephemeral(channel, user, text, blocks, thread_ts, source="response_url")
        return 200, "ok"

    def _delete_original(self, ctx: JSON) -> None:
        original = ctx.get("message_ts")
        if not original:
            return
        if ctx.get("ephemeral"):
            self._ephemerals = [
                e
                for e in self._ephemerals
                if not (e["ts"] == original and e["user"] == ctx["user"])
            ]
            self._changed({"kind": "ephemeral_deleted", "user": ctx["user"], "ts": original})
        else:
            msg = self._find_message(ctx["channel"], original)
            if msg is not None:
                self._messages[ctx["channel"]].remove(msg)
            self._changed({"kind": "message_deleted", "channel": ctx["channel"], "ts": original})

    # ----------------------------------------------------------------- delivery to the bot

    def _user_ref(self, user_id: str) -> JSON:
        user = self._users.get(user_id) or {"name": user_id}
        return {
            "id": user_id,
            "username": user["name"],
            "name": user["name"],
            "team_id": self.team_id,
        }

    def _deliver(
        self,
        kind: str,
        body: str,
        payload: JSON,
        *,
        sign: bool = True,
        timestamp: int | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
    ) -> Reply:
        if self._over_socket():
            # Socket Mode has no signature: sign/timestamp do not apply
            return self._deliver_socket(kind, payload, retry_num, retry_reason)
        if not self.bot_url:
            raise RuntimeError("SlackEmulator.bot_url is not set")
        ts = str(int(self.clock()) if timestamp is None else int(timestamp))
        verifier = self._verifier if sign else SignatureVerifier("forged-" + self.signing_secret)
        signature = verifier.generate_signature(timestamp=ts, body=body) or ""
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        request = urllib.request.Request(
            self.bot_url, data=body.encode(), headers=headers, method="POST"
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=self.delivery_timeout) as resp:
                status, raw, resp_headers = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            status, raw, resp_headers = exc.code, exc.read(), dict(exc.headers or {})
        elapsed = time.monotonic() - started
        text = raw.decode("utf-8", "replace")
        parsed: JSON | None = None
        if text.strip():
            try:
                value = json.loads(text)
                parsed = value if isinstance(value, dict) else None
            except ValueError:
                parsed = None
        reply = Reply(status=status, body=text, json=parsed, elapsed=elapsed, headers=resp_headers)
        with self._lock:
            self._deliveries.append(Delivery(kind=kind, payload=payload, reply=reply))
            self._changed({"kind": "delivery", "type": kind})
        return reply

    def _deliver_payload(self, kind: str, payload: JSON, **kwargs: Any) -> Reply:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        return self._deliver(kind, body, payload, **kwargs)

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
            "type": "slash_commands" if kind == "slash_command" else "interactive",
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

    def slash_command(
        self,
        user_id: str,
        text: str,
        *,
        command: str = "/device",
        channel_id: str = "C0HELPDESK",
        retry_num: int | None = None,
        retry_reason: str | None = None,
        sign: bool = True,
        timestamp: int | None = None,
    ) -> Reply:
        """Send a signed slash command as ``user_id`` typed it in ``channel_id``."""
        with self._lock:
            channel = self._channels.get(channel_id) or {"name": channel_id}
            user = self._users.get(user_id) or {"name": user_id}
        response_url = self._issue_response_url({"user": user_id, "channel": channel_id})
        form = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": channel.get("name", channel_id),
            "user_id": user_id,
            "user_name": user["name"],
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": self.issue_trigger(user_id),
        }
        body = urllib.parse.urlencode(form)
        reply = self._deliver(
            "slash_command",
            body,
            form,
            sign=sign,
            timestamp=timestamp,
            retry_num=retry_num,
            retry_reason=retry_reason,
        )
        if reply.status == 200 and reply.body.strip():
            # Slack shows the immediate answer: JSON text/blocks, or a plain text body
            message = reply.json if reply.json is not None else {"text": reply.body}
            with self._lock:
                if message.get("text") or message.get("blocks"):
                    ctx = {
                        "user": user_id,
                        "channel": channel_id,
                        "issued": self.clock(),
                        "uses": 0,
                    }
                    status, err = self._apply_response(ctx, message)
                    if status != 200:
                        self.problems.append(f"slash command answer refused: {err}")
        return reply

    def _locate(
        self,
        user_id: str,
        action_id: str,
        block_id: str | None,
        message: Any,
        view: Any,
        as_shown: bool = False,
    ) -> tuple[str, JSON, JSON, JSON]:
        """Find the surface holding the element: ('message'|'view', surface, block, element)."""

        def search(blocks: Any) -> tuple[JSON, JSON] | None:
            for block, el in iter_elements(blocks):
                if el.get("action_id") == action_id and (
                    block_id is None or block.get("block_id") == block_id
                ):
                    return block, el
            return None

        with self._lock:
            if view is not None:
                if isinstance(view, str):
                    vid = view
                elif isinstance(view, dict):
                    vid = view["id"]
                else:
                    stack = self._stacks.get(user_id) or []
                    if not stack:
                        raise AssertionError(f"{user_id} has no open view")
                    vid = stack[-1]
                surface = self._views[vid]
                found = search(surface["blocks"])
                if found is None:
                    raise AssertionError(f"action {action_id!r} not in view {vid}")
                return "view", surface, *found
            if message is not None:
                surface = self._stored(message)
                if as_shown:  # the user clicks what their client still shows (an older copy)
                    surface = {**surface, "blocks": copy.deepcopy(message.get("blocks"))}
                found = search(surface.get("blocks"))
                if found is None:
                    raise AssertionError(f"action {action_id!r} not in message {message.get('ts')}")
                return "message", surface, *found
            stack = self._stacks.get(user_id) or []
            candidates: list[tuple[str, JSON]] = []
            if stack:
                candidates.append(("view", self._views[stack[-1]]))
            mine = [e for e in self._ephemerals if e["user"] == user_id]
            everything = mine + [m for msgs in self._messages.values() for m in msgs]
            everything.sort(key=lambda m: m["ts"], reverse=True)
            candidates += [("message", m) for m in everything]
            for kind, surface in candidates:
                found = search(surface.get("blocks"))
                if found is not None:
                    return kind, surface, *found
            seen = sorted(
                {
                    el.get("action_id", "")
                    for _, s in candidates
                    for _, el in iter_elements(s.get("blocks"))
                }
            )
            raise AssertionError(f"no element {action_id!r} visible to {user_id}; saw {seen}")

    def _stored(self, message: JSON) -> JSON:
        """The live stored message (or ephemeral) matching a channel+ts reference."""
        ts, channel = message.get("ts"), message.get("channel")
        if message.get("is_ephemeral"):
            for e in self._ephemerals:
                if e["ts"] == ts:
                    return e
        elif channel is not None:
            found = self._find_message(self._resolve_channel(channel), str(ts))
            if found is not None:
                return found
        raise AssertionError(f"no stored message {channel}/{ts}")

    def click(
        self,
        user_id: str,
        action_id: str,
        *,
        value: Any = None,
        block_id: str | None = None,
        message: JSON | None = None,
        view: Any = None,
        selected_option: Any = None,
        retry_num: int | None = None,
        sign: bool = True,
        timestamp: int | None = None,
        as_shown: bool = False,
    ) -> Reply:
        """Send a signed block_actions payload: ``user_id`` used ``action_id``.

        The element is found in ``message`` (a stored message dict, channel + ts), in ``view``
        (a view dict / view id / True for the user's top modal), or else in the user's top modal,
        their ephemerals and the channels, newest first. With ``as_shown`` the element is taken
        from the ``message`` copy given, as a client that has not refreshed yet still shows it.
        """
        kind, surface, block, element = self._locate(
            user_id, action_id, block_id, message, view, as_shown
        )
        el_type = element.get("type", "button")
        action: JSON = {
            "action_id": action_id,
            "block_id": block.get("block_id", ""),
            "type": el_type,
            "action_ts": self._next_ts(),
        }
        if el_type == "button":
            action["value"] = value if value is not None else element.get("value")
            action["text"] = element.get("text")
            if element.get("style"):
                action["style"] = element["style"]
            if action["value"] is None:
                action.pop("value")
        else:
            wanted = selected_option if selected_option is not None else value
            action.update(element_state(element, wanted))
            action["type"] = el_type
        with self._lock:
            user = self._user_ref(user_id)
            payload: JSON = {
                "type": "block_actions",
                "user": user,
                "api_app_id": APP_ID,
                "token": self.verification_token,
                "trigger_id": "",
                "team": {"id": self.team_id, "domain": self.team_domain},
                "enterprise": None,
                "is_enterprise_install": False,
                "actions": [action],
            }
            if kind == "view":
                payload["container"] = {"type": "view", "view_id": surface["id"]}
                payload["view"] = copy.deepcopy(surface)
                payload["state"] = copy.deepcopy(surface.get("state") or {"values": {}})
            else:
                channel = surface["channel"]
                ephemeral = bool(surface.get("is_ephemeral"))
                payload["container"] = {
                    "type": "message",
                    "message_ts": surface["ts"],
                    "channel_id": channel,
                    "is_ephemeral": ephemeral,
                }
                if surface.get("thread_ts"):
                    payload["container"]["thread_ts"] = surface["thread_ts"]
                name = (self._channels.get(channel) or {}).get("name", channel)
                payload["channel"] = {"id": channel, "name": name}
                if not ephemeral:  # Slack leaves the message out for ephemeral sources
                    payload["message"] = self._public(surface)
                payload["state"] = {"values": {}}
                payload["response_url"] = self._issue_response_url(
                    {
                        "user": user_id,
                        "channel": channel,
                        "message_ts": surface["ts"],
                        "ephemeral": ephemeral,
                        "thread_ts": surface.get("thread_ts"),
                    }
                )
        payload["trigger_id"] = self.issue_trigger(user_id)
        # Slack ignores the body of a block_actions answer: results come through the Web API
        return self._deliver_payload(
            "block_actions", payload, sign=sign, timestamp=timestamp, retry_num=retry_num
        )

    def _state_values(self, view: JSON, values: JSON) -> JSON:
        """Build Slack's ``view.state.values`` from ``{block_id: {action_id: value}}``."""
        out: JSON = {}
        known: set[str] = set()
        for block, element in iter_elements(view.get("blocks")):
            if block.get("type") != "input" and element.get("type") not in INPUT_TYPES:
                continue
            bid, aid = block.get("block_id", ""), element.get("action_id", "")
            known.add(bid)
            given = values.get(bid, _MISSING)
            if given is not _MISSING and not (isinstance(given, dict) and "type" not in given):
                given = {aid: given}  # {block_id: value} shorthand for one-element blocks
            if given is _MISSING or aid not in given:
                state = element_state(element, touched=False)
            else:
                state = element_state(element, given[aid])
            out.setdefault(bid, {})[aid] = state
        unknown = set(values) - known
        if unknown:
            raise AssertionError(f"blocks {sorted(unknown)} are not inputs of view {view['id']}")
        return out

    def submit_view(
        self,
        user_id: str,
        view_id: str | None = None,
        values: JSON | None = None,
        *,
        sign: bool = True,
        timestamp: int | None = None,
        retry_num: int | None = None,
    ) -> Reply:
        """Submit ``user_id``'s modal (top of stack unless ``view_id``) with ``values``.

        ``values`` is ``{block_id: {action_id: value}}`` (or ``{block_id: value}``); values are
        plain strings / option values / lists, or a ready Slack state dict with ``type``.
        The bot's ``response_action`` (errors, update, push, clear) is applied like Slack does.
        """
        with self._lock:
            stack = self._stacks.get(user_id) or []
            vid = view_id or (stack[-1] if stack else None)
            if vid is None or vid not in stack:
                raise AssertionError(f"{user_id} has no open view {view_id or ''}".strip())
            view = copy.deepcopy(self._views[vid])
            view["state"] = {"values": self._state_values(view, values or {})}
            self._views[vid]["state"] = copy.deepcopy(view["state"])
            payload: JSON = {
                "type": "view_submission",
                "team": {"id": self.team_id, "domain": self.team_domain},
                "user": self._user_ref(user_id),
                "api_app_id": APP_ID,
                "token": self.verification_token,
                "trigger_id": "",
                "view": view,
                "response_urls": [],
                "is_enterprise_install": False,
                "enterprise": None,
            }
        payload["trigger_id"] = self.issue_trigger(user_id)
        reply = self._deliver_payload(
            "view_submission", payload, sign=sign, timestamp=timestamp, retry_num=retry_num
        )
        if reply.status != 200:
            return reply  # Slack keeps the modal open and shows a connection error
        answer = reply.json or {}
        action = answer.get("response_action")
        with self._lock:
            if vid not in (self._stacks.get(user_id) or []):
                return reply  # already closed meanwhile (e.g. views.update raced)
            if action == "errors":
                self._view_errors[vid] = dict(answer.get("errors") or {})
                self._changed({"kind": "view_errors", "user": user_id, "view_id": vid})
            elif action in ("update", "push"):
                try:
                    spec = self._parse_view({"view": answer.get("view")})
                    if action == "update":
                        self._replace(vid, spec)
                    else:
                        self._push(user_id, spec)
                except SlackApiError as exc:
                    self.problems.append(
                        f"view_submission {action}: {exc.error} {exc.messages[:3]}"
                    )
                    self._refuse(f"view_submission response_action={action}", exc, answer)
            elif action == "clear":
                self._close(user_id, clear=True)
            elif not reply.body.strip():
                self._close(user_id)
            else:
                self.problems.append(f"view_submission answer not understood: {reply.body[:200]}")
        return reply

    def close_view(self, user_id: str, *, sign: bool = True) -> Reply | None:
        """The user closes their top modal; sends view_closed if the view asked for it."""
        with self._lock:
            stack = self._stacks.get(user_id) or []
            if not stack:
                raise AssertionError(f"{user_id} has no open view")
            view = copy.deepcopy(self._views[stack[-1]])
            clear = bool(view.get("clear_on_close"))
            self._close(user_id, clear=clear)
            payload: JSON = {
                "type": "view_closed",
                "team": {"id": self.team_id, "domain": self.team_domain},
                "user": self._user_ref(user_id),
                "api_app_id": APP_ID,
                "token": self.verification_token,
                "view": view,
                "is_cleared": clear,
                "is_enterprise_install": False,
            }
        if not view.get("notify_on_close"):
            return None
        return self._deliver_payload("view_closed", payload, sign=sign)


_MISSING: Any = object()


@dataclass
class _PendingAck:
    """A delivered envelope waiting for the bot's ack."""

    done: threading.Event = field(default_factory=threading.Event)
    acked: bool = False
    payload: Any = None


class _Handler(BaseHTTPRequestHandler):
    """HTTP front of the emulator: ``/api/<method>`` and ``/response/<token>``."""

    emu: SlackEmulator
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
