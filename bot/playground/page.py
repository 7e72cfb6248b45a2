"""The playground page's model: what each person sees, and what they do there.

`Page.state(user)` is the emulator's model filtered for one person (ephemerals and modals
are per user) plus what they typed that Slack keeps to itself (echoes, Slackbot notices).
Each gesture (a message, a click, a submission…) calls the Slack emulator, which delivers to
the bot exactly as Slack would; an answer Slack would complain about becomes a notice.
`bot.playground.web` serves this over HTTP.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot import ids
from bot.playground.slack_emulator import JSON, Reply, SlackEmulator

SLOW_ACK_SECONDS = 3.0  # Slack gives up on an app that has not acknowledged within 3 s
MAX_TEXT = 4000
MAX_UPLOAD = 2 * 1024 * 1024  # a file picked in a modal (bulk CSVs)
SLACKBOT = "USLACKBOT"


class BadRequest(Exception):
    """A gesture the page should not have sent; answered with 400 and the message."""


@dataclass(frozen=True)
class Person:
    """Someone the page lets you be, with the role the bot's settings give them."""

    user_id: str
    name: str
    role: str  # "operator" | "approver" | "not allowed"


class Page:
    """The people of the playground, what each sees, and the gestures they make."""

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
        #: notified on every change anyone might see (the emulator's or the page's own)
        self.changed = threading.Condition(self._lock)
        self._local: list[JSON] = []  # what users typed: echoes and Slackbot notices
        self._local_version = 0
        self._last_ts = 0.0
        self._unsubscribe = emulator.subscribe(self._on_emulator_change)

    def close(self) -> None:
        """Stop listening to the emulator."""
        self._unsubscribe()

    def _on_emulator_change(self, event: JSON) -> None:
        # runs under the emulator's lock: only wake the streams, never call back into it
        with self.changed:
            self.changed.notify_all()

    def key(self) -> tuple[int, int]:
        """Changes so far (the emulator's, the page's): a stream waits for this to move on."""
        return self.emu.version, self._local_version

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

    def _bump(self) -> None:
        with self.changed:
            self._local_version += 1
            self.changed.notify_all()

    def state(self, user: str) -> JSON:
        """Everything ``user`` can see: channels, messages, their ephemerals and modals."""
        self.person(user)
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

    def person(self, user: Any) -> str:
        """`user` if it is one of the people the page lets you be; BadRequest otherwise."""
        if not isinstance(user, str) or not any(p.user_id == user for p in self.people):
            raise BadRequest(f"unknown user {user!r}")
        return user

    def _channel(self, channel: Any) -> str:
        known = {c["id"] for c in self.emu.channels}
        if not isinstance(channel, str) or channel not in known:
            raise BadRequest(f"unknown channel {channel!r}")
        return channel

    def send_message(self, body: JSON) -> JSON:
        """The message box: ``/device …`` goes to the bot; anything else is the user's message."""
        user = self.person(body.get("user"))
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
        user = self.person(body.get("user"))
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
        user = self.person(body.get("user"))
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
        user = self.person(body.get("user"))
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
        user = self.person(body.get("user"))
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
        user = self.person(body.get("user"))
        reply = self.emu.open_home(user)
        return {"ok": reply.status == 200, "status": reply.status}

    def run_step(self, body: JSON) -> JSON:
        """A workflow ran "Request a device action" with the form's inputs, for this user."""
        user = self.person(body.get("user"))
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
