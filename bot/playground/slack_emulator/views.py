"""Modals and App Home: trigger_ids, the views.* methods, each user's stack of open modals."""

from __future__ import annotations

import copy
import json
import secrets
from typing import Any

from bot.playground.slack_emulator.blockkit import error_at, validate_view
from bot.playground.slack_emulator.records import JSON, SlackApiError
from bot.playground.slack_emulator.workspace import APP_ID, BOT_ID, Workspace

TRIGGER_TTL = 3.0  # seconds a trigger_id may be exchanged for a modal


class Views(Workspace):
    """Views as Slack keeps them: a stack of modals per user, and a Home tab."""

    def __init__(self) -> None:
        super().__init__()
        self._views: dict[str, JSON] = {}  # view_id -> view (Slack's shape)
        self._view_owner: dict[str, str] = {}
        self._view_errors: dict[str, JSON] = {}
        self._stacks: dict[str, list[str]] = {}  # user -> open modal view ids, bottom first
        self._home: dict[str, str] = {}  # user -> home view id
        self._triggers: dict[str, JSON] = {}

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

    def issue_trigger(self, user: str) -> str:
        """A trigger_id for ``user``, as Slack puts in a command or interaction (valid 3 s, once)."""
        n = next(self._ids)
        trigger = f"{n}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers[trigger] = {"user": user, "issued": self.clock(), "used": False}
        return trigger

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
