"""Google's error answers, read (status, message, reasons, Retry-After) and turned into the
bot.errors an admin can read; google.rpc.Status codes of per-device results and operations too.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from googleapiclient.errors import HttpError

from bot.blocks import esc
from bot.errors import (
    BadRequest,
    DeviceNotFound,
    Forbidden,
    GoogleError,
    GoogleUnavailable,
    IllegalTransition,
    InsufficientLicenses,
    OutcomeUnknown,
    RateLimited,
)

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
