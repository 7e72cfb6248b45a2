"""The Web API the bot calls (one table of methods, answered as Slack answers them) and the
``response_url``s it posts to.
"""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Callable
from typing import Any

from bot.playground.slack_emulator.blockkit import validate_blocks
from bot.playground.slack_emulator.limits import LIMITS
from bot.playground.slack_emulator.records import (
    JSON,
    REFUSALS,
    Call,
    Refusal,
    ResponsePost,
    SlackApiError,
)
from bot.playground.slack_emulator.socket_mode import SocketMode
from bot.playground.slack_emulator.workspace import APP_ID, BOT_ID, BOT_USER_ID

RESPONSE_URL_USES = 5  # Slack: a response_url may be used up to 5 times within 30 minutes
RESPONSE_URL_TTL = 30 * 60
MAX_MESSAGE_TEXT = LIMITS["message_text"].value


class WebApi(SocketMode):
    """Slack's Web API methods and response_urls over the workspace model."""

    bot_token: str
    uploads: Any  # set by SlackEmulator (bot/playground/slack_emulator/files.py)

    def __init__(self) -> None:
        super().__init__()
        self._response_urls: dict[str, JSON] = {}
        self._faults: dict[str, list[JSON]] = {}

    @property
    def base_url(self) -> str:
        """Root URL of the emulator's HTTP server."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """Web API base URL, for ``WebClient(base_url=...)`` / ``SLACK_API_URL``."""
        return f"{self.base_url}/api/"

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
            elif not self._token_ok(token):
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

    def _token_ok(self, token: str) -> bool:
        """Whether a Web API call may use ``token`` (the bot token; see ``events`` for more)."""
        return token == self.bot_token

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
            **self.uploads.methods(),
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

    def _refuse(self, where: str, exc: SlackApiError, payload: Any) -> None:
        """Record Block Kit real Slack would refuse (the test harness fails the test on it)."""
        with self._lock:
            refusal = Refusal(where, exc.error, list(exc.messages), payload)
            self.refusals.append(refusal)
            REFUSALS.add(refusal)
            self._changed({"kind": "refusal", "where": where})

    def _issue_response_url(self, context: JSON) -> str:
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._response_urls[token] = {**context, "issued": self.clock(), "uses": 0}
        return f"{self.base_url}/response/{token}"

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
