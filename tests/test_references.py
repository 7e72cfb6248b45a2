"""A device reference is matched exactly: `_` and `%` are characters, never wildcards
Partial matching is for `/device find` only, with LIKE's wildcards
escaped there too."""

from __future__ import annotations

import pytest
from conftest import OPERATOR, flatten, wait_until

from bot.errors import NotFound


def short_id(device: dict) -> str:
    return str(device["name"]).rsplit("/", 1)[-1]


def test_wildcards_in_an_android_short_id_match_nothing(bot, claims):
    device = claims.android()
    short = short_id(device)
    assert bot.svc.devices.resolve(short).id == device["name"]  # the exact id still resolves
    for ref in (short[:-3] + "___", "_" * len(short)):
        with pytest.raises(NotFound):
            bot.svc.devices.resolve(ref)


def test_wildcard_reference_opens_no_action_form(bot, claims):
    device = claims.android()
    ref = short_id(device)[:-3] + "___"
    bot.slash(f"lock {ref}")
    view = wait_until(
        lambda: (v := bot.emu.open_view(OPERATOR)) and "No device matches" in flatten(v) and v,
        10,
        "the lock modal to say nothing matches",
    )
    assert "Lock" not in str(view.get("submit") or "")
    bot.slash("info " + "_" * len(short_id(device)))
    bot.wait_ephemeral("No device matches")


def test_find_treats_wildcards_as_characters(bot, claims):
    device = claims.android()
    page = bot.svc.devices.search("id:" + "_" * 4)
    assert page.android_total == 0
    page = bot.svc.devices.search("%")
    assert page.android_total == 0
    serial = device["hardwareInfo"]["serialNumber"]
    page = bot.svc.devices.search("id:" + serial[:5])  # a real prefix still finds it
    assert device["name"] in [d.id for d in page.devices] or (page.android_total or 0) > 0
