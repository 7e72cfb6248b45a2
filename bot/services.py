"""The bot's dependencies, built once from Settings and passed to every capability.

Nothing here holds a SQLite connection or an httplib2.Http shared between threads: Store
hands out per-thread connections, GoogleClients a per-thread Http for every request (its
googleapiclient services are built once and shared: bot/google/transport.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient

from bot import audit_key
from bot.audit import SlackAnchors
from bot.changes import Change
from bot.directory import DeviceDirectory
from bot.gate import AckGate, GatedExecutor
from bot.google import GoogleClients
from bot.metrics import Metrics
from bot.roles import Roles
from bot.secrets_box import SecretBox
from bot.settings import Settings
from bot.slack_out import SlackOut
from bot.store import Store

log = logging.getLogger(__name__)

#: the look-up pool (Google calls and index reads; see DeviceDirectory)
LOOKUP_THREADS = 128
#: at most this many of them work for one Slack request. Not half (64): with 64 of a move's
#: look-ups in flight at 100 ms each, parsing their answers kept the GIL so busy (about 580
#: a second) that another user's `/device info` took 1.55× as long as alone
#: (`python -m bench.fairness`); at 48, 1.34× and the move of 1 500 resolves in 6.7 s.
LOOKUP_LANE_LIMIT = 48


@dataclass
class Services:
    """Everything a listener or a job needs, passed in explicitly."""

    settings: Settings
    store: Store
    google: GoogleClients
    devices: DeviceDirectory
    out: SlackOut
    roles: Roles
    secrets: SecretBox
    executor: GatedExecutor
    clock: Callable[[], float] = time.time
    gate: AckGate = field(default_factory=AckGate)
    sandbox: Any = None  # the in-process sandbox Google, when GOOGLE_BACKEND=sandbox
    owns_sandbox: bool = False
    extras: dict[str, Any] = field(default_factory=dict)
    #: called as hook(svc, change) with every change (bot/changes.py): capabilities add theirs
    #: at start-up (`register`), so the request code never imports the App Home, Workflow
    #: Builder steps or lost cases that follow it
    hooks: list[Callable[[Services, Change], None]] = field(default_factory=list)
    #: this bot process's id (jobs lease, executor of requests); None: Services built alone
    owner: str | None = None
    metrics: Metrics | None = None  # set by BotServer; None in tests that build Services alone

    def changed(self, change: Change) -> None:
        """Tell every hook what changed. A hook's failure is logged and never reaches the
        caller, whose change is already committed."""
        for hook in list(self.hooks):
            try:
                hook(self, change)
            except Exception:
                log.exception("hook %s failed on %s", getattr(hook, "__name__", hook), change)

    def warm(self, threads: int = 32) -> None:
        """Start `threads` pool workers with their Google Http and SQLite connection made
        (and the shared Google services built), in the background: the first burst after
        start-up then costs what later ones do."""
        barrier = threading.Barrier(threads)

        def prepare() -> None:
            try:
                barrier.wait(timeout=30)  # one task per thread: all wait until all started
                self.google.warm()
                self.store.db()
            except Exception:  # warming is an optimisation; never let it break start-up
                log.debug("warm-up task failed", exc_info=True)

        for _ in range(threads):
            self.executor.submit(prepare)

    def close(self) -> None:
        for listener in self.store.anchor_listeners:
            if isinstance(listener, SlackAnchors):
                listener.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.store.dialect == "postgresql":
            self.store.close()  # its connection pool
        if self.sandbox is not None and self.owns_sandbox:
            self.sandbox.stop()


def open_store(settings: Settings) -> Store:
    """The database, its audit chain keyed with AUDIT_KEY (else a generated key file beside
    it, which production is warned about) and anchored to AUDIT_ANCHOR_FILE."""
    key = audit_key.load_key(
        settings.audit_key.get() if settings.audit_key else None,
        settings.database_path,
        create=True,
    )
    store = Store(
        settings.database_path,
        audit_key=key,
        anchor_file=settings.audit_anchor_file,
        url=settings.database_url.get() if settings.database_url else None,
    )
    production = not settings.sandbox and not settings.google_api_endpoint  # Google itself
    if settings.audit_key is None and production:
        log.warning(
            "AUDIT_KEY is not set: the audit chain is keyed with the generated file %s beside the"
            " database; whoever can read it can rewrite the log undetected. Set AUDIT_KEY (its"
            " content, to keep this chain) and keep the key off this machine",
            audit_key.key_file_for(settings.database_path),
        )
    if settings.audit_anchor_file is None and production:
        log.warning(
            "AUDIT_ANCHOR_FILE is not set: the audit chain is anchored in %s beside the database;"
            " name a file on other, append-only storage",
            store.anchor_file,
        )
    return store


def build_services(settings: Settings, *, sandbox: Any = None) -> Services:
    """Wire the dependencies; starts the in-process sandbox Google if asked to."""
    store = open_store(settings)  # first: a wrong audit key stops start-up before anything runs
    endpoint = settings.google_api_endpoint
    owns_sandbox = False
    if settings.sandbox and sandbox is None and not endpoint:
        owns_sandbox = True
        from bot.sandbox import Sandbox

        sandbox = Sandbox(devices=settings.sandbox_devices).start()
        log.info("sandbox Google serving %d devices at %s", settings.sandbox_devices, sandbox.url)
    if sandbox is not None:
        endpoint = sandbox.url
    google = GoogleClients.from_settings(settings, endpoint=endpoint)
    # I/O-bound Google calls and index reads (leaf tasks only, see DeviceDirectory): sized so
    # that a burst of look-ups against a slow Google runs at once rather than in waves.
    gate = AckGate()
    # Fair: each Slack request's look-ups queue in their own lane, served in turn, and one
    # request holds at most LOOKUP_LANE_LIMIT workers, so a big move never delays someone's info.
    executor = GatedExecutor(
        gate,
        max_workers=LOOKUP_THREADS,
        lane_limit=LOOKUP_LANE_LIMIT,
        thread_name_prefix="device-bot-work",
    )
    client = WebClient(token=settings.slack_bot_token.get(), base_url=settings.slack_api_url)
    svc = Services(
        settings=settings,
        store=store,
        google=google,
        devices=DeviceDirectory(google, store, executor),
        out=SlackOut(client, sandbox=settings.sandbox),
        roles=Roles(
            settings.device_operators,
            settings.device_approvers,
            client,
            approver_cache_seconds=settings.approver_group_cache,
        ),
        secrets=SecretBox.for_store(
            settings.bot_secret_key.get() if settings.bot_secret_key else None, store
        ),
        executor=executor,
        gate=gate,
        sandbox=sandbox,
        owns_sandbox=owns_sandbox,
    )
    if settings.approval_channel and settings.approval_required:
        store.anchor_listeners.append(SlackAnchors(svc, settings.approval_channel))
    return svc
