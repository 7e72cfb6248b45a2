"""The one place that talks HTTP to Google: per-thread services, the execute choke point,
bounded retries and the mapping of Google's errors to bot.errors.

Every `.execute()` of a googleapiclient request (or batch) goes through `Executor.execute`.
googleapiclient's own `num_retries` is never used: it resends POSTs blindly, and a
mutation whose answer was lost must be reconciled, not sent twice.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import google.auth.exceptions
import httplib2
from googleapiclient.errors import HttpError

from bot.blocks import esc
from bot.errors import (
    BadRequest,
    DeviceBotError,
    DeviceNotFound,
    Forbidden,
    GoogleError,
    GoogleUnavailable,
    IllegalTransition,
    InsufficientLicenses,
    OutcomeUnknown,
    RateLimited,
)

log = logging.getLogger(__name__)

#: 403 reasons that mean "slow down", not "you may not"
RATE_LIMIT_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "RATE_LIMIT_EXCEEDED"}
)

#: google.rpc.Code values (used by per-device results and AMAPI operation errors)
RPC_INVALID_ARGUMENT = 3
RPC_DEADLINE_EXCEEDED = 4
RPC_NOT_FOUND = 5
RPC_PERMISSION_DENIED = 7
RPC_RESOURCE_EXHAUSTED = 8
RPC_FAILED_PRECONDITION = 9
RPC_INTERNAL = 13
RPC_UNAVAILABLE = 14
RPC_UNAUTHENTICATED = 16

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


# ---- error parsing and mapping ------------------------------------------------------------


@dataclass(frozen=True)
class GoogleAnswer:
    """The parts of a Google error answer that decide retries and wording."""

    status: int
    message: str
    reasons: tuple[str, ...]
    retry_after: float | None


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def parse_http_error(exc: HttpError) -> GoogleAnswer:
    """Status, message, reasons and Retry-After of an HttpError."""
    if exc.resp is None:  # BatchError: the batch answer could not be parsed
        return GoogleAnswer(502, f"malformed answer: {exc.reason}", ("badGateway",), None)
    status = int(exc.resp.status)
    message = ""
    reasons: list[str] = []
    try:
        raw = exc.content.decode("utf-8") if isinstance(exc.content, bytes) else str(exc.content)
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        for item in error.get("errors") or []:
            if isinstance(item, dict) and item.get("reason"):
                reasons.append(str(item["reason"]))
        for item in error.get("details") or []:
            if isinstance(item, dict) and item.get("reason"):
                reasons.append(str(item["reason"]))
        if error.get("status"):
            reasons.append(str(error["status"]))
    elif isinstance(error, str):  # OAuth-style {"error": "invalid_grant", ...}
        message = str(body.get("error_description") or error) if isinstance(body, dict) else error
    if not message:
        message = exc.resp.reason or f"HTTP {status}"
    retry_after = _parse_retry_after(exc.resp.get("retry-after"))
    return GoogleAnswer(status, message, tuple(reasons), retry_after)


def is_rate_limit(answer: GoogleAnswer) -> bool:
    """429, or a 403 whose reason is a rate or quota limit: Google did nothing."""
    if answer.status == 429:
        return True
    return answer.status == 403 and any(r in RATE_LIMIT_REASONS for r in answer.reasons)


def map_error(
    status: int,
    message: str,
    *,
    what: str,
    reasons: tuple[str, ...] = (),
    forbidden_hint: str = "",
    attempts: int = 1,
) -> GoogleError:
    """Turn one Google error answer into the bot.errors class an admin can read.

    Google's messages echo what was sent (a query, a path): they are escaped for Slack
    here, where the message is built; `detail` keeps the raw text for the log.
    """
    reason = reasons[0] if reasons else None
    kwargs: dict[str, Any] = {"status": status, "reason": reason, "detail": message}
    answer = GoogleAnswer(status, message, reasons, None)
    what, message = esc(what), esc(message)
    if is_rate_limit(answer):
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return RateLimited(
            f"Could not {what}: Google's rate limit is still exceeded{tries}. "
            "Try again in a minute.",
            **kwargs,
        )
    if status == 400:
        return BadRequest(f"Could not {what}: Google rejected the request: {message}", **kwargs)
    if status in (401, 403):
        hint = f" {forbidden_hint}" if forbidden_hint else ""
        return Forbidden(
            f"Could not {what}: Google refused permission ({message}).{hint}", **kwargs
        )
    if status == 404:
        return DeviceNotFound(
            f"Could not {what}: Google has no such device, command or operation.", **kwargs
        )
    if status == 412:
        if "license" in message.lower():
            return InsufficientLicenses(
                f"Could not {what}: there is no free Chrome license for it "
                "(Google: Insufficient licenses). Free a license, e.g. by deprovisioning a "
                "retired device, or buy more.",
                **kwargs,
            )
        example = (
            " For example, a deprovisioned device can be neither disabled nor re-enabled, "
            "and only a disabled device can be re-enabled."
            if "transition" in message.lower()
            else ""
        )
        return IllegalTransition(
            f"Could not {what}: the device's current state does not allow it "
            f"(Google: {message}).{example}",
            **kwargs,
        )
    if status >= 500:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return GoogleUnavailable(
            f"Could not {what}: Google is unavailable (HTTP {status}){tries}. Try again later.",
            **kwargs,
        )
    return GoogleError(f"Could not {what}: Google answered HTTP {status}: {message}", **kwargs)


def map_rpc_status(status: dict[str, Any], *, what: str, forbidden_hint: str = "") -> GoogleError:
    """Map a google.rpc.Status (per-device result, Operation.error) to a domain error."""
    code = int(status.get("code") or 0)
    message = str(status.get("message") or "")
    shown = esc(message) if message else ""
    reasons = tuple(
        str(d["reason"])
        for d in status.get("details") or []
        if isinstance(d, dict) and d.get("reason")
    )
    kwargs: dict[str, Any] = {"reason": reasons[0] if reasons else None, "detail": message}
    http_status = {
        RPC_INVALID_ARGUMENT: 400,
        RPC_NOT_FOUND: 404,
        RPC_PERMISSION_DENIED: 403,
        RPC_UNAUTHENTICATED: 401,
        RPC_RESOURCE_EXHAUSTED: 429,
        RPC_FAILED_PRECONDITION: 412,
        RPC_UNAVAILABLE: 503,
    }.get(code)
    if code in (RPC_INTERNAL, RPC_DEADLINE_EXCEEDED):
        return OutcomeUnknown(
            f"Could not confirm that Google did {esc(what)} ({shown or 'internal error'}); "
            "the bot will check the device instead of retrying.",
            status=None,
            **kwargs,
        )
    if http_status is None:
        return GoogleError(
            f"Could not {esc(what)}: {shown or f'Google error code {code}'}", **kwargs
        )
    return map_error(
        http_status, message, what=what, reasons=reasons, forbidden_hint=forbidden_hint
    )


def _network_words(exc: BaseException, timeout: float | None) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s" if timeout else "the request timed out"
    if isinstance(exc, _NOT_SENT):
        return "Google could not be reached"
    return f"the connection failed ({type(exc).__name__})"


# ---- no blind resends ---------------------------------------------------------------------


class ResendBlocked(ConnectionAbortedError):
    """httplib2 wanted to send a non-idempotent request a second time; we refused."""


class _OneShot:
    """A connection proxy that lets a request be sent once: a second send raises."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._sent = False

    def request(self, *args: Any, **kwargs: Any) -> Any:
        if self._sent:
            raise ResendBlocked("the connection broke after the request was sent; not resending it")
        self._sent = True
        return self._conn.request(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class NoResendHttp(httplib2.Http):
    """httplib2.Http that never resends a POST/PATCH/PUT/DELETE by itself.

    httplib2 silently sends a request again when the first answer is a BadStatusLine or a
    dropped connection ("the connection just went stale"), whatever the method. For a
    wipe that could mean twice. Here a mutation is sent at most once per call; the choke
    point turns the failure into OutcomeUnknown and the caller reads Google back.
    """

    def _conn_request(
        self, conn: Any, request_uri: str, method: str, body: Any, headers: Any
    ) -> Any:
        if method in ("GET", "HEAD", "OPTIONS"):
            return super()._conn_request(conn, request_uri, method, body, headers)
        return super()._conn_request(_OneShot(conn), request_uri, method, body, headers)


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


# ---- per-thread services ------------------------------------------------------------------


class ServiceFactory:
    """Builds one googleapiclient service (and its httplib2.Http) per thread, lazily.

    httplib2.Http and service objects are not thread-safe; only this immutable recipe is
    shared between threads.
    """

    def __init__(
        self,
        name: str,
        version: str,
        *,
        http_factory: Callable[[], httplib2.Http],
        endpoint: str | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.endpoint = endpoint
        self._http_factory = http_factory
        self._local = threading.local()
        self._lock = threading.Lock()
        self.builds = 0
        self.build_seconds = 0.0

    def service(self) -> Any:
        """This thread's service object, built on first use."""
        service = getattr(self._local, "service", None)
        if service is None:
            from googleapiclient.discovery import build

            started = time.perf_counter()
            http = self._http_factory()
            options = {"api_endpoint": self.endpoint} if self.endpoint else None
            service = build(
                self.name,
                self.version,
                http=http,
                static_discovery=True,
                cache_discovery=False,
                client_options=options,
            )
            self._local.service = service
            self._local.http = http
            with self._lock:
                self.builds += 1
                self.build_seconds += time.perf_counter() - started
        return service

    def resource(self, *path: str) -> Any:
        """This thread's resource object at `path`, e.g. ("enterprises", "devices"), made once.

        googleapiclient builds a new Resource, with a closure for each of its methods, on
        every `service.enterprises()` call (0.8–2 ms of CPU per Google call, under the GIL):
        each thread keeps the ones it made instead.
        """
        cache: dict[tuple[str, ...], Any] | None = getattr(self._local, "resources", None)
        if cache is None:
            cache = self._local.resources = {}
        resource = cache.get(path)
        if resource is None:
            resource = self.service()
            for name in path:
                resource = getattr(resource, name)()
            cache[path] = resource
        return resource

    def http(self) -> httplib2.Http:
        """This thread's (authorized) httplib2.Http, the one its service uses."""
        self.service()
        return self._local.http  # type: ignore[no-any-return]


# ---- results shared by both platforms -----------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page of a list call: its items and the token of the next page (None at the end)."""

    items: list[dict[str, Any]]
    next_page_token: str | None


@dataclass(frozen=True)
class DeviceResult:
    """The outcome for one device of a multi-device call (status change, move)."""

    device_id: str
    ok: bool
    error: DeviceBotError | None = None

    @property
    def outcome_unknown(self) -> bool:
        """Google's answer was lost (timeout, 5xx): the device must be read back, not resent."""
        return not self.ok and isinstance(self.error, OutcomeUnknown)
