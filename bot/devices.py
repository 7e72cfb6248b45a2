"""A device, whichever platform it is on: one model for Chrome OS and Android devices."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Platform = Literal["chrome", "android"]
CHROME: Platform = "chrome"
ANDROID: Platform = "android"
#: each platform as people call it
PLATFORM_NAMES: dict[str, str] = {CHROME: "Chrome OS", ANDROID: "Android"}


@dataclass(frozen=True)
class Device:
    """A Chrome OS or Android device as the bot shows and acts on it."""

    platform: Platform
    id: str  # Chrome deviceId, Android resource name enterprises/E/devices/D
    serial: str | None = None
    user: str | None = None
    org_unit: str | None = None
    model: str | None = None
    os_version: str | None = None
    status: str = "UNKNOWN"
    last_seen: str | None = None  # Chrome lastSync, Android lastStatusReportTime
    network: str | None = None
    asset_id: str | None = None
    location: str | None = None
    notes: str | None = None
    management_mode: str | None = None
    ownership: str | None = None
    api_level: int | None = None
    #: who the device is assigned to: Chrome's annotatedUser, the Android device's user
    assigned_user: str | None = None
    #: Chrome only: the most recent user to sign in (recentUsers[0])
    last_user: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def short_id(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    @property
    def label(self) -> str:
        """Human name: serial and user, e.g. `5CD0123ABC (ada@example.com)`."""
        who = f" ({self.user})" if self.user else ""
        return f"{self.serial or self.short_id}{who}"

    def summary(self) -> dict[str, Any]:
        """What an approver must see about the target (stored with a request)."""
        return {
            "platform": self.platform,
            "id": self.id,
            "serial": self.serial,
            "user": self.user,
            "org_unit": self.org_unit,
            "model": self.model,
            "status": self.status,
            "last_seen": self.last_seen,
            # what a wipe does depends on these (its outcome words too)
            **({"ownership": self.ownership} if self.ownership else {}),
            **({"management_mode": self.management_mode} if self.management_mode else {}),
        }


def chrome_device(raw: dict[str, Any]) -> Device:
    """Normalise a Directory API ChromeOsDevice."""
    networks = raw.get("lastKnownNetwork") or []
    network = None
    if networks:
        first = networks[0]
        parts = [p for p in (first.get("ipAddress"), first.get("wanIpAddress")) if p]
        network = " / WAN ".join(parts) if parts else None
    recent = raw.get("recentUsers") or []
    last_user = (recent[0].get("email") or None) if recent else None
    user = raw.get("annotatedUser") or last_user
    return Device(
        platform=CHROME,
        id=raw["deviceId"],
        serial=raw.get("serialNumber"),
        user=user,
        org_unit=raw.get("orgUnitPath"),
        model=raw.get("model"),
        os_version=raw.get("osVersion") or raw.get("platformVersion"),
        status=raw.get("status", "UNKNOWN"),
        last_seen=raw.get("lastSync"),
        network=network,
        asset_id=raw.get("annotatedAssetId"),
        location=raw.get("annotatedLocation"),
        notes=raw.get("notes"),
        assigned_user=raw.get("annotatedUser") or None,
        last_user=last_user,
        raw=raw,
    )


def android_device(raw: dict[str, Any]) -> Device:
    """Normalise an Android Management API Device."""
    hardware = raw.get("hardwareInfo") or {}
    software = raw.get("softwareInfo") or {}
    network_info = raw.get("networkInfo") or {}
    operator = network_info.get("networkOperatorName")
    telephony = network_info.get("telephonyInfos") or []
    if not operator and telephony:
        operator = telephony[0].get("carrierName")
    network_parts = [p for p in (operator, network_info.get("wifiMacAddress")) if p]
    model = " ".join(p for p in (hardware.get("brand"), hardware.get("model")) if p) or None
    user = (raw.get("user") or {}).get("accountIdentifier") or raw.get("userName")
    return Device(
        platform=ANDROID,
        id=raw["name"],
        serial=hardware.get("serialNumber"),
        user=user,
        org_unit=(raw.get("policyName") or "").rsplit("/", 1)[-1] or None,
        model=model,
        os_version=software.get("androidVersion"),
        status=raw.get("state", "UNKNOWN"),
        last_seen=raw.get("lastStatusReportTime"),
        network=" / ".join(network_parts) or None,
        management_mode=raw.get("managementMode"),
        ownership=raw.get("ownership"),
        api_level=raw.get("apiLevel"),
        assigned_user=user,
        raw=raw,
    )


def platform_name(platform: str) -> str:
    """`Chrome OS`, `Android` (an unknown platform as it is)."""
    return PLATFORM_NAMES.get(platform, platform)
