"""One typed, frozen settings object, read once from the environment at start-up.

A missing or malformed value raises SettingsError naming the variable; `python -m bot`
prints that one line and exits with status 2.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot import catalog
from bot.errors import SettingsError

# The action names, the actions that need a second person's Approve click unless
# APPROVAL_REQUIRED says otherwise (each ActionSpec's `approval`) and the bulk caps (each
# spec's `bulk_cap`, overridden by BULK_CAPS) are read from the catalog when settings load.


def default_bulk_caps() -> tuple[tuple[str, int], ...]:
    """Bulk actions above this many devices need an approver's explicit raise."""
    return tuple(
        sorted({(s.name, s.bulk_cap) for s in catalog.all_specs() if s.bulk_cap is not None})
    )


SLACK_API_URL_DEFAULT = "https://slack.com/api/"

_USER_OR_GROUP = re.compile(r"^[UWS][A-Z0-9]{2,}$")
_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_DURATION = re.compile(r"^(\d+)\s*([smhd]?)$")
_ENTERPRISE = re.compile(r"^enterprises/[A-Za-z0-9_-]+$")


class Secret:
    """A string that never shows itself in repr(), str() or a log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    slack_bot_token: Secret
    slack_signing_secret: Secret
    slack_app_token: Secret | None = None
    slack_api_url: str = SLACK_API_URL_DEFAULT
    port: int = 3000
    host: str = "0.0.0.0"
    database_path: Path = Path("device-bot.db")
    database_url: Secret | None = None  # postgresql://…: PostgreSQL instead of the SQLite file
    google_application_credentials: Path | None = None
    google_admin_email: str | None = None
    google_customer_id: str = "my_customer"
    android_enterprise: str | None = None
    google_api_endpoint: str | None = None
    google_backend: str = "google"  # "google" | "sandbox"
    sandbox_devices: int = 500
    device_operators: tuple[str, ...] = ()
    device_approvers: tuple[str, ...] = ()
    approval_channel: str | None = None
    lost_device_channel: str | None = None
    approval_required: frozenset[str] = field(default_factory=catalog.approval_required)
    approval_ttl: int = 24 * 3600
    poll_interval: float = 10.0
    lost_watch_interval: float = 300.0
    index_sync_interval: float = 900.0
    reports_sync_interval: float = 300.0
    reports_lag: float = 120.0
    lease_seconds: float = 30.0
    google_timeout: float = 30.0
    command_duration: float = 600.0
    bot_secret_key: Secret | None = None
    max_body_bytes: int = 1 << 20
    log_level: str = "INFO"
    log_format: str = "text"  # "text" | "json"
    metrics_port: int | None = None  # None: /metrics on the main port
    #: organisational units whose Chrome devices run kiosk or managed guest sessions
    kiosk_org_units: tuple[str, ...] = ()
    audit_key: Secret | None = None
    audit_anchor_file: Path | None = None  # default: beside the database
    audit_anchor_interval: float = 300.0
    approver_group_cache: float = 60.0
    max_devices_per_command: int = 100
    stats_cache_seconds: float = 3600.0  # how long /device stats reuses its fleet pass
    #: devices a bulk action may touch without an approver's explicit raise (BULK_CAPS)
    bulk_caps: tuple[tuple[str, int], ...] = field(default_factory=default_bulk_caps)

    def bulk_cap(self, action: str) -> int | None:
        """The most devices a bulk `action` touches on a plain approval; None: no cap."""
        return dict(self.bulk_caps).get(action)

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)

    @property
    def sandbox(self) -> bool:
        return self.google_backend == "sandbox"

    @property
    def chrome_configured(self) -> bool:
        if self.sandbox or self.google_api_endpoint:
            return True
        return bool(self.google_application_credentials and self.google_admin_email)

    @property
    def android_configured(self) -> bool:
        if not self.android_enterprise:
            return False
        return bool(self.sandbox or self.google_api_endpoint or self.google_application_credentials)

    def needs_approval(self, action: str) -> bool:
        return action in self.approval_required


# ---- parsing helpers ---------------------------------------------------------------


def _required(env: Mapping[str, str], name: str, expected: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(name, f"is required ({expected})")
    return value


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(
            name, f"expected a whole number from {lo} to {hi}, got {raw!r}"
        ) from None
    if not lo <= value <= hi:
        raise SettingsError(name, f"expected a whole number from {lo} to {hi}, got {raw!r}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(
            name, f"expected a number of seconds from {lo:g} to {hi:g}, got {raw!r}"
        ) from None
    if not lo <= value <= hi:
        raise SettingsError(
            name, f"expected a number of seconds from {lo:g} to {hi:g}, got {raw!r}"
        )
    return value


def parse_duration(raw: str) -> int:
    """'90' → 90 s, '90m' → 5400 s, '24h', '2d'. Raises ValueError."""
    match = _DURATION.match(raw.strip().lower())
    if not match:
        raise ValueError(raw)
    number, unit = int(match.group(1)), match.group(2) or "s"
    return number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def _id_list(
    env: Mapping[str, str], name: str, pattern: re.Pattern[str], expected: str
) -> tuple[str, ...]:
    raw = env.get(name, "")
    items = [part for part in re.split(r"[\s,]+", raw.strip()) if part]
    for item in items:
        if not pattern.match(item):
            raise SettingsError(name, f"{item!r} is not {expected}")
    return tuple(dict.fromkeys(items))


def _bulk_caps(env: Mapping[str, str]) -> tuple[tuple[str, int], ...]:
    """BULK_CAPS="deprovision=1,wipe=1": per action, the devices one plain approval covers."""
    raw = env.get("BULK_CAPS", "").strip().lower()
    if not raw:
        return default_bulk_caps()
    if raw == "none":
        return ()
    caps: dict[str, int] = {}
    for item in (i.strip() for i in raw.split(",") if i.strip()):
        name, _, number = item.partition("=")
        name = name.strip()
        if name not in catalog.names() or not number.strip().isdigit() or int(number) < 1:
            raise SettingsError(
                "BULK_CAPS",
                f"expected 'none' or action=count pairs like deprovision=1,wipe=1, got {item!r}",
            )
        caps[name] = int(number)
    return tuple(sorted(caps.items()))


def _org_units(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of organisational unit paths, each starting with `/`."""
    units = tuple(u.strip().rstrip("/") or "/" for u in env.get(name, "").split(",") if u.strip())
    bad = [u for u in units if not u.startswith("/")]
    if bad:
        raise SettingsError(name, f"expected paths like /Kiosks, got {bad[0]!r}")
    return units


