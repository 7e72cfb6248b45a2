"""The application factory: one Bolt App wired with every capability.

`create_app(svc)` builds a fresh App per call (no module-level App), registers the
`/device` command, each capability's listeners (wrapped by the guard, which also drops
Slack's re-deliveries after the ack) and the single error handler.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from types import ModuleType
from typing import Any

from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult

from bot import (
    actions,
    approvals,
    bulk,
    export,
    home,
    ids,
    lookup,
    lost,
    outcomes,
    reports,
    resubmit,
    stats,
    workflow,
)
from bot.commands import Commands
from bot.jobs import JobSpec, core_job_specs
from bot.listeners import GuardedApp, report_error
from bot.services import Services

log = logging.getLogger(__name__)

#: each listener runs on this pool and Slack is answered as soon as it calls ack(), so it
#: must be large enough that a slow Google never leaves a new request waiting for a thread.
LISTENER_THREADS = 200


#: the capability modules, in help order: each has register(app, svc, commands), and those
#: with scheduled work a jobs(svc) list
CAPABILITIES: tuple[ModuleType, ...] = (
    lookup,
    export,
    stats,
    actions,
    bulk,
    approvals,
    resubmit,
    outcomes,
    lost,
    reports,
    home,
    workflow,
)


def job_specs(svc: Services) -> list[JobSpec]:
    """Every scheduled job: the core ones and each capability's."""
    specs = core_job_specs(svc)
    for module in CAPABILITIES:
        if hasattr(module, "jobs"):
            specs.extend(module.jobs(svc))
    return specs


def create_app(
    svc: Services, *, listener_executor: Executor | None = None, signed_upstream: bool = False
) -> App:
    """A Bolt App serving `/device`, its buttons and modals.

    `listener_executor` runs the listeners (default: a pool of LISTENER_THREADS); a test
    passes one that runs them inline, so `app.dispatch` returns when the listener is done.

    `signed_upstream`: every request reaches `app.dispatch` through `SlackIngress`
    (bot/ingress.py), which has checked Slack's signature on the raw bytes and refused
    anything else with 401; Bolt's own check of the same signature (its first middleware, a
    second HMAC of the body before every acknowledgement) is then left out. Without it Bolt
    checks, as it does for any other caller of `dispatch`.

    Bolt's own runner answers Slack at the first of its 10 ms polls after ack(); here Bolt
    runs the listener wrapper before it answers (process_before_response), and the wrapper
    (bot/listeners.py: guard) hands the listener to the pool and returns the instant it
    acknowledges.
    """
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
    executor = listener_executor or ThreadPoolExecutor(
        max_workers=LISTENER_THREADS, thread_name_prefix="bolt"
    )
    try:
        app = App(
            signing_secret=settings.slack_signing_secret.get() or None,
            client=svc.out.client,
            authorize=authorize,
            token_verification_enabled=False,
            request_verification_enabled=not (signed_upstream or settings.socket_mode),
            process_before_response=True,
            listener_executor=executor,
            logger=logging.getLogger("bot.bolt"),
        )
    finally:
        bolt_log.setLevel(level)
    app.error(_error_handler(svc))
    guarded = GuardedApp(app, svc, executor, route=True)
    commands = Commands()
    # first: Bolt tries its listeners in order, each matcher costing CPU before the ack, and
    # most requests are `/device` (the sub-commands are looked up when one is typed)
    # its listener acks before anything else, with nothing in the answer: sent at once (by
    # SlackIngress itself over HTTP: bot/ingress.py `answered_at_once`)
    guarded.command(ids.SLASH_COMMAND, ack_at_once=True)(commands.listener(svc))
    for module in CAPABILITIES:
        module.register(guarded, svc, commands)
    return app


def listener_pool(app: App) -> ThreadPoolExecutor | None:
    """The pool Bolt runs listeners on (`LISTENER_THREADS`)."""
    runner = getattr(app, "_listener_runner", None)
    pool = getattr(runner, "listener_executor", None)
    return pool if isinstance(pool, ThreadPoolExecutor) else None


def warm_listeners(app: App) -> None:
    """Start every thread of Bolt's listener pool now, in the background.

    A ThreadPoolExecutor starts a thread per submission until it has max_workers, so the
    first burst would pay for starting threads between acknowledgements."""
    pool = listener_pool(app)
    if pool is None:
        return
    size = pool._max_workers
    barrier = threading.Barrier(size)

    def hold() -> None:  # one task per thread: every thread exists once all have started
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=10)

    for _ in range(size):
        pool.submit(hold)


def _error_handler(svc: Services) -> Any:
    def handle_error(error: Exception, body: dict[str, Any]) -> None:
        """Errors Bolt itself catches (middleware) go to the same place."""
        report_error(svc, error, body)

    return handle_error
