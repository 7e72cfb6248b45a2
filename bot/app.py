"""The application factory: one Bolt App wired with every capability.

`create_app(svc)` builds a fresh App per call (no module-level App), registers the
`/device` command, each capability's listeners, the retry de-duplication middleware and
the single error handler.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.context import BoltContext

from bot import ids, logs, metrics
from bot.commands import Commands
from bot.errors import DeviceBotError
from bot.gate import AckGate, gated_ack, working_for
from bot.services import Services

log = logging.getLogger(__name__)

#: Bolt runs each listener on this pool and answers Slack as soon as ack() is called, so it
#: must be large enough that a slow Google never leaves a new request waiting for a thread.
LISTENER_THREADS = 200


def capabilities() -> list[Any]:
    """Capability modules, each with register(app, svc, commands), in help order."""
    from bot import lookup

    modules: list[Any] = [lookup]
    for name in ("export", "actions", "approvals", "outcomes", "lost"):
        try:
            modules.append(__import__(f"bot.{name}", fromlist=["register"]))
        except ModuleNotFoundError as exc:
            if exc.name != f"bot.{name}":
                raise
    return modules


def create_app(svc: Services) -> App:
    """A Bolt App serving `/device`, its buttons and modals."""
    settings = svc.settings
    token = settings.slack_bot_token.get()

    def authorize(
        enterprise_id: str | None = None, team_id: str | None = None, **_: Any
    ) -> AuthorizeResult:
        """One workspace, one token: no auth.test on the request path (Bolt's default
        single-team authorization calls it on the first request, and on every request
        while Slack is unreachable)."""
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=token)

    bolt_log = logging.getLogger("bot.bolt")
    level = bolt_log.level
    # Bolt warns that SLACK_BOT_TOKEN "will be ignored" when `authorize` is given: the token
    # is used, by `authorize` above; keep that false alarm out of every start-up log.
    bolt_log.setLevel(logging.ERROR)
    try:
        app = App(
            signing_secret=settings.slack_signing_secret.get() or None,
            client=svc.out.client,
            authorize=authorize,
            token_verification_enabled=False,
            request_verification_enabled=not settings.socket_mode,
            listener_executor=ThreadPoolExecutor(
                max_workers=LISTENER_THREADS, thread_name_prefix="bolt"
            ),
            logger=logging.getLogger("bot.bolt"),
        )
    finally:
        bolt_log.setLevel(level)
    app.use(_note_kind)
    app.use(_deduplicate(svc))
    app.error(_error_handler(svc))
    guarded = GuardedApp(app, svc)
    commands = Commands()
    for module in capabilities():
        module.register(guarded, svc, commands)
    guarded.command(ids.SLASH_COMMAND)(commands.listener(svc))
    return app


class GuardedApp:
    """What capabilities register on: Bolt's App, with every listener wrapped by `guard`.

    Bolt loses the HTTP response when a listener raises after ack() (its runner then
    resets the ack), so errors must not escape a listener: `guard` hands them to the one
    error handler instead, after the ack has gone out.
    """

    def __init__(self, app: App, svc: Services) -> None:
        self.app = app
        self.svc = svc

    def _wrap(self, register: Any) -> Any:
        def decorator(func: Any) -> Any:
            return register(guard(self.svc, func))

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


def guard(svc: Services, func: Any) -> Any:
    """Run a listener; any exception goes to `report_error` (the one error handler).

    Its ack is wrapped by the ack gate (bot/gate.py), which needs the request: Bolt injects
    arguments by the listener's signature, so the wrapper declares `request` as well.
    """
    signature = inspect.signature(func)
    wants_request = "request" in signature.parameters

    def guarded(*args: Any, **kwargs: Any) -> Any:
        request = kwargs.get("request") if wants_request else kwargs.pop("request", None)
        if "ack" in kwargs:
            token = _gate_token(request)
            kwargs["ack"] = gated_ack(svc.gate, kwargs["ack"], token)
        try:
            with logs.bind(**_about(kwargs.get("body") or {})):
                return func(*args, **kwargs)
        except Exception as error:
            body = kwargs.get("body") or {}
            ack = kwargs.get("ack")
            if ack is not None and getattr(ack, "response", None) is None:
                ack()  # never leave Slack without an answer
            report_error(svc, error, body)
            return None
        finally:
            working_for(None)  # listener threads are reused: forget the request

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


def _note_kind(body: dict[str, Any], next: Any) -> BoltResponse | None:
    """Name the request's kind for the metrics (runs only after Bolt checked the signature)."""
    metrics.note_kind(metrics.request_kind(body))
    return next()  # type: ignore[no-any-return]


def _deduplicate(svc: Services) -> Any:
    def deduplicate(body: dict[str, Any], next: Any, context: BoltContext) -> BoltResponse | None:
        """Answer a re-delivered gesture (X-Slack-Retry-Num, a double submit) without acting twice."""
        key = delivery_key(body)
        if key is not None and not svc.store.first_delivery(key):
            log.info("duplicate delivery %s ignored", key[:12])
            return BoltResponse(status=200, body="")
        return next()  # type: ignore[no-any-return]

    return deduplicate


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
    tell_user(svc, body, text)


def _error_handler(svc: Services) -> Any:
    def handle_error(error: Exception, body: dict[str, Any]) -> None:
        """Errors Bolt itself catches (middleware) go to the same place."""
        report_error(svc, error, body)

    return handle_error


def tell_user(svc: Services, body: dict[str, Any], text: str) -> None:
    """Reach the person behind `body` privately: response_url, else ephemeral, else DM."""
    user = body.get("user_id") or (body.get("user") or {}).get("id")
    response_url = body.get("response_url") or next(
        (u.get("response_url") for u in body.get("response_urls") or []), None
    )
    channel = body.get("channel_id") or (body.get("channel") or {}).get("id")
    try:
        if response_url:
            svc.out.respond(response_url, text)
        elif channel and user:
            svc.out.ephemeral(channel, user, text)
        elif user:
            svc.out.post(user, text)
    except Exception:
        log.exception("could not tell %s about an error", user)
