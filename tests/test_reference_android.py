"""What the Google reference pages say and the bot now does.

End to end: `/device …` typed into the Slack emulator, the modal submitted, approved where
the action needs it, the command sent through googleapiclient to the sandbox and its
outcome told in the Slack threads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import (
    APPROVALS,
    APPROVER1,
    HELPDESK,
    OPERATOR,
    Bot,
    Claims,
    flatten,
    open_modal,
    request_row,
    serial,
    start_bot,
    wait_state,
    wait_until,
)

from bot import approvals, audit, capabilities, catalog, ids, outcome_words, requests
from bot.devices import Device
from bot.errors import ValidationError
from bot.google.android import google_duration
from bot.google.chrome import DEPROVISION_REASON_TEXT, DEPROVISION_REASONS
from bot.sandbox import android as sandbox_android
from bot.sandbox.api import ApiError, parse_duration

# ---- helpers ----------------------------------------------------------------------------------


def element(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    return dict(block["element"])


def block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def requests_for(bot: Bot, action: str, device_id: str) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in bot.store.db().query(
            "SELECT * FROM requests WHERE action = ? AND device_ids LIKE ? ORDER BY created_at",
            [action, f"%{device_id}%"],
        )
    ]


def submitted_request(bot: Bot, action: str, device_id: str) -> dict[str, Any]:
    rows = wait_until(lambda: requests_for(bot, action, device_id), 10, f"the {action} request")
    return rows[-1]


def thread(bot: Bot, request_id: str) -> str:
    r = request_row(bot, request_id)
    return "\n".join(
        flatten(m) for m in bot.emu.messages(r["requester_channel"], thread_ts=r["requester_ts"])
    )


def wait_told(bot: Bot, request_id: str, words: str, timeout: float = 15) -> str:
    return wait_until(
        lambda: words in (t := thread(bot, request_id)) and t,
        timeout,
        f"{words!r} in the thread of {request_id}",
    )


def operation(bot: Bot, request_id: str) -> Any:
    ref = wait_until(lambda: request_row(bot, request_id)["google_ref"], 10, "the command sent")
    return bot.sandbox.fleet.operations[ref]


def android(claims: Claims, **want: Any) -> dict[str, Any]:
    def match(d: dict[str, Any]) -> bool:
        return (
            d["apiLevel"] >= want.get("api_min", 0)
            and want.get("mode") in (None, d["managementMode"])
            and want.get("ownership") in (None, d["ownership"])
            and (not want.get("eid") or bool(d["hardwareInfo"].get("euiccChipInfo")))
        )

    return claims.android(match)


@pytest.fixture
def outcome(bot: Bot) -> Iterator[Callable[..., None]]:
    """Force a sandbox device's outcomes for this test only."""
    touched: list[str] = []

    def force(name: str, **kw: Any) -> None:
        touched.append(name)
        bot.sandbox.fleet.set_outcome(name, **kw)

    yield force
    for name in touched:
        bot.sandbox.fleet.clear_outcome(name)


# ---- lost mode -------------------------------------------------------------------------------


def test_lost_mode_email_is_a_plain_string_and_the_message_field_fits_slack(
    bot: Bot, claims: Claims
) -> None:
    device = android(claims, api_min=30, ownership="COMPANY_OWNED")
    view = open_modal(bot, f"lost {serial(device)}")
    assert element(view, "message")["max_length"] == 3000  # Slack allows 1–3000
    too_long = bot.emu.submit_view(OPERATOR, view["id"], {"message": "x" * 3001})
    assert too_long.json is not None and list(too_long.json["errors"]) == ["message"]
    message = "Please return to IT. " + "x" * 2979
    reply = bot.emu.submit_view(
        OPERATOR, view["id"], {"message": message, "email": "it@example.com"}
    )
    assert reply.status == 200 and not reply.body.strip()
    request_id = submitted_request(bot, "lost", device["name"])["id"]
    params = operation(bot, request_id).command["startLostModeParams"]
    assert params["lostEmailAddress"] == "it@example.com"  # TYPE_STRING, not a UserFacingMessage
    assert params["lostMessage"] == {"defaultMessage": message}
    wait_state(bot, request_id, "succeeded")
    wait_told(
        bot, request_id, f"{serial(device)} is locked in lost mode; the screen shows your message."
    )
    r = request_row(bot, request_id)
    parent = flatten(bot.emu.message(r["requester_channel"], r["requester_ts"]))
    # in words a person would write, never a made-up verb ("asked to lost mode")
    assert f"asked to *put it in lost mode*: {serial(device)}" in parent
    assert "asked to lost mode" not in parent.lower()


