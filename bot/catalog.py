"""Every action the bot can take on a device: what it is called, what it asks, what it sends.

One ActionSpec per `/device` action sub-command. The modals, the device-card buttons,
`/device help`, the approval message and the execution all read from this table, so an
action is described exactly once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from bot.blocks import esc
from bot.errors import ValidationError

if TYPE_CHECKING:
    from bot.devices import Device

Kind = Literal["status", "chrome_command", "android_command", "patch", "move", "lost_case"]
FieldKind = Literal[
    "text", "multiline", "select", "checkboxes", "radio", "password", "number", "org_unit"
]

#: the Directory API's deprovision reasons with the reference's description of each
DEPROVISION_REASON_TEXT = {
    "different_model_replacement": "Use if you're upgrading or replacing your device with a newer"
    " model of the same device.",
    "retiring_device": "Use if you're reselling, donating, or permanently removing the device"
    " from use.",
    "same_model_replacement": "Use if a hardware issue was encountered on a device and it is being"
    " replaced with the same model or a like-model replacement from a repair vendor / manufacturer.",
    "upgrade_transfer": "Use if you're replacing your Cloud Ready devices with Chromebooks within"
    " one year.",
}
DEPROVISION_REASONS = tuple(DEPROVISION_REASON_TEXT)
DISABLE_REASONS = ("lost_or_stolen", "other")
SET_PASSWORD, CLEAR_PASSWORD = "SET_A_NEW_PASSWORD", "CLEAR_THE_PASSWORD"
PASSWORD_CHOICES = (SET_PASSWORD, CLEAR_PASSWORD)
#: ResetPasswordFlag, each with the reference's words (amapi-devices-issueCommand)
RESET_PASSWORD_FLAG_TEXT = {
    "REQUIRE_ENTRY": "Don't allow other admins to change the password again until the user has"
    " entered it.",
    "DO_NOT_ASK_CREDENTIALS_ON_BOOT": "Don't ask for user credentials on device boot.",
    "LOCK_NOW": "Lock the device after password reset.",
}
RESET_PASSWORD_FLAGS = tuple(RESET_PASSWORD_FLAG_TEXT)
#: WipeDataFlag, each with the enum description of androidmanagement v1's discovery document
WIPE_FLAG_TEXT = {
    "PRESERVE_RESET_PROTECTION_DATA": "Preserve the factory reset protection data on the device.",
    "WIPE_EXTERNAL_STORAGE": "Additionally wipe the device's external storage (such as SD cards).",
    "WIPE_ESIMS": "For company-owned devices, this removes all eSIMs from the device when the"
    " device is wiped. In personally-owned devices, this will remove managed eSIMs (eSIMs which"
    " are added via the ADD_ESIM command) on the devices and no personally owned eSIMs will be"
    " removed.",
}
WIPE_FLAGS = tuple(WIPE_FLAG_TEXT)
ESIM_ACTIVATION_STATES = ("ACTIVATED", "NOT_ACTIVATED")

_PACKAGE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$")
_ICCID = re.compile(r"^[0-9]{18,22}$")
_PHONE = re.compile(r"^\+?[0-9 ()./-]{5,30}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_OU = re.compile(r"^/[^\n]{0,500}$")


@dataclass(frozen=True)
class FieldSpec:
    """One input of an action's modal."""

    name: str
    label: str
    kind: FieldKind = "text"
    optional: bool = False
    options: tuple[str, ...] = ()
    hint: str | None = None
    placeholder: str | None = None
    max_length: int | None = None
    secret: bool = False
    initial: str | None = None


