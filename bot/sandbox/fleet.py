"""The sandbox's in-memory fleet: generated devices, their indexes, commands and test hooks.

Devices are stored as the very JSON objects Google returns (`ChromeOsDevice`,
AMAPI `Device`), so handlers serialise them as they are. Everything is guarded by
`Fleet.lock` (an RLock); handlers hold it for the whole request.

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

import bisect
import copy
import gc
import heapq
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.sandbox.api import rfc3339

Json = dict[str, Any]

#: the admin the sandbox's Directory API acts as: the actor of the changes it applies
SANDBOX_ADMIN = "admin@sandbox.example.com"

# --------------------------------------------------------------------------- data pools


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST = _words(
    "alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy rupert "
    "sybil trent victor walter xena yusuf zoe amir bianca chen dmitri elena farah gustavo "
    "hana ines jonas kemal leila marco noor oskar priya quentin rosa sanjay tomas uma "
    "valentin wen ximena yara zeynep aaron beatriz claude dalia emeka fatima goran helga "
    "ingrid jamal keiko lars mei nikolai omar paula ravi sofia tariq ursula vera wilhelm"
)
LAST = _words(
    "smith jones taylor brown williams wilson johnson davies robinson wright thompson evans "
    "walker white roberts green hall wood jackson clarke patel khan lewis james phillips "
    "mason mitchell rose davis rodriguez cox alexander garcia martin moreau dubois bernard "
    "muller schmidt schneider fischer weber rossi russo ferrari esposito tanaka suzuki sato "
    "kim lee park nguyen tran silva santos oliveira costa novak kowalski nowak horvat "
    "andersen nielsen hansen larsen berg lindqvist virtanen korhonen murphy kelly byrne"
)
DOMAIN = "example.com"

ORG_UNITS = (
    "/",
    "/Sales",
    "/Sales/EMEA",
    "/Sales/AMER",
    "/Sales/APAC",
    "/Engineering",
    "/Engineering/Labs",
    "/Support",
    "/Finance",
    "/HR",
    "/Education",
    "/Education/Classroom Carts",
    "/Kiosks",
    "/Loaners",
    "/Retired",
)
_OU_WEIGHTS = (2, 4, 10, 10, 6, 12, 3, 8, 4, 3, 2, 6, 3, 3, 2)

LOCATIONS = (
    "London HQ, Floor 3",
    "London HQ, Floor 5",
    "Paris Office",
    "Berlin - Room 2.14",
    "Dublin",
    "New York 5th Ave",
    "Austin Lab",
    "Toronto",
    "Tokyo",
    "Singapore Hub",
    "Sydney",
    "Warehouse B",
    "Help desk shelf",
)
NOTES = (
    "Loaner pool",
    "Screen cracked - repair ticket INC-4411",
    "Battery swollen, do not issue",
    "Spare",
    "Shared cart device",
    "Reception kiosk",
    "Reported lost 2024-03",
    "Keyboard replaced",
    "Exec travel device",
)

# (model, serial style, board, firmware prefix)
CHROME_MODELS = (
    ("HP Chromebook 14 G7", "hp", "dedede", "Google_Dedede.13606"),
    ("HP Elite c640 14 inch G3 Chromebook", "hp", "brya", "Google_Brya.14505"),
    ("HP Chromebook x360 11 G4 EE", "hp", "dedede", "Google_Dedede.13606"),
    ("Acer Chromebook Spin 514", "acer", "zork", "Google_Zork.13434"),
    ("Acer Chromebook 314", "acer", "nissa", "Google_Nissa.15217"),
    ("Acer Chromebook Plus 515", "acer", "brya", "Google_Brya.14505"),
    ("Lenovo 300e Chromebook Gen 3", "lenovo", "grunt", "Google_Grunt.11031"),
    ("Lenovo ThinkPad C14 Gen 1 Chromebook", "lenovo", "brya", "Google_Brya.14505"),
    ("Lenovo 100e Chromebook Gen 4", "lenovo", "nissa", "Google_Nissa.15217"),
    ("Dell Chromebook 3110", "dell", "dedede", "Google_Dedede.13606"),
    ("Dell Latitude 5430 Chromebook", "dell", "brya", "Google_Brya.14505"),
    ("ASUS Chromebook Flip CX5", "asus", "volteer", "Google_Volteer.13672"),
    ("ASUS Chromebook CX1", "asus", "octopus", "Google_Octopus.11297"),
    ("Google Pixelbook Go", "google", "hatch", "Google_Hatch.12672"),
    ("Samsung Galaxy Chromebook 2", "samsung", "hatch", "Google_Hatch.12672"),
)
#: board → the month its Chrome OS updates end (auto-update expiry is per model in Google's
#: policy; these dates are made up, spread over past and future months for the fleet chart)
AUTO_UPDATE_THROUGH = {
    "grunt": "2026-06-01",
    "octopus": "2027-11-01",
    "hatch": "2029-06-01",
    "zork": "2030-06-01",
    "volteer": "2031-08-01",
    "dedede": "2031-06-01",
    "brya": "2032-06-01",
    "nissa": "2033-06-01",
}
_AUE_MS = {
    board: str(int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()) * 1000)
    for board, day in AUTO_UPDATE_THROUGH.items()
}


def _patch_level(base: float, bits: int) -> str:
    """A security patch level (the 1st of a month): most within a year of `base`, a quarter
    one to three years old, as in a fleet where some devices stopped taking updates."""
    months = (bits >> 110) % 12 if (bits >> 115) % 4 else 12 + (bits >> 110) % 24
    day = datetime.fromtimestamp(base, UTC)
    index = day.year * 12 + day.month - 1 - months
    return f"{index // 12}-{index % 12 + 1:02d}-01"


# milestone → (Chrome build, platform major)
CHROME_RELEASES = {
    120: (6099, 15662),
    121: (6167, 15699),
    122: (6261, 15753),
    123: (6312, 15786),
    124: (6367, 15823),
    125: (6422, 15853),
    126: (6478, 15886),
    127: (6533, 15917),
    128: (6613, 15964),
    129: (6668, 16002),
    130: (6723, 16033),
    131: (6778, 16063),
}
_MILESTONES = tuple(CHROME_RELEASES)
_MILESTONE_WEIGHTS = (1, 1, 1, 2, 2, 3, 4, 6, 10, 16, 25, 30)

CHROME_STATUSES = (
    "ACTIVE",
    "DISABLED",
    "DEPROVISIONED",
    "PROVISIONED",
    "INACTIVE",
    "RETURN_REQUESTED",
    "RETURN_ARRIVED",
    "SHIPPED",
    "PRE_PROVISIONED_DISABLED",
    "UNKNOWN",
)
_CHROME_STATUS_WEIGHTS = (850, 40, 60, 20, 15, 3, 3, 4, 3, 2)
#: a Chrome device in these statuses holds a licence: the reference says re-enabling a
#: disabled device consumes one, so disabling (and deprovisioning) gives it back
LICENSED_STATUSES = frozenset({"ACTIVE"})

DEPROVISION_REASONS = (
    "DEPROVISION_REASON_SAME_MODEL_REPLACEMENT",
    "DEPROVISION_REASON_DIFFERENT_MODEL_REPLACEMENT",
    "DEPROVISION_REASON_RETIRING_DEVICE",
    "DEPROVISION_REASON_UPGRADE_TRANSFER",
)

# (brand, manufacturer, model, hardware, serial style, api levels, has telephony)
ANDROID_MODELS = (
    ("samsung", "samsung", "SM-G991B", "qcom", "samsung", (31, 33, 34), True),
    ("samsung", "samsung", "SM-S921B", "s5e9945", "samsung", (34, 35), True),
    ("samsung", "samsung", "SM-A145R", "mt6769", "samsung", (33, 34), True),
    ("samsung", "samsung", "SM-T575", "exynos9810", "samsung", (29, 30, 31), False),
    ("google", "Google", "Pixel 6a", "bluejay", "pixel", (33, 34, 35), True),
    ("google", "Google", "Pixel 8", "shiba", "pixel", (34, 35, 36), True),
    ("google", "Google", "Pixel 9", "tokay", "pixel", (35, 36), True),
    ("Zebra", "Zebra Technologies", "TC52", "sdm660", "zebra", (27, 29, 30), False),
    ("Zebra", "Zebra Technologies", "TC58", "qcom", "zebra", (33, 34), True),
    ("Honeywell", "Honeywell", "CT40", "msm8937", "honeywell", (26, 28), False),
    ("motorola", "motorola", "moto g power (2022)", "mt6765", "moto", (30, 31), True),
    ("Nokia", "HMD Global", "Nokia G21", "ums512", "nokia", (28, 30), True),
)
ANDROID_VERSIONS = {
    24: "7.0",
    25: "7.1.1",
    26: "8.0.0",
    27: "8.1.0",
    28: "9",
    29: "10",
    30: "11",
    31: "12",
    32: "12L",
    33: "13",
    34: "14",
    35: "15",
    36: "16",
}
CARRIERS = ("Vodafone", "EE", "O2", "T-Mobile", "Verizon", "AT&T", "Orange", "Telekom")
PACKAGES = (
    "com.google.android.gm",
    "com.android.chrome",
    "com.google.android.apps.docs",
    "com.Slack",
    "com.microsoft.teams",
    "com.microsoft.office.outlook",
    "com.google.android.calendar",
    "com.zebra.mdna.els",
    "com.salesforce.chatter",
    "com.example.fieldapp",
)
PROTECTED_PACKAGES = frozenset(
    {"com.android.vending", "com.google.android.gms", "com.google.android.apps.work.clouddpc"}
)

_ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
_DIGITS = "0123456789"
_HEX = "0123456789abcdef"


def _s(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choices(alphabet, k=n))


def _chrome_serial(rng: random.Random, style: str) -> str:
    # one choices() call per serial (digits from getrandbits): generation speed matters at 100k
    if style == "hp":
        return f"5CD{rng.getrandbits(10) % 1000:03d}{_s(rng, _ALNUM, 4)}"
    if style == "acer":
        r = rng.getrandbits(64)
        return f"NX{'ABCDEFGHK'[r % 9]}{'ABCDEFGHK'[r // 9 % 9]}{'ABCDEFGHK'[r // 81 % 9]}AA{r // 729 % 10**13:013d}"
    if style == "lenovo":
        return "PF" + _s(rng, _ALNUM, 6)
    if style == "dell":
        return _s(rng, _ALNUM, 7)
    if style == "asus":
        r = rng.getrandbits(40)
        return f"{'LMNR'[r % 4]}{r // 4 % 10}NX{_s(rng, _ALNUM, 2)}{r // 40 % 10**7:07d}"
    if style == "samsung":
        return "R9" + _s(rng, _ALNUM, 9)
    return f"{rng.getrandbits(4) % 10}{_s(rng, _ALNUM, 11)}"  # google


def _android_serial(rng: random.Random, style: str) -> str:
    if style == "samsung":
        return "R5" + _s(rng, "8CFG", 1) + _s(rng, _ALNUM, 8)
    if style == "pixel":
        return _s(rng, _DIGITS, 5) + _s(rng, "FDHL", 3) + _s(rng, _DIGITS, 4) + _s(rng, _ALNUM, 2)
    if style == "zebra":
        return _s(rng, _DIGITS, 14)
    if style == "honeywell":
        return _s(rng, _DIGITS, 5) + "D" + _s(rng, _DIGITS, 4)
    return _s(rng, "ZN", 1) + _s(rng, _ALNUM, 9)


def user_email(i: int) -> str:
    """The i-th user of the generated directory: `first.last[N]@example.com`."""
    f, rest = i % len(FIRST), i // len(FIRST)
    last, n = rest % len(LAST), rest // len(LAST)
    return f"{FIRST[f]}.{LAST[last]}{n if n else ''}@{DOMAIN}"


def _mac(rng: random.Random, sep: str = "") -> str:
    b = rng.getrandbits(48)
    return sep.join(f"{(b >> s) & 0xFF:02x}" for s in range(40, -8, -8))


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


class Fleet:
    """Generated Chrome and Android devices plus every piece of mutable sandbox state."""

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
        self.lock = threading.RLock()
        self.seed = seed
        self.customer_id = customer_id
        self.enterprise = enterprise
        self.command_delay = command_delay
        #: seconds after which an unacknowledged Chrome command expires
        self.chrome_command_ttl = 600.0
        self.clock: Callable[[], float] = time.time
        #: generated timestamps are relative to this (UTC midnight today unless given)
        self.base_time = base_time if base_time is not None else (time.time() // 86400) * 86400
        self.version = 0
        self.url = ""  # set by the server (download links)
        #: the admin the Directory API acts as, and the Admin console's audit log (Reports)
        self.admin_email = SANDBOX_ADMIN
        self.activities: list[tuple[int, Json]] = []  # (time in ms, Activity)

        self.chrome: dict[str, Json] = {}
        self.chrome_order: list[str] = []
        self._serial: dict[str, str] = {}
        self._serial_sorted: list[tuple[str, str]] = []
        self._user_sorted: list[tuple[str, str]] = []
        self._asset_sorted: list[tuple[str, str]] = []
        self._licensed = 0
        self._pos: dict[str, int] = {}

        self.android: dict[str, Json] = {}
        self.android_order: list[str] = []
        self._android_serial: dict[str, str] = {}

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
        self.index_lookups = 0  # counts indexed look-ups (tests assert the index is used)
        self.scans = 0  # counts full-fleet scans

        n_users = max(50, int((chrome + android) * 0.8))
        gc_was_enabled = gc.isenabled()
        gc.disable()  # 100k+ small dicts: the cyclic collector would run hundreds of times
        try:
            self._generate_chrome(random.Random(seed), chrome, n_users)
            self._generate_android(random.Random(seed * 7919 + 1), android, n_users)
        finally:
            if gc_was_enabled:
                gc.enable()
        self.licenses = (
            licenses if licenses is not None else self._licensed + max(10, self._licensed // 50)
        )

    # ------------------------------------------------------------------ generation

    def _generate_chrome(self, rng: random.Random, n: int, n_users: int) -> None:
        base = self.base_time
        ou_paths = list(ORG_UNITS)
        statuses = rng.choices(CHROME_STATUSES, _CHROME_STATUS_WEIGHTS, k=n)
        ous = rng.choices(ou_paths, _OU_WEIGHTS, k=n)
        milestones = rng.choices(_MILESTONES, _MILESTONE_WEIGHTS, k=n)
        models = rng.choices(CHROME_MODELS, k=n)
        seen = self._serial
        for i in range(n):
            model, style, board, fw = models[i]
            serial = _chrome_serial(rng, style)
            while serial in seen:
                serial = _chrome_serial(rng, style)
            bits = rng.getrandbits(128)
            h = f"{bits:032x}"
            device_id = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"
            status = statuses[i]
            m = milestones[i]
            build, platform = CHROME_RELEASES[m]
            r = rng.random()
            enrolled = base - 86400 * (30 + (bits & 0x3FF))  # 30..1053 days ago
            if status == "ACTIVE":
                sync = base - (r * r) * 86400 * 45 - (bits >> 20 & 0xFFF)
            else:
                sync = base - 86400 * (20 + r * 300)
            ou = ous[i]
            d: Json = {
                "kind": "admin#directory#chromeosdevice",
                "etag": f'"{h[:22]}/{h[22:]}"',
                "deviceId": device_id,
                "serialNumber": serial,
                "status": status,
                "lastSync": rfc3339(sync),
                "lastEnrollmentTime": rfc3339(enrolled),
                "firstEnrollmentTime": rfc3339(enrolled - 86400 * (bits >> 40 & 0x7F)),
                "model": model,
                "osVersion": f"{m}.0.{build}.{(bits >> 50) & 0xFF}",
                "platformVersion": f"{platform}.{(bits >> 60) & 0x3F}.0 (Official Build) stable-channel {board}",
                "firmwareVersion": f"{fw}.{(bits >> 70) & 0x1FF}.0",
                "macAddress": f"{(bits >> 64) & 0xFFFFFFFFFFFF:012x}",
                "bootMode": "Verified",
                "orgUnitPath": ou,
                "orgUnitId": self.org_units[ou],
                "chromeOsType": "chromeOs",
                "deviceLicenseType": (
                    "kioskUpgrade" if ou == "/Kiosks" else "enterpriseUpgradePerpetual"
                ),
                "osVersionCompliance": "compliant" if m >= 129 else "notCompliant",
                "autoUpdateThrough": AUTO_UPDATE_THROUGH[board],
                # the deprecated int64 twin of autoUpdateThrough: milliseconds since the epoch
                "autoUpdateExpiration": _AUE_MS[board],
                "systemRamTotal": str((4 << ((bits >> 84) % 3)) * 1073741824),
            }
            if status in ("ACTIVE", "DISABLED"):
                uix = (bits >> 90) % n_users
                if r < 0.75:
                    d["annotatedUser"] = user_email(uix)
                d["recentUsers"] = [{"type": "USER_TYPE_MANAGED", "email": user_email(uix)}]
                if r < 0.3:
                    d["recentUsers"].append(
                        {"type": "USER_TYPE_MANAGED", "email": user_email((uix * 31 + 7) % n_users)}
                    )
                d["lastKnownNetwork"] = [
                    {
                        "ipAddress": f"10.{(bits >> 96) & 0xFF}.{(bits >> 104) & 0xFF}.{(bits >> 112) % 254 + 1}",
                        "wanIpAddress": f"203.0.113.{(bits >> 120) % 254 + 1}",
                    }
                ]
            if (bits >> 8) % 10 < 6:
                d["annotatedAssetId"] = f"ASSET-{i + 10000:06d}"
            if (bits >> 12) % 10 < 5:
                d["annotatedLocation"] = LOCATIONS[(bits >> 16) % len(LOCATIONS)]
            if (bits >> 24) % 100 < 12:
                d["notes"] = NOTES[(bits >> 28) % len(NOTES)]
            if (bits >> 36) % 5 == 0:  # a 3G/LTE modem: the MEID the Directory guide exports
                d["meid"] = f"A{(bits >> 40) & 0xFFFFFFFFFFFFF:013X}"
            if status == "DEPROVISIONED":
                d["deprovisionReason"] = DEPROVISION_REASONS[
                    (bits >> 32) % len(DEPROVISION_REASONS)
                ]
                d["lastDeprovisionTimestamp"] = rfc3339(sync + 3600)
            if status in LICENSED_STATUSES:
                self._licensed += 1
            self.chrome[device_id] = d
            self.chrome_order.append(device_id)
            seen[serial.upper()] = device_id
        self._pos = {k: i for i, k in enumerate(self.chrome_order)}
        self._serial_sorted = sorted((s, i) for s, i in seen.items())
        self._user_sorted = sorted(
            (d["annotatedUser"].lower(), k) for k, d in self.chrome.items() if "annotatedUser" in d
        )
        self._asset_sorted = sorted(
            (d["annotatedAssetId"].lower(), k)
            for k, d in self.chrome.items()
            if "annotatedAssetId" in d
        )

    def _generate_android(self, rng: random.Random, n: int, n_users: int) -> None:
        base = self.base_time
        ent = self.enterprise
        models = rng.choices(ANDROID_MODELS, k=n)
        seen = self._android_serial
        for i in range(n):
            brand, manufacturer, model, hardware, style, apis, phone = models[i]
            serial = _android_serial(rng, style)
            while serial.upper() in seen:
                serial = _android_serial(rng, style)
            bits = rng.getrandbits(128)
            dev_id = f"3{bits & 0xFFFFFFFFFFFFFFF:015x}"
            name = f"{ent}/devices/{dev_id}"
            api = apis[(bits >> 60) % len(apis)]
            kind = (bits >> 64) % 20
            if kind < 10:
                mode, owner, policy = "DEVICE_OWNER", "COMPANY_OWNED", "fully-managed"
            elif kind < 13:
                mode, owner, policy = "PROFILE_OWNER", "COMPANY_OWNED", "company-work-profile"
            else:
                mode, owner, policy = "PROFILE_OWNER", "PERSONALLY_OWNED", "byod"
            if style in ("zebra", "honeywell"):
                mode, owner, policy = "DEVICE_OWNER", "COMPANY_OWNED", "kiosk"
            st = (bits >> 70) % 100
            state = "ACTIVE"
            if st < 3:
                state = "DISABLED"
            elif st < 5 and owner == "COMPANY_OWNED":
                state = "LOST"
            elif st < 7:
                state = "PROVISIONING"
            r = rng.random()
            report = base - (r * r) * 86400 * 30 - (bits >> 80 & 0xFFF)
            enrolled = base - 86400 * (20 + (bits >> 90 & 0x3FF))
            uix = (bits >> 100) % n_users
            user_id = f"1{(bits >> 40) & 0xFFFFFFFFFFF:013d}"
            patch_month = 1 + (bits >> 110) % 12
            d: Json = {
                "name": name,
                "managementMode": mode,
                "ownership": owner,
                "state": state,
                "appliedState": state,
                "apiLevel": api,
                "policyName": f"{ent}/policies/{policy}",
                "appliedPolicyName": f"{ent}/policies/{policy}",
                "appliedPolicyVersion": str(3 + (bits >> 20) % 40),
                "policyCompliant": (bits >> 30) % 10 != 0,
                "enrollmentTime": rfc3339(enrolled),
                "lastStatusReportTime": rfc3339(report),
                "lastPolicySyncTime": rfc3339(report - 60),
                "userName": f"{ent}/users/{user_id}",
                "user": {"accountIdentifier": user_email(uix)},
                "hardwareInfo": {
                    "brand": brand,
                    "manufacturer": manufacturer,
                    "model": model,
                    "hardware": hardware,
                    "serialNumber": serial,
                    "enterpriseSpecificId": f"{bits >> 64:016X}"[:16],
                },
                "softwareInfo": {
                    "androidVersion": ANDROID_VERSIONS[api],
                    "androidBuildNumber": f"{model.split()[0].upper()[:4]}.{api}0{patch_month:02d}.001",
                    "securityPatchLevel": _patch_level(base, bits),
                    "androidDevicePolicyVersionName": f"1{20 + (bits >> 118) % 8}.{bits % 90:02d}.1",
                    "androidDevicePolicyVersionCode": 12000 + (bits >> 118) % 800,
                    "primaryLanguageCode": ("en-GB", "en-US", "fr-FR", "de-DE", "ja-JP")[bits % 5],
                },
                "memoryInfo": {
                    "totalRam": str((2 + (bits >> 8) % 4) * 2 * 1073741824),
                    "totalInternalStorage": str((64 << ((bits >> 12) % 3)) * 1000000000),
                },
                "networkInfo": {"wifiMacAddress": _mac(rng, ":")},
            }
            if phone:
                ni = d["networkInfo"]
                carrier = CARRIERS[(bits >> 16) % len(CARRIERS)]
                ni["imei"] = "35" + f"{(bits >> 24) & 0xFFFFFFFFFFFF:013d}"[:13]
                ni["networkOperatorName"] = carrier
                ni["telephonyInfos"] = [
                    {
                        "carrierName": carrier,
                        "phoneNumber": f"+4477{(bits >> 36) % 100000000:08d}",
                        "iccId": f"8944{(bits >> 44) & 0xFFFFFFFFFFFFF:015d}"[:19],
                    }
                ]
                if api >= 33:
                    d["hardwareInfo"]["euiccChipInfo"] = [{"eid": f"8904{bits % 10**28:028d}"}]
            self.android[name] = d
            self.android_order.append(name)
            seen[serial.upper()] = name

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

    def touch(self) -> None:
        """Record that the fleet changed (invalidates cached list results)."""
        self.version += 1

    # ------------------------------------------------------------------ Chrome look-ups

    def chrome_get(self, device_id: str) -> Json | None:
        """The Chrome device with this deviceId, or None."""
        return self.chrome.get(device_id)

    def chrome_by_serial(self, serial: str) -> Json | None:
        """Exact (case-insensitive) serial look-up through the index."""
        with self.lock:
            self.index_lookups += 1
            did = self._serial.get(serial.upper())
            return self.chrome[did] if did else None

    def chrome_position(self, device_id: str) -> int:
        """A Chrome device's place in the fleet's natural (generation) order."""
        return self._pos.get(device_id, 1 << 62)

    def chrome_serial_prefix(self, prefix: str) -> list[str]:
        """deviceIds whose serial starts with `prefix` (case-insensitive), via bisect."""
        return self._prefix(self._serial_sorted, prefix.upper())

    def chrome_user_prefix(self, prefix: str) -> list[str]:
        """deviceIds whose annotatedUser starts with `prefix` (case-insensitive)."""
        return self._prefix(self._user_sorted, prefix.lower())

    def chrome_asset_prefix(self, prefix: str) -> list[str]:
        """deviceIds whose annotatedAssetId starts with `prefix` (case-insensitive)."""
        return self._prefix(self._asset_sorted, prefix.lower())

    def _prefix(self, index: list[tuple[str, str]], prefix: str) -> list[str]:
        self.index_lookups += 1
        out: list[str] = []
        i = bisect.bisect_left(index, (prefix, ""))
        while i < len(index) and index[i][0].startswith(prefix):
            out.append(index[i][1])
            i += 1
        return out

    def iter_chrome(self) -> Iterator[Json]:
        """Every Chrome device in generation order (a full scan: counted)."""
        self.scans += 1
        chrome = self.chrome
        return (chrome[k] for k in self.chrome_order)

    def chrome_by_status(self, status: str, *, skip: int = 0) -> Json:
        """The first (after `skip`) Chrome device in `status`; KeyError if none."""
        with self.lock:
            for d in self.iter_chrome():
                if d["status"] == status:
                    if skip == 0:
                        return d
                    skip -= 1
            raise KeyError(status)

    def chrome_device(self, ref: str) -> Json:
        """A Chrome device by deviceId or serial; KeyError if unknown."""
        with self.lock:
            d = self.chrome.get(ref) or self.chrome_by_serial(ref)
            if d is None:
                raise KeyError(ref)
            return d

    def reindex_chrome(self, device_id: str, key: str, old: str | None, new: str | None) -> None:
        """Keep the user / asset-id prefix indexes in step with a patch."""
        index = {"annotatedUser": self._user_sorted, "annotatedAssetId": self._asset_sorted}.get(
            key
        )
        if index is None:
            return
        if old:
            i = bisect.bisect_left(index, (old.lower(), device_id))
            if i < len(index) and index[i] == (old.lower(), device_id):
                del index[i]
        if new:
            bisect.insort(index, (new.lower(), device_id))

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

    # ------------------------------------------------------------------ Android look-ups

    def android_get(self, name: str) -> Json | None:
        """The Android device with this resource name, or None."""
        return self.android.get(name)

    def android_by_serial(self, serial: str) -> Json | None:
        """Exact (case-insensitive) hardwareInfo.serialNumber look-up through the index."""
        with self.lock:
            self.index_lookups += 1
            name = self._android_serial.get(serial.upper())
            return self.android.get(name) if name else None

    def android_where(
        self,
        *,
        api_min: int | None = None,
        api_max: int | None = None,
        mode: str | None = None,
        ownership: str | None = None,
        state: str | None = "ACTIVE",
        skip: int = 0,
    ) -> Json:
        """The first (after `skip`) Android device matching every given criterion; KeyError if none."""
        with self.lock:
            for name in self.android_order:
                d = self.android[name]
                if api_min is not None and d["apiLevel"] < api_min:
                    continue
                if api_max is not None and d["apiLevel"] > api_max:
                    continue
                if mode and d["managementMode"] != mode:
                    continue
                if ownership and d["ownership"] != ownership:
                    continue
                if state and d["state"] != state:
                    continue
                if skip == 0:
                    return d
                skip -= 1
            raise KeyError((api_min, api_max, mode, ownership, state))

    def android_device(self, ref: str) -> Json:
        """An Android device by name, short id or serial; KeyError if unknown."""
        with self.lock:
            d = (
                self.android.get(ref)
                or self.android.get(f"{self.enterprise}/devices/{ref}")
                or self.android_by_serial(ref)
            )
            if d is None:
                raise KeyError(ref)
            return d

    def remove_android(self, name: str) -> None:
        """Delete an Android device (after WIPE / RELINQUISH_OWNERSHIP / devices.delete)."""
        with self.lock:
            d = self.android.pop(name, None)
            if d is not None:
                self._android_serial.pop(d["hardwareInfo"]["serialNumber"].upper(), None)
                self.android_order.remove(name)
                self.touch()

    # ------------------------------------------------------------------ test hooks

    def _key(self, ref: str) -> str:
        """A device ref → its state key (Chrome deviceId or Android name)."""
        with self.lock:
            if ref in self.chrome or ref in self.android:
                return ref
            try:
                return self.android_device(ref)["name"]
            except KeyError:
                return self.chrome_device(ref)["deviceId"]

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
