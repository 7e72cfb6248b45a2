"""What every listener runs inside: the ack gate, the de-duplication of Slack's
re-deliveries, the log context, and the one error handler.

Capabilities register on a `GuardedApp`, which wraps each listener with `guard`: Bolt loses
the HTTP response when a listener raises after ack() (its runner then resets the ack), so
errors never escape a listener; they go to `report_error`, the single error handler.

Nothing that can wait runs before the ack: a re-delivered gesture (X-Slack-Retry-Num, a
double submit) is recognised right after its ack, when the listener's ack() claims the
gesture's delivery key in the store — before the listener does any work, so it acts once.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import re
import threading
import uuid
from concurrent.futures import Executor
from typing import Any

from slack_bolt import App

from bot import logs
from bot.errors import DeviceBotError
from bot.gate import AckGate, gated_ack, working_for
from bot.services import Services
from bot.slack_out import tell_user

log = logging.getLogger(__name__)


class GuardedApp:
    """What capabilities register on: Bolt's App, with every listener wrapped by `guard`.

    Bolt loses the HTTP response when a listener raises after ack() (its runner then
    resets the ack), so errors must not escape a listener: `guard` hands them to the one
    error handler instead, after the ack has gone out.
    """

    def __init__(self, app: App, svc: Services, executor: Executor | None = None) -> None:
        self.app = app
        self.svc = svc
        self.executor = executor

    def _wrap(self, register: Any) -> Any:
        def decorator(func: Any) -> Any:
            return register(guard(self.svc, func, self.executor))

        return decorator

    def command(self, *args: Any, **kwargs: Any) -> Any:
        return self._wrap(self.app.command(*args, **kwargs))

    def action(self, *args: Any, **kwargs: Any) -> Any:
        return self._wrap(self.app.action(*args, **kwargs))

    def view(self, *args: Any, **kwargs: Any) -> Any:
        return self._wrap(self.app.view(*args, **kwargs))

    def options(self, *args: Any, **kwargs: Any) -> Any:
        return self._wrap(self.app.options(*args, **kwargs))

    def shortcut(self, *args: Any, **kwargs: Any) -> Any:
        return self._wrap(self.app.shortcut(*args, **kwargs))

    def event(self, *args: Any, **kwargs: Any) -> Any:
        return self._wrap(self.app.event(*args, **kwargs))

    def function(self, *args: Any, **kwargs: Any) -> Any:
        return self._wrap(self.app.function(*args, **kwargs))


def delivery_key(body: dict[str, Any]) -> str | None:
    """What identifies one user gesture across Slack's re-deliveries of it."""
    trigger = body.get("trigger_id")
    if not trigger:
        return None
    actions = body.get("actions") or []
    action_ts = actions[0].get("action_ts", "") if actions else ""
    view = body.get("view") or {}
    raw = json.dumps(
        [body.get("type") or body.get("command"), trigger, action_ts, view.get("hash")]
    )
    return hashlib.sha256(raw.encode()).hexdigest()


class Redelivered(BaseException):
    """Raised by a listener's ack() when the gesture was delivered before: the listener
    stops there, having acted on nothing. (A BaseException: no listener's `except
    Exception` may swallow it and go on working.)"""


#: how long the HTTP thread waits for a listener's ack (Slack gives up after 3 s; so does
#: Bolt's own runner)
ACK_TIMEOUT = 3.0


def guard(svc: Services, func: Any, executor: Executor | None = None) -> Any:
    """Run a listener; any exception goes to `report_error` (the one error handler).

    Its ack is wrapped by the ack gate (bot/gate.py), which needs the request: Bolt injects
    arguments by the listener's signature, so the wrapper declares `request` as well. After
    the acknowledgement has gone out, ack() claims the gesture's delivery key: a
    re-delivery stops there (`Redelivered`), so its work is done once.

    With an `executor` (the App runs listeners before it answers, process_before_response)
    the listener runs there and the wrapper returns as soon as it has acknowledged: Bolt
    answers Slack at that instant instead of at its runner's next 10 ms poll, and the
    listener works on after the answer.
    """
    signature = inspect.signature(func)
    wants_request = "request" in signature.parameters

    def guarded(*args: Any, **kwargs: Any) -> Any:
        request = kwargs.get("request") if wants_request else kwargs.pop("request", None)
        body = kwargs.get("body") or {}
        claimed: list[bool] = []

        def claim() -> None:  # once, whoever calls ack() again
            if claimed:
                return
            claimed.append(True)
            key = delivery_key(body)
            if key is not None and not svc.store.first_delivery(key):
                raise Redelivered(key)

        answered = threading.Event()
        if "ack" in kwargs:
            token = _gate_token(request)
            kwargs["ack"] = gated_ack(svc.gate, kwargs["ack"], token, then=claim, sent=answered.set)

        def run() -> None:
            try:
                if "ack" not in kwargs:  # nothing to answer first: claim before the work
                    claim()
                with logs.bind(**_about(body)):
                    func(*args, **kwargs)
            except Redelivered as again:
                log.info("duplicate delivery %s ignored", str(again)[:12])
            except Exception as error:
                ack = kwargs.get("ack")
                if ack is not None and getattr(ack, "response", None) is None:
                    try:
                        ack()  # never leave Slack without an answer
                    except Redelivered:  # the first delivery reports its own error
                        return
                report_error(svc, error, body)
            finally:
                working_for(None)  # listener threads are reused: forget the request
                answered.set()

        if executor is None:
            run()
            return None
        if "ack" not in kwargs:
            answered.set()  # Bolt acknowledges an event itself once the listener is handed over
        executor.submit(run)
        answered.wait(ACK_TIMEOUT)
        return None

    functools.update_wrapper(guarded, func)
    del guarded.__wrapped__  # type: ignore[attr-defined]  # Bolt must read the signature below
    if not wants_request:
        # Bolt reads the positional parameter names (getfullargspec(...).args)
        extra = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)
        params = list(signature.parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        rest = [p for p in params if p.kind is p.KEYWORD_ONLY]
        guarded.__signature__ = signature.replace(parameters=[*positional, extra, *rest])  # type: ignore[attr-defined]
    return guarded


_REQUEST_ID = re.compile(r"^R[0-9A-F]{6,32}$")


def _about(body: dict[str, Any]) -> dict[str, str | None]:
    """What a Slack request is about, for the log lines of its listener."""
    user = body.get("user_id") or (body.get("user") or {}).get("id")
    actions = body.get("actions") or [{}]
    value = str(actions[0].get("value") or "")
    platform, _, device = value.partition("|")
    return {
        "slack_user": user,
        "request_id": value if _REQUEST_ID.match(value) else None,
        "device": device if platform in ("chrome", "android") else None,
    }


def _gate_token(request: Any) -> str | None:
    headers = getattr(request, "headers", None) or {}
    values = headers.get(AckGate.HEADER.lower()) or []
    return values[0] if values else None


def report_error(svc: Services, error: Exception, body: dict[str, Any]) -> None:
    """The one error handler: domain errors become words for the user; anything else a
    logged traceback with an id, and the id for the user."""
    if isinstance(error, DeviceBotError):
        text = f":warning: {error.message}"
        log.info("%s: %s", type(error).__name__, error.message)
    else:
        error_id = uuid.uuid4().hex[:8]
        log.error("unexpected error %s", error_id, exc_info=error)
        text = (
            f":x: Something went wrong on our side (error id `{error_id}`). Nothing more was done."
        )
    try:
        tell_user(svc.out, body, text)
    except Exception:
        user = body.get("user_id") or (body.get("user") or {}).get("id")
        log.exception("could not tell %s about an error", user)