def test_lost_mode_needs_a_contact_other_than_the_organization(bot: Bot, claims: Claims) -> None:
    device = android(claims, api_min=30, ownership="COMPANY_OWNED")
    view = open_modal(bot, f"lost {serial(device)}")
    reply = bot.emu.submit_view(OPERATOR, view["id"], {"organization": "ACME Ltd"})
    assert reply.json is not None and list(reply.json["errors"]) == ["message"]
    assert "organization alone is not enough" in reply.json["errors"]["message"]
    assert requests_for(bot, "lost", device["name"]) == []
    # a message alone is enough (the reference: message, phone, email or street address)
    reply = bot.emu.submit_view(OPERATOR, view["id"], {"message": "Call IT"})
    assert reply.status == 200 and not reply.body.strip()
    request_id = submitted_request(bot, "lost", device["name"])["id"]
    assert operation(bot, request_id).command["startLostModeParams"] == {
        "lostMessage": {"defaultMessage": "Call IT"}
    }
    wait_state(bot, request_id, "succeeded")


@pytest.mark.parametrize(
    ("values", "ok"),
    [
        ({"organization": "ACME"}, False),
        ({"message": "m"}, True),
        ({"phone": "+44 20 7946 0000"}, True),
        ({"email": "it@example.com"}, True),
        ({"address": "1 Main St"}, True),
        ({"organization": "ACME", "address": "1 Main St"}, True),
    ],
)
def test_lost_mode_at_least_one_rule(values: dict[str, str], ok: bool) -> None:
    spec = catalog.action_for("lost", "android")
    if ok:
        body = catalog.command_body(spec, spec.parse(values))
        assert body["type"] == "START_LOST_MODE"
        if "email" in values:
            assert body["startLostModeParams"]["lostEmailAddress"] == values["email"]
    else:
        with pytest.raises(ValidationError):
            spec.parse(values)


# ---- Android command statuses ----------------------------------------------------------------


def test_waiting_for_the_person_is_told_and_retold_when_it_changes(
    bot: Bot, claims: Claims, outcome: Callable[..., None]
) -> None:
    device = android(claims, api_min=35, ownership="COMPANY_OWNED")
    outcome(device["name"], status="PENDING_USER_ACTION")
    view = open_modal(bot, f"add-esim {serial(device)}")
    bot.emu.submit_view(OPERATOR, view["id"], {"activation_code": "LPA:1$smdp.example$ABC"})
    request_id = submitted_request(bot, "add-esim", device["name"])["id"]
    wait_told(bot, request_id, "Waiting for the person on the device")
    op = operation(bot, request_id)
    sandbox_android.set_command_status(bot.sandbox.fleet, op.name, "IN_PROGRESS")
    wait_told(bot, request_id, "in progress")
    sandbox_android.set_command_status(bot.sandbox.fleet, op.name, "SUCCESS")
    result = json.loads(wait_state(bot, request_id, "succeeded")["result"])
    assert result["text"].startswith(f"eSIM added to {serial(device)}.")
    r = request_row(bot, request_id)
    notes = bot.emu.messages(r["requester_channel"], thread_ts=r["requester_ts"])
    waiting = [m for m in notes if "Waiting for the person on the device" in flatten(m)]
    assert len(waiting) == 1  # told once per change, however often it was polled
    progress = [
        e["detail"]["state"]
        for e in audit.events(bot.store, request_id=request_id)
        if e["event"] == "command_progress"
    ]
    assert progress == ["PENDING_USER_ACTION", "IN_PROGRESS"]


def test_expiry_after_waiting_for_the_person_says_they_did_not_act(
    tmp_path: Any, sandbox: Any, emu: Any, claims: Claims
) -> None:
    bot = start_bot(tmp_path, sandbox, emu, COMMAND_DURATION="2")
    device = android(
        claims, api_min=33, mode="PROFILE_OWNER", ownership="PERSONALLY_OWNED", eid=True
    )
    sandbox.fleet.set_outcome(device["name"], status="PENDING_USER_ACTION")
    try:
        view = open_modal(bot, f"device-info {serial(device)}")
        bot.emu.submit_view(OPERATOR, view["id"], {})
        request_id = submitted_request(bot, "device-info", device["name"])["id"]
        wait_told(bot, request_id, "Waiting for the person on the device to allow")
        result = json.loads(wait_state(bot, request_id, "expired")["result"])
        assert "the person on the device did not act" in result["text"]
        wait_told(bot, request_id, "did not act")
    finally:
        sandbox.fleet.clear_outcome(device["name"])
        bot.server.stop()


