"""What an action does to *this* device: the fields and flags that apply there, the
consequence in words, values preset from the device, and parameters refused on it.

The functions here are an ActionSpec's `Fit` (see the table in bot/catalog.py): the
Android wipe (a factory reset or only the work profile) and the eSIM activation state.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bot.blocks import esc
from bot.catalog.params import WIPE_FLAG_TEXT, flag_hint
from bot.catalog.specs import FieldSpec, Fit
from bot.errors import ValidationError

if TYPE_CHECKING:
    from bot.devices import Device

#: Android 15: eSIMs can be managed (ADD_ESIM / REMOVE_ESIM) from this API level on
ESIM_API = 35
#: Android 16: a personal work profile's managed eSIMs go with it, flag or not (WIPE_ESIMS)
ESIM_ALWAYS_WIPED_API = 36


def personal_work_profile(device: Device) -> bool:
    """A personally owned device with a work profile: WIPE removes only the work profile."""
    return device.management_mode == "PROFILE_OWNER" and device.ownership == "PERSONALLY_OWNED"


def _has_esim(device: Device) -> bool:
    hardware = device.raw.get("hardwareInfo") or {}
    return bool(hardware.get("euiccChipInfo")) and int(device.api_level or 0) >= ESIM_API


def wipe_flags_for(device: Device) -> tuple[str, ...]:
    """The wipe flags that change anything on this device.

    A personal work profile is deleted, not factory-reset: factory-reset protection and
    external storage are not touched (Android lets only a device owner set either), so
    only WIPE_ESIMS may apply there. WIPE_ESIMS needs an eSIM chip on Android 15 or later
    (eSIMs are managed from Android 15) and is moot on a personal Android 16+ device, where
    managed eSIMs always go with the work profile (the flag's description).
    """
    flags: list[str] = []
    personal = personal_work_profile(device)
    if not personal:
        flags += ["PRESERVE_RESET_PROTECTION_DATA", "WIPE_EXTERNAL_STORAGE"]
    if _has_esim(device) and not (personal and int(device.api_level or 0) >= ESIM_ALWAYS_WIPED_API):
        flags.append("WIPE_ESIMS")
    return tuple(flags)


def wipe_fields(fields: tuple[FieldSpec, ...], device: Device) -> tuple[FieldSpec, ...]:
    """The wipe's inputs on `device`: only the flags and fields that apply there."""
    flags = wipe_flags_for(device)
    out: list[FieldSpec] = []
    for f in fields:
        if f.name == "flags":
            if not flags:
                continue
            f = replace(f, options=flags, hint=flag_hint({k: WIPE_FLAG_TEXT[k] for k in flags}))
        elif f.name == "wipe_reason":
            if not personal_work_profile(device):
                continue  # "This has no effect on company owned devices" (WipeParams)
            f = replace(f, hint="Shown to the person before their work profile is removed.")
        out.append(f)
    return tuple(out)


def wipe_consequence(device: Device) -> str | None:
    """What a wipe does to this very device, in words (mrkdwn)."""
    if personal_work_profile(device):
        text = (
            "*What happens to this phone:* it is personally owned, so only its *work profile"
            " is removed*: work apps and their data are deleted; the person's own apps,"
            " photos and accounts stay."
        )
        if _has_esim(device) and int(device.api_level or 0) >= ESIM_ALWAYS_WIPED_API:
            text += " Managed eSIMs always go with the work profile on Android 16 and later."
    else:
        text = (
            "*What happens to this phone:* it is company-owned, so it gets a *full factory"
            " reset*: everything on it is erased, and it leaves management."
        )
    return (
        text + " The wipe happens when the device acknowledges the command; until then it"
        " can be cancelled."
    )


def wipe_check(params: dict[str, Any], ownership: str | None, device: Device | None) -> None:
    """Refuse wipe flags and a reason that do nothing on this device (naming the field)."""
    if device is None:
        return
    allowed = wipe_flags_for(device)
    extra = [f for f in params.get("flags") or () if f not in allowed]
    if extra:
        raise ValidationError(
            f"{esc(', '.join(extra))} does not apply to this device; leave it unticked.",
            field="flags",
        )
    if params.get("wipe_reason") and not personal_work_profile(device):
        raise ValidationError(
            "A reason shown to the user has no effect on a company-owned device; leave it empty.",
            field="wipe_reason",
        )


def esim_activation_default(ownership: str | None) -> str:
    """Google's default: ACTIVATED on company-owned devices, NOT_ACTIVATED on personally-owned ones."""
    return "NOT_ACTIVATED" if ownership == "PERSONALLY_OWNED" else "ACTIVATED"


def esim_check(params: dict[str, Any], ownership: str | None, device: Device | None) -> None:
    """Google refuses an activated eSIM on a personally owned device."""
    if ownership == "PERSONALLY_OWNED" and params.get("activation_state") == "ACTIVATED":
        raise ValidationError(
            "This device is personally owned: Google refuses Activated there. Choose Not activated;"
            " the person then activates the eSIM on the device.",
            field="activation_state",
        )


WIPE = Fit(fields=wipe_fields, consequence=wipe_consequence, check=wipe_check)
ADD_ESIM = Fit(
    initial=lambda ownership: {"activation_state": esim_activation_default(ownership)},
    check=esim_check,
)
