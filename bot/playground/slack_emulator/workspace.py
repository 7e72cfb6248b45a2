"""The workspace: users, channels, messages, threads and ephemerals, what the bot did, and the
queries tests and the playground read them with.

Everything is guarded by one lock; ``version`` and ``changed`` (a ``threading.Condition``) let a UI
stream changes.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from bot.playground.slack_emulator.records import (
    JSON,
    Call,
    Delivery,
    Refusal,
    ResponsePost,
    SlackApiError,
)

BOT_USER_ID = "U0DEVICEBOT"
BOT_ID = "B0DEVICEBOT"
APP_ID = "A0DEVICEBOT"

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


class Workspace:
    """The message model of a fake Slack workspace, and what the bot did in it."""

    clock: Callable[[], float]
    team_id: str
    team_domain: str

    def __init__(self) -> None:
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
        self._last_ts_us = 0
        self._ids = itertools.count(1)

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
