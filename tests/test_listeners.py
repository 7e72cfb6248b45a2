"""The listeners, called with injected fakes: signed requests dispatched to the Bolt App in
this thread, Slack and Google answered by tests/fakes.py (no HTTP server, no sandbox).

Each test drives the real App (`create_app`), middleware, error handler and domain code;
what the fakes leave unchecked is listed at the top of tests/fakes.py.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import APPROVALS, APPROVER1, APPROVER2, HELPDESK, OPERATOR, OUTSIDER
from fakes import (
    FakeAndroid,
    FakeChrome,
    FakeSlackOut,
    FakeUserGroups,
    Slack,
    android_raw,
    chrome_raw,
    input_block_ids,
    make_services,
)
from slack_sdk.errors import SlackApiError

from bot import capabilities, ids
from bot.blocks import section
from bot.devices import chrome_device
from bot.errors import GoogleUnavailable
from bot.services import Services
from bot.slack_out import tell_user

SERIAL = "5CD0001ABC"
KIOSK = "5CD0002KSK"
PHONE = "R58N0001PH"  # fully managed, Android 14
WORK_PROFILE = "R58N0002WP"  # a personal phone with a work profile


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Services]:
    services = make_services(
        tmp_path,
        devices=[chrome_raw(SERIAL), chrome_raw(KIOSK, kiosk=True, user=None)],
        android=[
            android_raw(PHONE),
            android_raw(
                WORK_PROFILE, mode="PROFILE_OWNER", ownership="PERSONALLY_OWNED", api_level=33
            ),
        ],
    )
    yield services
    refused = services.out.refusals  # type: ignore[attr-defined]
    assert not refused, f"Slack would refuse what the bot sent: {refused}"


@pytest.fixture
def slack(svc: Services) -> Slack:
    return Slack(svc)


def out(svc: Services) -> FakeSlackOut:
    return svc.out  # type: ignore[return-value]


def chrome(svc: Services) -> FakeChrome:
    return svc.google.chrome  # type: ignore[return-value]


def android(svc: Services) -> FakeAndroid:
    return svc.google.android  # type: ignore[return-value]


def requests(svc: Services) -> list[dict[str, Any]]:
    return list(svc.store.db().query("SELECT * FROM requests ORDER BY created_at"))


def events(svc: Services, event: str) -> list[dict[str, Any]]:
    return list(svc.store.db().query("SELECT * FROM audit_events WHERE event = ?", [event]))


def buttons(blocks: list[dict[str, Any]]) -> set[str]:
    return {
        e["action_id"]
        for b in blocks
        if b.get("type") == "actions"
        for e in b.get("elements") or []
        if e.get("type") == "button"
    }


def ask(
    slack: Slack, action: str, requester: str = OPERATOR, device: str = SERIAL, **values: Any
) -> str:
    """`/device <action> <device>`, the form filled in and submitted; returns the request id."""
    slack.slash(f"{action} {device}", user=requester)
    view_id = out(slack.svc).last("update_view").args["view_id"]
    response = slack.submit(requester, view_id, {"reason": "ticket 42", **values})
    assert response.status == 200 and not response.body, response.body
    return str(requests(slack.svc)[-1]["id"])


def approval_message(svc: Services, request_id: str) -> dict[str, Any]:
    row = (
        svc.store.db()
        .execute("SELECT approval_channel, approval_ts FROM requests WHERE id = ?", [request_id])
        .fetchone()
    )
    return out(svc).message(row[0], row[1])


def state(svc: Services, request_id: str) -> str:
    row = svc.store.db().execute("SELECT state FROM requests WHERE id = ?", [request_id]).fetchone()
    return str(row[0])


# ---- look-ups ------------------------------------------------------------------------------


def test_help_lists_every_sub_command(slack: Slack, svc: Services) -> None:
    response = slack.slash("help")
    assert response.status == 200
    [reply] = out(svc).of("respond")
    words = reply.words()
    for name in ("find", "info", "history", "requests", "cancel", "disable", "move"):
        assert f"/device {name}" in words, name


@pytest.mark.parametrize("serial", [SERIAL, KIOSK, PHONE, WORK_PROFILE])
def test_info_shows_the_card_with_the_buttons_that_fit(
    slack: Slack, svc: Services, serial: str
) -> None:
    slack.slash(f"info {serial}")
    reply = out(svc).last("respond")
    assert serial in reply.words()
    device = svc.devices.resolve(serial)
    fitting = {
        ids.device_action_id(s.name) for s in capabilities.available(capabilities.facts(device))
    }
    shown = buttons(reply.blocks)
    assert fitting <= shown
    assert {b for b in shown if b.startswith(ids.ActionId.DEVICE_ACTION)} == fitting
    # e.g. a screenshot only on a kiosk, a reboot not on a work profile (the model's rules)
    assert (ids.device_action_id("screenshot") in shown) is (serial == KIOSK)
    assert (ids.device_action_id("reboot") in shown) is (serial != WORK_PROFILE)


def test_a_card_button_opens_the_form_of_that_device(slack: Slack, svc: Services) -> None:
    slack.slash(f"info {SERIAL}")
    slack.click_answer(OPERATOR, ids.device_action_id("disable"), out(svc).last("respond"))
    loading = out(svc).last("open_view")
    form = out(svc).last("update_view", view_id=loading.result).args["view"]
    assert form["callback_id"] == ids.CallbackId.ACTION and form.get("submit")
    assert SERIAL in out(svc).last("update_view").words()
    slack.submit(OPERATOR, loading.result, {"reason": "ticket 7"})
    [row] = requests(svc)
    assert (row["action"], row["state"]) == ("disable", "pending")
    assert json.loads(row["device_ids"]) == [svc.devices.resolve(SERIAL).id]


def test_the_search_modal_answers_an_empty_query_in_the_ack(slack: Slack, svc: Services) -> None:
    slack.slash("")  # `/device` alone
    modal = out(svc).last("open_view")
    answer = json.loads(slack.submit(OPERATOR, modal.result, {}).body)
    assert answer == {
        "response_action": "errors",
        "errors": {ids.BlockId.SEARCH: "Type 1 to 200 characters."},
    }
    assert not out(svc).of("respond")


def test_help_on_a_device_says_why_the_rest_does_not_fit(slack: Slack, svc: Services) -> None:
    slack.slash(f"help {WORK_PROFILE}")
    words = out(svc).last("respond").words()
    device = svc.devices.resolve(WORK_PROFILE)
    unavailable = dict(capabilities.unavailable(capabilities.facts(device)))
    reboot = next(s for s in unavailable if s.name == "reboot")
    assert "fully managed" in unavailable[reboot]
    assert unavailable[reboot] in words


def test_an_outsider_is_refused_and_nothing_is_read(slack: Slack, svc: Services) -> None:
    slack.slash(f"info {SERIAL}", user=OUTSIDER)
    reply = out(svc).last("respond")
    assert "not allowed to use device-bot" in reply.text
    assert SERIAL not in out(svc).said()
    assert chrome(svc).reads == 0
    [refused] = events(svc, "refused")
    assert refused["actor"] == OUTSIDER


def test_an_unknown_device_is_told_in_words(slack: Slack, svc: Services) -> None:
    slack.slash("info NOSUCH1")
    assert out(svc).last("respond").text.startswith(":warning: No device matches `NOSUCH1`")


# ---- asking for an action --------------------------------------------------------------------


def test_a_typed_command_that_does_not_fit_is_refused_before_approval(
    slack: Slack, svc: Services
) -> None:
    slack.slash(f"screenshot {SERIAL}")  # a user session, not a kiosk
    loading = out(svc).last("open_view")
    shown = out(svc).last("update_view", view_id=loading.result)
    assert "kiosk" in shown.words().lower()
    assert shown.args["view"].get("submit") is None  # nothing to submit: no form
    assert requests(svc) == []
    assert chrome(svc).mutations == []


def test_a_form_error_is_answered_in_the_ack_next_to_its_field(slack: Slack, svc: Services) -> None:
    slack.slash(f"deprovision {SERIAL}")
    view_id = out(svc).last("update_view").args["view_id"]
    response = slack.submit(OPERATOR, view_id, {"reason": "ticket 42"})  # no deprovision reason
    answer = json.loads(response.body)
    assert answer["response_action"] == "errors"
    assert list(answer["errors"]) == ["deprovision_reason"]
    assert "required" in answer["errors"]["deprovision_reason"]
    assert set(answer["errors"]) <= input_block_ids(out(svc).views[view_id])
    assert requests(svc) == []


def test_a_submitted_form_becomes_one_pending_request(slack: Slack, svc: Services) -> None:
    request_id = ask(slack, "disable")
    [row] = requests(svc)
    assert (row["id"], row["state"], row["requester"]) == (request_id, "pending", OPERATOR)
    message = approval_message(svc, request_id)
    assert buttons(message["blocks"]) == {ids.ActionId.APPROVE, ids.ActionId.DENY}
    assert chrome(svc).mutations == []


def test_the_same_form_submitted_twice_makes_one_request(slack: Slack, svc: Services) -> None:
    slack.slash(f"disable {SERIAL}")
    view_id = out(svc).last("update_view").args["view_id"]
    slack.submit(OPERATOR, view_id, {"reason": "ticket 42"})
    slack.submit(OPERATOR, view_id, {"reason": "ticket 42"})  # a double click: a new trigger
    assert len(requests(svc)) == 1
    # a view submission has no channel or response_url: the error handler writes a DM
    assert "was already submitted" in out(svc).last("post", channel=OPERATOR).text


# ---- decisions -----------------------------------------------------------------------------


def test_the_requester_cannot_approve_their_own_request(slack: Slack, svc: Services) -> None:
    request_id = ask(slack, "disable", requester=APPROVER1)
    slack.click(APPROVER1, ids.ActionId.APPROVE, channel=APPROVALS, ts=approval_ts(svc, request_id))
    assert "cannot approve your own request" in out(svc).last("respond").text
    assert state(svc, request_id) == "pending"
    assert chrome(svc).mutations == []
    assert [e["detail"] for e in events(svc, "refused")] == ['{"attempt":"self-approve"}']


def test_an_operator_cannot_approve(slack: Slack, svc: Services) -> None:
    request_id = ask(slack, "disable", requester=APPROVER1)
    slack.click(OPERATOR, ids.ActionId.APPROVE, channel=APPROVALS, ts=approval_ts(svc, request_id))
    assert "Only device approvers can approve" in out(svc).last("respond").text
    assert state(svc, request_id) == "pending"


def approval_ts(svc: Services, request_id: str) -> str:
    row = (
        svc.store.db()
        .execute("SELECT approval_ts FROM requests WHERE id = ?", [request_id])
        .fetchone()
    )
    return str(row[0])


def test_approve_runs_the_action_once_even_when_the_click_comes_twice(
    slack: Slack, svc: Services
) -> None:
    request_id = ask(slack, "disable")
    ts = approval_ts(svc, request_id)
    shown = out(svc).message(APPROVALS, ts)["blocks"]
    click = slack.click_payload(
        APPROVER2,  # an approver through the user group
        ids.ActionId.APPROVE,
        channel=APPROVALS,
        ts=ts,
        blocks=shown,
    )
    first = slack.send(click)
    said = len(out(svc).calls)
    again = slack.send(click)  # Slack re-delivers the same click
    assert (first.status, again.status) == (200, 200)
    assert len(out(svc).calls) == said  # the re-delivery is answered and otherwise ignored
    device_id = svc.devices.resolve(SERIAL).id
    assert chrome(svc).mutations == [("change_status", (device_id,), "DISABLE", None)]
    assert state(svc, request_id) == "succeeded"
    assert chrome(svc).devices[device_id]["status"] == "DISABLED"
    # a second approver clicks the message as their client still shows it: too late
    slack.send(
        slack.click_payload(APPROVER1, ids.ActionId.APPROVE, channel=APPROVALS, ts=ts, blocks=shown)
    )
    assert "already decided by <@U0APPROVER2>" in out(svc).last("respond").text
    assert len(chrome(svc).mutations) == 1
    assert buttons(out(svc).message(APPROVALS, ts)["blocks"]) == set()  # no Approve left


def test_an_android_command_is_sent_once_and_cancel_asks_google(
    slack: Slack, svc: Services
) -> None:
    request_id = ask(slack, "wipe", device=PHONE)
    ts = approval_ts(svc, request_id)
    slack.click(APPROVER1, ids.ActionId.APPROVE, channel=APPROVALS, ts=ts)
    name = svc.devices.resolve(PHONE).id
    [(method, device, command)] = android(svc).mutations
    assert (method, device, command["type"]) == ("issue_command", name, "WIPE")
    assert state(svc, request_id) == "executing"  # until the device answers (the poll job)
    slack.slash(f"cancel {request_id}")
    assert android(svc).mutations[-1] == ("cancel_operation", f"{name}/operations/1")
    assert "Asked Google to cancel" in out(svc).last("respond").text


def test_approving_through_a_group_slack_cannot_list_is_refused(
    slack: Slack, svc: Services
) -> None:
    groups: FakeUserGroups = svc.roles.client  # type: ignore[assignment]
    groups.down = True  # from the start: no cached list of the group either
    request_id = ask(slack, "disable")
    slack.click(APPROVER2, ids.ActionId.APPROVE, channel=APPROVALS, ts=approval_ts(svc, request_id))
    assert "Slack did not answer whether you are in the approver group" in (
        out(svc).last("respond").text
    )
    assert state(svc, request_id) == "pending"
    assert chrome(svc).mutations == []
    assert len(events(svc, "membership_unknown")) == 1


def test_deny_asks_why_and_ends_the_request(slack: Slack, svc: Services) -> None:
    request_id = ask(slack, "disable")
    slack.click(APPROVER1, ids.ActionId.DENY, channel=APPROVALS, ts=approval_ts(svc, request_id))
    modal = out(svc).last("open_view")
    assert modal.args["view"]["callback_id"] == ids.CallbackId.DENY
    too_long = slack.submit(APPROVER1, modal.result, {ids.BlockId.DENY_REASON: "x" * 501})
    assert json.loads(too_long.body)["response_action"] == "errors"
    assert state(svc, request_id) == "pending"
    slack.submit(APPROVER1, modal.result, {ids.BlockId.DENY_REASON: "wrong device"})
    assert state(svc, request_id) == "denied"
    thread = [c for c in out(svc).of("post") if c.args["thread_ts"]][-1]
    assert "denied by" in thread.text and "wrong device" in thread.text
    assert chrome(svc).mutations == []


def test_cancel_withdraws_a_pending_request(slack: Slack, svc: Services) -> None:
    request_id = ask(slack, "disable")
    row = requests(svc)[0]
    slack.click(
        OPERATOR,
        ids.ActionId.CANCEL_REQUEST,
        channel=row["requester_channel"],
        ts=row["requester_ts"],
    )
    assert state(svc, request_id) == "cancelled"
    assert f"Request `{request_id}` is cancelled." in out(svc).last("respond").text
    # the approval message lost its buttons: nobody can approve a cancelled request
    assert buttons(approval_message(svc, request_id)["blocks"]) == set()
    slack.slash(f"cancel {request_id}")
    assert "already decided" in out(svc).last("respond").text
    assert chrome(svc).mutations == []


def test_someone_else_cannot_cancel(slack: Slack, svc: Services) -> None:
    request_id = ask(slack, "disable", requester=APPROVER1)
    slack.slash(f"cancel {request_id}", user=OPERATOR)
    assert "Only the requester or an approver" in out(svc).last("respond").text
    assert state(svc, request_id) == "pending"


# ---- the error handler ------------------------------------------------------------------------


def test_a_google_error_is_told_in_words(slack: Slack, svc: Services) -> None:
    chrome(svc).fail_next("list_devices", GoogleUnavailable("Google did not answer; try again."))
    chrome(svc).fail_next("get", GoogleUnavailable("Google did not answer; try again."))
    slack.slash(f"info {SERIAL}")
    assert out(svc).last("respond").text == ":warning: Google did not answer; try again."


def test_a_bug_becomes_an_error_id_for_the_user_and_a_traceback_in_the_log(
    slack: Slack, svc: Services, caplog: pytest.LogCaptureFixture
) -> None:
    chrome(svc).fail_next("list_devices", KeyError("serialNumber"))
    with caplog.at_level(logging.ERROR, logger="bot.listeners"):
        slack.slash(f"info {SERIAL}")
    text = out(svc).last("respond").text
    match = re.search(r"error id `([0-9a-f]{8})`", text)
    assert match, text
    assert "serialNumber" not in text  # the user hears the id, never the bug
    [record] = [r for r in caplog.records if match.group(1) in r.getMessage()]
    assert record.exc_info is not None and record.exc_info[0] is KeyError


# ---- the fakes themselves -----------------------------------------------------------------------


def test_the_fake_slack_refuses_block_kit_slack_refuses(svc: Services) -> None:
    fake = out(svc)
    with pytest.raises(SlackApiError):
        fake.post(
            HELPDESK, "hi", [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
        )
    with pytest.raises(SlackApiError):
        fake.open_view(
            "1.1.t",
            {"type": "modal", "title": {"type": "plain_text", "text": "t" * 25}, "blocks": []},
        )
    assert [r.method for r in fake.refusals] == ["post", "open_view"]
    fake.refusals.clear()  # on purpose: the fixture would fail the test otherwise


def test_the_fake_directory_resolves_exactly(svc: Services) -> None:
    chrome(svc).devices["x"] = {**chrome_raw("5CD0001ABCD"), "deviceId": "x"}  # a longer serial
    assert chrome_device(chrome(svc).get("x")).serial == "5CD0001ABCD"
    assert svc.devices.resolve(SERIAL).serial == SERIAL  # the prefix match is not taken


@pytest.mark.parametrize(
    ("body", "method", "expected"),
    [
        (
            {"user": {"id": "U1"}, "channel": {"id": "C1"}, "response_url": "https://hooks/r"},
            "respond",
            {"response_url": "https://hooks/r", "replace_original": True},
        ),
        (
            {"user_id": "U1", "response_urls": [{"response_url": "https://hooks/v"}]},
            "respond",
            {"response_url": "https://hooks/v", "replace_original": True},
        ),
        (
            {"user": {"id": "U1"}, "channel": {"id": "C1"}},
            "ephemeral",
            {"channel": "C1", "user": "U1"},
        ),
        ({"user_id": "U1", "channel_id": "C1"}, "ephemeral", {"channel": "C1", "user": "U1"}),
        ({"user": {"id": "U1"}}, "post", {"channel": "U1"}),
        ({}, None, {}),
    ],
)
def test_tell_user_answers_privately_where_the_gesture_allows(
    body: dict[str, Any], method: str | None, expected: dict[str, Any]
) -> None:
    """One way to tell a person something: the response_url, else ephemeral, else a DM."""
    out = FakeSlackOut()
    tell_user(out, body, "hello", [section("hello")], replace=True)  # type: ignore[arg-type]
    assert [c.method for c in out.calls] == ([method] if method else [])
    for call in out.calls:
        assert call.text == "hello" and call.blocks[0]["text"]["text"] == "hello"
        assert {k: call.args[k] for k in expected} == expected