@dataclass(frozen=True)
class ActionSpec:
    """An action on a device."""

    name: str  # the /device sub-command
    platform: Literal["chrome", "android"]
    kind: Kind
    google: str  # Directory status action, Chrome commandType or Android Command type
    label: str
    summary: str
    example: str
    fields: tuple[FieldSpec, ...] = ()
    states: tuple[str, ...] = ()  # device states in which the action is legal (empty: any)
    destructive: bool = False
    #: offered by `/device bulk` (a list or CSV, one approval for the batch)
    bulk: bool = False
    #: devices one plain approval of a bulk run covers (BULK_CAPS overrides); None: no cap
    bulk_cap: int | None = None
    validate: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: builds the body Google wants from validated params (command body or status params)
    build: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda p: {})

    @property
    def usage(self) -> str:
        return f"/device {self.name} <device>"

    def parse(self, values: dict[str, Any]) -> dict[str, Any]:
        """Check the modal's values; raises ValidationError(field=...) naming the field."""
        params: dict[str, Any] = {}
        for spec in self.fields:
            value = values.get(spec.name)
            if isinstance(value, str):
                value = value.strip()
            if value in (None, "", []):
                if not spec.optional:
                    raise ValidationError(f"{spec.label} is required.", field=spec.name)
                continue
            if spec.max_length and isinstance(value, str) and len(value) > spec.max_length:
                raise ValidationError(
                    f"{spec.label} must be at most {spec.max_length} characters ({len(value)} given).",
                    field=spec.name,
                )
            if spec.kind in ("select", "radio") and value not in spec.options:
                raise ValidationError(
                    f"Choose one of the listed {spec.label.lower()} values.", field=spec.name
                )
            if spec.kind == "checkboxes":
                value = [v for v in value if v in spec.options]
            params[spec.name] = value
        return self.validate(params) if self.validate else params

    def secret_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.secret)


# ---- validators -------------------------------------------------------------------------


def _reset_password(params: dict[str, Any]) -> dict[str, Any]:
    password = params.get("new_password", "")
    if params.pop("password_choice", SET_PASSWORD) == CLEAR_PASSWORD:
        if password:
            raise ValidationError(
                "You chose to clear the password: leave the new password empty.",
                field="new_password",
            )
        params["clear_password"] = True  # a parameter, not a secret: the approver sees it
        return params
    if not password:
        raise ValidationError(
            "Type the new password, or choose “Clear the password”.", field="new_password"
        )
    if password and len(password) < 4:
        raise ValidationError(
            "The new password must have at least 4 characters.", field="new_password"
        )
    if password.isdigit() and len(password) < 6:
        raise ValidationError(
            "A numeric PIN needs at least 6 digits (Android 14 and later refuse shorter ones).",
            field="new_password",
        )
    if len(password) > 64:
        raise ValidationError(
            "The new password must be at most 64 characters.", field="new_password"
        )
    return params


def _clear_app_data(params: dict[str, Any]) -> dict[str, Any]:
    names = [n for n in re.split(r"[\s,]+", params.get("packages", "")) if n]
    bad = [n for n in names if not _PACKAGE.match(n)]
    if not names or bad:
        raise ValidationError(
            f"`{esc(bad[0]) if bad else ''}` is not a package name like com.example.app.",
            field="packages",
        )
    params["packages"] = list(dict.fromkeys(names))
    return params


def _lost_mode(params: dict[str, Any]) -> dict[str, Any]:
    # the reference: at least one of these, "not including the organization name"
    if not any(params.get(c) for c in ("message", "phone", "email", "address")):
        raise ValidationError(
            "Give at least one of: a message, a phone number, an email address or a street address"
            " (the organization alone is not enough).",
            field="message",
        )
    if params.get("phone") and not _PHONE.match(params["phone"]):
        raise ValidationError("That is not a phone number.", field="phone")
    if params.get("email") and not _EMAIL.match(params["email"]):
        raise ValidationError("That is not an email address.", field="email")
    return params


def _iccid(params: dict[str, Any]) -> dict[str, Any]:
    iccid = re.sub(r"\s", "", params.get("iccid", ""))
    if not _ICCID.match(iccid):
        raise ValidationError("An ICC ID has 18 to 22 digits.", field="iccid")
    params["iccid"] = iccid
    return params


def _volume(params: dict[str, Any]) -> dict[str, Any]:
    raw = str(params.get("volume", ""))
    # ASCII digits only: "²".isdigit() is true and int("²") raises
    if not (raw.isascii() and raw.isdigit()) or not 0 <= int(raw) <= 100:
        raise ValidationError("Volume is a whole number from 0 to 100.", field="volume")
    params["volume"] = int(raw)
    return params


def _esim(params: dict[str, Any]) -> dict[str, Any]:
    code = params.get("activation_code", "")
    if not re.match(r"^[\x21-\x7e]{10,255}$", code):
        raise ValidationError(
            "An activation code is 10 to 255 printable characters without spaces (e.g. LPA:1$…).",
            field="activation_code",
        )
    return params


