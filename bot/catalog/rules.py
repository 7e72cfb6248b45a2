"""Why an action cannot run on a device: the capability rules each ActionSpec lists.

Each action (`ActionSpec.rules`) has a list of rules. A rule reads the device's facts
(platform, management mode, ownership, API level, state, kiosk or user session, open lost
case) and answers why the action cannot run on it, in words, or None. The same answer
decides the device card's buttons, `/device help <device>`, and the refusal of a typed
sub-command before any approval is asked.

Sources, per rule (quoted where the text is short):
- AMAPI `enterprises.devices.issueCommand`, CommandType (../reference in the project's
  shared docs: amapi-devices-issueCommand.txt):
  REBOOT "Only supported on fully managed devices running Android 7.0 (API level 24) or higher";
  RELINQUISH_OWNERSHIP "company-owned Android 8.0+ device" with a work profile;
  CLEAR_APP_DATA "supported on Android 9 and above";
  START/STOP_LOST_MODE "Only supported on fully managed devices or organization-owned
  devices with a managed profile";
  ADD_ESIM / REMOVE_ESIM "supported on Android 15 and above";
  REQUEST_DEVICE_INFO "supported only for personally owned devices with work profiles and
  Android versions 13 and above"; LOCK and WIPE on any device.
- Directory API discovery document, `DirectoryChromeosdevicesIssueCommandRequest.commandType`:
  REBOOT "Kiosk and managed guest session devices, and regular devices running ChromeOS
  version 113 or later"; TAKE_A_SCREENSHOT "Only available if the device is in Kiosk Mode";
  SET_VOLUME "Can only be issued to Kiosk and managed guest session devices";
  CAPTURE_LOGS "Capture the system logs of a kiosk device".
- `chromeosdevices.action` (directory-chromeosdevices-action.txt): disable an active device,
  re-enable a disabled one, deprovision an active or disabled one (412 otherwise).

Our reading, not a documented fact (also in the sandbox's list of assumptions):
- Lost mode on Android needs API level 30 (Android 11): the lost-mode guide names Android 11+.
- RESET_PASSWORD on a work profile needs API level 24 (Android 7.0 brought work-profile
  passcode reset).
- A Chrome device runs a kiosk or managed guest session when its licence is a Kiosk Upgrade
  (`deviceLicenseType: kioskUpgrade`) or it sits in an organisational unit listed in
  `KIOSK_ORG_UNITS` (the Directory API does not expose the session type).
- Chrome remote commands need an ACTIVE device: a disabled or deprovisioned one never syncs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.blocks import esc

if TYPE_CHECKING:
    from bot.devices import Device


@dataclass(frozen=True)
class Facts:
    """What the rules read about a device."""

    device: Device
    lost_open: bool
    kiosk: bool

    @property
    def name(self) -> str:
        return esc(self.device.serial or self.device.short_id)

    @property
    def api(self) -> int:
        return int(self.device.api_level or 0)

    @property
    def mode(self) -> str:
        """The Android management mode in words."""
        d = self.device
        if d.management_mode == "DEVICE_OWNER":
            return "fully managed"
        if d.management_mode == "PROFILE_OWNER":
            return (
                "a personal work profile"
                if d.ownership == "PERSONALLY_OWNED"
                else "a company-owned work profile"
            )
        return "of an unknown management mode"

    @property
    def fully_managed(self) -> bool:
        return self.device.management_mode == "DEVICE_OWNER"

    @property
    def company_work_profile(self) -> bool:
        d = self.device
        return d.management_mode == "PROFILE_OWNER" and d.ownership != "PERSONALLY_OWNED"

    @property
    def personal_work_profile(self) -> bool:
        d = self.device
        return d.management_mode == "PROFILE_OWNER" and d.ownership == "PERSONALLY_OWNED"

    @property
    def chrome_milestone(self) -> int:
        version = self.device.os_version or ""
        head = version.split(".", 1)[0]
        return int(head) if head.isdigit() else 0


Rule = Callable[[Facts], str | None]

_ANDROID_VERSION = {24: "7.0", 26: "8.0", 28: "9", 30: "11", 33: "13", 35: "15"}


def min_api(level: int, label: str) -> Rule:
    def rule(f: Facts) -> str | None:
        if f.device.api_level is None or f.api >= level:
            return None
        return (
            f"{label} needs Android {_ANDROID_VERSION.get(level, f'API {level}')} or later; "
            f"{f.name} runs API level {f.api}."
        )

    return rule


def fully_managed_only(label: str) -> Rule:
    def rule(f: Facts) -> str | None:
        if f.fully_managed:
            return None
        return f"{label} applies only to fully managed devices; {f.name} is {f.mode}."

    return rule


def company_work_profile_only(label: str) -> Rule:
    def rule(f: Facts) -> str | None:
        if f.company_work_profile:
            return None
        return f"{label} applies only to company-owned work profiles; {f.name} is {f.mode}."

    return rule


def company_owned_only(label: str) -> Rule:
    def rule(f: Facts) -> str | None:
        if f.fully_managed or f.company_work_profile:
            return None
        return f"{label} applies only to company-owned devices (fully managed or a company-owned work profile); {f.name} is {f.mode}."

    return rule


def personal_work_profile_only(label: str) -> Rule:
    def rule(f: Facts) -> str | None:
        if f.personal_work_profile:
            return None
        return f"{label} applies only to personal work profiles; {f.name} is {f.mode}."

    return rule


def work_profile_api(level: int, label: str) -> Rule:
    check = min_api(level, label + " on a work profile")

    def rule(f: Facts) -> str | None:
        return check(f) if f.device.management_mode == "PROFILE_OWNER" else None

    return rule


def kiosk_only(label: str, *, guest: bool) -> Rule:
    where = "kiosk and managed guest sessions" if guest else "kiosk sessions"

    def rule(f: Facts) -> str | None:
        if f.kiosk:
            return None
        return f"{label} works only in {where}; {f.name} is a user's device."

    return rule


def chrome_reboot(f: Facts) -> str | None:
    if f.kiosk or f.chrome_milestone == 0 or f.chrome_milestone >= 113:
        return None  # 0: a version we cannot read is not a reason to refuse
    return (
        f"Reboot needs ChromeOS 113 or later outside kiosk and managed guest sessions; "
        f"{f.name} runs {esc(f.device.os_version)}."
    )


def not_reported_lost(f: Facts) -> str | None:
    if f.lost_open or f.device.status == "LOST":
        return f"{f.name} is already reported lost; use Found when it is back."
    return None


def reported_lost(f: Facts) -> str | None:
    if f.lost_open or f.device.status == "LOST":
        return None
    return f"{f.name} is not reported lost, so there is nothing to mark found."
