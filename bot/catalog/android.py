"""The Android actions: Android Management API commands, one ActionSpec each."""

from __future__ import annotations

from typing import Any

from bot.catalog import fitting, rules, statuses
from bot.catalog.params import (
    ESIM_ACTIVATION_STATES,
    PASSWORD_CHOICES,
    REASON,
    RESET_PASSWORD_FLAG_TEXT,
    RESET_PASSWORD_FLAGS,
    SET_PASSWORD,
    WIPE_FLAGS,
    check_clear_app_data,
    check_esim,
    check_iccid,
    check_lost_mode,
    check_reset_password,
    flag_hint,
    lost_body,
    user_facing,
)
from bot.catalog.specs import ActionSpec, FieldSpec, LostCase

#: Android commands are legal in these device states
_ANDROID_STATES = ("ACTIVE", "DISABLED", "LOST")


def _android(name: str, google: str, label: str, summary: str, **kw: Any) -> ActionSpec:
    return ActionSpec(
        name=name,
        platform="android",
        kind="android_command",
        google=google,
        label=label,
        summary=summary,
        example=kw.pop("example", f"/device {name} R58N123ABC"),
        states=kw.pop("states", _ANDROID_STATES),
        **kw,
    )


def _wipe_words(params: dict[str, Any], device: dict[str, Any]) -> str | None:
    if device.get("ownership") == "PERSONALLY_OWNED":
        return "Work profile removed from {target}; the person's own apps and data stay."
    return None


def _password_words(params: dict[str, Any], device: dict[str, Any]) -> str | None:
    words = "New password set on {target}."
    if params.get("clear_password"):
        words = "The password of {target} is cleared."
    if "LOCK_NOW" in (params.get("flags") or ()):
        words += " The device is locked."
    return words


def _lost_words(params: dict[str, Any], device: dict[str, Any]) -> str | None:
    if not params.get("message"):
        return "{target} is locked in lost mode; the screen shows how to reach you."
    return None


ANDROID: tuple[ActionSpec, ...] = (
    _android(
        "lock",
        "LOCK",
        "Lock",
        "Lock an Android device now",
        bulk=True,
        done="{target} is locked.",
        past="locked",
        rules=(),
    ),
    _android(
        "reset-password",
        "RESET_PASSWORD",
        "Reset password",
        "Set a new device password (never stored or shown in plaintext)",
        destructive=True,
        approval=True,
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
            REASON,
        ),
        validate=check_reset_password,
        build=lambda p: {
            # an empty newPassword clears the device's password (RESET_PASSWORD)
            **({"newPassword": ""} if p.get("clear_password") else {}),
            **({"newPassword": p["new_password"]} if p.get("new_password") else {}),
            **({"resetPasswordFlags": list(p["flags"])} if p.get("flags") else {}),
        },
        rules=(rules.work_profile_api(24, "Reset password"),),
        done="New password set on {target}.",
        done_as=_password_words,
        asks="reset its password",
        past="password reset",
    ),
    _android(
        "relinquish",
        "RELINQUISH_OWNERSHIP",
        "Relinquish",
        "Relinquish a company-owned work-profile device to its user (wipes the work profile)",
        destructive=True,
        approval=True,
        fields=(REASON,),
        rules=(rules.company_work_profile_only("Relinquish"), rules.min_api(26, "Relinquish")),
        done="{target} is relinquished: its work profile is removed and the phone is now the"
        " person's own.",
        past="relinquished",
    ),
    _android(
        "clear-app-data",
        "CLEAR_APP_DATA",
        "Clear app data",
        "Clear the data of apps on an Android device",
        destructive=True,
        approval=True,
        fields=(
            FieldSpec(
                "packages",
                "Package names",
                "multiline",
                placeholder="com.example.app, com.example.other",
            ),
            REASON,
        ),
        validate=check_clear_app_data,
        build=lambda p: {"clearAppsDataParams": {"packageNames": list(p["packages"])}},
        rules=(rules.min_api(28, "Clear app data"),),
        status=statuses.CLEAR_APPS_DATA,
        done="App data cleared on {target}:",
        asks="clear app data",
        past="app data cleared",
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
        rules=(
            rules.not_reported_lost,
            rules.company_owned_only("Lost mode"),
            rules.min_api(30, "Lost mode"),
        ),
        status=statuses.LOST_START,
        lost=LostCase(opens=True),
        done="{target} is locked in lost mode; the screen shows your message.",
        done_as=_lost_words,
        asks="put it in lost mode",
        past="in lost mode",
    ),
    _android(
        "found",
        "STOP_LOST_MODE",
        "Found",
        "Take an Android device out of lost mode",
        rules=(rules.reported_lost, rules.company_owned_only("Found"), rules.min_api(30, "Found")),
        status=statuses.LOST_STOP,
        lost=LostCase(opens=False, closes="lost mode stopped"),
        done="{target} is out of lost mode.",
        asks="mark it found",
        past="marked found",
    ),
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
        rules=(rules.min_api(35, "Add eSIM"),),
        fit=fitting.ADD_ESIM,
        status=statuses.ESIM,
        done="eSIM added to {target}.",
        asks="add an eSIM",
        past="eSIM added",
    ),
    _android(
        "remove-esim",
        "REMOVE_ESIM",
        "Remove eSIM",
        "Remove an eSIM profile from an Android device",
        destructive=True,
        approval=True,
        fields=(FieldSpec("iccid", "ICC ID", placeholder="89012345678901234567"), REASON),
        validate=check_iccid,
        build=lambda p: {"removeEsimParams": {"iccId": p["iccid"]}},
        rules=(rules.min_api(35, "Remove eSIM"),),
        status=statuses.ESIM,
        done="eSIM removed from {target}.",
        asks="remove an eSIM",
        past="eSIM removed",
    ),
    _android(
        "device-info",
        "REQUEST_DEVICE_INFO",
        "Device info",
        "Ask an Android device for its eSIM EID",
        build=lambda p: {"requestDeviceInfoParams": {"deviceInfo": "EID"}},
        rules=(
            rules.personal_work_profile_only("Device info"),
            rules.min_api(33, "Device info"),
        ),
        status=statuses.DEVICE_INFO,
        done="{target} shared its eSIM identifier.",
        asks="ask for its device info",
        past="device info shared",
    ),
    _android(
        "wipe",
        "WIPE",
        "Wipe",
        "Factory-reset an Android device (company-owned) or remove its work profile",
        destructive=True,
        approval=True,
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
            REASON,
        ),
        build=lambda p: {
            "wipeParams": {
                **({"wipeDataFlags": list(p["flags"])} if p.get("flags") else {}),
                **({"wipeReason": user_facing(p["wipe_reason"])} if p.get("wipe_reason") else {}),
            }
        },
        fit=fitting.WIPE,
        done="Phone wiped and removed from management.",
        done_as=_wipe_words,
        past="wiped",
        rules=(),
    ),
    _android(
        "reboot",
        "REBOOT",
        "Reboot",
        "Reboot an Android device (fully managed, Android 7+)",
        bulk=True,
        rules=(rules.fully_managed_only("Reboot"), rules.min_api(24, "Reboot")),
        done="{target} restarted.",
        past="rebooted",
    ),
)
