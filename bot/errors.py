"""Typed domain errors. Every failure a user can hear about is one of these.

The single Slack error handler (bot/listeners.py: report_error) turns them into words for the user;
anything else is a bug and is logged with a traceback and an id.
"""

from __future__ import annotations


class DeviceBotError(Exception):
    """Base of every error whose message is meant for an IT admin."""

    #: short machine-friendly code, used in audit events and tests
    code = "error"

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class ConfigError(DeviceBotError):
    """A platform or setting needed for this request is not configured."""

    code = "not_configured"


class ValidationError(DeviceBotError):
    """Bad input from a user: nothing was changed."""

    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PermissionDenied(DeviceBotError):
    code = "forbidden"


class NotFound(DeviceBotError):
    code = "not_found"


class Ambiguous(DeviceBotError):
    """A reference matched several devices; carries them so the UI can offer a picker."""

    code = "ambiguous"

    def __init__(self, message: str, candidates: list[object]) -> None:
        super().__init__(message)
        self.candidates = candidates


class Conflict(DeviceBotError):
    """The thing changed state under us (request already decided, etc.)."""

    code = "conflict"


# ---- Google -------------------------------------------------------------------------


class GoogleError(DeviceBotError):
    """An error answered by (or on the way to) a Google API."""

    code = "google_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message, detail=detail)
        self.status = status
        self.reason = reason


class BadRequest(GoogleError):
    """400: Google refused the request as malformed (e.g. deprovision without a reason)."""

    code = "bad_request"


class DeviceNotFound(GoogleError, NotFound):
    """404: Google does not know the device (or command, or operation)."""

    code = "not_found"


class Forbidden(GoogleError):
    """403 that is not a rate limit: the service account may not do this."""

    code = "forbidden"


class IllegalTransition(GoogleError):
    """412 Illegal device state transition (e.g. re-enable a deprovisioned device)."""

    code = "illegal_transition"


class InsufficientLicenses(GoogleError):
    """412 Insufficient licenses (re-enable with no free license)."""

    code = "insufficient_licenses"


class RateLimited(GoogleError):
    """429 or a rate-limit 403, still failing after the bounded retries."""

    code = "rate_limited"


class GoogleUnavailable(GoogleError):
    """5xx or network failure on a read, still failing after the bounded retries."""

    code = "unavailable"


class OutcomeUnknown(GoogleError):
    """A mutation timed out or got a 5xx: Google may or may not have acted.

    Never resend: reconcile by reading the device or its commands instead.
    """

    code = "outcome_unknown"


class SettingsError(Exception):
    """A setting is missing or malformed; str() is the one line shown to the operator."""

    def __init__(self, variable: str, expected: str) -> None:
        super().__init__(f"{variable}: {expected}")
        self.variable = variable
