"""Google-style errors and small helpers shared by the sandbox's handlers."""

from __future__ import annotations

import re
import time
from typing import Any

#: HTTP status → (google.rpc status name, legacy reason used in `errors[].reason`)
_STATUS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "invalid"),
    401: ("UNAUTHENTICATED", "authError"),
    403: ("PERMISSION_DENIED", "forbidden"),
    404: ("NOT_FOUND", "notFound"),
    405: ("METHOD_NOT_ALLOWED", "httpMethodNotAllowed"),
    409: ("ABORTED", "conflict"),
    412: ("FAILED_PRECONDITION", "conditionNotMet"),
    429: ("RESOURCE_EXHAUSTED", "rateLimitExceeded"),
    500: ("INTERNAL", "backendError"),
    501: ("UNIMPLEMENTED", "notImplemented"),
    503: ("UNAVAILABLE", "backendError"),
    504: ("DEADLINE_EXCEEDED", "backendError"),
}

#: google.rpc.Code numbers (used inside Operation.error and batchChangeStatus results)
RPC_CODE: dict[str, int] = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
}

_DEFAULT_MESSAGE = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    429: "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'.",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
    504: "The request timed out.",
}


class ApiError(Exception):
    """An error the sandbox answers with, in Google's JSON error shape."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        reason: str | None = None,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message or _DEFAULT_MESSAGE.get(status, "Error"))
        self.status = status
        self.message = message or _DEFAULT_MESSAGE.get(status, "Error")
        self.reason = reason or _STATUS.get(status, ("UNKNOWN", "backendError"))[1]
        self.headers = headers or {}
        #: google.rpc error details (e.g. a BadRequest listing field violations)
        self.details = details

    def body(self) -> dict[str, Any]:
        """The JSON error body Google sends for this error."""
        return error_body(self.status, self.message, self.reason, self.details)


def status_name(status: int) -> str:
    """The google.rpc status name for an HTTP status (e.g. 412 → FAILED_PRECONDITION)."""
    return _STATUS.get(status, ("UNKNOWN", ""))[0]


def error_body(
    status: int,
    message: str,
    reason: str | None = None,
    details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Google's error envelope: code, message, errors[] (legacy), status and details."""
    reason = reason or _STATUS.get(status, ("UNKNOWN", "backendError"))[1]
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}],
        "status": status_name(status),
    }
    if details:
        error["details"] = details
    return {"error": error}


def rpc_status(name: str, message: str) -> dict[str, Any]:
    """A google.rpc.Status object (code number + message)."""
    return {"code": RPC_CODE[name], "message": message}


_DAYS: dict[int, str] = {}


def rfc3339(t: float) -> str:
    """Seconds since the epoch → `2024-05-01T12:34:56.789Z` (sortable as a string)."""
    ms = int(round(t * 1000))
    secs, millis = divmod(ms, 1000)
    day, sod = divmod(secs, 86400)
    date = _DAYS.get(day)
    if date is None:  # cached: fleet generation formats hundreds of thousands of times
        date = _DAYS[day] = time.strftime("%Y-%m-%d", time.gmtime(day * 86400))
    h, rest = divmod(sod, 3600)
    m, sec = divmod(rest, 60)
    return f"{date}T{h:02d}:{m:02d}:{sec:02d}.{millis:03d}Z"


def parse_rfc3339(value: str) -> float:
    """`2024-05-01T12:34:56.789Z` or `2024-05-01` → seconds since the epoch (UTC)."""
    import calendar

    value = value.strip().rstrip("Z")
    frac = 0.0
    if "." in value:
        value, f = value.split(".", 1)
        frac = float("0." + (f or "0"))
    fmt = "%Y-%m-%dT%H:%M:%S" if "T" in value else "%Y-%m-%d"
    return calendar.timegm(time.strptime(value, fmt)) + frac


_DURATION = re.compile(r"^-?[0-9]+(\.[0-9]{1,9})?s$")


def parse_duration(value: Any) -> float:
    """A google-duration string (`"600s"`, `"1.5s"`) → seconds; ApiError 400 when malformed."""
    # the reference: "seconds with up to nine fractional digits, ending with 's'" (no exponent)
    if not isinstance(value, str) or not _DURATION.match(value):
        raise ApiError(
            400, f"Invalid value at 'command.duration' ({value!r}): expected e.g. '600s'"
        )
    seconds = float(value[:-1])
    if seconds <= 0:
        raise ApiError(400, "Invalid value at 'command.duration': must be positive")
    return seconds


def format_duration(seconds: float) -> str:
    """Seconds → google-duration string (`600s`, `1.5s`)."""
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


class Request:
    """One API call as the handlers see it (also used for each part of a batch)."""

    def __init__(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> None:
        self.method = method
        self.path = path  # without the leading "/", percent-decoding left to the router
        self.query = query
        self.body = body
        #: the JSON body once parsed (the schema check parses it first)
        self.parsed: Any = None

    def param(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def int_param(self, name: str, default: int, lo: int, hi: int | None) -> int:
        """An integer query parameter within [lo, hi]; ApiError 400 otherwise."""
        raw = self.param(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, f"Invalid value '{raw}'. Values must be integers.") from None
        if value < lo or (hi is not None and value > hi):
            rng = f"[{lo}, {hi}]" if hi is not None else f"[{lo}, ...]"
            raise ApiError(400, f"Invalid value '{raw}'. Values must be within the range: {rng}")
        return value

    def bool_param(self, name: str) -> bool:
        """A boolean query parameter (`true`/`false`)."""
        return (self.param(name) or "").lower() in ("true", "1")

    def json(self) -> dict[str, Any]:
        """The JSON body as an object; ApiError 400 when it is not one."""
        import json

        if not self.body.strip():
            return {}
        try:
            value = self.parsed if self.parsed is not None else json.loads(self.body)
        except ValueError:
            raise ApiError(400, "Invalid JSON payload received.") from None
        if not isinstance(value, dict):
            raise ApiError(400, "Invalid JSON payload received. Expected an object.")
        return value


class Response:
    """What a handler answers: a status and a JSON-able body (None → no body)."""

    def __init__(
        self,
        status: int = 200,
        body: Any = None,
        *,
        content_type: str = "application/json; charset=UTF-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}
