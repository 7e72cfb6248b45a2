"""The Events API: ``app_home_opened`` (a person opens the app's Home tab), ``function_executed``
(Workflow Builder runs the app's custom step) and the ``url_verification`` handshake, delivered as
Slack delivers them — a signed JSON ``POST`` (``event_callback`` envelope), or an ``events_api``
Socket Mode envelope — and the ``functions.completeSuccess`` / ``functions.completeError``
methods that end a step.

A step's execution has a workflow token (``bot_access_token``, ``xwfp-…``) that the app may use
while the step runs; the app's bot token completes it too (the methods' page: "Bot tokens: no
scope required"). A step is completed once: Slack answers ``execution_not_in_running_state``
after that.
"""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Callable
from typing import Any

from bot.playground.slack_emulator.gestures import Gestures
from bot.playground.slack_emulator.records import JSON, Reply, SlackApiError
from bot.playground.slack_emulator.workspace import APP_ID


class Events(Gestures):
    """Events sent to the bot, and the custom steps (function executions) they start."""

    def __init__(self) -> None:
        super().__init__()
        #: function_execution_id -> {callback_id, inputs, token, state, outputs, error}
        self._executions: dict[str, JSON] = {}

    # ----------------------------------------------------------------- delivery

    def _deliver_event(self, event: JSON, *, retry_num: int | None = None) -> Reply:
        """Wrap ``event`` in Slack's ``event_callback`` envelope and deliver it."""
        with self._lock:
            envelope: JSON = {
                "token": self.verification_token,
                "team_id": self.team_id,
                "api_app_id": APP_ID,
                "event": event,
                "type": "event_callback",
                "event_id": self._new_id("Ev"),
                "event_time": int(self.clock()),
                "authorizations": [
                    {
                        "enterprise_id": None,
                        "team_id": self.team_id,
                        "user_id": event.get("user") or "",
                        "is_bot": True,
                        "is_enterprise_install": False,
                    }
                ],
                "is_ext_shared_channel": False,
            }
        return self._deliver(
            "events_api",
            json.dumps(envelope),
            envelope,
            retry_num=retry_num,
            content_type="application/json",
        )

    def open_home(self, user_id: str, *, tab: str = "home", retry_num: int | None = None) -> Reply:
        """``user_id`` opens the app's Home tab (or its Messages tab): ``app_home_opened``."""
        with self._lock:
            if user_id not in self._users:
                raise AssertionError(f"no user {user_id}")
            event: JSON = {
                "type": "app_home_opened",
                "user": user_id,
                "channel": "D" + user_id[1:],
                "tab": tab,
                "event_ts": self._next_ts(),
            }
            home = self._home.get(user_id)
            if home:  # Slack includes the published view once there is one
                event["view"] = copy.deepcopy(self._views[home])
        return self._deliver_event(event, retry_num=retry_num)

    def run_step(
        self,
        callback_id: str,
        inputs: JSON,
        *,
        execution_id: str | None = None,
        retry_num: int | None = None,
    ) -> str:
        """Workflow Builder runs the app's custom step ``callback_id`` with ``inputs``:
        ``function_executed``. Returns the function_execution_id (``execution(id)`` follows it)."""
        with self._lock:
            execution_id = execution_id or self._new_id("Fx")
            token = "xwfp-" + secrets.token_hex(12)
            if execution_id not in self._executions:
                self._executions[execution_id] = {
                    "id": execution_id,
                    "callback_id": callback_id,
                    "inputs": copy.deepcopy(inputs),
                    "token": token,
                    "state": "running",
                    "outputs": None,
                    "error": None,
                    "started": self.clock(),
                }
                self._changed({"kind": "step", "execution_id": execution_id})
            token = self._executions[execution_id]["token"]
            event: JSON = {
                "type": "function_executed",
                "function": {
                    "id": "Fn" + callback_id.upper()[:8],
                    "callback_id": callback_id,
                    "title": callback_id.replace("_", " ").capitalize(),
                    "description": "",
                    "type": "app",
                    "input_parameters": [],
                    "output_parameters": [],
                    "app_id": APP_ID,
                    "date_created": int(self.clock()),
                    "date_updated": int(self.clock()),
                    "date_deleted": 0,
                },
                "inputs": copy.deepcopy(inputs),
                "function_execution_id": execution_id,
                "workflow_execution_id": self._new_id("Wx"),
                "event_ts": self._next_ts(),
                "bot_access_token": token,
            }
        self._deliver_event(event, retry_num=retry_num)
        return execution_id

    def verify_url(self, challenge: str | None = None) -> Reply:
        """The ``url_verification`` handshake Slack makes when the Request URL is saved."""
        body = {
            "token": self.verification_token,
            "challenge": challenge or secrets.token_urlsafe(24),
            "type": "url_verification",
        }
        return self._deliver(
            "url_verification", json.dumps(body), body, content_type="application/json"
        )

    def execution(self, execution_id: str) -> JSON | None:
        """A step's execution: state ``running`` | ``completed`` | ``failed``, outputs, error."""
        with self._lock:
            found = self._executions.get(execution_id)
            return copy.deepcopy(found) if found else None

    def executions(self) -> list[JSON]:
        with self._lock:
            return copy.deepcopy(list(self._executions.values()))

    # ----------------------------------------------------------------- Web API

    def _token_ok(self, token: str) -> bool:
        if super()._token_ok(token):
            return True
        with self._lock:  # a workflow token is good while its step runs
            return any(
                e["token"] == token and e["state"] == "running" for e in self._executions.values()
            )

    def _methods(self) -> dict[str, Callable[[JSON], JSON]]:
        return {
            **super()._methods(),
            "functions.completeSuccess": self._functions_complete_success,
            "functions.completeError": self._functions_complete_error,
        }

    def _running(self, args: JSON) -> JSON:
        execution = self._executions.get(str(args.get("function_execution_id") or ""))
        if execution is None:
            raise SlackApiError("function_execution_not_found")
        if execution["state"] != "running":
            raise SlackApiError("execution_not_in_running_state")
        return execution

    def _functions_complete_success(self, args: JSON) -> JSON:
        outputs: Any = args.get("outputs")
        if isinstance(outputs, str):
            try:
                outputs = json.loads(outputs)
            except ValueError:
                raise SlackApiError("invalid_arguments") from None
        if not isinstance(outputs, dict):
            raise SlackApiError("invalid_arguments")
        with self._lock:
            execution = self._running(args)
            execution.update(state="completed", outputs=outputs, ended=self.clock())
            self._changed({"kind": "step", "execution_id": execution["id"]})
        return {}

    def _functions_complete_error(self, args: JSON) -> JSON:
        error = args.get("error")
        if not isinstance(error, str) or not error:
            raise SlackApiError("invalid_arguments")
        with self._lock:
            execution = self._running(args)
            execution.update(state="failed", error=error, ended=self.clock())
            self._changed({"kind": "step", "execution_id": execution["id"]})
        return {}
