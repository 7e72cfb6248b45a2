"""Android devices through the Android Management API (androidmanagement/v1).

One method per operation; every call goes through Executor.execute. Operations returned
to callers are always passed through redact_operation (a RESET_PASSWORD command carries
the new password back in its metadata).
Reference: https://developers.google.com/android/management/reference/rest/v1/enterprises.devices
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from bot.blocks import esc
from bot.errors import GoogleError, ValidationError
from bot.google import discovery
from bot.google.client import Executor
from bot.google.errors import is_rate_limit, map_error, parse_http_error
from bot.google.results import Page
from bot.google.transport import ServiceFactory

DEFAULT_ROOT = "https://androidmanagement.googleapis.com/"
MAX_PAGE_SIZE = 100  # devices.list: larger values are coerced to 100 by Google
BATCH_LIMIT = 100  # sub-requests per batch HTTP request

COMMAND_TYPES = frozenset(discovery.enum(discovery.AMAPI, "Command.type"))

ANDROID_FORBIDDEN_HINT = (
    "Check that the service account may manage this enterprise: it needs the Android "
    "Management User role in the Google Cloud project that owns ANDROID_ENTERPRISE "
    "(scope https://www.googleapis.com/auth/androidmanagement)."
)

SECRET_KEYS = frozenset({"newPassword"})


def google_duration(seconds: float) -> str:
    """Seconds as Google's Duration JSON: digits, up to nine fractional ones, then `s`.

    `"1000000s"`, `"3.5s"`: never an exponent (`f"{1e6:g}"` would give `"1e+06"`).
    """
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"


def redact_operation(op: Any) -> Any:
    """A copy of `op` (an Operation, or anything JSON) without `newPassword` at any depth."""
    if isinstance(op, dict):
        return {k: redact_operation(v) for k, v in op.items() if k not in SECRET_KEYS}
    if isinstance(op, list):
        return [redact_operation(v) for v in op]
    return op


def short_id(name: str) -> str:
    """'enterprises/E/devices/D' → 'D' (a short id is returned unchanged)."""
    return name.rstrip("/").rsplit("/", 1)[-1]


def device_name(short_or_full: str, enterprise: str) -> str:
    """A short device id or a full name → 'enterprises/E/devices/D' within `enterprise`."""
    value = (short_or_full or "").strip().strip("/")
    if value.startswith("enterprises/"):
        parts = value.split("/")
        if len(parts) != 4 or parts[2] != "devices" or not parts[3]:
            raise ValidationError(
                f"Not an Android device name: {esc(repr(short_or_full))}", field="name"
            )
        if f"{parts[0]}/{parts[1]}" != enterprise:
            raise ValidationError(
                f"Device {esc(repr(short_or_full))} is not in the configured enterprise {enterprise}.",
                field="name",
            )
        return value
    if not value or "/" in value:
        raise ValidationError(f"Not an Android device id: {esc(repr(short_or_full))}", field="name")
    return f"{enterprise}/devices/{value}"


class AndroidApi:
    """The Android Management API calls the bot makes for one enterprise."""

    def __init__(
        self,
        enterprise: str,
        services: ServiceFactory,
        executor: Executor,
        *,
        endpoint: str | None = None,
    ) -> None:
        self.enterprise = enterprise
        self.services = services
        self.executor = executor
        root = endpoint or DEFAULT_ROOT
        # service.new_batch_http_request() ignores client_options.api_endpoint and posts
        # to the discovery document's rootUrl: googleapis/google-api-python-client#1107.
        self.batch_uri = (root if root.endswith("/") else root + "/") + "batch"

    def _devices(self) -> Any:
        return self.services.resource("enterprises", "devices")

    def _operations(self) -> Any:
        return self.services.resource("enterprises", "devices", "operations")

    def device_name(self, short_or_full: str) -> str:
        """A short id or full name → the full device name in this enterprise."""
        return device_name(short_or_full, self.enterprise)

    # ---- devices ----------------------------------------------------------------------

    def list_devices(
        self, *, page_token: str | None = None, page_size: int = MAX_PAGE_SIZE
    ) -> Page:
        """One page of enterprises.devices.list (AMAPI has no server-side filter)."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValidationError(
                f"page_size must be from 1 to {MAX_PAGE_SIZE}, got {page_size}", field="page_size"
            )
        params: dict[str, Any] = {"parent": self.enterprise, "pageSize": page_size}
        if page_token:
            params["pageToken"] = page_token
        response = self.executor.execute(
            self._devices().list(**params), mutation=False, what="list Android devices"
        )
        return Page(
            items=list(response.get("devices") or []),
            next_page_token=response.get("nextPageToken") or None,
        )

    def iter_devices(self, *, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Every device of the enterprise, page after page (a generator: pages fetched lazily)."""
        token: str | None = None
        while True:
            page = self.list_devices(page_token=token, page_size=page_size)
            yield from page.items
            token = page.next_page_token
            if not token:
                return

    def get(self, name: str) -> dict[str, Any]:
        """One device, by full name or short id."""
        full = self.device_name(name)
        request = self._devices().get(name=full)
        what = f"get Android device {short_id(full)}"
        return dict(self.executor.execute(request, mutation=False, what=what))

    def issue_command(self, name: str, command: dict[str, Any]) -> dict[str, Any]:
        """Issue a Command (LOCK, RESET_PASSWORD, WIPE, …); returns its Operation, redacted."""
        full = self.device_name(name)
        command_type = str(command.get("type", "")).upper()
        if command_type not in COMMAND_TYPES:
            raise ValidationError(
                f"Unknown Android command {esc(repr(command.get('type')))}; expected one of: "
                + ", ".join(sorted(COMMAND_TYPES)),
                field="type",
            )
        body = {**command, "type": command_type}
        request = self._devices().issueCommand(name=full, body=body)
        what = f"send {command_type} to Android device {short_id(full)}"
        operation = self.executor.execute(request, mutation=True, what=what)
        return redact_operation(dict(operation))  # type: ignore[no-any-return]

    # ---- operations -------------------------------------------------------------------

    def get_operation(self, name: str) -> dict[str, Any]:
        """One command Operation by its full name, redacted."""
        request = self._operations().get(name=self._operation_name(name))
        what = f"read Android command {short_id(name)}"
        return redact_operation(dict(self.executor.execute(request, mutation=False, what=what)))  # type: ignore[no-any-return]

    def cancel_operation(self, name: str) -> None:
        """Ask Google to cancel a command the device has not run yet."""
        request = self._operations().cancel(name=self._operation_name(name))
        what = f"cancel Android command {short_id(name)}"
        self.executor.execute(request, mutation=True, what=what)

    def list_operations(self, device: str) -> list[dict[str, Any]]:
        """Every Operation of one device (to reconcile after a crash), redacted."""
        parent = self.device_name(device) + "/operations"
        what = f"list the commands of Android device {short_id(self.device_name(device))}"
        operations: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"name": parent}
            if token:
                params["pageToken"] = token
            response = self.executor.execute(
                self._operations().list(**params), mutation=False, what=what
            )
            operations.extend(redact_operation(op) for op in response.get("operations") or [])
            token = response.get("nextPageToken") or None
            if not token:
                return operations

    def get_operations(self, names: Iterable[str]) -> dict[str, dict[str, Any] | GoogleError]:
        """Many Operations at once through batch requests (≤ 100 per HTTP request).

        Returns {name: Operation (redacted) or the GoogleError for that one}. Sub-requests
        answered with a rate limit or a 5xx are retried (bounded by the retry policy).
        """
        wanted = [self._operation_name(n) for n in dict.fromkeys(names)]
        return self._batch_get(
            wanted,
            lambda name: self._operations().get(name=name),
            lambda name: f"read Android command {short_id(name)}",
            "Android commands",
            redact_operation,
        )

    def get_devices(self, names: Iterable[str]) -> dict[str, dict[str, Any] | GoogleError]:
        """Many devices at once through batch requests (≤ 100 per HTTP request)."""
        wanted = [self.device_name(n) for n in dict.fromkeys(names)]
        return self._batch_get(
            wanted,
            lambda name: self._devices().get(name=name),
            lambda name: f"get Android device {short_id(name)}",
            "Android devices",
            dict,
        )

    def _batch_get(
        self,
        wanted: list[str],
        request_for: Callable[[str], Any],
        what_for: Callable[[str], str],
        kind: str,
        shape: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> dict[str, dict[str, Any] | GoogleError]:
        """GET many resources in batches of ≤ 100, retrying rate-limited / 5xx parts (bounded)."""
        results: dict[str, dict[str, Any] | GoogleError] = {}
        policy = self.executor.policy
        pending = wanted
        for round_no in range(policy.attempts):
            retry: list[str] = []
            for start in range(0, len(pending), BATCH_LIMIT):
                chunk = pending[start : start + BATCH_LIMIT]
                final = round_no + 1 >= policy.attempts
                retry.extend(
                    self._one_batch(chunk, results, request_for, what_for, kind, shape, final)
                )
            if not retry:
                break
            policy.sleep(policy.delay(round_no))
            pending = retry
        return {name: results[name] for name in wanted}

    def _one_batch(
        self,
        chunk: list[str],
        results: dict[str, dict[str, Any] | GoogleError],
        request_for: Callable[[str], Any],
        what_for: Callable[[str], str],
        kind: str,
        shape: Callable[[dict[str, Any]], dict[str, Any]],
        final: bool,
    ) -> list[str]:
        """Fetch one batch; fill `results`; return the names worth retrying."""
        retry: list[str] = []

        def on_answer(request_id: str, response: Any, exception: Exception | None) -> None:
            name = chunk[int(request_id)]
            if exception is None:
                results[name] = shape(dict(response or {}))
            elif isinstance(exception, HttpError):
                answer = parse_http_error(exception)
                if not final and (is_rate_limit(answer) or answer.status >= 500):
                    retry.append(name)
                    return
                results[name] = map_error(
                    answer.status,
                    answer.message,
                    what=what_for(name),
                    reasons=answer.reasons,
                    forbidden_hint=self.executor.forbidden_hint,
                )
            else:
                what = what_for(name)
                results[name] = GoogleError(
                    f"Could not {esc(what)}: {esc(str(exception))}", detail=str(exception)
                )

        batch = BatchHttpRequest(callback=on_answer, batch_uri=self.batch_uri)
        for index, name in enumerate(chunk):
            batch.add(request_for(name), request_id=str(index))
        what = f"read {len(chunk)} {kind}"
        self.executor.execute(batch, mutation=False, what=what, batch_size=len(chunk))
        return retry

    def _operation_name(self, name: str) -> str:
        value = (name or "").strip().strip("/")
        parts = value.split("/")
        if (
            len(parts) != 6
            or parts[0] != "enterprises"
            or parts[2] != "devices"
            or parts[4] != "operations"
            or not all(parts)
        ):
            raise ValidationError(
                f"Not an Android command operation name: {esc(repr(name))}", field="name"
            )
        return value
