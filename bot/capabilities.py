"""Which actions fit which device: one capability model for the card, help and typed commands.

A device's facts (bot/rules.py: platform, management mode, ownership, API level, state,
kiosk or user session, open lost case) run through an action's `states` and its `rules`;
the first answer says why the action cannot run there, in words. The same answer decides
the device card's buttons, `/device help <device>`, and the refusal of a typed sub-command
before any approval is asked.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot import catalog, lost_cases
from bot.blocks import esc
from bot.catalog.rules import Facts, Rule
from bot.catalog.specs import ActionSpec
from bot.devices import Device
from bot.services import Services


def _state(spec: ActionSpec) -> Rule:
    def rule(f: Facts) -> str | None:
        if not spec.states or f.device.status in spec.states:
            return None
        status = esc(f.device.status)
        if spec.name == "disable" and status == "DISABLED":
            return f"{f.name} is already disabled."
        if spec.name == "reenable" and status == "ACTIVE":
            return f"{f.name} is not disabled: it is already active."
        if status == "DEPROVISIONED":
            return f"{f.name} is deprovisioned: it must be re-enrolled before *{esc(spec.label)}* or any other action can run."
        wanted = " or ".join(s.lower() for s in spec.states)
        return f"{spec.label} needs the device to be {wanted}; {f.name} is {status.lower()}."

    return rule


def is_kiosk(device: Device, kiosk_org_units: Sequence[str] = ()) -> bool:
    """A Chrome device that runs a kiosk or managed guest session (our reading, see above)."""
    if device.platform != "chrome":
        return False
    if device.raw.get("deviceLicenseType") == "kioskUpgrade":
        return True
    ou = (device.org_unit or "").rstrip("/")
    return any(ou == k.rstrip("/") or ou.startswith(k.rstrip("/") + "/") for k in kiosk_org_units)


def facts(device: Device, *, lost_open: bool = False, kiosk_org_units: Sequence[str] = ()) -> Facts:
    return Facts(device, lost_open, is_kiosk(device, kiosk_org_units))


def facts_for(svc: Services, device: Device) -> Facts:
    """The facts of a device as this bot sees it now (its open lost case, the kiosk OUs)."""
    case = lost_cases.open_case_for(svc, device.platform, device.id)
    return facts(device, lost_open=case is not None, kiosk_org_units=svc.settings.kiosk_org_units)


def refusal(spec: ActionSpec, f: Facts) -> str | None:
    """Why `spec` cannot run on the device, in words; None when it can."""
    for rule in (_state(spec), *(spec.rules or ())):
        reason = rule(f)
        if reason:
            return reason
    return None


def specs_for(platform: str) -> list[ActionSpec]:
    """Every single-device action of a platform (a move is chosen from `/device move`)."""
    return [s for s in catalog.all_specs() if s.platform == platform and s.kind != "move"]


def available(f: Facts) -> list[ActionSpec]:
    """The actions offered on the device's card."""
    return [s for s in specs_for(f.device.platform) if refusal(s, f) is None]


def unavailable(f: Facts) -> list[tuple[ActionSpec, str]]:
    """The actions not offered, each with why (for `/device help <device>`)."""
    out = []
    for spec in specs_for(f.device.platform):
        reason = refusal(spec, f)
        if reason:
            out.append((spec, reason))
    return out