def _channel(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not _CHANNEL.match(raw):
        raise SettingsError(name, f"expected a Slack channel id like C0123ABCD, got {raw!r}")
    return raw


def _url(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not re.match(r"^https?://[^\s/]+", raw):
        raise SettingsError(name, f"expected an http(s) URL, got {raw!r}")
    return raw if raw.endswith("/") else raw + "/"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from `env` (default: os.environ). Raises SettingsError."""
    env = os.environ if env is None else env

    app_token = env.get("SLACK_APP_TOKEN", "").strip()
    if app_token and not app_token.startswith("xapp-"):
        raise SettingsError("SLACK_APP_TOKEN", "expected an app-level token starting with xapp-")
    bot_token = _required(env, "SLACK_BOT_TOKEN", "the bot token, xoxb-…")
    if not bot_token.startswith("xoxb-"):
        raise SettingsError("SLACK_BOT_TOKEN", "expected a bot token starting with xoxb-")
    if app_token:
        signing_secret = env.get("SLACK_SIGNING_SECRET", "").strip()
    else:
        signing_secret = _required(
            env, "SLACK_SIGNING_SECRET", "the app's signing secret, for HTTP mode"
        )

    backend = env.get("GOOGLE_BACKEND", "google").strip().lower() or "google"
    if backend not in ("google", "sandbox"):
        raise SettingsError("GOOGLE_BACKEND", f"expected 'google' or 'sandbox', got {backend!r}")

    creds_raw = env.get("GOOGLE_APPLICATION_CREDENTIALS", "").strip()
    creds = Path(creds_raw) if creds_raw else None
    if creds is not None and backend == "google" and not creds.is_file():
        raise SettingsError("GOOGLE_APPLICATION_CREDENTIALS", f"no such file: {creds_raw}")

    admin_email = env.get("GOOGLE_ADMIN_EMAIL", "").strip() or None
    if admin_email and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", admin_email):
        raise SettingsError("GOOGLE_ADMIN_EMAIL", f"expected an email address, got {admin_email!r}")

    enterprise = env.get("ANDROID_ENTERPRISE", "").strip() or None
    if backend == "sandbox" and not enterprise:
        enterprise = "enterprises/LC0sandbox"
    if enterprise and not _ENTERPRISE.match(enterprise):
        raise SettingsError("ANDROID_ENTERPRISE", f"expected enterprises/<id>, got {enterprise!r}")

    approval_raw = env.get("APPROVAL_REQUIRED", "").strip().lower()
    if not approval_raw:
        approval_required = catalog.approval_required()
    elif approval_raw == "none":
        approval_required = frozenset()
    else:
        names = [n for n in re.split(r"[\s,]+", approval_raw) if n]
        known = catalog.names()
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise SettingsError(
                "APPROVAL_REQUIRED",
                f"unknown action {unknown[0]!r}; expected 'none' or a list of: "
                + ", ".join(sorted(known)),
            )
        approval_required = frozenset(names)

    ttl_raw = env.get("APPROVAL_TTL", "").strip()
    try:
        approval_ttl = parse_duration(ttl_raw) if ttl_raw else 24 * 3600
    except ValueError:
        raise SettingsError(
            "APPROVAL_TTL", f"expected a duration like 3600, 90m or 24h, got {ttl_raw!r}"
        ) from None
    if approval_ttl <= 0:
        raise SettingsError("APPROVAL_TTL", "must be longer than 0")

    operators = _id_list(
        env, "DEVICE_OPERATORS", _USER_OR_GROUP, "a Slack user id (U…) or user-group id (S…)"
    )
    approvers = _id_list(
        env, "DEVICE_APPROVERS", _USER_OR_GROUP, "a Slack user id (U…) or user-group id (S…)"
    )
    approval_channel = _channel(env, "APPROVAL_CHANNEL")
    if approval_required and not approval_channel:
        raise SettingsError(
            "APPROVAL_CHANNEL",
            "is required while actions need approval (a channel id like C0123ABCD)",
        )

    secret_key_raw = env.get("BOT_SECRET_KEY", "").strip()
    if secret_key_raw and len(secret_key_raw) < 16:
        raise SettingsError("BOT_SECRET_KEY", "expected at least 16 characters")

    database_url = env.get("DATABASE_URL", "").strip() or None
    if database_url and not database_url.startswith(("postgresql://", "postgres://")):
        raise SettingsError("DATABASE_URL", "expected postgresql://user:password@host/database")
    if database_url and not secret_key_raw:
        raise SettingsError(
            "BOT_SECRET_KEY",
            "is required with DATABASE_URL: replicas share pending secrets only sealed with it",
        )

    audit_key_raw = env.get("AUDIT_KEY", "").strip()
    if audit_key_raw and len(audit_key_raw) < 32:
        raise SettingsError("AUDIT_KEY", "expected at least 32 characters")
    anchor_raw = env.get("AUDIT_ANCHOR_FILE", "").strip()

    log_level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(
            "LOG_LEVEL", f"expected DEBUG, INFO, WARNING or ERROR, got {log_level!r}"
        )

    log_format = env.get("LOG_FORMAT", "text").strip().lower() or "text"
    if log_format not in ("text", "json"):
        raise SettingsError("LOG_FORMAT", f"expected text or json, got {log_format!r}")
    metrics_port = (
        _int(env, "METRICS_PORT", 0, 0, 65535) if env.get("METRICS_PORT", "").strip() else None
    )

    return Settings(
        slack_bot_token=Secret(bot_token),
        slack_signing_secret=Secret(signing_secret),
        slack_app_token=Secret(app_token) if app_token else None,
        slack_api_url=_url(env, "SLACK_API_URL", SLACK_API_URL_DEFAULT) or SLACK_API_URL_DEFAULT,
        port=_int(env, "PORT", 3000, 0, 65535),
        host=env.get("HOST", "0.0.0.0").strip() or "0.0.0.0",
        database_path=Path(env.get("DATABASE_PATH", "").strip() or "device-bot.db"),
        database_url=Secret(database_url) if database_url else None,
        google_application_credentials=creds,
        google_admin_email=admin_email,
        google_customer_id=env.get("GOOGLE_CUSTOMER_ID", "").strip() or "my_customer",
        android_enterprise=enterprise,
        google_api_endpoint=_url(env, "GOOGLE_API_ENDPOINT", None),
        google_backend=backend,
        sandbox_devices=_int(env, "SANDBOX_DEVICES", 500, 1, 1_000_000),
        device_operators=operators,
        device_approvers=approvers,
        approval_channel=approval_channel,
        lost_device_channel=_channel(env, "LOST_DEVICE_CHANNEL") or approval_channel,
        approval_required=approval_required,
        approval_ttl=approval_ttl,
        poll_interval=_float(env, "POLL_INTERVAL", 10.0, 0.05, 3600),
        lost_watch_interval=_float(env, "LOST_WATCH_INTERVAL", 300.0, 0.05, 86400),
        index_sync_interval=_float(env, "INDEX_SYNC_INTERVAL", 900.0, 0.05, 86400),
        reports_sync_interval=_float(env, "REPORTS_SYNC_INTERVAL", 300.0, 0.05, 86400),
        reports_lag=_float(env, "REPORTS_LAG", 120.0, 0, 86400),
        lease_seconds=_float(env, "LEASE_SECONDS", 30.0, 0.2, 3600),
        google_timeout=_float(env, "GOOGLE_TIMEOUT", 30.0, 0.1, 600),
        command_duration=_float(env, "COMMAND_DURATION", 600.0, 1, 30 * 86400),
        bot_secret_key=Secret(secret_key_raw) if secret_key_raw else None,
        max_body_bytes=_int(env, "MAX_BODY_BYTES", 1 << 20, 4096, 64 << 20),
        log_level=log_level,
        log_format=log_format,
        metrics_port=metrics_port,
        kiosk_org_units=_org_units(env, "KIOSK_ORG_UNITS"),
        audit_key=Secret(audit_key_raw) if audit_key_raw else None,
        audit_anchor_file=Path(anchor_raw) if anchor_raw else None,
        audit_anchor_interval=_float(env, "AUDIT_ANCHOR_INTERVAL", 300.0, 0.05, 86400),
        approver_group_cache=_float(env, "APPROVER_GROUP_CACHE", 60.0, 1, 3600),
        max_devices_per_command=_int(env, "MAX_DEVICES_PER_COMMAND", 100, 1, 10_000),
        stats_cache_seconds=_float(env, "STATS_CACHE_SECONDS", 3600.0, 0, 7 * 86400),
        bulk_caps=_bulk_caps(env),
    )