def test_done_while_still_waiting_is_not_reported_as_done(
    bot: Bot, claims: Claims, outcome: Callable[..., None]
) -> None:
    device = android(claims, api_min=35, ownership="COMPANY_OWNED")
    outcome(device["name"], status="PENDING_USER_ACTION")
    view = open_modal(bot, f"add-esim {serial(device)}")
    bot.emu.submit_view(OPERATOR, view["id"], {"activation_code": "LPA:1$smdp.example$DEF"})
    request_id = submitted_request(bot, "add-esim", device["name"])["id"]
    wait_told(bot, request_id, "Waiting for the person on the device")
    op = operation(bot, request_id)
    sandbox_android.set_command_status(
        bot.sandbox.fleet, op.name, "PENDING_USER_ACTION", close=True
    )
    result = json.loads(wait_state(bot, request_id, "failed")["result"])
    assert "Not confirmed" in result["text"] and "PENDING_USER_ACTION" in result["text"]
    assert "Done" not in result["text"]
    assert "Done" not in wait_told(bot, request_id, "Not confirmed")


def test_the_command_specific_status_is_read_before_the_error_code(
    bot: Bot, claims: Claims, outcome: Callable[..., None]
) -> None:
    device = android(claims, api_min=35, ownership="COMPANY_OWNED")
    outcome(device["name"], status="ERROR_USER_DENIED", error_code="UNKNOWN")
    view = open_modal(bot, f"add-esim {serial(device)}")
    bot.emu.submit_view(OPERATOR, view["id"], {"activation_code": "LPA:1$smdp.example$GHI"})
    request_id = submitted_request(bot, "add-esim", device["name"])["id"]
    result = json.loads(wait_state(bot, request_id, "failed")["result"])
    lines = result["text"].splitlines()
    assert lines[:2] == ["Failed on the device.", "eSIM failed: the user declined."]
    assert "UNKNOWN" in lines[-1]  # the error code comes after, as the lesser source
    assert result["esim"] == "ERROR_USER_DENIED" and result["errorCode"] == "UNKNOWN"
    wait_told(bot, request_id, "the user declined")


def test_describe_android_prefers_the_specific_status() -> None:
    op = {
        "name": "enterprises/E/devices/D/operations/1",
        "done": True,
        "metadata": {
            "type": "START_LOST_MODE",
            "errorCode": "UNKNOWN",
            "startLostModeStatus": {"status": "ALREADY_IN_LOST_MODE"},
        },
        "error": {"code": 2, "message": "An unknown error occurred."},
    }
    state, text, _ = outcome_words.describe_android(op)
    assert state == "succeeded" and "already in lost mode" in text
    op["metadata"] = {"type": "LOCK", "errorCode": "API_LEVEL"}
    assert outcome_words.describe_android(op)[0] == "failed"
    assert "too old" in outcome_words.describe_android(op)[1]
    for waiting in ("IN_PROGRESS", "PENDING_USER_ACTION"):
        op = {"name": "x", "done": True, "metadata": {"esimStatus": {"status": waiting}}}
        state, text, _ = outcome_words.describe_android(op)
        assert state == "failed" and not text.startswith("Done") and waiting in text


def test_unsupported_names_the_remedy(
    bot: Bot, claims: Claims, outcome: Callable[..., None]
) -> None:
    device = android(claims)
    outcome(device["name"], error_code="UNSUPPORTED")
    view = open_modal(bot, f"lock {serial(device)}")
    bot.emu.submit_view(OPERATOR, view["id"], {})
    request_id = submitted_request(bot, "lock", device["name"])["id"]
    wait_state(bot, request_id, "failed")
    wait_told(bot, request_id, "updating Android Device Policy")


# ---- duration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(600, "600s"), (1_000_000, "1000000s"), (2_592_000, "2592000s"), (3.5, "3.5s")],
)
def test_google_duration_format(seconds: float, text: str) -> None:
    assert google_duration(seconds) == text


def test_sandbox_refuses_a_duration_with_an_exponent() -> None:
    with pytest.raises(ApiError):
        parse_duration("1e+06s")
    assert parse_duration("1000000s") == 1_000_000


def test_a_long_command_duration_reaches_google_in_its_format(
    tmp_path: Any, sandbox: Any, emu: Any, claims: Claims
) -> None:
    bot = start_bot(tmp_path, sandbox, emu, COMMAND_DURATION="1000000")
    try:
        device = android(claims)
        view = open_modal(bot, f"lock {serial(device)}")
        bot.emu.submit_view(OPERATOR, view["id"], {})
        request_id = submitted_request(bot, "lock", device["name"])["id"]
        assert operation(bot, request_id).command["duration"] == "1000000s"
        wait_state(bot, request_id, "succeeded")
    finally:
        bot.server.stop()


# ---- add-esim by ownership -------------------------------------------------------------------


def test_add_esim_defaults_to_activated_on_a_company_device(bot: Bot, claims: Claims) -> None:
    device = android(claims, api_min=35, ownership="COMPANY_OWNED")
    view = open_modal(bot, f"add-esim {serial(device)}")
    assert element(view, "activation_state")["initial_option"]["value"] == "ACTIVATED"


