"""A Chrome status change or move whose answer is lost (Google applied it, then answered 5xx).

Through Slack end to end: the outcome is not told as failed; the bot reads the devices back
(status / organisational unit), never sends the mutation again, and only then says what
happened — a stolen device that was disabled opens its lost case, a move reports the true count.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import (
    APPROVALS,
    APPROVER1,
    HELPDESK,
    LOST,
    OPERATOR,
    approval_message,
    flatten,
    request_rows,
    serial,
    start_bot,
    wait_state,
    wait_until,
)
from test_actions import run
from test_approvals import thread_texts

from bot import ids, lost


def lossy_bot(tmp_path: Any, sandbox: Any, emu: Any) -> Any:
    """A bot whose Google timeout is short, so the reconcile path reads back within seconds."""
    return start_bot(tmp_path, sandbox, emu, GOOGLE_TIMEOUT="1", LEASE_SECONDS="0.5")


@pytest.mark.parametrize(
    "fault", [{"status": 503, "after_apply": True}, {"drop": True}], ids=["5xx", "dropped"]
)
def test_disable_with_a_lost_answer_is_reconciled_and_opens_the_lost_case(
    tmp_path, sandbox, emu, claims, fault
):
    device = claims.chrome("ACTIVE")
    bot = lossy_bot(tmp_path, sandbox, emu)
    try:
        view = run(bot, f"disable {serial(device)}")
        reply = bot.emu.submit_view(
            OPERATOR,
            view["id"],
            {"why": "lost_or_stolen", "reason": "INC-7 stolen from a car"},
        )
        assert reply.status == 200
        request_id = wait_until(lambda: request_rows(bot, "disable"), 10, "the request")[0]["id"]
        message = approval_message(bot, request_id)
        # Google applies the disable, then the answer is lost (a 503, or no answer at all)
        sandbox.faults.add(
            path_contains=":batchChangeStatus", body_contains=device["deviceId"], **fault
        )
        sent_before = sandbox.log.count("POST", ":batchChangeStatus")
        bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
        row = wait_state(bot, request_id, "succeeded", "failed", timeout=30)
        assert row["state"] == "succeeded", json.loads(row["result"] or "{}")
        assert sandbox.log.count("POST", ":batchChangeStatus") == sent_before + 1  # never resent
        assert sandbox.fleet.chrome_get(device["deviceId"])["status"] == "DISABLED"
        told = wait_until(
            lambda: (t := thread_texts(bot, APPROVALS, message["ts"])) and "DISABLED" in t and t,
            10,
            "the outcome in the approval thread",
        )
        assert "answer was lost" in told and "DISABLED" in told and "Failed" not in told
        wait_until(
            lambda: "DISABLED" in thread_texts(bot, HELPDESK, row["requester_ts"]),
            10,
            "the outcome in the requester's thread",
        )
        # the lost case opened: announced in the lost-devices channel
        wait_until(
            lambda: lost.open_case_for(bot.svc, "chrome", device["deviceId"]),
            10,
            "the lost case",
        )
        wait_until(
            lambda: any(serial(device) in flatten(m) for m in bot.emu.messages(LOST)),
            10,
            "the lost-device announcement",
        )
    finally:
        sandbox.faults.clear()
        bot.server.stop()


def test_move_of_two_with_a_lost_answer_reports_the_true_count(tmp_path, sandbox, emu, claims):
    first, second = claims.chrome("ACTIVE"), claims.chrome("ACTIVE")
    target = "/Engineering/Labs"
    bot = lossy_bot(tmp_path, sandbox, emu)
    try:
        view = run(bot, f"move {target} {serial(first)} {serial(second)}")
        sandbox.faults.add(
            status=503,
            after_apply=True,
            path_contains="moveDevicesToOu",
            body_contains=first["deviceId"],
        )
        sent_before = sandbox.log.count("POST", "moveDevicesToOu")
        reply = bot.emu.submit_view(OPERATOR, view["id"], {})
        assert reply.status == 200
        request_id = wait_until(lambda: request_rows(bot, "move"), 10, "the move request")[0]["id"]
        row = wait_state(bot, request_id, "succeeded", "failed", timeout=30)
        result = json.loads(row["result"] or "{}")
        assert row["state"] == "succeeded", result
        assert result["text"].startswith(f"Moved 2 of 2 devices to `{target}`")
        assert sandbox.log.count("POST", "moveDevicesToOu") == sent_before + 1  # never resent
        for device in (first, second):
            assert sandbox.fleet.chrome_get(device["deviceId"])["orgUnitPath"] == target
        wait_until(
            lambda: "Moved 2 of 2" in thread_texts(bot, HELPDESK, row["requester_ts"]),
            10,
            "the count in the requester's thread",
        )
    finally:
        sandbox.faults.clear()
        bot.server.stop()


def test_a_lost_answer_for_a_disable_that_did_not_happen_is_told_as_not_done(
    tmp_path, sandbox, emu, claims
):
    device = claims.chrome("ACTIVE")
    bot = start_bot(
        tmp_path, sandbox, emu, GOOGLE_TIMEOUT="1", LEASE_SECONDS="0.5", APPROVAL_REQUIRED="none"
    )
    try:
        # a 503 before Google acted: the outcome is unknown to the bot all the same
        sandbox.faults.add(
            status=503, path_contains=":batchChangeStatus", body_contains=device["deviceId"]
        )
        view = run(bot, f"disable {serial(device)}")
        bot.emu.submit_view(OPERATOR, view["id"], {"why": "lost_or_stolen", "reason": "x"})
        request_id = wait_until(lambda: request_rows(bot, "disable"), 10, "the request")[0]["id"]
        row = wait_state(bot, request_id, "succeeded", "failed", timeout=30)
        result = json.loads(row["result"] or "{}")
        assert row["state"] == "failed" and result.get("reconciled") is True, result
        assert "still ACTIVE" in result["text"]
        assert lost.open_case_for(bot.svc, "chrome", device["deviceId"]) is None
    finally:
        sandbox.faults.clear()
        bot.server.stop()


# ---- the API layer: per-device outcomes of several chunks ---------------------------------------


def _chrome_api(sb: Any) -> Any:
    from bot.google import GoogleClients, RetryPolicy
    from bot.settings import Secret, Settings

    settings = Settings(
        slack_bot_token=Secret("xoxb-test"),
        slack_signing_secret=Secret("secret"),
        google_customer_id=sb.customer_id,
        google_timeout=5.0,
    )
    policy = RetryPolicy(attempts=2, sleep=lambda _s: None)
    return GoogleClients.from_settings(settings, endpoint=sb.url, policy=policy).require_chrome()


def test_a_lost_chunk_leaves_only_its_devices_unknown_until_read_back() -> None:
    from bot.sandbox import Sandbox

    with Sandbox(chrome=120, android=0, seed=5) as sb:
        chrome = _chrome_api(sb)
        ids_ = [d for d in sb.fleet.chrome_order if sb.fleet.chrome[d]["status"] == "ACTIVE"][:60]
        # the second chunk (devices 50..59) is applied, then its answer is lost
        sb.faults.add(
            status=500, after_apply=True, path_contains="moveDevicesToOu", body_contains=ids_[55]
        )
        results = chrome.move(ids_, "/Support")
        assert [r.outcome_unknown for r in results] == [False] * 50 + [True] * 10
        assert all(r.ok for r in results[:50])
        settled = chrome.confirm_moved(results, "/Support")
        assert all(r.ok for r in settled) and len(settled) == 60
        assert sb.log.count("POST", "moveDevicesToOu") == 2  # never resent

        # a status change that Google did not apply is settled as not done, in words
        device = ids_[0]
        sb.faults.add(status=503, path_contains=":batchChangeStatus", body_contains=device)
        [unknown] = chrome.change_status([device], "DISABLE")
        assert unknown.outcome_unknown
        [told] = chrome.confirm_status([unknown], "DISABLE")
        assert not told.ok and told.error is not None
        assert "still ACTIVE" in told.error.message and not told.outcome_unknown
