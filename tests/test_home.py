"""The App Home tab end to end: app_home_opened over signed HTTP (and Socket Mode), views.publish
checked as Slack checks Block Kit, Approve / Cancel clicked on the tab, republished on change."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import APPROVER1, APPROVER2, OPERATOR, OUTSIDER, flatten, wait_state, wait_until
from test_approvals import submit

from bot import home, ids
from bot.roles import Role


def home_text(bot: Any, user: str) -> str:
    view = bot.emu.home_view(user)
    return flatten(view["blocks"]) if view else ""


def wait_home(bot: Any, user: str, predicate: Any, what: str) -> str:
    return wait_until(
        lambda: predicate(text := home_text(bot, user)) and text,
        10,
        f"{user}'s Home tab to show {what}; it shows {home_text(bot, user)[-400:]!r}",
    )


@pytest.mark.both_stores  # the store: home tabs (an upsert)
def test_an_approver_approves_from_the_home_tab_and_the_requester_home_follows(bot, claims):
    device = claims.chrome("ACTIVE")
    assert bot.emu.open_home(APPROVER1).status == 200
    assert bot.emu.open_home(OPERATOR).status == 200
    wait_home(bot, APPROVER1, lambda t: "Waiting for your approval" in t, "the approvals list")
    wait_home(bot, OPERATOR, lambda t: "You have no open requests" in t, "no open requests")
    # an operator is no approver: no such list on their tab
    assert "Waiting for your approval" not in home_text(bot, OPERATOR)

    request_id = submit(bot, "disable", device["serialNumber"], {"why": "other"})
    # nobody reopened the tab: the change republished both
    wait_home(bot, APPROVER1, lambda t: request_id in t, "the new request")
    text = wait_home(bot, OPERATOR, lambda t: request_id in t, "their own request")
    assert "Waiting for approval" in text
    mine = bot.emu.home_view(OPERATOR)
    assert any(
        el.get("action_id") == ids.ActionId.CANCEL_REQUEST and el.get("value") == request_id
        for block in mine["blocks"]
        for el in [block.get("accessory") or {}]
    )

    view = bot.emu.home_view(APPROVER1)
    reply = bot.emu.click(
        APPROVER1, ids.ActionId.APPROVE, view=view, block_id=f"decide-{request_id}"
    )
    assert reply.status == 200
    wait_state(bot, request_id, "succeeded")
    assert bot.sandbox.fleet.chrome[device["deviceId"]]["status"] == "DISABLED"
    wait_home(bot, OPERATOR, lambda t: "You have no open requests" in t, "the request gone")
    wait_home(bot, APPROVER1, lambda t: request_id not in t, "the request decided")
    # approved and run exactly once
    events = [
        e
        for (e,) in bot.store.db().execute(
            "SELECT event FROM audit_events WHERE request_id = ?", [request_id]
        )
    ]
    assert events.count("approved") == 1 and events.count("succeeded") == 1
    publishes = bot.emu.calls_to("views.publish")
    assert publishes and all(call.ok for call in publishes)


def test_the_two_person_rule_holds_on_the_home_tab(bot, claims):
    device = claims.chrome("ACTIVE")
    request_id = submit(
        bot, "disable", device["serialNumber"], {"why": "other"}, requester=APPROVER1
    )
    bot.emu.open_home(APPROVER1)
    text = wait_home(bot, APPROVER1, lambda t: request_id in t, "their own request")
    # their own request is theirs to cancel, not to approve
    view = bot.emu.home_view(APPROVER1)
    assert not any(
        el.get("value") == request_id and el.get("action_id") == ids.ActionId.APPROVE
        for block in view["blocks"]
        for el in block.get("elements") or []
    )
    assert "Your open requests (1)" in text
    bot.emu.open_home(APPROVER2)  # an approver through the user group
    wait_home(bot, APPROVER2, lambda t: request_id in t, "the request to decide")
    # Deny on the tab asks for the reason in the same modal as on the approval message
    bot.emu.click(
        APPROVER2,
        ids.ActionId.DENY,
        view=bot.emu.home_view(APPROVER2),
        block_id=f"decide-{request_id}",
    )
    modal = wait_until(lambda: bot.emu.open_view(APPROVER2), 10, "the deny modal")
    assert modal["callback_id"] == ids.CallbackId.DENY
    bot.emu.submit_view(APPROVER2, values={ids.BlockId.DENY_REASON: "no ticket"})
    wait_state(bot, request_id, "denied")
    wait_home(bot, APPROVER1, lambda t: "You have no open requests" in t, "the request denied")
    # an outsider sees no requests and no buttons
    bot.emu.open_home(OUTSIDER)
    text = wait_home(bot, OUTSIDER, lambda t: "not a device operator" in t, "the refusal")
    assert request_id not in text


def test_the_home_search_button_opens_the_search_modal_and_answers_in_a_dm(bot, claims):
    device = claims.chrome("ACTIVE")
    bot.emu.open_home(OPERATOR)
    wait_home(bot, OPERATOR, lambda t: "Search devices" in t, "the search button")
    bot.emu.click(OPERATOR, ids.ActionId.HOME_SEARCH, view=bot.emu.home_view(OPERATOR))
    modal = wait_until(lambda: bot.emu.open_view(OPERATOR), 10, "the search modal")
    assert modal["callback_id"] == ids.CallbackId.SEARCH
    bot.emu.submit_view(OPERATOR, values={ids.BlockId.SEARCH: device["serialNumber"]})
    dm = "D" + OPERATOR[1:]
    wait_until(
        lambda: any(device["serialNumber"] in flatten(m) for m in bot.emu.messages(dm)),
        10,
        "the search result in a DM",
    )


def test_the_messages_tab_publishes_nothing_and_a_retried_event_is_harmless(bot):
    bot.emu.open_home(OPERATOR, tab="messages")
    bot.emu.open_home(OPERATOR, retry_num=1)
    wait_home(bot, OPERATOR, lambda t: "Your open requests" in t, "the tab")
    assert bot.store.db().execute("SELECT count(*) FROM home_tabs").fetchone()[0] == 1


def test_home_view_builder_fits_slack_limits_with_many_rows() -> None:
    from bot.playground.slack_emulator import validate_view

    rows = [
        {
            "id": f"R{n:012X}",
            "action": "disable",
            "platform": "chrome",
            "devices": '[{"id": "d", "serial": "<!channel>"}]',
            "state": "pending",
            "reason": "x" * 600,
            "requester": OPERATOR,
            "google_ref": None,
            "destructive": True,
        }
        for n in range(home.LIST_LIMIT)
    ]
    cases = [
        {
            "id": n,
            "platform": "android",
            "device_id": f"enterprises/e/devices/{n}",
            "summary": '{"serial": "S", "model": "<b>"}',
            "last_checkin": None,
            "reported_by": OPERATOR,
        }
        for n in range(home.LIST_LIMIT)
    ]
    view = home.home_view(
        APPROVER1,
        Role.APPROVER,
        rows,
        40,
        rows,
        40,
        cases,
        40,
        {"android": {"ACTIVE": 3}, "chrome": {"ACTIVE": 7, "DISABLED": 1}},
    )
    assert validate_view(view) == []
    text = flatten(view["blocks"])
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "and 30 more" in text
    assert "Chrome OS: *8*" in text and "Android: *3*" in text


def test_home_and_the_workflow_step_over_socket_mode(tmp_path, sandbox, emu, claims):
    from conftest import start_bot

    device = claims.chrome("ACTIVE")
    emu.delivery = "socket"  # never fall back to HTTP
    bot = start_bot(tmp_path, sandbox, emu, SLACK_APP_TOKEN="xapp-1-test", SLACK_SIGNING_SECRET="")
    try:
        emu.wait_for_socket()
        assert emu.open_home(OPERATOR).status == 200
        wait_home(bot, OPERATOR, lambda t: "Your open requests" in t, "the tab")
        execution_id = emu.run_step(
            ids.STEP_REQUEST_ACTION,
            {
                "device": device["serialNumber"],
                "action": "disable",
                "reason": "leaver",
                "requested_by": OPERATOR,
            },
        )
        text = wait_home(bot, OPERATOR, lambda t: "Waiting for approval" in t, "the request")
        assert "leaver" in text
        assert [d.via for d in emu.deliveries if d.kind == "events_api"] == ["socket"] * 2
        assert emu.execution(execution_id)["state"] == "running"
    finally:
        bot.server.stop()


def test_a_lost_case_shows_on_the_home_tab_with_its_last_check_in(tmp_path, sandbox, emu, claims):
    import time

    from conftest import start_bot

    bot = start_bot(tmp_path, sandbox, emu, APPROVAL_REQUIRED="none")
    device = claims.chrome("ACTIVE")
    serial = device["serialNumber"]
    try:
        bot.emu.open_home(OPERATOR)
        wait_home(bot, OPERATOR, lambda t: "No device is reported lost" in t, "no lost case")
        request_id = submit(bot, "disable", serial, {"why": "lost_or_stolen"})
        wait_state(bot, request_id, "succeeded")
        wait_home(bot, OPERATOR, lambda t: "Open lost cases (1)" in t and serial in t, "the case")
        at = time.time() + 5
        sandbox.fleet.check_in(device["deviceId"], at=at, ip="10.1.2.3", wan_ip="203.0.113.9")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at))
        wait_home(bot, OPERATOR, lambda t: stamp in t, "the new check-in")
        request_id = submit(bot, "reenable", serial)
        wait_state(bot, request_id, "succeeded")
        wait_home(bot, OPERATOR, lambda t: "No device is reported lost" in t, "the case resolved")
    finally:
        bot.server.stop()