def validate_ou(path: str) -> str:
    """An organisational unit path such as /Sales/EMEA."""
    path = path.strip()
    if not _OU.match(path) or "//" in path:
        raise ValidationError(
            f"`{esc(path)}` is not an organisational unit path like /Sales/EMEA.", field="ou"
        )
    return path.rstrip("/") or "/"


def option_label(value: str) -> str:
    """How an option value reads in a modal and on an approval card: `lost_or_stolen` → `Lost or stolen`."""
    return value.replace("_", " ").capitalize()


def _user_facing(text: str) -> dict[str, Any]:
    return {"defaultMessage": text}


def _lost_body(p: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, api in (
        ("message", "lostMessage"),
        ("phone", "lostPhoneNumber"),
        ("address", "lostStreetAddress"),
        ("organization", "lostOrganization"),
    ):
        if p.get(key):
            params[api] = _user_facing(p[key])
    if p.get("email"):
        params["lostEmailAddress"] = p["email"]  # a plain string, not a UserFacingMessage
    return {"startLostModeParams": params}


def _deprovision_hint() -> str:
    """Each deprovision reason with Google's description, named as its option reads."""
    return "\n".join(
        f"{reason.replace('_', ' ').capitalize()}: {text}"
        for reason, text in DEPROVISION_REASON_TEXT.items()
    )


def _flag_hint(texts: dict[str, str]) -> str:
    """Each flag with what Google says it does, named as its checkbox reads."""
    return "\n".join(
        f"{flag.replace('_', ' ').capitalize()}: {text}" for flag, text in texts.items()
    )


_REASON = FieldSpec(
    "reason", "Reason", "multiline", max_length=500, placeholder="Ticket, what happened"
)


def _chrome_status(
    name: str, google: str, label: str, summary: str, states: tuple[str, ...], **kw: Any
) -> ActionSpec:
    return ActionSpec(
        name=name,
        platform="chrome",
        kind="status",
        google=google,
        label=label,
        summary=summary,
        example=f"/device {name} 5CD1234XYZ",
        states=states,
        **kw,
    )


def _chrome_command(name: str, google: str, label: str, summary: str, **kw: Any) -> ActionSpec:
    return ActionSpec(
        name=name,
        platform="chrome",
        kind="chrome_command",
        google=google,
        label=label,
        summary=summary,
        example=kw.pop("example", f"/device {name} 5CD1234XYZ"),
        states=("ACTIVE",),
        **kw,
    )


def _android(name: str, google: str, label: str, summary: str, **kw: Any) -> ActionSpec:
    return ActionSpec(
        name=name,
        platform="android",
        kind="android_command",
        google=google,
        label=label,
        summary=summary,
        example=kw.pop("example", f"/device {name} R58N123ABC"),
        states=kw.pop("states", ("ACTIVE", "DISABLED", "LOST")),
        **kw,
    )


ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        _chrome_status(
            "disable",
            "DISABLE",
            "Disable",
            "Disable a Chrome device (lost, stolen, left the company)",
            ("ACTIVE",),
            destructive=True,
            bulk=True,
            fields=(
                FieldSpec(
                    "why",
                    "Why",
                    "radio",
                    options=DISABLE_REASONS,
                    initial="other",
                    hint="“lost_or_stolen” also announces the device in the lost-devices channel.",
                ),
                _REASON,
            ),
        ),
        _chrome_status(
            "reenable",
            "REENABLE",
            "Re-enable",
            "Re-enable a disabled Chrome device",
            ("DISABLED",),
            bulk=True,
            fields=(_REASON,),
        ),
        _chrome_status(
            "deprovision",
            "DEPROVISION",
            "Deprovision",
            "Deprovision a Chrome device (frees its license; it must be re-enrolled)",
            ("ACTIVE", "DISABLED"),
            destructive=True,
            bulk=True,
            bulk_cap=1,
            fields=(
                FieldSpec(
                    "deprovision_reason",
                    "Deprovision reason",
                    "radio",
                    options=DEPROVISION_REASONS,
                    hint=_deprovision_hint(),
                ),
                _REASON,
            ),
            build=lambda p: {"deprovisionReason": p["deprovision_reason"]},
        ),
        _chrome_command(
            "reboot",
            "REBOOT",
            "Reboot",
            "Reboot a Chrome device (kiosk and managed guest sessions)",
        ),
        _chrome_command(
            "powerwash",
            "REMOTE_POWERWASH",
            "Powerwash",
            "Factory-reset a Chrome device remotely",
            destructive=True,
            fields=(_REASON,),
        ),
        _chrome_command(
            "wipe-users",
            "WIPE_USERS",
            "Wipe users",
            "Remove all user profiles from a Chrome device",
            destructive=True,
            fields=(_REASON,),
        ),
        _chrome_command(
            "screenshot",
            "TAKE_A_SCREENSHOT",
            "Screenshot",
            "Take a screenshot (kiosk sessions only)",
        ),
        _chrome_command(
            "volume",
            "SET_VOLUME",
            "Set volume",
            "Set the volume of a Chrome device, 0–100",
            example="/device volume 40 5CD1234XYZ",
            fields=(FieldSpec("volume", "Volume (0–100)", "number", placeholder="50"),),
            validate=_volume,
            build=lambda p: {"volume": p["volume"]},
        ),
        _chrome_command(
            "logs", "CAPTURE_LOGS", "Capture logs", "Capture system logs from a Chrome device"
        ),
        _chrome_command(
            "support-packet",
            "FETCH_SUPPORT_PACKET",
            "Support packet",
            "Fetch a support packet from a Chrome device",
        ),
        _android("lock", "LOCK", "Lock", "Lock an Android device now", bulk=True),
        _android(
            "reboot", "REBOOT", "Reboot", "Reboot an Android device (fully managed, Android 7+)"
        ),
        _android(
            "reset-password",
            "RESET_PASSWORD",
            "Reset password",
            "Set a new device password (never stored or shown in plaintext)",
            destructive=True,
            fields=(
                FieldSpec(
                    "password_choice",
                    "Password",
                    "radio",
                    options=PASSWORD_CHOICES,
                    initial=SET_PASSWORD,
                ),
                FieldSpec(
                    "new_password",
                    "New password",
                    "password",
                    optional=True,
                    secret=True,
                    hint="Needed to set one; leave it empty when you clear the password.",
                ),
                FieldSpec(
                    "flags",
                    "Flags",
                    "checkboxes",
                    optional=True,
                    options=RESET_PASSWORD_FLAGS,
                    hint=_flag_hint(RESET_PASSWORD_FLAG_TEXT),
                ),
                _REASON,
            ),
            validate=_reset_password,
            build=lambda p: {
                # an empty newPassword clears the device's password (RESET_PASSWORD)
                **({"newPassword": ""} if p.get("clear_password") else {}),
                **({"newPassword": p["new_password"]} if p.get("new_password") else {}),
                **({"resetPasswordFlags": list(p["flags"])} if p.get("flags") else {}),
            },
        ),
        _android(
            "relinquish",
            "RELINQUISH_OWNERSHIP",
            "Relinquish",
            "Relinquish a company-owned work-profile device to its user (wipes the work profile)",
            destructive=True,
            fields=(_REASON,),
        ),
        _android(
            "clear-app-data",
            "CLEAR_APP_DATA",
            "Clear app data",
            "Clear the data of apps on an Android device",
            destructive=True,
            example="/device clear-app-data R58N123ABC",
            fields=(
                FieldSpec(
                    "packages",
                    "Package names",
                    "multiline",
                    placeholder="com.example.app, com.example.other",
                ),
                _REASON,
            ),
            validate=_clear_app_data,
            build=lambda p: {"clearAppsDataParams": {"packageNames": list(p["packages"])}},
        ),
        _android(
            "lost",
            "START_LOST_MODE",
            "Lost mode",
            "Put an Android device in lost mode and watch for it",
            fields=(
                FieldSpec(
                    "message", "Message on the screen", "multiline", optional=True, max_length=3000
                ),
                FieldSpec("phone", "Phone number", optional=True),
                FieldSpec("email", "Email address", optional=True),
                FieldSpec("address", "Street address", "multiline", optional=True),
                FieldSpec("organization", "Organization", optional=True),
            ),
            validate=_lost_mode,
            build=_lost_body,
        ),
        _android("found", "STOP_LOST_MODE", "Found", "Take an Android device out of lost mode"),
        _android(
            "add-esim",
            "ADD_ESIM",
            "Add eSIM",
            "Download an eSIM profile onto an Android device",
            fields=(
                FieldSpec("activation_code", "Activation code"),
                FieldSpec(
                    "activation_state",
                    "Activation state",
                    "radio",
                    options=ESIM_ACTIVATION_STATES,
                    hint="Preset by ownership, as Google's own default: Activated on company-owned"
                    " devices, Not activated on personally-owned ones (Google refuses Activated there;"
                    " the person activates the eSIM on the device).",
                ),
            ),
            validate=_esim,
            build=lambda p: {
                "addEsimParams": {
                    "activationCode": p["activation_code"],
                    "activationState": p["activation_state"],
                }
            },
        ),
        _android(
            "remove-esim",
            "REMOVE_ESIM",
            "Remove eSIM",
            "Remove an eSIM profile from an Android device",
            destructive=True,
            fields=(FieldSpec("iccid", "ICC ID", placeholder="89012345678901234567"), _REASON),
            validate=_iccid,
            build=lambda p: {"removeEsimParams": {"iccId": p["iccid"]}},
        ),
        _android(
            "device-info",
            "REQUEST_DEVICE_INFO",
            "Device info",
            "Ask an Android device for its eSIM EID",
            build=lambda p: {"requestDeviceInfoParams": {"deviceInfo": "EID"}},
        ),
        _android(
            "wipe",
            "WIPE",
            "Wipe",
            "Factory-reset an Android device (company-owned) or remove its work profile",
            destructive=True,
            bulk=True,
            bulk_cap=1,
            fields=(
                FieldSpec("flags", "Wipe flags", "checkboxes", optional=True, options=WIPE_FLAGS),
                FieldSpec(
                    "wipe_reason",
                    "Reason shown to the user",
                    "multiline",
                    optional=True,
                    max_length=200,
                ),
                _REASON,
            ),
            build=lambda p: {
                "wipeParams": {
                    **({"wipeDataFlags": list(p["flags"])} if p.get("flags") else {}),
                    **(
                        {"wipeReason": _user_facing(p["wipe_reason"])}
                        if p.get("wipe_reason")
                        else {}
                    ),
                }
            },
        ),
    )
    if not (spec.name == "reboot" and spec.platform == "android")
}

