"""What a person does in Slack, delivered to the bot as Slack delivers it: a slash command, a click,
a modal submitted or closed (signed HTTP, or a Socket Mode envelope).
"""

from __future__ import annotations

import copy
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from slack_sdk.signature import SignatureVerifier

from bot.playground.slack_emulator.blockkit import INPUT_TYPES
from bot.playground.slack_emulator.blockkit import _check_options as check_options
from bot.playground.slack_emulator.elements import element_state, iter_elements
from bot.playground.slack_emulator.records import JSON, Delivery, Prepared, Reply, SlackApiError
from bot.playground.slack_emulator.web_api import WebApi
from bot.playground.slack_emulator.workspace import APP_ID

_MISSING: Any = object()


class Gestures(WebApi):
    """Slash commands, clicks and modal submissions sent to the bot."""

    signing_secret: str
    bot_url: str | None
    verification_token: str
    _verifier: SignatureVerifier
    # per thread: the emulator and the list `preparing` collects its deliveries into
    _preparing = threading.local()

    @contextmanager
    def preparing(self) -> Iterator[list[Prepared]]:
        """Gestures made by this thread inside the block are built and signed as usual but not
        sent: each delivery is appended to the list yielded, and the gesture sees a reply with
        status 0 and no body. A load generator can then send them all at one instant."""
        collected: list[Prepared] = []
        self._preparing.into = (self, collected)
        try:
            yield collected
        finally:
            self._preparing.into = None

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
        content_type: str = "application/x-www-form-urlencoded",
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
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        owner, into = getattr(self._preparing, "into", None) or (None, None)
        if owner is self and into is not None:
            into.append(Prepared(kind, self.bot_url, headers, body.encode()))
            return Reply(status=0, body="", json=None, elapsed=0.0)
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

    def suggest(
        self,
        user_id: str,
        action_id: str,
        typed: str = "",
        *,
        view: Any = True,
        block_id: str | None = None,
        sign: bool = True,
    ) -> list[JSON]:
        """The user types ``typed`` into an ``external_select``: a signed block_suggestion
        goes to the bot (its options load URL) and the options it answers are returned.

        Like Slack, an answer that is not ``{"options": [...]}`` (or ``option_groups``) within
        the limits shows the user nothing; it is recorded in ``problems``.
        """
        kind, surface, block, element = self._locate(user_id, action_id, block_id, None, view)
        if element.get("type") not in ("external_select", "multi_external_select"):
            raise AssertionError(
                f"{action_id!r} is a {element.get('type')}, not an external select"
            )
        if len(typed) < int(element.get("min_query_length", 3)):
            return []  # Slack asks only once enough is typed
        with self._lock:
            payload: JSON = {
                "type": "block_suggestion",
                "user": self._user_ref(user_id),
                "container": {"type": "view", "view_id": surface["id"]},
                "api_app_id": APP_ID,
                "token": self.verification_token,
                "action_id": action_id,
                "block_id": block.get("block_id", ""),
                "value": typed,
                "team": {"id": self.team_id, "domain": self.team_domain},
                "enterprise": None,
                "is_enterprise_install": False,
                "view": copy.deepcopy(surface),
            }
        reply = self._deliver_payload("block_suggestion", payload, sign=sign)
        answer = reply.json or {}
        if reply.status != 200 or not isinstance(answer, dict):
            self.problems.append(f"block_suggestion {action_id}: HTTP {reply.status}")
            return []
        if "option_groups" in answer:
            groups = answer["option_groups"] or []
            errors = [
                e
                for g, group in enumerate(groups)
                for e in check_options(group.get("options"), f"/option_groups/{g}/options", 100)
            ]
            options = [o for group in groups for o in group.get("options") or []]
        else:
            errors = check_options(answer.get("options"), "/options", 100)
            options = list(answer.get("options") or [])
        if errors:
            self.problems.append(f"block_suggestion {action_id}: {errors[:3]}")
            return []
        return options

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
