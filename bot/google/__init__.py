"""The Google layer: the only code that talks to Google (Directory, Reports, Android Management).

    clients = GoogleClients.from_settings(settings)
    device = clients.require_chrome().get("abc123")

Both platforms are optional; `clients.chrome` / `clients.android` are None when unconfigured.
`clients.reports` (the Admin console's audit log) comes with the Chrome configuration: it
impersonates the same admin.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httplib2

from bot.errors import ConfigError
from bot.google.android import (
    ANDROID_FORBIDDEN_HINT,
    AndroidApi,
    device_name,
    redact_operation,
    short_id,
)
from bot.google.chrome import DIRECTORY_FORBIDDEN_HINT, ChromeApi
from bot.google.client import (
    CallCounter,
    CallObserver,
    CallRecord,
    Executor,
    RetryPolicy,
)
from bot.google.orgunits import ORGUNIT_FORBIDDEN_HINT, OrgUnitsApi
from bot.google.reports import REPORTS_FORBIDDEN_HINT, ReportsApi
from bot.google.results import DeviceResult, Page
from bot.google.transport import NoResendHttp, ServiceFactory

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = [
    "AndroidApi",
    "CallCounter",
    "CallObserver",
    "CallRecord",
    "ChromeApi",
    "DeviceResult",
    "GoogleClients",
    "OrgUnitsApi",
    "Page",
    "ReportsApi",
    "RetryPolicy",
    "device_name",
    "redact_operation",
    "short_id",
]

DIRECTORY_SCOPE = "https://www.googleapis.com/auth/admin.directory.device.chromeos"
#: read-only, and asked for with its own credentials: a deployment that has not delegated it
#: loses only the OU picker, never the device calls
ORGUNIT_SCOPE = "https://www.googleapis.com/auth/admin.directory.orgunit.readonly"
ANDROID_SCOPE = "https://www.googleapis.com/auth/androidmanagement"
REPORTS_SCOPE = "https://www.googleapis.com/auth/admin.reports.audit.readonly"


def _anonymous_http(timeout: float) -> Callable[[], httplib2.Http]:
    def make() -> httplib2.Http:
        import google_auth_httplib2
        from google.auth.credentials import AnonymousCredentials

        return google_auth_httplib2.AuthorizedHttp(  # type: ignore[no-any-return]
            AnonymousCredentials(),
            http=NoResendHttp(timeout=timeout),
            refresh_status_codes=(),  # anonymous credentials cannot be refreshed
        )

    return make


def _service_account_http(
    info: dict[str, Any], scope: str, subject: str | None, timeout: float
) -> Callable[[], httplib2.Http]:
    # Credentials hold a token that they refresh: one per thread, like the Http.
    def make() -> httplib2.Http:
        import google_auth_httplib2
        from google.oauth2 import service_account

        credentials = service_account.Credentials.from_service_account_info(info, scopes=[scope])
        if subject:
            credentials = credentials.with_subject(subject)
        return google_auth_httplib2.AuthorizedHttp(  # type: ignore[no-any-return]
            credentials, http=NoResendHttp(timeout=timeout)
        )

    return make


def _load_key(settings: Settings) -> dict[str, Any]:
    path = settings.google_application_credentials
    if path is None:
        raise ConfigError("GOOGLE_APPLICATION_CREDENTIALS is not set: no service account key.")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"GOOGLE_APPLICATION_CREDENTIALS: cannot read the service account key ({exc})."
        ) from exc
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ConfigError(
            "GOOGLE_APPLICATION_CREDENTIALS: expected a service account key file "
            '(JSON with "type": "service_account").'
        )
    return info


class GoogleClients:
    """The Chrome, Reports and Android APIs the bot is configured for, plus the call observer."""

    def __init__(
        self,
        chrome: ChromeApi | None,
        android: AndroidApi | None,
        *,
        reports: ReportsApi | None = None,
        on_call: CallObserver | None = None,
    ) -> None:
        self.chrome = chrome
        self.android = android
        self.reports = reports
        #: the customer's organisational units (for moves); set with Chrome
        self.org_units: OrgUnitsApi | None = None
        #: called with a CallRecord after every HTTP round trip (retries and batches included)
        self.on_call = on_call

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        endpoint: str | None = None,
        policy: RetryPolicy | None = None,
        on_call: CallObserver | None = None,
    ) -> GoogleClients:
        """Build the clients for whichever platforms `settings` configures.

        `endpoint` (or GOOGLE_API_ENDPOINT) points both APIs at another root URL, e.g. the
        sandbox, with anonymous credentials; otherwise the service account key is used.
        """
        endpoint = endpoint or settings.google_api_endpoint
        if endpoint and not endpoint.endswith("/"):
            endpoint += "/"
        if settings.sandbox and not endpoint:
            raise ConfigError("GOOGLE_BACKEND=sandbox: the sandbox's URL was not passed in.")
        timeout = settings.google_timeout
        policy = policy or RetryPolicy()
        clients = cls(None, None, on_call=on_call)

        def observer() -> CallObserver | None:
            return clients.on_call

        keys: list[dict[str, Any]] = []  # the key file, read at most once

        def parts(
            api: str, version: str, scope: str, subject: str | None, hint: str
        ) -> tuple[ServiceFactory, Executor]:
            """The service (shared; an Http per thread) and the choke point of one API."""
            if endpoint:
                http_factory = _anonymous_http(timeout)
            else:
                keys[:] = keys or [_load_key(settings)]
                http_factory = _service_account_http(keys[0], scope, subject, timeout)
            factory = ServiceFactory(api, version, http_factory=http_factory, endpoint=endpoint)
            executor = Executor(
                policy=policy, observer=observer, forbidden_hint=hint, timeout=timeout
            )
            return factory, executor

        if settings.chrome_configured or endpoint:
            clients.chrome = ChromeApi(
                settings.google_customer_id,
                *parts(
                    "admin",
                    "directory_v1",
                    DIRECTORY_SCOPE,
                    settings.google_admin_email,
                    DIRECTORY_FORBIDDEN_HINT,
                ),
            )
            clients.reports = ReportsApi(
                *parts(
                    "admin",
                    "reports_v1",
                    REPORTS_SCOPE,
                    settings.google_admin_email,
                    REPORTS_FORBIDDEN_HINT,
                )
            )
            clients.org_units = OrgUnitsApi(
                settings.google_customer_id,
                *parts(
                    "admin",
                    "directory_v1",
                    ORGUNIT_SCOPE,
                    settings.google_admin_email,
                    ORGUNIT_FORBIDDEN_HINT,
                ),
            )
        if settings.android_enterprise and (settings.android_configured or endpoint):
            clients.android = AndroidApi(
                settings.android_enterprise,
                *parts("androidmanagement", "v1", ANDROID_SCOPE, None, ANDROID_FORBIDDEN_HINT),
                endpoint=endpoint,
            )
        return clients

    def require_chrome(self) -> ChromeApi:
        """The Chrome API, or ConfigError saying Chrome is not configured."""
        if self.chrome is None:
            raise ConfigError(
                "Chrome OS devices are not configured: set GOOGLE_APPLICATION_CREDENTIALS "
                "(a service account key with domain-wide delegation) and GOOGLE_ADMIN_EMAIL."
            )
        return self.chrome

    def warm(self) -> None:
        """Build the services (once) and the calling thread's Http now, so a first burst
        does not pay for them."""
        for api in (self.chrome, self.android):
            if api is not None:
                api.services.service()
                api.services.http()

    def require_org_units(self) -> OrgUnitsApi:
        """The organisational-unit list, or ConfigError saying Chrome is not configured."""
        if self.org_units is None:
            self.require_chrome()
            raise ConfigError("Organisational units are not available.")
        return self.org_units

    def require_android(self) -> AndroidApi:
        """The Android API, or ConfigError saying Android is not configured."""
        if self.android is None:
            raise ConfigError(
                "Android devices are not configured: set ANDROID_ENTERPRISE (enterprises/…) "
                "and GOOGLE_APPLICATION_CREDENTIALS."
            )
        return self.android