ACTIONS["annotate"] = ActionSpec(
    name="annotate",
    platform="chrome",
    kind="patch",
    google="PATCH",
    label="Annotate",
    summary="Change or clear a Chrome device's annotated user, location, asset id and notes",
    example="/device annotate 5CD1234XYZ",
    bulk=True,
    fields=(
        FieldSpec("annotatedUser", "Annotated user", optional=True, max_length=100),
        FieldSpec("annotatedLocation", "Location", optional=True, max_length=200),
        FieldSpec("annotatedAssetId", "Asset id", optional=True, max_length=200),
        FieldSpec("notes", "Notes", "multiline", optional=True, max_length=500),
    ),
    # only the fields that changed ("" clears one): see bot/annotation.py
    build=lambda p: {
        k: p[k]
        for k in ("annotatedUser", "annotatedLocation", "annotatedAssetId", "notes")
        if k in p
    },
)
ACTIONS["move"] = ActionSpec(
    name="move",
    platform="chrome",
    kind="move",
    google="MOVE",
    label="Move",
    summary="Move Chrome devices to an organisational unit (any number, 50 per call)",
    example="/device move /Sales/EMEA 5CD1234XYZ 5CD9876ABC",
    bulk=True,
    fields=(
        FieldSpec(
            "ou",
            "Organisational unit",
            "org_unit",
            placeholder="Type to search, e.g. Sales",
            hint="The organisational units of your Google account.",
        ),
    ),
    validate=lambda p: {**p, "ou": validate_ou(p["ou"])},
    build=lambda p: {"orgUnitPath": p["ou"]},
)

