"""`/device` look-ups end to end: signed HTTP from the Slack emulator, the sandbox Google."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import (
    APPROVER1,
    APPROVER2,
    OPERATOR,
    OUTSIDER,
    Bot,
    Claims,
    flatten,
    wait_until,
)

from bot import audit, ids
from bot.store import epoch

EVIL = "<!channel> & <https://evil|click>"
EVIL_ESCAPED = "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;"


# ---- helpers --------------------------------------------------------------------------------


def ephemeral(bot: Bot, needle: str, user: str = OPERATOR, timeout: float = 15.0) -> dict[str, Any]:
    """The newest ephemeral to `user` whose text contains `needle` (waits for it)."""

    def find() -> dict[str, Any] | None:
        return next((e for e in reversed(bot.emu.ephemerals(user)) if needle in flatten(e)), None)

    found: dict[str, Any] = wait_until(
        find, timeout, f"an ephemeral to {user} with {needle!r}\n{bot.emu.dump()}"
    )
    return found


def stored(bot: Bot, message: dict[str, Any], user: str = OPERATOR) -> dict[str, Any]:
    """The current state of an ephemeral (after replace_original)."""
    return next(e for e in bot.emu.ephemerals(user) if e["ts"] == message["ts"])


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = message.get("blocks") or []
    found = [b["accessory"] for b in blocks if "accessory" in b]
    found += [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    return found


def claim_android(claims: Claims) -> dict[str, Any]:
    """An unclaimed ACTIVE Android device (the fleet may not have iter_android yet)."""
    fleet = claims.sandbox.fleet
    with claims.lock:
        for name in list(fleet.android_order):
            device = fleet.android[name]
            if (
                name not in claims.taken
                and device.get("state") == "ACTIVE"
                and device["hardwareInfo"].get("serialNumber")
            ):
                claims.taken.add(name)
                return device
    raise LookupError("no unclaimed Android device")


def assert_slack_accepted_everything(bot: Bot) -> None:
    failed = [(c.method, c.error) for c in bot.emu.calls if not c.ok]
    assert failed == [], bot.emu.dump()
    assert bot.emu.problems == [], bot.emu.problems
    assert all(r.status == 200 for r in bot.emu.responses), bot.emu.dump()


@pytest.fixture
def slack(bot: Bot) -> Iterator[Bot]:
    """The running bot; afterwards, Slack must have accepted every call and message."""
    yield bot
    assert_slack_accepted_everything(bot)


# ---- help and the router ------------------------------------------------------------------


def test_help_lists_every_lookup_subcommand_with_an_example(slack: Bot) -> None:
    slack.slash("help")
    text = slack.wait_ephemeral("/device sub-commands")
    for usage in (
        "/device find <query>",
        "/device info <device>",
        "/device history <device>",
        "/device requests",
    ):
        assert usage in text
    assert "e.g. `/device find user:ada@example.com`" in text


def test_malformed_arguments_get_the_usage_line(slack: Bot) -> None:
    slack.slash("find")
    assert "Usage: `/device find <query>`" in slack.wait_ephemeral("find <query>")
    slack.slash("info two words")
    assert "Usage: `/device info <device>`" in slack.wait_ephemeral("info <device>")
    slack.slash("history 'quoted'")
    assert "Usage: `/device history <device>`" in slack.wait_ephemeral("history <device>")
    slack.slash("requests mine")
    assert "Usage: `/device requests`" in slack.wait_ephemeral("Usage: `/device requests`")
    slack.slash("info <!channel>")
    refused = flatten(ephemeral(slack, "!channel&gt;` is not a device reference"))
    assert "Usage: `/device info <device>`" in refused and "<!channel>" not in refused
    slack.slash("infoo 5CD")
    assert "Did you mean `/device info <device>`?" in slack.wait_ephemeral("Did you mean")


# ---- find ---------------------------------------------------------------------------------------


def test_find_searches_both_platforms_and_next_replaces_the_page(slack: Bot) -> None:
    slack.slash("find example.com")
    page = ephemeral(slack, "Results *1–")
    count_line = page["blocks"][0]["text"]["text"]
    assert count_line.startswith("Results *1–40* of *") and "for `example.com`" in count_line
    assert "Chrome OS *" in count_line and "Android *" in count_line
    values = [b["value"] for b in buttons(page) if b["action_id"] == ids.ActionId.SHOW_DEVICE]
    assert {v.split("|")[0] for v in values} == {"chrome", "android"}
    (next_button,) = [b for b in buttons(page) if b["action_id"] == ids.ActionId.FIND_NEXT]
    reply = slack.emu.click(OPERATOR, ids.ActionId.FIND_NEXT, message=page)
    assert reply.status == 200
    second = wait_until(
        lambda: "Results *41–" in flatten(stored(slack, page)), 15, "page 2 replacing page 1"
    )
    assert second
    newer = [
        b["value"]
        for b in buttons(stored(slack, page))
        if b["action_id"] == ids.ActionId.SHOW_DEVICE
    ]
    assert not set(newer) & set(values)
    assert next_button["value"].endswith("|1")  # the session's second page


def test_find_with_no_match_says_so(slack: Bot) -> None:
    slack.slash("find id:NOSUCHSERIAL0000")
    assert "No device matches `id:NOSUCHSERIAL0000`." in slack.wait_ephemeral("No device matches")


def test_a_result_row_adds_the_device_card(slack: Bot, claims: Claims) -> None:
    device = claims.chrome()
    slack.slash(f"find id:{device['serialNumber']}")
    page = ephemeral(slack, "device match")
    slack.emu.click(OPERATOR, ids.ActionId.SHOW_DEVICE, message=page, block_id="result-0")
    card = ephemeral(slack, f"Chrome OS {device['serialNumber']}: ACTIVE")
    assert card["ts"] != page["ts"]  # the list stays; the card comes below it
    assert "device match" in flatten(stored(slack, page))


# ---- info ---------------------------------------------------------------------------------------


def test_info_shows_a_chrome_card_with_actions_that_fit(slack: Bot, claims: Claims) -> None:
    device = claims.chrome()
    slack.slash(f"info {device['serialNumber']}")
    card = ephemeral(slack, f"Chrome OS {device['serialNumber']}: ACTIVE")
    text = flatten(card)
    for expected in (
        device["orgUnitPath"],
        device["model"],
        device["osVersion"],
        "Last sync",
        device["deviceId"],
    ):
        assert expected in text
    actions = {b["action_id"]: b for b in buttons(card)}
    assert (
        ids.device_action_id("disable") in actions
        and ids.device_action_id("reenable") not in actions
    )
    assert actions[ids.device_action_id("disable")]["style"] == "danger"
    assert actions[ids.device_action_id("disable")]["value"] == f"chrome|{device['deviceId']}"


def test_info_on_a_disabled_device_offers_reenable(slack: Bot, claims: Claims) -> None:
    device = claims.chrome(status="DISABLED")
    slack.slash(f"info {device['deviceId']}")
    card = ephemeral(slack, f"Chrome OS {device['serialNumber']}: DISABLED")
    actions = {b["action_id"] for b in buttons(card)}
    assert ids.device_action_id("reenable") in actions
    assert ids.device_action_id("disable") not in actions


def test_info_shows_an_android_card(slack: Bot, claims: Claims) -> None:
    device = claim_android(claims)
    serial = device["hardwareInfo"]["serialNumber"]
    slack.slash(f"info {serial}")
    card = ephemeral(slack, f"Android {serial}: ACTIVE")
    text = flatten(card)
    for expected in (
        "API level",
        str(device["apiLevel"]),
        {"DEVICE_OWNER": "Fully managed", "PROFILE_OWNER": "Work profile"}[
            device["managementMode"]
        ],
        {"COMPANY_OWNED": "Company-owned", "PERSONALLY_OWNED": "Personally owned"}[
            device["ownership"]
        ],
    ):
        assert expected in text
    actions = {b["action_id"]: b["value"] for b in buttons(card)}
    assert actions[ids.device_action_id("lock")] == f"android|{device['name']}"


def test_info_on_an_unknown_device_says_so(slack: Bot) -> None:
    slack.slash("info NOSUCHSERIAL0000")
    assert "No device matches `NOSUCHSERIAL0000`" in slack.wait_ephemeral("No device matches")


def test_ambiguous_reference_offers_a_picker_and_never_all(slack: Bot, claims: Claims) -> None:
    first, second = claims.chrome(), claims.chrome()
    asset = f"PICK-{uuid.uuid4().hex[:8]}"
    fleet = slack.sandbox.fleet
    with fleet.lock:
        for device in (first, second):
            fleet.reindex_chrome(
                device["deviceId"], "annotatedAssetId", device.get("annotatedAssetId"), asset
            )
            device["annotatedAssetId"] = asset
        fleet.touch()
    slack.slash(f"info {asset}")
    picker = ephemeral(slack, "Pick one")
    assert f"`{asset}` matches *2* devices" in flatten(picker)
    values = {b["value"] for b in buttons(picker) if b["action_id"] == ids.ActionId.SHOW_DEVICE}
    assert values == {f"chrome|{first['deviceId']}", f"chrome|{second['deviceId']}"}
    assert not [b for b in buttons(picker) if b["action_id"].startswith(ids.ActionId.DEVICE_ACTION)]
    slack.emu.click(
        OPERATOR, ids.ActionId.SHOW_DEVICE, message=picker, value=f"chrome|{second['deviceId']}"
    )
    card = wait_until(
        lambda: "Chrome OS " + second["serialNumber"] in flatten(stored(slack, picker)), 15
    )
    assert card  # the picker was replaced by the chosen device's card


def test_device_notes_are_escaped_on_the_card(slack: Bot, claims: Claims) -> None:
    device = claims.chrome()
    fleet = slack.sandbox.fleet
    with fleet.lock:
        device["notes"] = EVIL
        fleet.touch()
    slack.slash(f"info {device['serialNumber']}")
    card = ephemeral(slack, f"Chrome OS {device['serialNumber']}")
    mrkdwn = json.dumps(card["blocks"])
    assert json.dumps(EVIL_ESCAPED)[1:-1] in mrkdwn
    assert "<!channel>" not in mrkdwn and "<https://evil" not in mrkdwn


# ---- history ------------------------------------------------------------------------------------


def test_history_newest_first_truncated_with_a_note(slack: Bot, claims: Claims) -> None:
    device = claims.chrome()
    for n in range(35):
        audit.record(
            slack.store,
            actor=OPERATOR,
            event=f"step{n:02d}",
            platform="chrome",
            device_id=device["deviceId"],
        )
    slack.slash(f"history {device['serialNumber']}")
    text = slack.wait_ephemeral("History of Chrome OS")
    assert text.index("*step34*") < text.index("*step33*")
    assert "*step04*" not in text and "*step05*" in text
    assert "Showing the latest 30 of 35 entries" in text


def test_history_button_on_the_card(slack: Bot, claims: Claims) -> None:
    device = claims.chrome()
    audit.record(
        slack.store,
        actor=APPROVER1,
        event="approved",
        platform="chrome",
        device_id=device["deviceId"],
    )
    slack.slash(f"info {device['serialNumber']}")
    card = ephemeral(slack, f"Chrome OS {device['serialNumber']}")
    slack.emu.click(OPERATOR, ids.ActionId.SHOW_HISTORY, message=card)
    text = slack.wait_ephemeral("History of")
    assert "*approved*" in text and f"<@{APPROVER1}>" in text


def test_history_of_a_device_google_no_longer_knows(slack: Bot) -> None:
    gone = f"enterprises/LC0sandbox/devices/gone{uuid.uuid4().hex[:8]}"
    audit.record(slack.store, actor=OPERATOR, event="wiped", platform="android", device_id=gone)
    slack.slash(f"history {gone}")
    assert "*wiped*" in slack.wait_ephemeral("History of")


# ---- requests -----------------------------------------------------------------------------------


def add_request(bot: Bot, requester: str, state: str = "pending", reason: str = "stolen") -> str:
    request_id = "R" + uuid.uuid4().hex[:8]
    now = epoch()
    row = {
        "id": request_id,
        "action": "wipe",
        "platform": "android",
        "device_ids": json.dumps(["enterprises/LC0sandbox/devices/x"]),
        "devices": json.dumps([{"serial": "R58N0000", "user": "ada@example.com", "id": "x"}]),
        "params": "{}",
        "fingerprint": request_id,
        "reason": reason,
        "requester": requester,
        "state": state,
        "needs_approval": 1,
        "created_at": now,
        "updated_at": now,
        "expires_at": now + 86400,
    }
    with bot.store.transaction() as db:  # plain SQL: on either store
        db.execute(
            f"INSERT INTO requests({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )
    return request_id


def test_requests_operators_see_their_own_approvers_all(slack: Bot) -> None:
    mine = add_request(slack, OPERATOR, reason=EVIL)
    theirs = add_request(slack, APPROVER2)
    done = add_request(slack, OPERATOR, state="succeeded")
    slack.slash("requests")
    own = slack.wait_ephemeral("Your pending requests")
    assert mine in own and theirs not in own and done not in own
    assert EVIL_ESCAPED in own and "<!channel>" not in own
    slack.slash("requests", user=APPROVER1)
    everyone = slack.wait_ephemeral("All pending requests", user=APPROVER1)
    assert mine in everyone and theirs in everyone and done not in everyone


# ---- the search modal ---------------------------------------------------------------------------


def test_device_alone_opens_the_search_modal_and_answers_the_search(
    slack: Bot, claims: Claims
) -> None:
    device = claims.chrome()
    reply = slack.slash("")
    assert reply.status == 200
    view = slack.emu.wait_for(lambda: slack.emu.open_view(OPERATOR), 5, "the search modal")
    assert view["callback_id"] == ids.CallbackId.SEARCH
    bad = slack.emu.submit_view(
        OPERATOR, values={ids.BlockId.SEARCH: {ids.ActionId.SEARCH_INPUT: "   "}}
    )
    assert bad.json and bad.json["response_action"] == "errors"
    assert ids.BlockId.SEARCH in slack.emu.view_errors(view["id"])
    good = slack.emu.submit_view(
        OPERATOR, values={ids.BlockId.SEARCH: {ids.ActionId.SEARCH_INPUT: device["serialNumber"]}}
    )
    assert good.status == 200 and slack.emu.open_view(OPERATOR) is None
    results = ephemeral(slack, "device match")
    assert f"chrome|{device['deviceId']}" in [b.get("value") for b in buttons(results)]


# ---- who may, and signatures --------------------------------------------------------------------


def test_an_outsider_is_refused_and_audited(slack: Bot) -> None:
    for text in ("find example.com", "info 5CD0000000", "history x", "requests", "help", ""):
        slack.slash(text, user=OUTSIDER)
    wait_until(lambda: len(slack.ephemeral_texts(OUTSIDER)) >= 6, 10, "six refusals")
    assert all("not allowed to use device-bot" in t for t in slack.ephemeral_texts(OUTSIDER))
    assert slack.emu.open_view(OUTSIDER) is None
    refused = [
        e for e in audit.events(slack.store) if e["event"] == "refused" and e["actor"] == OUTSIDER
    ]
    assert len(refused) == 6
    # a button on someone else's message is refused too
    slack.slash("find example.com")
    page = ephemeral(slack, "Results *1–")
    slack.emu.click(OUTSIDER, ids.ActionId.FIND_NEXT, message=page)
    wait_until(lambda: len(slack.ephemeral_texts(OUTSIDER)) >= 7, 10, "the refusal of the click")
    assert "Results *1–" in flatten(stored(slack, page))
    assert len([e for e in audit.events(slack.store) if e["event"] == "refused"]) == 7


def test_forged_signature_and_stale_timestamp_are_rejected_and_nothing_happens(slack: Bot) -> None:
    slack.slash("find example.com")
    page = ephemeral(slack, "Results *1–")
    emu = slack.emu
    mark, responses, events = emu.mark(), len(emu.responses), len(audit.events(slack.store))
    stale = int(time.time()) - 600
    replies = [
        emu.slash_command(OPERATOR, "find 5CD", sign=False),
        emu.slash_command(OPERATOR, "find 5CD", timestamp=stale),
        emu.slash_command(OPERATOR, "", sign=False),
        emu.click(OPERATOR, ids.ActionId.FIND_NEXT, message=page, sign=False),
        emu.click(OPERATOR, ids.ActionId.FIND_NEXT, message=page, timestamp=stale),
    ]
    assert [r.status for r in replies] == [401] * 5
    # a genuine request after them: once it is answered, anything the forged ones caused would show
    slack.slash("help")
    slack.wait_ephemeral("/device sub-commands")
    assert len(emu.responses) == responses + 1
    assert {c.method for c in emu.calls[mark:]} <= {"usergroups.users.list"}
    assert emu.open_view(OPERATOR) is None
    assert "Results *1–" in flatten(stored(slack, page))
    assert len(audit.events(slack.store)) == events
