"""The sandbox's in-memory fleet: generated devices, commands, clock, licences and test hooks.

Devices are stored as the very JSON objects Google returns (`ChromeOsDevice`,
AMAPI `Device`), so handlers serialise them as they are: `bot.sandbox.generate` makes them
and `bot.sandbox.devices` keeps them with their indexes and look-ups. Everything is guarded
by `Fleet.lock` (an RLock); handlers hold it for the whole request.

Test helpers (all thread-safe; `ref` is a Chrome deviceId, an Android device name
`enterprises/E/devices/D` or its last segment `D`, or either platform's serial):

- `chrome_by_status(status, skip=0)`, `chrome_by_serial(serial)`, `chrome_device(ref)`
- `android_by_serial(serial)`, `android_where(api_min=, api_max=, mode=, ownership=,
  state="ACTIVE", skip=0)`, `android_device(ref)`
- `set_never_ack(ref, on=True, expire_after=None)`: the device never acknowledges
  commands. Android commands then expire after their own `duration` (default 600s,
  e.g. pass `"duration": "1s"`); Chrome commands after `expire_after` seconds
  (default `chrome_command_ttl`, 600s).
- `check_in(ref, at=None, ip=None, wan_ip=None, operator=None)`: a device reports in
  at `at` (epoch seconds, default now): Chrome `lastSync` + `lastKnownNetwork`;
  Android `lastStatusReportTime`, `lastPolicySyncTime` + `networkInfo`.
- `set_outcome(ref, *, error_code=None, status=None, app_results=None, result=None,
  error_message=None, esim_details=None, result_payload=None)`: force the outcome of
  the device's next commands. Android:
  `error_code` (`UNKNOWN`, `UNSUPPORTED`, ...), `status` (the command-specific
  status: a startLostModeStatus / stopLostModeStatus / esimStatus /
  requestDeviceInfoStatus value), `app_results` ({package: clearingResult}),
  `error_message` (the Operation's error message), `esim_details` (an eSIM
  command's `internalErrorDetails`). Chrome: `result="FAILURE"`, `error_message`,
  `result_payload` (a successful command's `commandResultPayload`).
  `clear_outcome(ref)` undoes it.
- `set_fields(ref, fields)`: overwrite top-level fields of a device's JSON (e.g. with
  hostile text), keeping the serial / user / asset-id indexes right; returns the previous
  values, which `set_fields(ref, previous)` puts back (None removes a field).
- `licenses`, `licenses_used()`, `free_licenses()`, `set_free_licenses(n)`: the Chrome
  licence pool (an ACTIVE device uses one; re-enabling a DISABLED one needs a free one).
- `add_org_unit(path)`, `org_units`.
- `activities`: the audit log the Reports API serves (`bot.sandbox.reports`);
  `admin_email` is the admin the Directory API acts as (the actor of its changes). A change
  made outside the bot comes through `Sandbox.outside_change` (`bot.sandbox.console`).
"""

from __future__ import annotations

import copy
import gc
import heapq
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.sandbox.api import rfc3339
from bot.sandbox.devices import Devices, Json
from bot.sandbox.generate import android_devices, chrome_devices
from bot.sandbox.pools import (
    KIOSK_OU,
    LICENSED_STATUSES,
    ORG_UNITS,
    PACKAGES,
    PROTECTED_PACKAGES,
)

#: the admin the sandbox's Directory API acts as: the actor of the changes it applies
SANDBOX_ADMIN = "admin@sandbox.example.com"

# --------------------------------------------------------------------------- command models


@dataclass
class ChromeCommand:
    """A Directory API ChromeOS command and its (time-driven) lifecycle."""

    command_id: str
    device_id: str
    type: str
    payload: str | None
    issue_time: float
    execute_time: float  # when it reaches EXECUTED_BY_CLIENT (inf: never acknowledged)
    expire_time: float
    result: str = "SUCCESS"
    error_message: str | None = None
    result_payload: str | None = None
    applied: bool = False


@dataclass
class AndroidOperation:
    """An AMAPI Operation wrapping a Command; completed by Fleet.tick() when due."""

    name: str
    device_name: str
    command: Json
    issue_time: float
    complete_time: float
    expire_time: float
    done: bool = False
    error: Json | None = None
    extra: Json = field(default_factory=dict)


# --------------------------------------------------------------------------- the fleet