#: `reboot` exists on both platforms: the Android one is looked up by (name, platform)
ANDROID_REBOOT = _android(
    "reboot",
    "REBOOT",
    "Reboot",
    "Reboot an Android device (fully managed, Android 7+)",
    bulk=True,
)


#: `found` on a Chrome device closes its lost case (no Google call; re-enable is separate)
CHROME_FOUND = ActionSpec(
    name="found",
    platform="chrome",
    kind="lost_case",
    google="CLOSE_LOST_CASE",
    label="Found",
    summary="Close a lost Chrome device's case (re-enable it separately)",
    example="/device found 5CD1234XYZ",
)
_SAME_NAME = {("reboot", "android"): ANDROID_REBOOT, ("found", "chrome"): CHROME_FOUND}


# ---- what an action does to *this* device ---------------------------------------------------

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


def fields_for(spec: ActionSpec, device: Device | None) -> tuple[FieldSpec, ...]:
    """The inputs `spec` asks for on `device`: only the flags and fields that apply there."""
    if spec.name != "wipe" or spec.platform != "android" or device is None:
        return spec.fields
    flags = wipe_flags_for(device)
    out: list[FieldSpec] = []
    for f in spec.fields:
        if f.name == "flags":
            if not flags:
                continue
            f = replace(f, options=flags, hint=_flag_hint({k: WIPE_FLAG_TEXT[k] for k in flags}))
        elif f.name == "wipe_reason":
            if not personal_work_profile(device):
                continue  # "This has no effect on company owned devices" (WipeParams)
            f = replace(f, hint="Shown to the person before their work profile is removed.")
        out.append(f)
    return tuple(out)


