"""Consequences before a destructive click, end to end.

The wipe modal says what happens to *this* phone (company-owned: factory reset; personal
work profile: only the work profile goes), offers only the flags that apply there, and
asks for a reason shown to the user only where Google shows one; reset-password flags
and deprovision reasons are explained in the reference's words.
"""

from __future__ import annotations

from typing import Any

from conftest import OPERATOR, Bot, Claims, flatten

from bot.catalog import params
from tests.test_actions import inputs, request_rows, run, serial


def _esim(d: dict[str, Any]) -> bool:
    return bool(d["hardwareInfo"].get("euiccChipInfo")) and d["apiLevel"] >= 35


def flag_options(view: dict[str, Any]) -> list[str]:
    for block in view["blocks"]:
        if block["type"] == "input" and block["block_id"] == "flags":
            return [o["value"] for o in block["element"]["options"]]
    return []


def test_wipe_on_a_personal_work_profile_removes_only_the_profile(bot: Bot, claims: Claims) -> None:
    phone = claims.android(
        lambda d: (
            d["ownership"] == "PERSONALLY_OWNED"
            and d["managementMode"] == "PROFILE_OWNER"
            and not _esim(d)
        )
    )
    view = run(bot, f"wipe {serial(phone)}")
    text = flatten(view)
    assert "only its *work profile is removed*" in text
    assert "factory reset" not in text
    assert "wipe_reason" in inputs(view)  # Google shows it before removing the profile
    assert flag_options(view) == []  # no eSIM; reset protection and SD card are not touched
    assert "flags" not in inputs(view)


def test_wipe_on_a_company_phone_is_a_factory_reset_with_its_flags(
    bot: Bot, claims: Claims
) -> None:
    phone = claims.android(
        lambda d: (
            d["ownership"] == "COMPANY_OWNED"
            and d["managementMode"] == "DEVICE_OWNER"
            and not _esim(d)
        )
    )
    view = run(bot, f"wipe {serial(phone)}")
    text = flatten(view)
    assert "*full factory reset*" in text
    assert "wipe_reason" not in inputs(view)  # "no effect on company owned devices"
    assert flag_options(view) == ["PRESERVE_RESET_PROTECTION_DATA", "WIPE_EXTERNAL_STORAGE"]
    assert params.WIPE_FLAG_TEXT["WIPE_EXTERNAL_STORAGE"] in text
    # a flag the modal did not offer is refused next to the flags, and nothing is asked
    forged = {
        "type": "checkboxes",
        "selected_options": [
            {"text": {"type": "plain_text", "text": "Wipe esims"}, "value": "WIPE_ESIMS"}
        ],
    }
    reply = bot.emu.submit_view(
        OPERATOR, view["id"], {"flags": {"flags": forged}, "reason": "INC-1"}
    )
    assert reply.json is not None and reply.json["response_action"] == "errors"
    assert "WIPE_ESIMS does not apply" in reply.json["errors"]["flags"]
    assert request_rows(bot, "wipe") == []


def test_wipe_esims_is_offered_only_where_esims_can_be(bot: Bot, claims: Claims) -> None:
    phone = claims.android(
        lambda d: (
            d["ownership"] == "COMPANY_OWNED" and d["managementMode"] == "DEVICE_OWNER" and _esim(d)
        )
    )
    view = run(bot, f"wipe {serial(phone)}")
    assert "WIPE_ESIMS" in flag_options(view)
    assert "removes all eSIMs from the device" in flatten(view)


def test_reset_password_flags_and_deprovision_reasons_are_explained(
    bot: Bot, claims: Claims
) -> None:
    view = run(bot, f"reset-password {serial(claims.fitting('reset-password', 'android'))}")
    text = flatten(view)
    for words in params.RESET_PASSWORD_FLAG_TEXT.values():
        assert words in text
    bot.emu.close_view(OPERATOR)
    view = run(bot, f"deprovision {serial(claims.chrome())}")
    text = flatten(view)
    for words in params.DEPROVISION_REASON_TEXT.values():
        assert words in text
