"""Outcomes end to end: commands sent to the sandbox, polled by the real scheduler, told in words."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import (
    APPROVALS,
    OPERATOR,
    flatten,
    request_row,
    serial,
    start_bot,
    thread_message,
    wait_state,
    wait_until,
)
from test_approvals import submit, thread_texts

from bot import ids, outcomes


def requester_thread(bot: Any, request_id: str) -> str:
    row = request_row(bot, request_id)
    return thread_texts(bot, row["requester_channel"], row["requester_ts"])


def android(claims: Any, **where: Any) -> dict[str, Any]:
    def match(d: dict[str, Any]) -> bool:
        api_min = where.get("api_min", 0)
        api_max = where.get("api_max", 99)
        return (
            api_min <= d["apiLevel"] <= api_max
            and (where.get("mode") in (None, d["managementMode"]))
            and (where.get("ownership") in (None, d["ownership"]))
        )

    return claims.android(match)


@pytest.mark.both_stores
def test_android_lock_succeeds_and_is_told_in_the_thread(direct, claims):
    device = android(claims)
    request_id = submit(direct, "lock", serial(device))
    row = wait_state(direct, request_id, "succeeded")
    assert row["google_ref"].startswith(device["name"] + "/operations/")
    wait_until(lambda: f"{serial(device)} is locked." in requester_thread(direct, request_id))
    assert "Sent to Google" in requester_thread(direct, request_id)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("UNKNOWN", "unknown error"),
        ("UNSUPPORTED", "does not support"),
        ("INVALID_VALUE", "refused a parameter"),
    ],
)
def test_android_error_codes_in_words(direct, claims, code, words):
    device = android(claims)
    direct.sandbox.fleet.set_outcome(device["name"], error_code=code)
    request_id = submit(direct, "lock", serial(device))
    row = wait_state(direct, request_id, "failed")
    assert code in row["result"] and words in row["result"]


def test_api_level_and_management_mode(direct, claims):
    old = android(claims, api_max=29, ownership="COMPANY_OWNED")
    request_id = submit(direct, "lost", serial(old), {"phone": "+1 555 0100"})
    assert "API_LEVEL" in wait_state(direct, request_id, "failed")["result"]
    personal = android(claims, ownership="PERSONALLY_OWNED")
    request_id = submit(direct, "lost", serial(personal), {"phone": "+1 555 0100"})
    assert "MANAGEMENT_MODE" in wait_state(direct, request_id, "failed")["result"]


def test_clear_app_data_per_app(direct, claims):
    device = android(claims, api_min=28)
    direct.sandbox.fleet.set_outcome(
        device["name"],
        app_results={"com.example.mail": "SUCCESS", "com.example.vpn": "APP_PROTECTED"},
    )
    request_id = submit(
        direct,
        "clear-app-data",
        serial(device),
        {"packages": ["com.example.mail", "com.example.vpn"]},
    )
    row = wait_state(direct, request_id, "failed")
    result = json.loads(row["result"])
    assert "com.example.mail`: cleared" in result["text"]
    assert "com.example.vpn`: protected" in result["text"]


@pytest.mark.parametrize(
    ("action", "status", "state", "words", "params"),
    [
        (
            "lost",
            "ALREADY_IN_LOST_MODE",
            "succeeded",
            "already in lost mode",
            {"phone": "+1 555 0100"},
        ),
        (
            "lost",
            "RESET_PASSWORD_RECENTLY",
            "failed",
            "password was reset recently",
            {"phone": "+1 555 0100"},
        ),
        ("found", "NOT_IN_LOST_MODE", "succeeded", "was not in lost mode", {}),
    ],
)
def test_lost_mode_statuses(direct, claims, action, status, state, words, params):
    device = android(claims, api_min=30, ownership="COMPANY_OWNED")
    direct.sandbox.fleet.set_outcome(device["name"], status=status)
    request_id = submit(direct, action, serial(device), params)
    row = wait_state(direct, request_id, "succeeded", "failed")
    assert words in row["result"]
    assert row["state"] == state


def test_esim_status_with_internal_error(direct, claims):
    device = android(claims, api_min=35, ownership="COMPANY_OWNED")
    direct.sandbox.fleet.set_outcome(device["name"], status="INTERNAL_ERROR")
    request_id = submit(
        direct,
        "add-esim",
        serial(device),
        {"activation_code": "LPA:1$smdp.example$ABC", "activation_state": "ACTIVATED"},
    )
    row = wait_state(direct, request_id, "failed")
    assert "internal error" in row["result"]
    assert "Internal error details" in row["result"] and "ERROR_CONNECTION_ERROR" in row["result"]


def test_device_info_eid(direct, claims):
    device = android(claims, api_min=33, mode="PROFILE_OWNER", ownership="PERSONALLY_OWNED")
    request_id = submit(direct, "device-info", serial(device))
    row = wait_state(direct, request_id, "succeeded")
    assert "EID:" in row["result"]


@pytest.mark.both_stores
def test_chrome_command_states_and_screenshot_link(direct, claims):
    device = claims.chrome_kiosk()
    fleet = direct.sandbox.fleet
    delay, fleet.command_delay = fleet.command_delay, 2.0  # time for the poller to see each state
    try:
        request_id = submit(direct, "screenshot", device["serialNumber"])
        row = wait_state(direct, request_id, "succeeded")
    finally:
        fleet.command_delay = delay
    text = json.loads(row["result"])["text"]
    assert text == f"Screenshot of {device['serialNumber']}:"  # the image follows as a file
    thread = requester_thread(direct, request_id)
    assert "Sent to the device" in thread or "acknowledged" in thread


def test_chrome_command_failure(direct, claims):
    device = claims.chrome_kiosk()
    direct.sandbox.fleet.set_outcome(
        device["deviceId"], result="FAILURE", error_message="volume control locked"
    )
    request_id = submit(direct, "volume", device["serialNumber"], {"volume": 40})
    row = wait_state(direct, request_id, "failed")
    assert "volume control locked" in row["result"]


@pytest.mark.both_stores
def test_never_acknowledged_command_expires_and_offers_reissue(tmp_path, sandbox, emu, claims):
    bot = start_bot(tmp_path, sandbox, emu, APPROVAL_REQUIRED="none", COMMAND_DURATION="1")
    try:
        device = android(claims)
        sandbox.fleet.set_never_ack(device["name"])
        request_id = submit(bot, "lock", serial(device))
        wait_state(bot, request_id, "expired", timeout=20)
        note = thread_message(bot, request_id, ids.ActionId.REISSUE, "a Re-issue button")
        sandbox.fleet.set_never_ack(device["name"], on=False)
        emu.click(OPERATOR, ids.ActionId.REISSUE, message=note)
        new_id = wait_until(
            lambda: (
                bot.store.db()
                .execute(
                    "SELECT id FROM requests WHERE id != ? AND device_ids LIKE ?",
                    [request_id, f"%{device['name']}%"],
                )
                .fetchone()
            )
        )[0]
        wait_state(bot, new_id, "succeeded", timeout=20)
    finally:
        bot.server.stop()


@pytest.mark.both_stores
def test_cancel_a_command_not_yet_run(tmp_path, sandbox, emu, claims):
    bot = start_bot(tmp_path, sandbox, emu, APPROVAL_REQUIRED="none")
    try:
        device = android(claims)
        sandbox.fleet.set_never_ack(device["name"])
        request_id = submit(bot, "lock", serial(device))
        wait_until(lambda: request_row(bot, request_id)["google_ref"])
        bot.slash(f"cancel {request_id}")
        row = wait_state(bot, request_id, "cancelled", timeout=15)
        assert "Cancelled" in row["result"]
    finally:
        sandbox.fleet.set_never_ack(device["name"], on=False)
        bot.server.stop()


@pytest.mark.both_stores
def test_poll_makes_no_google_call_when_nothing_is_pending(bot):
    bot.settle()
    bot.sandbox.log.clear()
    for _ in range(5):
        assert outcomes.poll(bot.svc) == 0
    assert bot.sandbox.log.count() == 0


@pytest.mark.both_stores
def test_batch_poll_uses_one_request_per_hundred(bot, claims):
    """250 pending Android commands are polled in ceil(250/100) = 3 HTTP requests."""
    devices = [android(claims) for _ in range(5)]
    names = []
    for device in devices:
        for _ in range(50):
            op = bot.svc.google.require_android().issue_command(
                device["name"], {"type": "LOCK", "duration": "600s"}
            )
            names.append(op["name"])
    bot.settle()  # this test runs the poll cycle itself
    now = bot.svc.clock()
    with bot.store.transaction() as db:
        db.conn.executemany(
            "INSERT INTO pending_commands(request_id, platform, device_id, google_ref, command_type, state,"
            " created_at, expires_at, next_poll_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (
                    "RTEST",
                    "android",
                    n.split("/operations/")[0],
                    n,
                    "LOCK",
                    "PENDING",
                    now,
                    now + 600,
                    now + 3600,
                )
                for n in names
            ],
        )
        db.execute("UPDATE pending_commands SET next_poll_at = 0 WHERE request_id = 'RTEST'")
    bot.sandbox.log.clear()
    assert outcomes.poll(bot.svc) == 250
    assert bot.sandbox.log.count(path_contains="batch") == 3
    assert bot.sandbox.log.count() == 3


@pytest.mark.both_stores
def test_approval_thread_gets_the_outcome(bot, claims):
    device = android(claims, ownership="PERSONALLY_OWNED", mode="PROFILE_OWNER")
    request_id = submit(bot, "wipe", serial(device), {"wipe_reason": "left the company"})
    message = wait_until(
        lambda: next((m for m in bot.emu.messages(APPROVALS) if request_id in flatten(m)), None)
    )
    bot.emu.click("U0APPROVER1", ids.ActionId.APPROVE, value=request_id, message=message)
    wait_state(bot, request_id, "succeeded")
    wait_until(lambda: "Work profile removed" in thread_texts(bot, APPROVALS, message["ts"]))