def test_add_esim_on_a_personal_device_defaults_to_not_activated_and_refuses_activated(
    bot: Bot, claims: Claims
) -> None:
    device = android(claims, api_min=35, ownership="PERSONALLY_OWNED")
    view = open_modal(bot, f"add-esim {serial(device)}")
    assert element(view, "activation_state")["initial_option"]["value"] == "NOT_ACTIVATED"
    code = "LPA:1$smdp.example$JKL"
    reply = bot.emu.submit_view(
        OPERATOR, view["id"], {"activation_code": code, "activation_state": "ACTIVATED"}
    )
    assert reply.json is not None and list(reply.json["errors"]) == ["activation_state"]
    assert "personally owned" in reply.json["errors"]["activation_state"]
    assert requests_for(bot, "add-esim", device["name"]) == []
    reply = bot.emu.submit_view(OPERATOR, view["id"], {"activation_code": code})
    assert reply.status == 200 and not reply.body.strip()
    request_id = submitted_request(bot, "add-esim", device["name"])["id"]
    params = operation(bot, request_id).command["addEsimParams"]
    assert params == {"activationCode": code, "activationState": "NOT_ACTIVATED"}
    wait_state(bot, request_id, "succeeded")


# ---- deprovision: every reason, with the reference's words ------------------------------------


@pytest.mark.parametrize("reason", DEPROVISION_REASONS)
def test_deprovision_each_reason_through_slack(bot: Bot, claims: Claims, reason: str) -> None:
    device = claims.chrome("ACTIVE")
    view = open_modal(bot, f"deprovision {device['serialNumber']}")
    hint = block(view, "deprovision_reason")["hint"]["text"]
    for name, text in DEPROVISION_REASON_TEXT.items():
        assert f"{name.replace('_', ' ').capitalize()}: {text}" in hint
    options = [o["value"] for o in element(view, "deprovision_reason")["options"]]
    assert options == list(DEPROVISION_REASONS)
    reply = bot.emu.submit_view(
        OPERATOR, view["id"], {"deprovision_reason": reason, "reason": "ticket 7"}
    )
    assert reply.status == 200 and not reply.body.strip()
    request_id = submitted_request(bot, "deprovision", device["deviceId"])["id"]
    message = wait_until(
        lambda: next((m for m in bot.emu.messages(APPROVALS) if request_id in flatten(m)), None),
        10,
        "the approval message",
    )
    assert bot.sandbox.fleet.chrome_get(device["deviceId"])["status"] == "ACTIVE"
    bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
    wait_state(bot, request_id, "succeeded")
    after = bot.sandbox.fleet.chrome_get(device["deviceId"])
    assert after["status"] == "DEPROVISIONED"
    assert after["deprovisionReason"].lower().endswith(reason)


# ---- refusals written from the action's label ------------------------------------------------


def test_refusal_on_a_deprovisioned_device_uses_the_label(bot: Bot, claims: Claims) -> None:
    device = claims.chrome("DEPROVISIONED")
    text = flatten(open_modal(bot, f"volume 40 {device['serialNumber']}"))
    assert "*Set volume*" in text and "volumed" not in text
    text = flatten(open_modal(bot, f"reboot {device['serialNumber']}"))
    assert "*Reboot*" in text and "rebootd" not in text


def test_every_refusal_names_the_action_by_its_label() -> None:
    device = Device(platform="chrome", id="x", serial="5CD0", status="DEPROVISIONED")
    specs = [s for s in catalog.all_specs() if s.states and "DEPROVISIONED" not in s.states]
    assert specs
    for spec in specs:
        message = capabilities.refusal(spec, capabilities.facts(device))
        assert message is not None and f"*{spec.label}*" in message
        assert f"{spec.label.lower()}d " not in message


def test_add_esim_activated_on_a_personal_device_never_reaches_google(
    bot: Bot, claims: Claims
) -> None:
    """A request that did not come through the modal (no draft) is refused before Google."""
    device = android(claims, api_min=35, ownership="PERSONALLY_OWNED")
    request_id = approvals.submit(
        bot.svc,
        requests.NewRequest(
            action="add-esim",
            platform="android",
            devices=(bot.svc.devices.resolve(serial(device)),),
            params={"activation_code": "LPA:1$smdp.example$MNO", "activation_state": "ACTIVATED"},
            requester=OPERATOR,
            reason="",
            channel=HELPDESK,
        ),
    )
    result = json.loads(wait_state(bot, request_id, "failed")["result"])
    assert "personally owned" in result["text"]
    assert request_row(bot, request_id)["google_ref"] is None
    assert not bot.sandbox.fleet.device_operations.get(device["name"])
    wait_told(bot, request_id, "personally owned")
