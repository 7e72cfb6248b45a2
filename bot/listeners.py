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

import enum
import functools
import hashlib
import inspect
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from slack_bolt import App
from slack_bolt.kwargs_injection.args import Args
from slack_bolt.util.utils import get_arg_names_of_callable

from bot import logs
from bot.errors import DeviceBotError
from bot.gate import AckGate, gated_ack, upstream_ready, working_for
from bot.services import Services
from bot.slack_out import tell_user

log = logging.getLogger(__name__)


class GuardedApp:
    """What capabilities register on: Bolt's App, with every listener wrapped by `guard`.

    Bolt loses the HTTP response when a listener raises after ack() (its runner then
    resets the ack), so errors must not escape a listener: `guard` hands them to the one
    error handler instead, after the ack has gone out.

    With `route`, the buttons and forms registered by their exact id (`action("id")`,
    `view("callback")`) share one Bolt listener per kind that finds theirs in a dict. Bolt
    tries its listeners in order and each try costs CPU before the ack (its matcher builds
    every listener argument): an *Approve* click went through sixteen, now through two.
    Listeners with a pattern, a dict or matchers stay Bolt's own, in their order; an id that
    one of them registered before it would match is not routed, so the first registration
    still wins as in Bolt.
    """

    def __init__(
        self, app: App, svc: Services, executor: Executor | None = None, *, route: bool = False
    ) -> None:
        self.app = app
        self.svc = svc
        self.executor = executor
        self.route = route
        self._routes: dict[str, dict[str, tuple[Any, list[str]]]] = {}  # kind -> id -> listener
        self._after_router: dict[str, list[Any]] = {}  # kind -> Bolt's own constraints since

    def _register(self, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        at_once = kwargs.pop("ack_at_once", False)

        def decorator(func: Any) -> Any:
            answer_first = is_click if kind == "action" else (_always if at_once else None)
            target = guard(self.svc, func, self.executor, ack_at_once=answer_first)
            constraint = args[0] if len(args) == 1 else None
            if self.route and kind in _ROUTED and isinstance(constraint, str) and not kwargs:
                key = constraint.value if isinstance(constraint, enum.Enum) else str(constraint)
                if not any(_may_match(c, key) for c in self._after_router.get(kind, [])):
                    if kind not in self._routes:
                        self._routes[kind] = {}
                        self._after_router[kind] = []
                        getattr(self.app, kind)(_ANY)(_router(kind, self._routes[kind]))
                    self._routes[kind].setdefault(key, (target, get_arg_names_of_callable(target)))
                    return target
            if kind in self._after_router:
                self._after_router[kind].append(constraint if constraint is not None else kwargs)
            return getattr(self.app, kind)(*args, **kwargs)(target)

        return decorator

    def command(self, *args: Any, **kwargs: Any) -> Any:
        return self._register("command", args, kwargs)

    def action(self, *args: Any, **kwargs: Any) -> Any:
        return self._register("action", args, kwargs)

    def view(self, *args: Any, **kwargs: Any) -> Any:
        return self._register("view", args, kwargs)

    def options(self, *args: Any, **kwargs: Any) -> Any:
        return self._register("options", args, kwargs)

    def shortcut(self, *args: Any, **kwargs: Any) -> Any:
        return self._register("shortcut", args, kwargs)

    def event(self, *args: Any, **kwargs: Any) -> Any:
        return self._register("event", args, kwargs)

    def function(self, *args: Any, **kwargs: Any) -> Any:
        return self._register("function", args, kwargs)


_ROUTED = ("action", "view")


def is_click(body: dict[str, Any]) -> bool:
    """A block action: Slack reads nothing in its acknowledgement (a dialog's could carry
    errors)."""
    return body.get("type") == "block_actions"


def _always(body: dict[str, Any]) -> bool:
    return True


_ANY = re.compile(r"(?s).*")  # every id: Bolt's matcher still checks the payload type


def _may_match(constraint: Any, key: str) -> bool:
    """Whether a listener Bolt matches itself could take requests with this exact id."""
    if isinstance(constraint, re.Pattern):
        return constraint.search(key) is not None
    if isinstance(constraint, str):
        return str(constraint) == key
    return True  # a dict or matchers: assume it might


def _route_key(kind: str, body: dict[str, Any]) -> str | None:
    """The id Bolt compares with an exact `action(...)` / `view(...)` constraint."""
    if kind == "view":
        return (body.get("view") or {}).get("callback_id")
    if body.get("type") == "block_actions":
        actions = body.get("actions") or [{}]
        return actions[0].get("action_id")
    return body.get("callback_id")  # attachment actions, dialogs, workflow step edits


def _router(kind: str, routes: dict[str, tuple[Any, list[str]]]) -> Any:
    """One Bolt listener for every exact id of a kind: calls the one registered for the
    request's id with the arguments it declares (Bolt's `args` holds them all)."""

    def route(args: Args) -> None:
        found = routes.get(_route_key(kind, args.body) or "")
        if found is None:
            return None  # not ours: Bolt goes on to its other listeners
        target, names = found
        given = {n: getattr(args, n) if hasattr(args, n) else args.context.get(n) for n in names}
        return target(**given)  # type: ignore[no-any-return]

    route.__name__ = f"route_{kind}"
    return route


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


def guard(
    svc: Services,
    func: Any,
    executor: Executor | None = None,
    *,
    ack_at_once: Callable[[dict[str, Any]], bool] | None = None,
) -> Any:
    """Run a listener; any exception goes to `report_error` (the one error handler).

    Its ack is wrapped by the ack gate (bot/gate.py), which needs the request: Bolt injects
    arguments by the listener's signature, so the wrapper declares `request` as well. After
    the acknowledgement has gone out, ack() claims the gesture's delivery key: a
    re-delivery stops there (`Redelivered`), so its work is done once.

    With an `executor` (the App runs listeners before it answers, process_before_response)
    the listener runs there and the wrapper returns as soon as it has acknowledged: Bolt
    answers Slack at that instant instead of at its runner's next 10 ms poll, and the
    listener works on after the answer.

    `ack_at_once(body)` true: the listener's ack carries nothing Slack reads (a button
    click; a command whose listener acks before anything else), so the wrapper sends it
    itself, and the listener's own ack() only returns the answer. The listener is handed
    to the pool by the gate (`AckGate.defer`) once the other answers have gone out; the
    claim then runs there before the listener.
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
        upstream = upstream_ready()  # the server answered already: run here, now
        begun = upstream or threading.Event()
        early = executor is not None and "ack" in kwargs and ack_at_once and ack_at_once(body)
        token = _gate_token(request)
        if early:
            bolt_ack = kwargs["ack"]
            bolt_ack()  # Bolt answers Slack as soon as this wrapper returns
            svc.gate.acked(token)
            kwargs["ack"] = _Answered(bolt_ack)
        elif "ack" in kwargs:
            kwargs["ack"] = gated_ack(svc.gate, kwargs["ack"], token, then=claim, sent=answered.set)

        def run() -> None:
            try:
                if early:  # answered, and started by the gate once the others are: claim
                    working_for(token)
                    try:
                        claim()
                    finally:
                        begun.set()  # the gate may start the next request's work
                elif "ack" not in kwargs:  # nothing to answer first: claim before the work
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

        if executor is None or (early and upstream is not None):
            run()
            return None
        if early:
            # answered: the gate hands the work to the pool once the other answers are out
            svc.gate.defer(token, functools.partial(executor.submit, run), begun)
            return None
        if "ack" not in kwargs:
            answered.set()  # Bolt acknowledges (an event) once it is handed over
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


class _Answered:
    """The ack a listener gets when the wrapper has answered for it: calling it only
    returns the answer."""

    def __init__(self, ack: Any) -> None:
        self._ack = ack

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._ack.response

    @property
    def response(self) -> Any:
        return self._ack.response


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
