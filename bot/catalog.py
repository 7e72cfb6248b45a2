"""Every action the bot can take on a device: what it is called, what it asks, what it sends.

One ActionSpec per `/device` action sub-command. The modals, the device-card buttons,
`/device help`, the approval message and the execution all read from this table, so an
action is described exactly once.
"""

from __future__ import annotations

import json
from typing import Any

from bot.errors import ValidationError
from bot.fitting import check_device, consequence, device_initial, fields_for
from bot.params import (
    DEPROVISION_REASON_TEXT,
    DEPROVISION_REASONS,
    DISABLE_REASONS,
    ESIM_ACTIVATION_STATES,
    PASSWORD_CHOICES,
    RESET_PASSWORD_FLAG_TEXT,
    RESET_PASSWORD_FLAGS,
    SET_PASSWORD,
    WIPE_FLAG_TEXT,
    WIPE_FLAGS,
    check_clear_app_data,
    check_esim,
    check_iccid,
    check_lost_mode,
    check_reset_password,
    check_volume,
    deprovision_hint,
    flag_hint,
    lost_body,
    user_facing,
)
from bot.specs import ActionSpec, FieldSpec, option_label, validate_ou

__all__ = [
    "ACTIONS",
    "ActionSpec",
    "FieldSpec",
    "option_label",
    "validate_ou",
    "check_device",
    "consequence",
    "device_initial",
    "fields_for",
    "DEPROVISION_REASON_TEXT",
    "DEPROVISION_REASONS",
    "RESET_PASSWORD_FLAG_TEXT",
    "RESET_PASSWORD_FLAGS",
    "WIPE_FLAG_TEXT",
    "WIPE_FLAGS",
    "ESIM_ACTIVATION_STATES",
    "ValidationError",
]

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
                    hint=deprovision_hint(),
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
            validate=check_volume,
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
                    hint=flag_hint(RESET_PASSWORD_FLAG_TEXT),
                ),
                _REASON,
            ),
            validate=check_reset_password,
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
            validate=check_clear_app_data,
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
            validate=check_lost_mode,
            build=lost_body,
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
            validate=check_esim,
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
            validate=check_iccid,
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
                        {"wipeReason": user_facing(p["wipe_reason"])}
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
