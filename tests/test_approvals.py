"""Approvals end to end: signed clicks on the bot over HTTP, the sandbox Google, real SQLite + scheduler."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from conftest import (
    APPROVALS,
    APPROVER1,
    APPROVER2,
    HELPDESK,
    OPERATOR,
    approval_message,
    flatten,
    request_row,
    start_bot,
    wait_state,
    wait_until,
)

from bot import approvals, audit, ids
from bot.errors import Conflict, SettingsError
from bot.requests import NewRequest


def submit(
    bot: Any,
    action: str,
    device_ref: str,
    params: dict[str, Any] | None = None,
    *,
    requester: str = OPERATOR,
    secret: dict[str, Any] | None = None,
    reason: str = "ticket 42",
) -> str:
    device = bot.svc.devices.resolve(device_ref)
    return approvals.submit(
        bot.svc,
        NewRequest(
            action=action,
            platform=device.platform,
            devices=(device,),
            params=params or {},
            requester=requester,
            reason=reason,
            secret=secret,
            channel=HELPDESK,
        ),
    )


def thread_texts(bot: Any, channel: str, ts: str) -> str:
    return "\n".join(flatten(m) for m in bot.emu.messages(channel, thread_ts=ts))


@pytest.mark.both_stores
def test_approve_runs_the_action_and_reports_in_both_threads(bot, claims):
    device = claims.chrome("ACTIVE")
    request_id = submit(bot, "disable", device["serialNumber"], {"why": "other"})
    message = approval_message(bot, request_id)
    text = flatten(message)
    assert "Approve" in text and "Deny" in text and f"<@{OPERATOR}>" in text and "ticket 42" in text
    assert device["serialNumber"] in text
    assert request_row(bot, request_id)["state"] == "pending"
    assert bot.sandbox.fleet.chrome[device["deviceId"]]["status"] == "ACTIVE"

    reply = bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
    assert reply.status == 200
    row = wait_state(bot, request_id, "succeeded")
    assert row["decided_by"] == APPROVER1
    assert bot.sandbox.fleet.chrome[device["deviceId"]]["status"] == "DISABLED"
    # the approval message shows the final state and who decided; no buttons left
    final = wait_until(
        lambda: (
            "approved by" in flatten(bot.emu.message(APPROVALS, message["ts"])).lower()
            and bot.emu.message(APPROVALS, message["ts"])
        )
    )
    assert ids.ActionId.APPROVE not in str(final)
    done = f"{device['serialNumber']} is now disabled."
    wait_until(lambda: done in thread_texts(bot, APPROVALS, message["ts"]))
    wait_until(lambda: done in thread_texts(bot, row["requester_channel"], row["requester_ts"]))
    events = [e["event"] for e in audit.events(bot.store, request_id=request_id)]
    assert events == ["requested", "approved", "executing", "succeeded"]
    assert audit.verify(bot.store).ok


def test_deny_with_reason(bot, claims):
    device = claims.chrome("ACTIVE")
    request_id = submit(
        bot, "deprovision", device["serialNumber"], {"deprovision_reason": "retiring_device"}
    )
    message = approval_message(bot, request_id)
    bot.emu.click(APPROVER2, ids.ActionId.DENY, value=request_id, message=message)
    view = wait_until(lambda: bot.emu.open_view(APPROVER2), 10, "deny modal")
    assert view["callback_id"] == ids.CallbackId.DENY
    reply = bot.emu.submit_view(APPROVER2, values={ids.BlockId.DENY_REASON: "not without a ticket"})
    assert reply.status == 200
    row = wait_state(bot, request_id, "denied")
    assert row["decision_note"] == "not without a ticket" and row["decided_by"] == APPROVER2
    assert bot.sandbox.fleet.chrome[device["deviceId"]]["status"] == "ACTIVE"
    wait_until(
        lambda: (
            "not without a ticket"
            in thread_texts(bot, row["requester_channel"], row["requester_ts"])
        )
    )


def test_self_approval_and_non_approver_are_refused(bot, claims):
    device = claims.chrome("ACTIVE")
    request_id = submit(
        bot, "disable", device["serialNumber"], {"why": "other"}, requester=APPROVER1
    )
    message = approval_message(bot, request_id)
    bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
    bot.wait_ephemeral("cannot approve your own request", user=APPROVER1)
    bot.emu.click(OPERATOR, ids.ActionId.APPROVE, value=request_id, message=message)
    bot.wait_ephemeral("Only device approvers", user=OPERATOR)
    assert request_row(bot, request_id)["state"] == "pending"
    refused = [e for e in audit.events(bot.store, request_id=request_id) if e["event"] == "refused"]
    assert {e["actor"] for e in refused} == {APPROVER1, OPERATOR}
    assert bot.sandbox.fleet.chrome[device["deviceId"]]["status"] == "ACTIVE"


@pytest.mark.both_stores
def test_ttl_expiry(tmp_path, sandbox, emu, claims):
    bot = start_bot(tmp_path, sandbox, emu, APPROVAL_TTL="1")
    try:
        device = claims.chrome("ACTIVE")
        request_id = submit(bot, "disable", device["serialNumber"], {"why": "other"})
        message = approval_message(bot, request_id)
        wait_state(bot, request_id, "expired", timeout=10)
        wait_until(lambda: "Expired" in flatten(bot.emu.message(APPROVALS, message["ts"])))
        assert ids.ActionId.APPROVE not in str(bot.emu.message(APPROVALS, message["ts"]))
        with pytest.raises(Conflict):
            approvals.approve(bot.svc, request_id, APPROVER1)
        assert request_row(bot, request_id)["state"] == "expired"
        assert sandbox.fleet.chrome[device["deviceId"]]["status"] == "ACTIVE"
    finally:
        bot.server.stop()


@pytest.mark.both_stores
def test_cancel_pending_request(bot, claims):
    device = claims.chrome("ACTIVE")
    request_id = submit(bot, "disable", device["serialNumber"], {"why": "other"})
    approval_message(bot, request_id)
    bot.slash(
        f"cancel {request_id}", user=APPROVER2
    )  # neither requester nor approver? approver may
    wait_state(bot, request_id, "cancelled")
    bot.wait_ephemeral("cancelled", user=APPROVER2)


@pytest.mark.both_stores
def test_twenty_concurrent_approvals_make_one_google_call(bot, claims):
    device = claims.chrome("ACTIVE")
    request_id = submit(bot, "disable", device["serialNumber"], {"why": "other"})
    message = approval_message(bot, request_id)
    bot.sandbox.log.clear()
    barrier = threading.Barrier(20)
    replies: list[Any] = []

    def click(user: str) -> None:
        barrier.wait()
        # everyone clicks the message as their client showed it, buttons and all
        reply = bot.emu.click(
            user, ids.ActionId.APPROVE, value=request_id, message=message, as_shown=True
        )
        replies.append(reply)

    threads = [
        threading.Thread(target=click, args=(APPROVER1 if i % 2 else APPROVER2,)) for i in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(replies) == 20 and all(r.status == 200 for r in replies)
    wait_state(bot, request_id, "succeeded")
    assert bot.sandbox.log.count(method="POST", path_contains="batchChangeStatus") == 1

    def told() -> int:
        return sum(
            "already decided" in t for u in (APPROVER1, APPROVER2) for t in bot.ephemeral_texts(u)
        )

    wait_until(lambda: told() == 19, 10, "19 users told it was already decided")
    approved = [
        e for e in audit.events(bot.store, request_id=request_id) if e["event"] == "approved"
    ]
    assert len(approved) == 1


@pytest.mark.both_stores
def test_same_click_delivered_twice_acts_once(bot, claims):
    device = claims.chrome("ACTIVE")
    request_id = submit(bot, "disable", device["serialNumber"], {"why": "other"})
    message = approval_message(bot, request_id)
    bot.sandbox.log.clear()
    first = bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
    assert first.status == 200
    # Slack re-delivers the very same payload (same trigger and action_ts) with X-Slack-Retry-Num
    delivery = bot.emu.deliveries[-1]
    for retry in (1, 2):
        again = bot.emu._deliver_payload("block_actions", delivery.payload, retry_num=retry)
        assert again.status == 200
    wait_state(bot, request_id, "succeeded")
    assert bot.sandbox.log.count(method="POST", path_contains="batchChangeStatus") == 1


def test_preflight_refuses_a_device_deprovisioned_meanwhile(bot, claims):
    device = claims.chrome("ACTIVE")
    request_id = submit(bot, "disable", device["serialNumber"], {"why": "other"})
    message = approval_message(bot, request_id)
    bot.sandbox.fleet.set_chrome_status(
        bot.sandbox.fleet.chrome[device["deviceId"]], "DEPROVISIONED"
    )
    bot.sandbox.log.clear()
    bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
    row = wait_state(bot, request_id, "failed")
    assert "DEPROVISIONED" in row["result"]
    assert bot.sandbox.log.count(method="POST") == 0


@pytest.mark.parametrize("approval_required", ["none"])
def test_no_approval_needed_runs_at_once(tmp_path, sandbox, emu, claims, approval_required):
    bot = start_bot(tmp_path, sandbox, emu, APPROVAL_REQUIRED=approval_required)
    try:
        device = claims.chrome("ACTIVE")
        request_id = submit(bot, "disable", device["serialNumber"], {"why": "other"})
        wait_state(bot, request_id, "succeeded")
        assert not bot.emu.messages(APPROVALS)
    finally:
        bot.server.stop()


@pytest.mark.both_stores
def test_without_a_secret_key_a_restart_ends_a_password_request_clearly(
    tmp_path, sandbox, emu, claims, backend
):
    db = str(tmp_path / "nokey.db")
    if backend == "postgresql":  # replicas share secrets only sealed: the key is required
        with pytest.raises(SettingsError, match="BOT_SECRET_KEY: is required with DATABASE_URL"):
            start_bot(tmp_path, sandbox, emu, BOT_SECRET_KEY="", DATABASE_PATH=db)
        return
    device = claims.android()
    bot = start_bot(tmp_path, sandbox, emu, BOT_SECRET_KEY="", DATABASE_PATH=db)
    try:
        request_id = submit(
            bot,
            "reset-password",
            device["hardwareInfo"]["serialNumber"],
            {},
            secret={"new_password": "Walrus-Tango-42"},
        )
        message = approval_message(bot, request_id)
        assert request_row(bot, request_id)["secret"] is None  # held in memory only
    finally:
        bot.server.stop()
    bot = start_bot(tmp_path, sandbox, emu, BOT_SECRET_KEY="", DATABASE_PATH=db)
    try:
        bot.sandbox.log.clear()
        bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
        row = wait_state(bot, request_id, "failed")
        assert "no longer held" in row["result"]
        assert bot.sandbox.log.count(method="POST") == 0
    finally:
        bot.server.stop()
