"""The Workflow Builder step "Request a device action" end to end: function_executed over signed
HTTP, the request approved or denied in Slack, functions.completeSuccess / completeError at the
emulator — also when the bot restarted in between."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import (
    APPROVALS,
    APPROVER1,
    APPROVER2,
    OPERATOR,
    OUTSIDER,
    approval_message,
    flatten,
    start_bot,
    wait_state,
    wait_until,
)

from bot import ids, workflow


def run_step(bot: Any, device: str, action: str = "disable", **inputs: str) -> str:
    values = {
        "device": device,
        "action": action,
        "reason": "leaver: ticket 7",
        "requested_by": OPERATOR,
    }
    return bot.emu.run_step(ids.STEP_REQUEST_ACTION, {**values, **inputs})


def step_request(bot: Any, execution_id: str) -> str:
    def find() -> str | None:
        row = (
            bot.store.db()
            .execute("SELECT request_id FROM workflow_steps WHERE execution_id = ?", [execution_id])
            .fetchone()
        )
        return row[0] if row else None

    return wait_until(find, 10, f"the request of step {execution_id}")


def ended(bot: Any, execution_id: str, timeout: float = 15) -> dict[str, Any]:
    return wait_until(
        lambda: (e := bot.emu.execution(execution_id))["state"] != "running" and e,
        timeout,
        f"step {execution_id} to end",
    )


def test_the_step_completes_with_the_outcome_after_approval(bot, claims):
    device = claims.chrome("ACTIVE")
    execution_id = run_step(bot, device["serialNumber"])
    request_id = step_request(bot, execution_id)
    message = approval_message(bot, request_id)
    assert "leaver: ticket 7" in flatten(message) and f"<@{OPERATOR}>" in flatten(message)
    assert bot.emu.execution(execution_id)["state"] == "running"  # waits for the approver
    bot.emu.click(APPROVER1, ids.ActionId.APPROVE, message=message)
    execution = ended(bot, execution_id)
    assert execution["state"] == "completed", execution
    outputs = execution["outputs"]
    assert outputs["request_id"] == request_id and outputs["final_state"] == "succeeded"
    assert outputs["outcome"] == f"{device['serialNumber']} is now disabled."  # in words
    assert bot.sandbox.fleet.chrome[device["deviceId"]]["status"] == "DISABLED"
    # completed once: the job finds nothing left to complete
    assert workflow.finish_waiting(bot.svc) == 0
    assert len(bot.emu.calls_to("functions.completeSuccess")) == 1


def test_the_step_fails_with_the_reason_after_denial(bot, claims):
    device = claims.chrome("ACTIVE")
    execution_id = run_step(bot, device["serialNumber"])
    request_id = step_request(bot, execution_id)
    message = approval_message(bot, request_id)
    bot.emu.click(APPROVER2, ids.ActionId.DENY, message=message)
    wait_until(lambda: bot.emu.open_view(APPROVER2), 10, "the deny modal")
    bot.emu.submit_view(APPROVER2, values={ids.BlockId.DENY_REASON: "no HR ticket"})
    execution = ended(bot, execution_id)
    assert execution["state"] == "failed"
    assert "denied" in execution["error"] and "no HR ticket" in execution["error"]
    assert request_id in execution["error"]
    assert bot.sandbox.fleet.chrome[device["deviceId"]]["status"] == "ACTIVE"


def test_a_refused_step_fails_before_any_request_and_a_redelivery_runs_once(bot, claims):
    device = claims.chrome("ACTIVE", lambda d: d.get("deviceLicenseType") != "kioskUpgrade")
    serial = device["serialNumber"]
    # the capability check, before any approval: no screenshot outside kiosk mode
    execution_id = run_step(bot, serial, action="screenshot")
    execution = ended(bot, execution_id)
    assert execution["state"] == "failed" and "kiosk" in execution["error"].lower()
    # an unknown action, and someone who is no device operator
    assert "not a device action" in ended(bot, run_step(bot, serial, action="explode"))["error"]
    outsider = ended(bot, run_step(bot, serial, requested_by=OUTSIDER))
    assert "not a device operator" in outsider["error"]
    assert bot.store.db().execute("SELECT count(*) FROM requests").fetchone()[0] == 0
    assert bot.emu.messages(APPROVALS) == []
    # Slack re-delivers the event (X-Slack-Retry-Num): one request, not two
    execution_id = run_step(bot, serial)
    bot.emu.run_step(
        ids.STEP_REQUEST_ACTION,
        bot.emu.execution(execution_id)["inputs"],
        execution_id=execution_id,
        retry_num=1,
    )
    step_request(bot, execution_id)
    assert bot.store.db().execute("SELECT count(*) FROM requests").fetchone()[0] == 1


def test_the_step_completes_after_a_bot_restart(tmp_path, sandbox, emu, claims):
    db = str(tmp_path / "step.db")
    device = claims.chrome("ACTIVE")
    first = start_bot(tmp_path, sandbox, emu, DATABASE_PATH=db)
    try:
        execution_id = run_step(first, device["serialNumber"])
        request_id = step_request(first, execution_id)
        message = approval_message(first, request_id)
    finally:
        first.server.stop()
    second = start_bot(tmp_path, sandbox, emu, DATABASE_PATH=db)
    try:
        assert emu.execution(execution_id)["state"] == "running"
        emu.click(APPROVER1, ids.ActionId.APPROVE, message=message)
        wait_state(second, request_id, "succeeded")
        execution = ended(second, execution_id)
        assert execution["state"] == "completed"
        assert execution["outputs"]["request_id"] == request_id
        assert execution["outputs"]["final_state"] == "succeeded"
    finally:
        second.server.stop()


def test_the_emulator_speaks_the_events_api_handshake(bot):
    reply = bot.emu.verify_url("challenge-123")
    assert reply.status == 200 and "challenge-123" in reply.body


def test_the_job_ends_steps_no_hook_ended(bot, claims):
    from bot import approvals

    device = claims.chrome("ACTIVE")
    execution_id = run_step(bot, device["serialNumber"])
    request_id = step_request(bot, execution_id)
    # the process that decided stopped before it could end the step: no hook this time
    hooks = list(bot.svc.hooks)
    bot.svc.hooks.clear()
    try:
        approvals.deny(bot.svc, request_id, APPROVER1, "not today")
    finally:
        bot.svc.hooks.extend(hooks)
    assert bot.emu.execution(execution_id)["state"] == "running"
    assert workflow.finish_waiting(bot.svc) == 1
    execution = bot.emu.execution(execution_id)
    assert execution["state"] == "failed" and "not today" in execution["error"]
    assert workflow.finish_waiting(bot.svc) == 0  # once

    # a step whose process stopped before its request was recorded is failed, not left hanging
    other = run_step(bot, claims.chrome("ACTIVE")["serialNumber"])
    step_request(bot, other)
    bot.store.db().execute(
        "UPDATE workflow_steps SET request_id = NULL, created_at = 0 WHERE execution_id = ?",
        [other],
    )
    workflow.finish_waiting(bot.svc)
    failed = bot.emu.execution(other)
    assert failed["state"] == "failed" and "stopped while recording" in failed["error"]


def test_the_emulator_completes_a_step_once_and_its_token_ends_with_it(emu):
    from conftest import BOT_TOKEN
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    emu.bot_url = "http://127.0.0.1:9/slack/events"  # nobody listens: only the Web API matters
    with pytest.raises(OSError):
        emu.run_step(ids.STEP_REQUEST_ACTION, {"device": "x"})
    execution_id = emu.executions()[-1]["id"]
    token = emu.execution(execution_id)["token"]
    assert token.startswith("xwfp-")
    as_step = WebClient(token=token, base_url=emu.api_url)
    assert as_step.auth_test()["ok"]  # the workflow token works while the step runs
    bot = WebClient(token=BOT_TOKEN, base_url=emu.api_url)
    with pytest.raises(SlackApiError) as missing:
        bot.functions_completeSuccess(function_execution_id="Fx0", outputs={})
    assert missing.value.response["error"] == "function_execution_not_found"
    bot.functions_completeSuccess(function_execution_id=execution_id, outputs={"request_id": "R1"})
    assert emu.execution(execution_id)["outputs"] == {"request_id": "R1"}
    with pytest.raises(SlackApiError) as twice:
        bot.functions_completeError(function_execution_id=execution_id, error="late")
    assert twice.value.response["error"] == "execution_not_in_running_state"
    with pytest.raises(SlackApiError) as ended:
        as_step.auth_test()
    assert ended.value.response["error"] == "invalid_auth"


def test_the_requester_cancels_from_the_home_tab_and_the_step_fails(bot, claims):
    device = claims.chrome("ACTIVE")
    execution_id = run_step(bot, device["serialNumber"])
    request_id = step_request(bot, execution_id)
    bot.emu.open_home(OPERATOR)
    view = wait_until(
        lambda: (v := bot.emu.home_view(OPERATOR)) and request_id in flatten(v["blocks"]) and v,
        10,
        "the request on the requester's Home tab",
    )
    bot.emu.click(OPERATOR, ids.ActionId.CANCEL_REQUEST, view=view, block_id=f"mine-{request_id}")
    execution = ended(bot, execution_id)
    assert execution["state"] == "failed" and "cancelled" in execution["error"]
    assert f"<@{OPERATOR}>" in execution["error"]


@pytest.mark.parametrize(
    ("action", "platform", "needle"),
    [
        ("move", "chrome", "needs more than a device"),
        ("reset-password", "android", "needs more than a device"),
        ("lock", "chrome", "not something a Chrome OS device can do"),
    ],
)
def test_actions_the_step_cannot_ask_for_fail_it_with_why(bot, claims, action, platform, needle):
    if platform == "chrome":
        serial = claims.chrome("ACTIVE")["serialNumber"]
    else:
        serial = claims.fitting(action, "android")["hardwareInfo"]["serialNumber"]
    execution = ended(bot, run_step(bot, serial, action=action))
    assert execution["state"] == "failed" and needle in execution["error"], execution
    assert bot.store.db().execute("SELECT count(*) FROM requests").fetchone()[0] == 0