def consequence(spec: ActionSpec, device: Device) -> str | None:
    """What `spec` does to this very device, in words (mrkdwn), or None if nothing to add."""
    if spec.name == "wipe" and spec.platform == "android":
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
    return None


def device_initial(spec: ActionSpec, ownership: str | None) -> dict[str, Any]:
    """Field values preset from the target device (add-esim: its activation state by ownership)."""
    if spec.name == "add-esim":
        return {"activation_state": esim_activation_default(ownership)}
    return {}


def esim_activation_default(ownership: str | None) -> str:
    """Google's default: ACTIVATED on company-owned devices, NOT_ACTIVATED on personally-owned ones."""
    return "NOT_ACTIVATED" if ownership == "PERSONALLY_OWNED" else "ACTIVATED"


def check_device(
    spec: ActionSpec,
    params: dict[str, Any],
    ownership: str | None,
    device: Device | None = None,
) -> None:
    """Refuse parameters Google rejects, or that do nothing, on this device (naming the field)."""
    if device is not None and spec.name == "wipe" and spec.platform == "android":
        allowed = wipe_flags_for(device)
        extra = [f for f in params.get("flags") or () if f not in allowed]
        if extra:
            raise ValidationError(
                f"{esc(', '.join(extra))} does not apply to this device; leave it unticked.",
                field="flags",
            )
        if params.get("wipe_reason") and not personal_work_profile(device):
            raise ValidationError(
                "A reason shown to the user has no effect on a company-owned device; leave it"
                " empty.",
                field="wipe_reason",
            )
    if (
        spec.name == "add-esim"
        and ownership == "PERSONALLY_OWNED"
        and params.get("activation_state") == "ACTIVATED"
    ):
        raise ValidationError(
            "This device is personally owned: Google refuses Activated there. Choose Not activated;"
            " the person then activates the eSIM on the device.",
            field="activation_state",
        )


def action_for(name: str, platform: str) -> ActionSpec:
    """The spec of `name` on `platform`; ValidationError if that platform lacks it."""
    if (name, platform) in _SAME_NAME:
        return _SAME_NAME[(name, platform)]
    spec = ACTIONS.get(name)
    if spec is None or spec.platform != platform:
        kind = "a Chrome OS" if platform == "chrome" else "an Android"
        raise ValidationError(f"`{name}` is not something {kind} device can do.")
    return spec


def all_specs() -> list[ActionSpec]:
    """Every action on every platform (`reboot` on both, `found` on both)."""
    return [*ACTIONS.values(), *_SAME_NAME.values()]


def command_body(
    spec: ActionSpec, params: dict[str, Any], secrets: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON sent to Google for this action (secrets merged in only here, at the last moment)."""
    merged = {**params, **(secrets or {})}
    body = spec.build(merged)
    if spec.kind == "android_command":
        return {"type": spec.google, **body}
    if spec.kind == "chrome_command":
        return {"commandType": spec.google, **({"payload": json.dumps(body)} if body else {})}
    return body
