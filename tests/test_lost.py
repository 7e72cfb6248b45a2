"""Lost devices end to end: announcement, check-in watch, resolution, restarts."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import LOST, OPERATOR, flatten, start_bot, wait_state, wait_until
from test_approvals import submit

from bot import lost


def lost_messages(bot: Any) -> list[dict[str, Any]]:
    return bot.emu.messages(LOST)


def case_message(bot: Any, serial: str) -> dict[str, Any]:
    return wait_until(
        lambda: next((m for m in lost_messages(bot) if serial in flatten(m)), None),
        10,
        f"a lost-device announcement for {serial}",
    )


def thread(bot: Any, ts: str) -> list[str]:
    return [flatten(m) for m in bot.emu.messages(LOST, thread_ts=ts)]


def company_android(claims: Any) -> dict[str, Any]:
    return claims.android(lambda d: d["apiLevel"] >= 30 and d["ownership"] == "COMPANY_OWNED")


@pytest.mark.both_stores  # the store: lost cases (a generated key, JSON)
def test_android_lost_mode_announce_watch_resolve_across_a_restart(tmp_path, sandbox, emu, claims):
    db = str(tmp_path / "lost.db")
    # the watch ticks every 0.1 s: the test counts its ticks
    settings = {"APPROVAL_REQUIRED": "none", "DATABASE_PATH": db, "LOST_WATCH_INTERVAL": "0.1"}
    bot = start_bot(tmp_path, sandbox, emu, **settings)
    device = company_android(claims)
    serial = device["hardwareInfo"]["serialNumber"]
    try:
        request_id = submit(
            bot, "lost", serial, {"phone": "+1 555 0100", "message": "Please call IT"}
        )
        wait_state(bot, request_id, "succeeded")
        message = case_message(bot, serial)
        text = flatten(message)
        assert "Lost device" in text and f"<@{OPERATOR}>" in text and "request thread" in text
        assert lost.open_case_for(bot.svc, "android", device["name"]) is not None
        # no check-in yet: several ticks post nothing
        ticks = bot.server.jobs.runs.get("lost-watch", 0)
        wait_until(lambda: bot.server.jobs.runs.get("lost-watch", 0) >= ticks + 3)
        assert thread(bot, message["ts"]) == []
        sandbox.fleet.check_in(device["name"], at=time.time() + 5, operator="Vodafone UK")
        wait_until(lambda: len(thread(bot, message["ts"])) == 1, 10, "one check-in post")
        ticks = bot.server.jobs.runs.get("lost-watch", 0)
        wait_until(lambda: bot.server.jobs.runs.get("lost-watch", 0) >= ticks + 3)
        posts = thread(bot, message["ts"])
        assert len(posts) == 1 and "checked in" in posts[0] and "Vodafone UK" in posts[0]
    finally:
        bot.server.stop()
    # a restart loses nothing: the case, its thread and the last check-in survive
    bot = start_bot(tmp_path, sandbox, emu, **settings)
    try:
        sandbox.fleet.check_in(device["name"], at=time.time() + 10, operator="EE")
        wait_until(
            lambda: len(thread(bot, message["ts"])) == 2,
            10,
            "the second check-in after the restart",
        )
        assert "EE" in thread(bot, message["ts"])[1]
        request_id = submit(bot, "found", serial)
        wait_state(bot, request_id, "succeeded")
        wait_until(
            lambda: "Resolved" in flatten(bot.emu.message(LOST, message["ts"])),
            10,
            "the edited announcement",
        )
        assert any(
            "Found" in post and "lost mode stopped" in post for post in thread(bot, message["ts"])
        )
        assert lost.open_case_for(bot.svc, "android", device["name"]) is None
        events = [
            e["event"]
            for e in __import__("bot.audit").audit.events(bot.store, device_ids=[device["name"]])
        ]
        assert "lost_reported" in events and "lost_checkin" in events and "lost_resolved" in events
    finally:
        bot.server.stop()


def test_chrome_lost_disable_and_reenable(tmp_path, sandbox, emu, claims):
    bot = start_bot(tmp_path, sandbox, emu, APPROVAL_REQUIRED="none")
    device = claims.chrome("ACTIVE")
    try:
        request_id = submit(bot, "disable", device["serialNumber"], {"why": "lost_or_stolen"})
        wait_state(bot, request_id, "succeeded")
        message = case_message(bot, device["serialNumber"])
        sandbox.fleet.check_in(
            device["deviceId"], at=time.time() + 5, ip="10.1.2.3", wan_ip="203.0.113.9"
        )
        wait_until(
            lambda: any("203.0.113.9" in p for p in thread(bot, message["ts"])),
            10,
            "the Chrome check-in",
        )
        request_id = submit(bot, "reenable", device["serialNumber"])
        wait_state(bot, request_id, "succeeded")
        wait_until(lambda: "Resolved" in flatten(bot.emu.message(LOST, message["ts"])), 10)
    finally:
        bot.server.stop()


@pytest.mark.both_stores  # the store: lost cases (a generated key, JSON)
def test_a_device_reported_twice_reuses_its_thread(bot, claims):
    device = company_android(claims)
    parsed = bot.svc.devices.resolve(device["hardwareInfo"]["serialNumber"])
    first = lost.report(bot.svc, parsed, OPERATOR)
    second = lost.report(bot.svc, parsed, "U0APPROVER1")
    assert first == second
    message = case_message(bot, parsed.serial)
    wait_until(lambda: any("again" in p for p in thread(bot, message["ts"])))
    assert len([m for m in lost_messages(bot) if parsed.serial in flatten(m)]) == 1


def test_chrome_found_closes_the_case_without_google(bot, claims):
    device = claims.chrome("DISABLED")
    parsed = bot.svc.devices.resolve(device["serialNumber"])
    lost.report(bot.svc, parsed, OPERATOR)
    bot.sandbox.log.clear()
    request_id = submit(bot, "found", device["serialNumber"])
    wait_state(bot, request_id, "succeeded")
    assert lost.open_case_for(bot.svc, "chrome", device["deviceId"]) is None
    assert bot.sandbox.log.count(method="POST") == 0


def test_watch_makes_no_google_call_without_open_cases(bot):
    bot.settle()
    bot.sandbox.log.clear()
    for _ in range(3):
        assert lost.watch(bot.svc) == 0
    assert bot.sandbox.log.count() == 0


def test_card_shows_the_lost_banner_and_history_the_case(bot, claims):
    device = claims.chrome("DISABLED")
    parsed = bot.svc.devices.resolve(device["serialNumber"])
    lost.report(bot.svc, parsed, OPERATOR)
    bot.slash(f"info {device['serialNumber']}")
    card = bot.wait_ephemeral("Reported lost")
    assert f"<@{OPERATOR}>" in card
    bot.slash(f"history {device['serialNumber']}")
    bot.wait_ephemeral("reported it lost")


def test_watch_reads_all_android_cases_in_one_request(bot, claims):
    devices = [company_android(claims) for _ in range(5)]
    for device in devices:
        lost.report(
            bot.svc, bot.svc.devices.resolve(device["hardwareInfo"]["serialNumber"]), OPERATOR
        )
    bot.settle()
    for device in devices[:2]:
        bot.sandbox.fleet.check_in(device["name"], at=time.time() + 30, operator="Orange")
    bot.sandbox.log.clear()
    assert lost.watch(bot.svc) == 2
    assert bot.sandbox.log.count() == 1  # one batch request for the five Android cases
    assert bot.sandbox.log.count(path_contains="batch") == 1
    assert lost.watch(bot.svc) == 0  # each check-in is posted once
