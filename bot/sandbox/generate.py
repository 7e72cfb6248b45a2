"""The sandbox's generated devices: Chrome OS and Android JSON as Google returns it.

Deterministic for a seed: the same `random.Random` draws give the same fleet, so tests can
name devices by their place in it. Values come from `bot.sandbox.pools`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from bot.sandbox.api import rfc3339
from bot.sandbox.pools import (
    ANDROID_MODELS,
    ANDROID_VERSIONS,
    AUE_MS,
    AUTO_UPDATE_THROUGH,
    CARRIERS,
    CHROME_MODELS,
    CHROME_RELEASES,
    CHROME_STATUS_WEIGHTS,
    CHROME_STATUSES,
    DEPROVISION_REASONS,
    DOMAIN,
    FIRST,
    KIOSK_OU,
    LAST,
    LOCATIONS,
    MILESTONE_WEIGHTS,
    MILESTONES,
    NOTES,
    ORG_UNITS,
    OU_WEIGHTS,
)

Json = dict[str, Any]

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


def _patch_level(base: float, bits: int) -> str:
    """A security patch level (the 1st of a month): most within a year of `base`, a quarter
    one to three years old, as in a fleet where some devices stopped taking updates."""
    months = (bits >> 110) % 12 if (bits >> 115) % 4 else 12 + (bits >> 110) % 24
    day = datetime.fromtimestamp(base, UTC)
    index = day.year * 12 + day.month - 1 - months
    return f"{index // 12}-{index % 12 + 1:02d}-01"


def chrome_devices(
    rng: random.Random, n: int, n_users: int, *, base: float, org_units: dict[str, str]
) -> Iterator[Json]:
    """`n` Chrome devices (`ChromeOsDevice` JSON) with unique serials, used by `n_users` users.

    `base` is the time generated timestamps are relative to; `org_units` maps each path of
    `ORG_UNITS` to its orgUnitId."""
    ou_paths = list(ORG_UNITS)
    statuses = rng.choices(CHROME_STATUSES, CHROME_STATUS_WEIGHTS, k=n)
    ous = rng.choices(ou_paths, OU_WEIGHTS, k=n)
    milestones = rng.choices(MILESTONES, MILESTONE_WEIGHTS, k=n)
    models = rng.choices(CHROME_MODELS, k=n)
    seen: set[str] = set()
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
            "orgUnitId": org_units[ou],
            "chromeOsType": "chromeOs",
            "deviceLicenseType": (
                "kioskUpgrade" if ou == KIOSK_OU else "enterpriseUpgradePerpetual"
            ),
            "osVersionCompliance": "compliant" if m >= 129 else "notCompliant",
            "autoUpdateThrough": AUTO_UPDATE_THROUGH[board],
            # the deprecated int64 twin of autoUpdateThrough: milliseconds since the epoch
            "autoUpdateExpiration": AUE_MS[board],
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
            d["deprovisionReason"] = DEPROVISION_REASONS[(bits >> 32) % len(DEPROVISION_REASONS)]
            d["lastDeprovisionTimestamp"] = rfc3339(sync + 3600)
        seen.add(serial.upper())
        yield d


def android_devices(
    rng: random.Random, n: int, n_users: int, *, base: float, enterprise: str
) -> Iterator[Json]:
    """`n` Android devices (AMAPI `Device` JSON) of `enterprise` with unique serials."""
    ent = enterprise
    models = rng.choices(ANDROID_MODELS, k=n)
    seen: set[str] = set()
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
        seen.add(serial.upper())
        yield d
