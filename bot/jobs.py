"""Scheduled jobs, registered in one place, run by one process at a time.

Every job is a plain function of Services. A lease row in SQLite decides which bot
process runs them: during a rolling restart old and new processes overlap, and only
the lease holder's jobs do anything; the other takes over when the lease lapses.
Each process also keeps a heartbeat row so that work it left half-done can be told
apart from work still in progress.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler

from bot import audit
from bot.services import Services
from bot.store import Store

log = logging.getLogger(__name__)

JOBS_LEASE = "jobs"
HEARTBEAT_PREFIX = "process:"


def new_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Lease:
    """A named lease in SQLite, renewed by its holder, taken over when it lapses."""

    def __init__(
        self,
        store: Store,
        name: str,
        owner: str,
        seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.name = name
        self.owner = owner
        self.seconds = seconds
        self.clock = clock
        self._valid_until = 0.0

    def acquire(self) -> bool:
        """Take or renew the lease; True while this owner holds it."""
        now = self.clock()
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT owner, expires_at FROM leases WHERE name = ?", [self.name]
            ).fetchone()
            if row is not None and row[0] != self.owner and row[1] > now:
                self._valid_until = 0.0
                return False
            db.execute(
                "INSERT OR REPLACE INTO leases(name, owner, expires_at) VALUES (?, ?, ?)",
                [self.name, self.owner, now + self.seconds],
            )
        if row is None or row[0] != self.owner:
            log.info("lease %s taken by %s", self.name, self.owner)
        self._valid_until = now + self.seconds * 0.8
        return True

    @property
    def held(self) -> bool:
        return self.clock() < self._valid_until

    def release(self) -> None:
        with self.store.transaction() as db:
            db.execute("DELETE FROM leases WHERE name = ? AND owner = ?", [self.name, self.owner])
        self._valid_until = 0.0


def process_alive(store: Store, owner: str | None, now: float | None = None) -> bool:
    """Whether the bot process `owner` still heartbeats."""
    if not owner:
        return False
    row = (
        store.db()
        .execute("SELECT expires_at FROM leases WHERE name = ?", [HEARTBEAT_PREFIX + owner])
        .fetchone()
    )
    return bool(row and row[0] > (now if now is not None else time.time()))


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: Callable[[Services], object]
    seconds: float
    needs_lease: bool = True
    at_start: bool = False  # also run once right after start-up


def core_job_specs(svc: Services) -> list[JobSpec]:
    """The jobs of the bot itself (the capabilities add theirs: `bot.app.job_specs`)."""
    s = svc.settings
    specs: list[JobSpec] = [
        JobSpec("prune-deliveries", lambda sv: sv.store.prune_deliveries(), 600),
        JobSpec("audit-anchor", audit.anchor_job, s.audit_anchor_interval, at_start=True),
        JobSpec(
            "android-index-sync",
            lambda sv: sv.devices.sync_android_index(),
            s.index_sync_interval,
            at_start=True,  # so that the first Android look-up does not build the index inline
        ),
    ]
    return specs


class Jobs:
    """Owns the APScheduler instance, the heartbeat and the jobs lease of this process."""

    def __init__(self, svc: Services, specs: list[JobSpec]) -> None:
        self.svc = svc
        self.specs = specs
        svc.owner = svc.owner or new_owner_id()
        self.owner: str = svc.owner
        seconds = svc.settings.lease_seconds
        self.lease = Lease(svc.store, JOBS_LEASE, self.owner, seconds)
        self.heartbeat = Lease(svc.store, HEARTBEAT_PREFIX + self.owner, self.owner, seconds)
        self.scheduler = BackgroundScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone="UTC",
        )
        self.runs: dict[str, int] = {}

    def start(self) -> None:
        self.heartbeat.acquire()
        self.lease.acquire()
        beat = max(0.1, self.svc.settings.lease_seconds / 4)
        self.scheduler.add_job(
            self._beat, "interval", seconds=beat, id="lease", replace_existing=True
        )
        for spec in self.specs:
            self.scheduler.add_job(
                self._guard(spec),
                "interval",
                seconds=spec.seconds,
                id=spec.id,
                replace_existing=True,
                **({"next_run_time": _now()} if spec.at_start and self.lease.held else {}),
            )
        self.scheduler.start()

    def _beat(self) -> None:
        try:
            self.heartbeat.acquire()
            self.lease.acquire()
        except Exception:
            log.exception("lease renewal failed")

    def _guard(self, spec: JobSpec) -> Callable[[], None]:
        def run() -> None:
            if spec.needs_lease and not self.lease.held:
                return
            started = time.monotonic()
            failed = False
            try:
                spec.func(self.svc)
                self.runs[spec.id] = self.runs.get(spec.id, 0) + 1
                log.debug("job %s ran in %s", spec.id, self.owner)
            except Exception:
                failed = True
                log.exception("job %s failed", spec.id)
            if self.svc.metrics is not None:
                self.svc.metrics.observe_job(spec.id, time.monotonic() - started, failed)

        run.__name__ = f"job_{spec.id}"
        return run

    def stop(self) -> None:
        try:
            self.scheduler.shutdown(wait=True)
        except Exception:
            log.debug("scheduler already stopped")
        audit.anchor_head(self.svc.store)  # the head at shutdown, whoever held the jobs
        try:
            self.lease.release()
            self.heartbeat.release()
        except Exception:
            log.exception("lease release failed")


def _now() -> object:
    from datetime import UTC, datetime

    return datetime.now(UTC)
