"""Organisational units chosen, not typed, end to end.

The move modal's OU is an external_select whose options the bot serves from Google's
orgunits.list (cached); a typed OU that does not exist gets "did you mean …?" before
anything is asked; a move lists every problem with its devices at once and moves the
ones that resolve when the requester agrees.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from conftest import OPERATOR, OUTSIDER, Bot, Claims, flatten, wait_until

from bot import moves
from bot.sandbox.pools import ORG_UNITS
from tests.test_actions import ACTION, request_rows, run, serial


def ou_element(view: dict[str, Any]) -> dict[str, Any]:
    block = next(b for b in view["blocks"] if b.get("block_id") == moves.OU_FIELD)
    return dict(block["element"])


def test_the_ou_picker_offers_googles_organisational_units(bot: Bot, claims: Claims) -> None:
    view = run(bot, f"move /Sales/EMEA {serial(claims.chrome())}")
    element = ou_element(view)
    assert element["type"] == "external_select"
    assert element["initial_option"]["value"] == "/Sales/EMEA"
    log = bot.sandbox.log
    before = log.count("GET", "/orgunits")
    everything = bot.emu.suggest(OPERATOR, moves.OU_FIELD, "")
    assert [o["value"] for o in everything] == ["/", *sorted(ORG_UNITS[1:], key=str.lower)]
    sales = bot.emu.suggest(OPERATOR, moves.OU_FIELD, "sales")
    assert [o["value"] for o in sales] == ["/Sales", "/Sales/AMER", "/Sales/APAC", "/Sales/EMEA"]
    # a mistyped search still offers the closest units
    close = bot.emu.suggest(OPERATOR, moves.OU_FIELD, "/Loanerz")
    assert "/Loaners" in [o["value"] for o in close]
    # the list is Google's, read once and then kept for a few minutes
    assert log.count("GET", "/orgunits") - before <= 1
    assert any("type=all" in path for method, path in log if "/orgunits" in path)
    assert bot.emu.problems == []


def test_the_picker_gives_outsiders_nothing(bot: Bot, claims: Claims) -> None:
    view = run(bot, f"move /Sales {serial(claims.chrome())}")
    assert bot.emu.suggest(OPERATOR, moves.OU_FIELD, "sales", view=view)
    # an outsider cannot have this modal; a forged suggestion request for it gets no options
    assert bot.emu.suggest(OUTSIDER, moves.OU_FIELD, "sales", view=view) == []


def test_a_typed_ou_that_does_not_exist_gets_did_you_mean(bot: Bot, claims: Claims) -> None:
    device = claims.chrome()
    view = run(bot, f"move /Loaner {serial(device)}")
    assert view["callback_id"] == ACTION, flatten(view)
    text = flatten(view)
    assert "`/Loaner` is not an organisational unit. Did you mean */Loaners*?" in text
    assert "initial_option" not in ou_element(view)  # nothing preset: the person picks
    # submitting a path that is no OU (a stale option, a forged payload) is refused on the field
    reply = bot.emu.submit_view(OPERATOR, view["id"], {"ou": "/loaner"})
    assert reply.json is not None and reply.json["response_action"] == "errors"
    assert "Did you mean */Loaners*?" in reply.json["errors"]["ou"]
    assert request_rows(bot, "move") == []
    # another spelling of a real OU is taken as Google spells it
    reply = bot.emu.submit_view(OPERATOR, view["id"], {"ou": "/loaners"})
    assert reply.status == 200 and not reply.body.strip()
    fleet = bot.sandbox.fleet
    wait_until(
        lambda: fleet.chrome_get(device["deviceId"])["orgUnitPath"] == "/Loaners", 15, "moved"
    )


def test_a_move_lists_every_problem_and_moves_what_resolves(bot: Bot, claims: Claims) -> None:
    good = [claims.chrome(), claims.chrome()]
    phone = claims.android(lambda d: bool(d["hardwareInfo"].get("serialNumber")))
    twins = [claims.chrome(), claims.chrome()]
    asset = f"TWIN-{uuid.uuid4().hex[:8]}"
    fleet = bot.sandbox.fleet
    for twin in twins:
        fleet.set_fields(twin["deviceId"], {"annotatedAssetId": asset})
    missing = f"NOSUCH{uuid.uuid4().hex[:6].upper()}"
    refs = [serial(good[0]), missing, serial(phone), asset, serial(good[1])]
    view = run(bot, f"move /Retired {' '.join(refs)}")
    assert view["callback_id"] == ACTION, flatten(view)
    text = flatten(view)
    assert "3 problems: left out of this move" in text
    assert f"`{missing}`: no device has this serial" in text
    assert f"`{serial(phone)}` is an Android device" in text
    assert f"`{asset}` matches 2 devices" in text
    for twin in twins:
        assert twin["deviceId"] in text
    assert "*2 of 5* resolve" in text
    assert view["submit"]["text"] == "Move the 2 that resolve"
    reply = bot.emu.submit_view(OPERATOR, view["id"], {"ou": "/Retired"})
    assert reply.status == 200 and not reply.body.strip()
    rows = wait_until(lambda: request_rows(bot, "move"), 10, "the move request")
    assert sorted(json.loads(rows[0]["device_ids"])) == sorted(d["deviceId"] for d in good)
    wait_until(
        lambda: all(fleet.chrome_get(d["deviceId"])["orgUnitPath"] == "/Retired" for d in good),
        15,
        "both resolved devices moved",
    )
    assert all(fleet.chrome_get(t["deviceId"])["orgUnitPath"] != "/Retired" for t in twins)


def test_a_move_where_nothing_resolves_says_every_problem(bot: Bot) -> None:
    view = run(bot, "move /Sales NOSUCHONE1 NOSUCHTWO2")
    text = flatten(view)
    assert "Nothing to move" in text
    assert "`NOSUCHONE1`" in text and "`NOSUCHTWO2`" in text
    assert request_rows(bot, "move") == []
