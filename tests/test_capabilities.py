"""The capability model: only actions that fit the device are offered, and a typed one that
does not fit is refused before any approval is asked."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from conftest import (
    APPROVALS,
    OPERATOR,
    Bot,
    Claims,
    flatten,
    serial,
)

from bot import capabilities, catalog, ids
from bot.cards.device import device_card
from bot.devices import Device, android_device, chrome_device
from bot.sandbox.android import _rule_error
from bot.sandbox.api import ApiError
from bot.sandbox.chrome_commands import session_refusal
from bot.sandbox.chrome_status import change_status
from bot.sandbox.fleet import AndroidOperation, Fleet
from tests.test_actions import run


def offered(device: Device, **kw: Any) -> set[str]:
    return {s.name for s in capabilities.available(capabilities.facts(device, **kw))}


# ---- the whole sandbox fleet: nothing offered that the sandbox would refuse --------------------


def _android_refusal(fleet: Fleet, d: dict[str, Any], spec: catalog.ActionSpec) -> str | None:
    op = AndroidOperation("op", d["name"], {"type": spec.google}, 0.0, 0.0, 0.0)
    return _rule_error(d, spec.google, op)


def _chrome_refusal(fleet: Fleet, d: dict[str, Any], spec: catalog.ActionSpec) -> str | None:
    if spec.kind == "status":
        try:
            change_status(fleet, copy.deepcopy(d), spec.name, "retiring_device")
        except ApiError as exc:
            return exc.message
        return None
    if spec.kind == "chrome_command":
        if d["status"] != "ACTIVE":
            return "commands only on ACTIVE devices"
        return session_refusal(d, spec.google)
    return None


def test_no_card_offers_an_action_the_sandbox_would_refuse() -> None:
    fleet = Fleet(chrome=600, android=400, seed=23, licenses=10**6)
    checked = 0
    for d in fleet.iter_chrome():
        device = chrome_device(d)
        for spec in capabilities.available(capabilities.facts(device)):
            assert _chrome_refusal(fleet, d, spec) is None, (spec.name, d["deviceId"])
            checked += 1
    for name in fleet.android_order:
        d = fleet.android[name]
        device = android_device(d)
        for spec in capabilities.available(capabilities.facts(device)):
            if spec.kind == "android_command":
                assert _android_refusal(fleet, d, spec) is None, (spec.name, name)
                checked += 1
    assert checked > 3000


def test_what_the_sandbox_refuses_is_never_offered_and_vice_versa() -> None:
    """Each rule of the model matches the sandbox on every device: refused ⇔ not offered."""
    fleet = Fleet(chrome=10, android=400, seed=5)
    for name in fleet.android_order:
        d = fleet.android[name]
        if d["state"] != "ACTIVE":
            continue
        device = android_device(d)
        shown = offered(device)
        for spec in capabilities.specs_for("android"):
            if spec.kind != "android_command" or spec.name in ("lost", "found"):
                continue
            assert (spec.name in shown) == (_android_refusal(fleet, d, spec) is None), (
                spec.name,
                d["managementMode"],
                d["ownership"],
                d["apiLevel"],
            )


# ---- the rules in words ---------------------------------------------------------------------


def phone(mode: str, owner: str, api: int = 34, state: str = "ACTIVE") -> Device:
    return Device(
        platform="android",
        id="enterprises/E/devices/D1",
        serial="R58N1",
        status=state,
        management_mode=mode,
        ownership=owner,
        api_level=api,
    )


def test_android_buttons_follow_management_mode_and_ownership() -> None:
    managed = offered(phone("DEVICE_OWNER", "COMPANY_OWNED"))
    assert {"reboot", "lost", "lock", "wipe"} <= managed
    assert not {"relinquish", "found", "device-info"} & managed

    company_profile = offered(phone("PROFILE_OWNER", "COMPANY_OWNED"))
    assert {"relinquish", "lost"} <= company_profile
    assert "reboot" not in company_profile

    personal = offered(phone("PROFILE_OWNER", "PERSONALLY_OWNED"))
    assert "device-info" in personal
    assert not {"lost", "reboot", "relinquish", "found"} & personal

    old = offered(phone("DEVICE_OWNER", "COMPANY_OWNED", api=29))
    assert not {"lost", "add-esim", "remove-esim"} & old and "clear-app-data" in old

    lost_phone = offered(phone("DEVICE_OWNER", "COMPANY_OWNED", state="LOST"))
    assert "found" in lost_phone and "lost" not in lost_phone


def test_refusals_say_why_in_words() -> None:
    f = capabilities.facts(phone("DEVICE_OWNER", "COMPANY_OWNED"))
    reason = capabilities.refusal(catalog.action_for("relinquish", "android"), f)
    assert (
        reason == "Relinquish applies only to company-owned work profiles; R58N1 is fully managed."
    )
    reason = capabilities.refusal(catalog.action_for("found", "android"), f)
    assert reason and "not reported lost" in reason
    old = capabilities.facts(phone("DEVICE_OWNER", "COMPANY_OWNED", api=29))
    reason = capabilities.refusal(catalog.action_for("lost", "android"), old)
    assert reason == "Lost mode needs Android 11 or later; R58N1 runs API level 29."


def laptop(**raw: Any) -> Device:
    data = {
        "deviceId": "d-1",
        "serialNumber": "5CD1",
        "status": "ACTIVE",
        "osVersion": "130.0.6723.1",
        "orgUnitPath": "/Sales",
        **raw,
    }
    return chrome_device(data)


def test_chrome_kiosk_commands_only_in_kiosk_sessions() -> None:
    user = offered(laptop())
    assert not {"screenshot", "volume", "logs"} & user
    assert {"reboot", "powerwash", "wipe-users", "support-packet", "disable"} <= user
    assert "found" not in user  # no lost case open
    kiosk = offered(laptop(deviceLicenseType="kioskUpgrade"))
    assert {"screenshot", "volume", "logs", "reboot"} <= kiosk
    by_ou = offered(laptop(orgUnitPath="/Lobby/Screens"), kiosk_org_units=("/Lobby",))
    assert "screenshot" in by_ou
    assert "screenshot" not in offered(
        laptop(orgUnitPath="/LobbyStaff"), kiosk_org_units=("/Lobby",)
    )
    old = offered(laptop(osVersion="112.0.5615.1"))
    assert "reboot" not in old
    assert "found" in offered(laptop(), lost_open=True)


def test_card_buttons_are_the_capabilities() -> None:
    device = phone("PROFILE_OWNER", "PERSONALLY_OWNED")
    shown = {
        e["action_id"]
        for b in device_card(device)
        for e in b.get("elements", [])
        if e.get("type") == "button"
    }
    expected = {ids.device_action_id(s) for s in offered(device)}
    assert expected <= shown
    assert ids.device_action_id("relinquish") not in shown
    assert ids.device_action_id("lost") not in shown


# ---- end to end through Slack ----------------------------------------------------------------


def test_card_of_a_personal_phone_offers_only_what_fits(bot: Bot, claims: Claims) -> None:
    device = claims.android(lambda d: d["ownership"] == "PERSONALLY_OWNED")
    bot.slash(f"info {serial(device)}")
    bot.wait_ephemeral(serial(device))
    card = bot.emu.ephemerals(OPERATOR)[-1]
    shown = {
        e["action_id"]
        for b in card.get("blocks", [])
        for e in b.get("elements", [])
        if e.get("type") == "button"
    }
    assert ids.device_action_id("lock") in shown
    for absent in ("relinquish", "lost", "found", "reboot"):
        assert ids.device_action_id(absent) not in shown


@pytest.mark.parametrize(
    ("name", "where", "words"),
    [
        (
            "relinquish",
            lambda d: d["managementMode"] == "DEVICE_OWNER",
            "Relinquish applies only to company-owned work profiles",
        ),
        ("found", lambda d: d["managementMode"] == "DEVICE_OWNER", "not reported lost"),
        (
            "lost",
            lambda d: d["ownership"] == "PERSONALLY_OWNED",
            "Lost mode applies only to company-owned devices",
        ),
    ],
)
def test_typed_inapplicable_command_is_refused_before_approval(
    bot: Bot, claims: Claims, name: str, where: Any, words: str
) -> None:
    device = claims.android(where)
    view = run(bot, f"{name} {serial(device)}")
    assert words in flatten(view)
    assert not view.get("submit")  # nothing to submit: no request can be made
    assert bot.store.db().execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 0
    assert not [m for m in bot.messages_in(APPROVALS)]


def test_kiosk_only_command_on_a_users_laptop_is_refused(bot: Bot, claims: Claims) -> None:
    device = claims.chrome(where=lambda d: d.get("deviceLicenseType") != "kioskUpgrade")
    view = run(bot, f"screenshot {serial(device)}")
    assert "works only in kiosk sessions" in flatten(view) and not view.get("submit")
    assert bot.store.db().execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 0


def test_help_for_a_device_lists_what_fits_and_why_not(bot: Bot, claims: Claims) -> None:
    device = claims.android(lambda d: d["managementMode"] == "DEVICE_OWNER")
    bot.slash(f"help {serial(device)}")
    text = bot.wait_ephemeral("Not for this device")
    assert "Lock" in text and "Relinquish applies only to company-owned work profiles" in text
    assert "needs approval" in text  # wipe needs approval by default