class Fleet(Devices):
    """The generated devices (`Devices`) plus every other piece of mutable sandbox state."""

    def __init__(
        self,
        *,
        chrome: int,
        android: int,
        seed: int = 1,
        customer_id: str = "C0sandbox",
        enterprise: str = "enterprises/LC0sandbox",
        licenses: int | None = None,
        command_delay: float = 2.0,
        base_time: float | None = None,
    ) -> None:
        super().__init__(enterprise)
        self.seed = seed
        self.customer_id = customer_id
        self.command_delay = command_delay
        #: seconds after which an unacknowledged Chrome command expires
        self.chrome_command_ttl = 600.0
        self.clock: Callable[[], float] = time.time
        #: generated timestamps are relative to this (UTC midnight today unless given)
        self.base_time = base_time if base_time is not None else (time.time() // 86400) * 86400
        self.url = ""  # set by the server (download links)
        #: the admin the Directory API acts as, and the Admin console's audit log (Reports)
        self.admin_email = SANDBOX_ADMIN
        self.activities: list[tuple[int, Json]] = []  # (time in ms, Activity)

        #: organisational units whose policy runs a kiosk or managed guest session (our
        #: reading, see ASSUMPTIONS.md): a device there is a kiosk whatever its licence
        self.kiosk_org_units: tuple[str, ...] = (KIOSK_OU,)
        self.org_units: dict[str, str] = {}  # path → orgUnitId
        for ou in ORG_UNITS:
            self.add_org_unit(ou)

        self.never_ack: dict[str, float | None] = {}
        self.outcomes: dict[str, Json] = {}
        self.chrome_commands: dict[str, dict[str, ChromeCommand]] = {}
        self.operations: dict[str, AndroidOperation] = {}
        self.device_operations: dict[str, list[str]] = {}
        self.files: dict[str, bytes] = {}
        self.list_cache: dict[str, tuple[int, list[str]]] = {}
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._ids = itertools.count(1)

        n_users = max(50, int((chrome + android) * 0.8))
        gc_was_enabled = gc.isenabled()
        gc.disable()  # 100k+ small dicts: the cyclic collector would run hundreds of times
        try:
            self.add_chrome(
                chrome_devices(
                    random.Random(seed),
                    chrome,
                    n_users,
                    base=self.base_time,
                    org_units=self.org_units,
                )
            )
            self.add_android(
                android_devices(
                    random.Random(seed * 7919 + 1),
                    android,
                    n_users,
                    base=self.base_time,
                    enterprise=enterprise,
                )
            )
        finally:
            if gc_was_enabled:
                gc.enable()
        self._licensed = sum(d["status"] in LICENSED_STATUSES for d in self.chrome.values())
        self.licenses = (
            licenses if licenses is not None else self._licensed + max(10, self._licensed // 50)
        )

    # ------------------------------------------------------------------ time and events

    def now(self) -> float:
        """The sandbox clock (seconds since the epoch)."""
        return self.clock()

    def schedule(self, due: float, fn: Callable[[], None]) -> None:
        """Run `fn` (under the lock) at the first request on or after `due`."""
        with self.lock:
            heapq.heappush(self._heap, (due, next(self._seq), fn))

    def tick(self) -> None:
        """Apply every scheduled event that is due (commands executing, expiring)."""
        with self.lock:
            now = self.now()
            while self._heap and self._heap[0][0] <= now:
                _, _, fn = heapq.heappop(self._heap)
                fn()

    def next_id(self) -> int:
        """A fleet-unique increasing integer (command ids, operation ids)."""
        return next(self._ids)

    def licenses_used(self) -> int:
        """Chrome devices holding a licence (ACTIVE ones)."""
        return self._licensed

    def free_licenses(self) -> int:
        """Licences left in the pool (re-enabling a disabled device needs one)."""
        return self.licenses - self._licensed

    def set_free_licenses(self, free: int) -> None:
        """Size the pool so that exactly `free` licences are left (0: re-enable → 412)."""
        with self.lock:
            self.licenses = self._licensed + max(0, free)

    def set_chrome_status(self, d: Json, status: str) -> None:
        """Change a Chrome device's status, keeping the license count and etag right."""
        with self.lock:
            was = d["status"] in LICENSED_STATUSES
            now = status in LICENSED_STATUSES
            self._licensed += int(now) - int(was)
            d["status"] = status
            self.bump(d)

    def bump(self, d: Json) -> None:
        """A Chrome device changed: new etag, list caches invalidated."""
        rev = self.next_id()
        if "etag" in d:
            d["etag"] = f'{d["etag"].split("/")[0]}/r{rev:08d}"'
        self.touch()

    def add_org_unit(self, path: str) -> str:
        """Create an org unit (and its parents); returns its orgUnitId."""
        with self.lock:
            path = "/" + path.strip("/") if path.strip("/") else "/"
            if path in self.org_units:
                return self.org_units[path]
            parts = path.strip("/").split("/")
            for k in range(1, len(parts)):
                self.add_org_unit("/" + "/".join(parts[:k]))
            ou_id = f"id:03ph8a2z{_stable_hash(path):08x}"
            self.org_units[path] = ou_id
            return ou_id

    def resolve_org_unit(self, value: str) -> str | None:
        """An orgUnitPath (with or without leading `/`) or `id:…` → the canonical path."""
        v = value.strip()
        if v.startswith("id:"):
            for p, i in self.org_units.items():
                if i == v:
                    return p
            return None
        p = "/" + v.strip("/") if v.strip("/") else "/"
        return p if p in self.org_units else None

    # ------------------------------------------------------------------ test hooks

    def set_never_ack(self, ref: str, on: bool = True, expire_after: float | None = None) -> None:
        """Make a device never acknowledge commands (so they expire), or undo it."""
        with self.lock:
            key = self._key(ref)
            if on:
                self.never_ack[key] = expire_after
            else:
                self.never_ack.pop(key, None)

    def set_outcome(
        self,
        ref: str,
        *,
        error_code: str | None = None,
        status: str | None = None,
        app_results: dict[str, str] | None = None,
        result: str | None = None,
        error_message: str | None = None,
        esim_details: dict[str, str] | None = None,
        result_payload: str | None = None,
    ) -> None:
        """Force the outcome of a device's next commands (see the module docstring)."""
        with self.lock:
            o = {
                "error_code": error_code,
                "status": status,
                "app_results": app_results,
                "result": result,
                "error_message": error_message,
                "esim_details": esim_details,
                "result_payload": result_payload,
            }
            self.outcomes[self._key(ref)] = {k: v for k, v in o.items() if v is not None}

    def set_fields(self, ref: str, fields: Json) -> Json:
        """Overwrite top-level fields of a device (None removes one); returns the old values."""
        with self.lock:
            key = self._key(ref)
            chrome = key in self.chrome
            d = self.chrome[key] if chrome else self.android[key]
            previous = {k: copy.deepcopy(d.get(k)) for k in fields}
            old_serial = d["serialNumber"] if chrome else d["hardwareInfo"]["serialNumber"]
            for k, v in fields.items():
                if chrome:
                    self.reindex_chrome(key, k, d.get(k), v)
                if v is None:
                    d.pop(k, None)
                else:
                    d[k] = copy.deepcopy(v)
            new_serial = d["serialNumber"] if chrome else d["hardwareInfo"]["serialNumber"]
            if new_serial != old_serial:
                index = self._serial if chrome else self._android_serial
                index.pop(old_serial.upper(), None)
                index[new_serial.upper()] = key
                if chrome:
                    self._serial_sorted = sorted(self._serial.items())
            if chrome:
                self.bump(d)
            else:
                self.touch()
            return previous

    def clear_outcome(self, ref: str) -> None:
        """Undo `set_outcome`."""
        with self.lock:
            self.outcomes.pop(self._key(ref), None)

    def check_in(
        self,
        ref: str,
        at: float | None = None,
        *,
        ip: str | None = None,
        wan_ip: str | None = None,
        operator: str | None = None,
    ) -> Json:
        """Simulate a device reporting in at `at` (default now); returns the device."""
        with self.lock:
            at = self.now() if at is None else at
            key = self._key(ref)
            if key in self.chrome:
                d = self.chrome[key]
                d["lastSync"] = rfc3339(at)
                net = (d.get("lastKnownNetwork") or [{}])[0]
                d["lastKnownNetwork"] = [
                    {
                        "ipAddress": ip or net.get("ipAddress", "10.0.0.2"),
                        "wanIpAddress": wan_ip or net.get("wanIpAddress", "203.0.113.1"),
                    }
                ]
                self.bump(d)
                return d
            d = self.android[key]
            d["lastStatusReportTime"] = rfc3339(at)
            d["lastPolicySyncTime"] = rfc3339(at)
            if operator:
                d["networkInfo"]["networkOperatorName"] = operator
            self.touch()
            return d

    def installed_packages(self, name: str) -> set[str]:
        """The apps installed on an Android device (deterministic from its name)."""
        h = _stable_hash(name)
        return {p for i, p in enumerate(PACKAGES) if (h >> i) & 1 or i < 2} | PROTECTED_PACKAGES


def _stable_hash(text: str) -> int:
    """A process-independent 32-bit hash (Python's hash() is salted)."""
    h = 2166136261
    for ch in text.encode():
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h
