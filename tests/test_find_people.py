"""Finding a person's devices, end to end over signed HTTP and the sandbox.

An email, bare or as `user:`, finds the devices assigned to that person *and* those they
signed in to last, on both platforms; the card tells the two apart; `info` with an email or
part of a serial offers the matches instead of "no match".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import OPERATOR, Bot, Claims, flatten, wait_until

from bot import ids
from bot.search_query import person_queries
from tests.test_lookup import assert_slack_accepted_everything, buttons, ephemeral


@pytest.fixture
def slack(bot: Bot) -> Iterator[Bot]:
    yield bot
    assert_slack_accepted_everything(bot)


@pytest.fixture
def person(slack: Bot, claims: Claims) -> dict[str, Any]:
    """Three devices of one new person: assigned a Chromebook, signed in last on another,
    and the user of an Android phone."""
    email = f"yara.taylor.{uuid.uuid4().hex[:6]}@example.com"
    other = f"someone.else.{uuid.uuid4().hex[:6]}@example.com"
    fleet = slack.sandbox.fleet
    assigned, signed_in = claims.chrome(), claims.chrome()
    phone = claims.android(lambda d: bool(d["hardwareInfo"].get("serialNumber")))
    fleet.set_fields(
        assigned["deviceId"],
        {"annotatedUser": email, "recentUsers": [{"type": "USER_TYPE_MANAGED", "email": other}]},
    )
    fleet.set_fields(
        signed_in["deviceId"],
        {"annotatedUser": None, "recentUsers": [{"type": "USER_TYPE_MANAGED", "email": email}]},
    )
    fleet.set_fields(phone["name"], {"user": {"accountIdentifier": email}})
    slack.svc.devices.sync_android_index()
    return {
        "email": email,
        "other": other,
        "assigned": assigned,
        "signed_in": signed_in,
        "phone": phone,
        "values": {
            f"chrome|{assigned['deviceId']}",
            f"chrome|{signed_in['deviceId']}",
            f"android|{phone['name']}",
        },
    }


def shown_devices(message: dict[str, Any]) -> set[str]:
    return {b["value"] for b in buttons(message) if b["action_id"] == ids.ActionId.SHOW_DEVICE}


@pytest.mark.parametrize("form", ["{email}", "user:{email}"])
def test_an_email_finds_assigned_and_signed_in_devices_on_both_platforms(
    slack: Bot, person: dict[str, Any], form: str
) -> None:
    query = form.format(email=person["email"])
    slack.slash(f"find {query}")
    page = ephemeral(slack, "devices match")
    assert shown_devices(page) == person["values"]
    assert "*3* devices match" in flatten(page)


def test_recent_user_finds_the_phone_too(slack: Bot, person: dict[str, Any]) -> None:
    slack.slash(f"find recent_user:{person['email']}")
    page = ephemeral(slack, "devices match")
    assert f"android|{person['phone']['name']}" in shown_devices(page)
    assert f"chrome|{person['signed_in']['deviceId']}" in shown_devices(page)


def test_the_card_shows_assigned_and_last_signed_in_user_apart(
    slack: Bot, person: dict[str, Any]
) -> None:
    serial = person["assigned"]["serialNumber"]
    slack.slash(f"info {serial}")
    card = ephemeral(slack, f"Chrome OS {serial}: ACTIVE")
    fields = [f["text"] for b in card["blocks"] for f in b.get("fields") or []]
    assert f"*Assigned user*\n{person['email']}" in fields
    assert f"*Last signed-in user*\n{person['other']}" in fields
    serial = person["signed_in"]["serialNumber"]
    slack.slash(f"info {serial}")
    card = ephemeral(slack, f"Chrome OS {serial}: ACTIVE")
    fields = [f["text"] for b in card["blocks"] for f in b.get("fields") or []]
    assert "*Assigned user*\n—" in fields
    assert f"*Last signed-in user*\n{person['email']}" in fields


def test_info_with_an_email_offers_the_persons_devices(slack: Bot, person: dict[str, Any]) -> None:
    slack.slash(f"info {person['email']}")
    picker = ephemeral(slack, "Pick one")
    assert f"No device is exactly `{person['email']}`, but *3* devices match" in flatten(picker)
    assert shown_devices(picker) == person["values"]
    phone = f"android|{person['phone']['name']}"
    slack.emu.click(OPERATOR, ids.ActionId.SHOW_DEVICE, message=picker, value=phone)
    serial = person["phone"]["hardwareInfo"]["serialNumber"]
    wait_until(
        lambda: any(f"Android {serial}" in flatten(e) for e in slack.emu.ephemerals(OPERATOR)),
        15,
        "the phone's card",
    )


def test_info_with_part_of_a_serial_offers_the_matches(slack: Bot, claims: Claims) -> None:
    device = claims.chrome()
    fleet = slack.sandbox.fleet
    serial = f"ZQ{uuid.uuid4().hex[:8].upper()}"
    fleet.set_fields(device["deviceId"], {"serialNumber": serial})
    slack.slash(f"info {serial[:7]}")
    picker = ephemeral(slack, "Pick one")
    assert shown_devices(picker) == {f"chrome|{device['deviceId']}"}
    assert "*1* device match" in flatten(picker)


def test_info_with_nothing_like_it_still_says_no_match(slack: Bot) -> None:
    slack.slash("info nobody.at.all@example.com")
    assert "No device matches `nobody.at.all@example.com`" in slack.wait_ephemeral(
        "No device matches"
    )


def test_person_queries() -> None:
    assert person_queries("user:ada@example.com status:ACTIVE") == [
        "user:ada@example.com status:ACTIVE",
        "recent_user:ada@example.com status:ACTIVE",
    ]
    assert person_queries("ada@example.com") == [
        "ada@example.com",
        "user:ada@example.com",
        "recent_user:ada@example.com",
    ]
    assert person_queries("id:5CD status:ACTIVE") is None
    assert person_queries("recent_user:ada@example.com") is None
