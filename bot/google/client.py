"""The one place that talks HTTP to Google: the execute choke point, bounded retries, and the
record of every round trip. The services and per-thread Http are in `bot.google.transport`, the mapping
of Google's errors to bot.errors in `bot.google.errors`.

Every `.execute()` of a googleapiclient request (or batch) goes through `Executor.execute`.
googleapiclient's own `num_retries` is never used: it resends POSTs blindly, and a
mutation whose answer was lost must be reconciled, not sent twice.
"""

from __future__ import annotations

import http.client
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import google.auth.exceptions
import httplib2
from googleapiclient.errors import HttpError

from bot.blocks import esc
from bot.errors import (
    Forbidden,
    GoogleUnavailable,
    OutcomeUnknown,
)
from bot.google.errors import is_rate_limit, map_error, parse_http_error

log = logging.getLogger(__name__)


# Errors after which the request provably never left this machine.
_NOT_SENT = (ConnectionRefusedError, httplib2.ServerNotFoundError, socket.gaierror)
# Network failures in general (timeouts are OSError too: socket.timeout is TimeoutError).
_NETWORK = (OSError, http.client.HTTPException, httplib2.HttpLib2Error)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter; `sleep` and `jitter` injectable for tests."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 8.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[float, float], float] = random.uniform

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (0-based)."""
        ceiling = min(self.cap, self.base * (2**attempt))
        wait = self.jitter(0.0, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.cap))
        return wait


@dataclass(frozen=True)
class CallRecord:
    """One HTTP round trip to Google, as seen by the choke point."""

    method_id: str
    status: int | None  # None: no HTTP answer (timeout, connection error)
    duration: float
    attempt: int
    sub_requests: int = 0  # > 0 for a batch request


CallObserver = Callable[[CallRecord], None]


@dataclass
class CallCounter:
    """A thread-safe observer that keeps every CallRecord (for tests and benchmarks)."""

    records: list[CallRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, record: CallRecord) -> None:
        with self._lock:
            self.records.append(record)

    def count(self, method_id: str | None = None) -> int:
        """Round trips so far, optionally only those of one method id (substring match)."""
        with self._lock:
            return sum(1 for r in self.records if method_id is None or method_id in r.method_id)

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self.records.clear()


def _network_words(exc: BaseException, timeout: float | None) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s" if timeout else "the request timed out"
    if isinstance(exc, _NOT_SENT):
        return "Google could not be reached"
    return f"the connection failed ({type(exc).__name__})"


# ---- the choke point -----------------------------------------------------------------------


class Executor:
    """Runs every Google request once per attempt: retries, error mapping, logging, observing."""

    def __init__(
        self,
        *,
        policy: RetryPolicy | None = None,
        observer: Callable[[], CallObserver | None] | None = None,
        forbidden_hint: str = "",
        timeout: float | None = None,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self._observer = observer or (lambda: None)
        self.forbidden_hint = forbidden_hint
        self.timeout = timeout

    def execute(self, request: Any, *, mutation: bool, what: str, batch_size: int = 0) -> Any:
        """Execute a googleapiclient HttpRequest or BatchHttpRequest: the only `.execute()` call.

        Reads are retried on rate limits, 5xx and network failures; mutations only on rate
        limits. A mutation that may have reached Google raises OutcomeUnknown. `what` is a
        verb phrase for messages ("disable Chrome device X"); `batch_size` the number of
        sub-requests of a batch (for the observer).
        """
        method_id = str(getattr(request, "methodId", None) or "batch")
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                result = request.execute()  # never num_retries: see module docstring
            except Exception as exc:
                status = parse_http_error(exc).status if isinstance(exc, HttpError) else None
                self._record(method_id, status, started, attempt, batch_size)
                delay = self._retry_delay(exc, mutation=mutation, what=what, attempt=attempt)
                if delay is None:
                    raise
                self.policy.sleep(delay)
                attempt += 1
            else:
                self._record(method_id, 200, started, attempt, batch_size)
                return result

    def _record(
        self, method_id: str, status: int | None, started: float, attempt: int, batch_size: int
    ) -> None:
        duration = time.monotonic() - started
        log.debug(
            "google %s status=%s %.0fms attempt=%d",
            method_id,
            status if status is not None else "-",
            duration * 1000,
            attempt + 1,
        )
        observer = self._observer()
        if observer is not None:
            observer(CallRecord(method_id, status, duration, attempt + 1, batch_size))

    def _retry_delay(
        self, exc: Exception, *, mutation: bool, what: str, attempt: int
    ) -> float | None:
        """Seconds to wait before the next attempt; raises the domain error when there is none.

        Returns None for exceptions this layer does not know (bugs): they propagate as they are.
        """
        policy = self.policy
        more = attempt + 1 < policy.attempts
        if isinstance(exc, HttpError):
            answer = parse_http_error(exc)
            status = answer.status
            retryable = is_rate_limit(answer) or (not mutation and status >= 500)
            if retryable and more:
                return policy.delay(attempt, answer.retry_after)
            if mutation and status >= 500:
                raise OutcomeUnknown(
                    f"Sent the request to {esc(what)}, but Google answered HTTP {status}: it may "
                    "or may not have happened. The bot will check instead of resending.",
                    status=status,
                    reason=answer.reasons[0] if answer.reasons else None,
                    detail=answer.message,
                ) from exc
            raise map_error(
                status,
                answer.message,
                what=what,
                reasons=answer.reasons,
                forbidden_hint=self.forbidden_hint,
                attempts=attempt + 1,
            ) from exc
        if isinstance(exc, google.auth.exceptions.RefreshError):
            # The token endpoint refused the service account (key revoked, no domain-wide
            # delegation for this scope, unknown admin): the request itself was not sent.
            raise Forbidden(
                f"Could not {esc(what)}: Google refused the service account's credentials "
                f"({esc(str(exc))}). {self.forbidden_hint}".rstrip(),
                detail=str(exc),
            ) from exc
        if isinstance(exc, google.auth.exceptions.TransportError):
            raise GoogleUnavailable(
                f"Could not {esc(what)}: Google's token service could not be reached "
                f"({esc(str(exc))}).",
                detail=str(exc),
            ) from exc
        if isinstance(exc, _NETWORK):
            words = _network_words(exc, self.timeout)
            if mutation and not isinstance(exc, _NOT_SENT):
                raise OutcomeUnknown(
                    f"Sent the request to {esc(what)}, but {words}: it may or may not have "
                    "happened. The bot will check instead of resending.",
                    detail=f"{type(exc).__name__}: {exc}",
                ) from exc
            if not mutation and more:
                return policy.delay(attempt)
            tries = f" after {attempt + 1} attempts" if attempt else ""
            raise GoogleUnavailable(
                f"Could not {esc(what)}: {words}{tries}. Try again later.",
                detail=f"{type(exc).__name__}: {exc}",
            ) from exc
        return None
