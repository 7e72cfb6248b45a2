"""Operating the bot: /metrics, /readyz, JSON logs."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from dataclasses import replace
from typing import Any

import pytest
from conftest import APPROVER1, OPERATOR, Bot, Claims, start_bot, wait_until

from bot import ids
from tests.test_approvals import approval_message, submit, wait_state
from tests.test_resilience import BotProcess, process_env


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sample(page: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text page (0 when absent)."""
    for line in page.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric != name:
            continue
        found = dict(
            part.split("=", 1) for part in label_text.rstrip("}").split(",") if "=" in part
        )
        if all(found.get(k) == f'"{v}"' for k, v in labels.items()):
            return float(value)
    return 0.0


def test_metrics_move_during_a_flow(bot: Bot, claims: Claims) -> None:
    status, before = get(bot.url + "/metrics")
    assert status == 200 and "devicebot_slack_requests_total" in before

    device = claims.chrome("ACTIVE")
    bot.slash(f"info {device['serialNumber']}")
    bot.wait_ephemeral(device["serialNumber"])
    request_id = submit(bot, "disable", device["serialNumber"], {"why": "other"})
    message = approval_message(bot, request_id)
    bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
    wait_state(bot, request_id, "succeeded")

    def after() -> str | None:
        page = get(bot.url + "/metrics")[1]
        return page if sample(page, "devicebot_approval_wait_seconds_count") >= 1 else None

    page = wait_until(after, 10, "the approval in the metrics")
    commands = "devicebot_slack_requests_total"
    assert sample(page, commands, kind="command", outcome="ok") > sample(
        before, commands, kind="command", outcome="ok"
    )
    assert sample(page, commands, kind="block_actions", outcome="ok") >= 1
    assert sample(page, "devicebot_ack_seconds_count") > sample(
        before, "devicebot_ack_seconds_count"
    )
    calls = "devicebot_google_calls_total"
    assert (
        sample(page, calls, api="admin", status="200")
        > sample(before, calls, api="admin", status="200")
        or sample(page, calls, api="directory", status="200") > 0
    )
    assert sample(page, "devicebot_google_call_seconds_count") > 0
    assert sample(page, "devicebot_requests", state="succeeded") >= 1
    assert sample(page, "devicebot_jobs_lease_holder", this_process="true") == 1
    assert "devicebot_lost_cases_open" in page and "devicebot_pending_commands" in page
    assert "devicebot_android_index_age_seconds" in page
    wait_until(
        lambda: (
            sample(get(bot.url + "/metrics")[1], "devicebot_job_seconds_count", job="poll-outcomes")
            >= 1
        ),
        10,
        "a poll cycle in the metrics",
    )


def test_google_retries_and_quota_errors_are_counted(bot: Bot, claims: Claims) -> None:
    device = claims.chrome("ACTIVE")
    bot.sandbox.faults.add(429, count=1, path_contains=device["deviceId"], method="GET")
    bot.slash(f"info {device['deviceId']}")
    bot.wait_ephemeral(device["serialNumber"])
    page = get(bot.url + "/metrics")[1]
    assert sample(page, "devicebot_google_quota_errors_total") >= 1
    assert sample(page, "devicebot_google_retries_total") >= 1


def test_unsigned_requests_are_counted_as_unverified(bot: Bot) -> None:
    request = urllib.request.Request(
        bot.url + "/slack/events", data=b"command=%2Fdevice&text=help", method="POST"
    )
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as exc:
        assert exc.code == 401
    page = get(bot.url + "/metrics")[1]
    assert (
        sample(page, "devicebot_slack_requests_total", kind="unverified", outcome="rejected") >= 1
    )


def test_metrics_on_their_own_port(tmp_path: Any, sandbox: Any, emu: Any) -> None:
    own = start_bot(tmp_path, sandbox, emu, METRICS_PORT="0")
    try:
        assert own.server.metrics_url != own.url + "/metrics"
        status, page = get(own.server.metrics_url)
        assert status == 200 and "devicebot_requests" in page
        assert get(own.url + "/metrics")[0] == 404  # not on the Slack port then
    finally:
        own.server.stop()


def test_readyz_names_the_failing_part(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    status, body = get(bot.url + "/readyz")
    assert status == 200, body
    assert body.startswith("ready") and "store: ok" in body and "slack: ok" in body

    bot.server.readiness.ttl = 0  # look again at every probe
    real_token = bot.emu.bot_token
    bot.emu.bot_token = "xoxb-revoked"
    try:
        status, body = get(bot.url + "/readyz")
        assert status == 503 and "slack: invalid_auth" in body and "google: ok" in body
    finally:
        bot.emu.bot_token = real_token

    bot.sandbox.faults.add(500, count=20, path_contains="chromeos", method="GET")
    # every attempt is refused: its retries are all made, without the back-off's waits
    executor = bot.svc.google.require_chrome().executor
    monkeypatch.setattr(executor, "policy", replace(executor.policy, sleep=lambda _s: None))
    try:
        status, body = get(bot.url + "/readyz")
        assert status == 503 and "google: Directory API" in body and "slack: ok" in body
    finally:
        bot.sandbox.faults.clear()

    store = bot.svc.store
    original = store.transaction

    def read_only() -> Any:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    store.transaction = read_only  # type: ignore[method-assign]
    try:
        status, body = get(bot.url + "/readyz")
        assert status == 503 and "store: " in body and "readonly" in body
    finally:
        store.transaction = original  # type: ignore[method-assign]
    assert get(bot.url + "/healthz")[0] == 200  # alive all along


def test_json_logs_one_object_per_line_with_context(tmp_path, sandbox, emu, claims) -> None:
    env = process_env(tmp_path, sandbox, emu, LOG_FORMAT="json", LOG_LEVEL="INFO")
    process = BotProcess(env)
    try:
        emu.bot_url = process.url + "/slack/events"
        device = claims.chrome("ACTIVE")
        reply = emu.slash_command(OPERATOR, f"disable {device['serialNumber']}")
        assert reply.status == 200
        wait_until(lambda: emu.calls_to("views.open"), 15, "the modal")
        bot_token = env["SLACK_BOT_TOKEN"]
        process.stop()
        lines = [line for line in process.lines if line.strip()]
        assert lines
        records = [json.loads(line) for line in lines]  # every line is one JSON object
        for record in records:
            assert {"time", "level", "logger", "message"} <= set(record)
        assert any(r.get("slack_user") == OPERATOR for r in records), records[-5:]
        assert bot_token not in "".join(lines)
    finally:
        process.stop()


def test_slack_requests_reach_the_counters_without_a_scrape(bot: Bot) -> None:
    """The HTTP entry queues its count without a lock; the flusher folds it in within
    FLUSH_SECONDS (a scrape folds it in at once, as the test above shows)."""
    from bot.metrics import FLUSH_SECONDS

    metrics = bot.server.metrics
    name, labels = "devicebot_slack_requests_total", {"kind": "command", "outcome": "ok"}
    before = metrics.registry.get_sample_value(name, labels) or 0.0
    bot.slash("help")
    wait_until(
        lambda: (metrics.registry.get_sample_value(name, labels) or 0.0) > before,
        FLUSH_SECONDS * 5,
        "the command counted without a scrape",
    )
