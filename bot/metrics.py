"""Prometheus metrics: what the bot does, in the text format any scraper reads.

Counters and histograms are updated where things happen (the HTTP entry, the Google choke
point's call observer, the jobs runner, an approval). What the database already knows —
requests by state, pending commands, open lost cases, the jobs lease holder, the age of
the Android index — is read from it at scrape time, so every replica on the database
reports the same truth.

A Slack request is counted without a lock: `observe_request` appends to a queue that is
folded into the counters at each scrape and within FLUSH_SECONDS (prometheus_client takes
a lock per label lookup and per value; a burst's HTTP threads queued on them before their
answers).

Several processes on one host (a rolling restart, gunicorn-style workers) share their
counters when `PROMETHEUS_MULTIPROC_DIR` names a writable directory, as prometheus_client
documents; each BotServer otherwise keeps its own registry (tests run several in one
process).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.google import CallRecord
from bot.store import Store

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_WAIT_BUCKETS = (10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600)


_seen = threading.local()

#: how long a Slack request's count may wait in its queue before it reaches the counters
FLUSH_SECONDS = 1.0
_to_flush: weakref.WeakSet[Metrics] = weakref.WeakSet()
_flusher_lock = threading.Lock()
_flusher: list[threading.Thread] = []


def _flush_all() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        for metrics in list(_to_flush):
            try:
                metrics.flush()
            except Exception:  # a metric must never stop the flushing of the others
                log.exception("metrics flush failed")


def note_kind(kind: str | None) -> None:
    """Remember the kind of the Slack request this thread serves (the middleware sets it
    after the signature check; the HTTP entry resets it with None)."""
    _seen.kind = kind


def noted_kind() -> str | None:
    return getattr(_seen, "kind", None)


def request_kind(body: dict[str, Any]) -> str:
    """What kind of Slack request a parsed body is (command, block_actions, …)."""
    if body.get("command"):
        return "command"
    return str(body.get("type") or "unknown")


#: how many requests are in each state (`requests.count_by_state`), handed in by the server
#: so that this module reads no table of its own
StateCounts = Callable[[Store], Iterable[tuple[str, int]]]


class Metrics:
    """The metrics of one bot process."""

    def __init__(self, store: Store, owner: str, request_states: StateCounts) -> None:
        self.store = store
        self.owner = owner
        self.request_states = request_states
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.slack_requests = Counter(
            "devicebot_slack_requests",
            "Slack requests handled, by kind and outcome",
            ["kind", "outcome"],
            registry=r,
        )
        self.ack_seconds = Histogram(
            "devicebot_ack_seconds",
            "Time from a Slack request's arrival to the bot's HTTP answer",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.google_calls = Counter(
            "devicebot_google_calls",
            "HTTP round trips to Google, by API, method and status (timeout: no answer)",
            ["api", "method", "status"],
            registry=r,
        )
        self.google_seconds = Histogram(
            "devicebot_google_call_seconds",
            "Latency of one round trip to Google",
            ["api", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.google_retries = Counter(
            "devicebot_google_retries",
            "Round trips to Google that were a retry of an earlier attempt",
            ["api", "method"],
            registry=r,
        )
        self.google_quota_errors = Counter(
            "devicebot_google_quota_errors",
            "Google answers 429 or 403 (rate limit or quota)",
            ["api", "method"],
            registry=r,
        )
        self.approval_wait = Histogram(
            "devicebot_approval_wait_seconds",
            "Time from a request's submission to its approval",
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        self.job_seconds = Histogram(
            "devicebot_job_seconds",
            "Run time of a scheduled job (the outcome poll cycle is job 'poll-outcomes')",
            ["job"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.job_failures = Counter(
            "devicebot_job_failures", "Scheduled job runs that raised", ["job"], registry=r
        )
        self.state = StoreCollector(store, owner, request_states)
        r.register(self.state)
        self._requests: deque[tuple[str, str, float]] = deque()
        _to_flush.add(self)
        if not _flusher:
            with _flusher_lock:
                if not _flusher:
                    _flusher.append(
                        threading.Thread(target=_flush_all, name="metrics-flush", daemon=True)
                    )
                    _flusher[0].start()

    # ---- updates ----------------------------------------------------------------------
    def observe_google(self, record: CallRecord) -> None:
        """The Google choke point's observer: one call per HTTP round trip."""
        api, _, method = record.method_id.partition(".")
        api = {"admin": "directory", "androidmanagement": "androidmanagement"}.get(api, api)
        status = str(record.status) if record.status is not None else "timeout"
        self.google_calls.labels(api, method, status).inc()
        self.google_seconds.labels(api, method).observe(record.duration)
        if record.attempt > 1:
            self.google_retries.labels(api, method).inc()
        if record.status in (403, 429):
            self.google_quota_errors.labels(api, method).inc()

    def observe_request(self, kind: str, status: int, seconds: float) -> None:
        """One Slack request answered: queued (a deque's append takes no lock), counted at
        the next `flush`."""
        outcome = "ok" if status < 400 else "rejected" if status < 500 else "error"
        self._requests.append((kind, outcome, seconds))

    def flush(self) -> None:
        """Fold the queued Slack requests into the counters."""
        while True:
            try:
                kind, outcome, seconds = self._requests.popleft()
            except IndexError:
                return
            self.slack_requests.labels(kind, outcome).inc()
            self.ack_seconds.observe(seconds)

    def observe_job(self, job: str, seconds: float, failed: bool) -> None:
        self.job_seconds.labels(job).observe(seconds)
        if failed:
            self.job_failures.labels(job).inc()

    # ---- exposition ----------------------------------------------------------------------
    def render(self) -> bytes:
        """The whole page, in Prometheus' text format."""
        self.flush()
        if not self.multiprocess:
            return bytes(generate_latest(self.registry))
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(StoreCollector(self.store, self.owner, self.request_states))
        return bytes(generate_latest(registry))


