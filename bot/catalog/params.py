"""The values of particular action fields: Google's choices with their words, and the
checks of what people type (passwords, package names, lost-mode contacts, eSIM codes).
"""

from __future__ import annotations

import re
from typing import Any

from bot.blocks import esc
from bot.catalog.specs import FieldSpec
from bot.errors import ValidationError
from bot.google import discovery
from bot.google.chrome import DEPROVISION_REASON_TEXT

DISABLE_REASONS = ("lost_or_stolen", "other")
SET_PASSWORD, CLEAR_PASSWORD = "SET_A_NEW_PASSWORD", "CLEAR_THE_PASSWORD"
PASSWORD_CHOICES = (SET_PASSWORD, CLEAR_PASSWORD)
#: ResetPasswordFlag and WipeDataFlag, each with the description of androidmanagement v1's
#: discovery document (the reference's words)
RESET_PASSWORD_FLAG_TEXT = discovery.described(discovery.AMAPI, "Command.resetPasswordFlags")
RESET_PASSWORD_FLAGS = tuple(RESET_PASSWORD_FLAG_TEXT)
WIPE_FLAG_TEXT = discovery.described(discovery.AMAPI, "WipeParams.wipeDataFlags")
WIPE_FLAGS = tuple(WIPE_FLAG_TEXT)
ESIM_ACTIVATION_STATES = discovery.enum(discovery.AMAPI, "AddEsimParams.activationState")

#: the free-text reason a request gives (kept with the request, shown to the approver)
REASON = FieldSpec(
    "reason", "Reason", "multiline", max_length=500, placeholder="Ticket, what happened"
)

_PACKAGE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$")
_ICCID = re.compile(r"^[0-9]{18,22}$")
_PHONE = re.compile(r"^\+?[0-9 ()./-]{5,30}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_reset_password(params: dict[str, Any]) -> dict[str, Any]:
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


def check_clear_app_data(params: dict[str, Any]) -> dict[str, Any]:
    names = [n for n in re.split(r"[\s,]+", params.get("packages", "")) if n]
    bad = [n for n in names if not _PACKAGE.match(n)]
    if not names or bad:
        raise ValidationError(
            f"`{esc(bad[0]) if bad else ''}` is not a package name like com.example.app.",
            field="packages",
        )
    params["packages"] = list(dict.fromkeys(names))
    return params


def check_lost_mode(params: dict[str, Any]) -> dict[str, Any]:
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


def check_iccid(params: dict[str, Any]) -> dict[str, Any]:
    iccid = re.sub(r"\s", "", params.get("iccid", ""))
    if not _ICCID.match(iccid):
        raise ValidationError("An ICC ID has 18 to 22 digits.", field="iccid")
    params["iccid"] = iccid
    return params


def check_volume(params: dict[str, Any]) -> dict[str, Any]:
    raw = str(params.get("volume", ""))
    # ASCII digits only: "²".isdigit() is true and int("²") raises
    if not (raw.isascii() and raw.isdigit()) or not 0 <= int(raw) <= 100:
        raise ValidationError("Volume is a whole number from 0 to 100.", field="volume")
    params["volume"] = int(raw)
    return params


def check_esim(params: dict[str, Any]) -> dict[str, Any]:
    code = params.get("activation_code", "")
    if not re.match(r"^[\x21-\x7e]{10,255}$", code):
        raise ValidationError(
            "An activation code is 10 to 255 printable characters without spaces (e.g. LPA:1$…).",
            field="activation_code",
        )
    return params


def user_facing(text: str) -> dict[str, Any]:
    return {"defaultMessage": text}


def lost_body(p: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, api in (
        ("message", "lostMessage"),
        ("phone", "lostPhoneNumber"),
        ("address", "lostStreetAddress"),
        ("organization", "lostOrganization"),
    ):
        if p.get(key):
            params[api] = user_facing(p[key])
    if p.get("email"):
        params["lostEmailAddress"] = p["email"]  # a plain string, not a UserFacingMessage
    return {"startLostModeParams": params}


def deprovision_hint() -> str:
    """Each deprovision reason with Google's description, named as its option reads."""
    return "\n".join(
        f"{reason.replace('_', ' ').capitalize()}: {text}"
        for reason, text in DEPROVISION_REASON_TEXT.items()
    )


def flag_hint(texts: dict[str, str]) -> str:
    """Each flag with what Google says it does, named as its checkbox reads."""
    return "\n".join(
        f"{flag.replace('_', ' ').capitalize()}: {text}" for flag, text in texts.items()
    )