class StoreCollector(Collector):
    """Gauges read from the database at scrape time."""

    def __init__(self, store: Store, owner: str, request_states: StateCounts) -> None:
        self.store = store
        self.owner = owner
        self.request_states = request_states

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time; no fixed description needed

    def collect(self) -> Iterator[Metric]:
        try:
            db = self.store.db()
            states = GaugeMetricFamily("devicebot_requests", "Requests by state", labels=["state"])
            for state, count in self.request_states(self.store):
                states.add_metric([state], count)
            yield states
            pending = db.execute("SELECT COUNT(*) FROM pending_commands WHERE done = 0").fetchone()
            yield GaugeMetricFamily(
                "devicebot_pending_commands",
                "Device commands waiting for their outcome",
                value=pending[0],
            )
            lost = db.execute("SELECT COUNT(*) FROM lost_devices WHERE state = 'open'").fetchone()
            yield GaugeMetricFamily(
                "devicebot_lost_cases_open", "Lost-device cases still open", value=lost[0]
            )
            row = db.execute("SELECT owner, expires_at FROM leases WHERE name = 'jobs'").fetchone()
            holder = GaugeMetricFamily(
                "devicebot_jobs_lease_holder",
                "1 for the process holding the jobs lease (label: its id)",
                labels=["owner", "this_process"],
            )
            if row and row[1] > time.time():
                holder.add_metric([row[0], str(row[0] == self.owner).lower()], 1)
            yield holder
            synced = db.execute(
                "SELECT value FROM meta WHERE key = 'android_index_synced_at'"
            ).fetchone()
            age = time.time() - float(synced[0]) if synced and synced[0] else float("nan")
            yield GaugeMetricFamily(
                "devicebot_android_index_age_seconds",
                "Seconds since the local Android index was last synced (NaN: never)",
                value=age,
            )
        except Exception:
            log.exception("metrics: could not read the database")
