"""The help desk's view, end to end: what an approver, a
requester and the lost-devices channel read, over signed HTTP with the Slack emulator and
the sandbox Google, a real SQLite file and the real scheduler."""

from __future__ import annotations

import json
import time
from typing import Any

from conftest import (
    APPROVALS,
    APPROVER1,
    APPROVER2,
    HELPDESK,
    LOST,
    OPERATOR,
    OUTSIDER,
    approval_message,
    flatten,
    request_row,
    start_bot,
    wait_state,
    wait_until,
)
from test_approvals import submit

from bot import approvals, audit, ids, request_views
from bot.requests import NewRequest
from bot.slack_out import SANDBOX_MARK


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The buttons of a message by their text."""
    out = {}
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("type") == "button":
                out[element["text"]["text"]] = element
    return out


def thread(bot: Any, channel: str, ts: str) -> list[dict[str, Any]]:
    return bot.emu.messages(channel, thread_ts=ts)


def ephemeral(bot: Any, needle: str, user: str = OPERATOR) -> dict[str, Any]:
    return wait_until(
        lambda: next((m for m in bot.emu.ephemerals(user) if needle in flatten(m)), None),
        10,
        f"an ephemeral containing {needle!r}",
    )


# ---- an approval card an approver can trust at a glance ------------------------------------------


def test_approval_card_reads_in_words_with_dates_expiry_and_a_link(bot, claims):
    device = claims.chrome("ACTIVE")
    request_id = submit(
        bot,
        "disable",
        device["serialNumber"],
        {"why": "lost_or_stolen"},
        reason="INC-4411 left on the train",
    )
    message = approval_message(bot, request_id)
    text = flatten(message)
    assert f"<@{OPERATOR}> asked to *disable it*" in text
    assert "*Reason:* INC-4411 left on the train" in text
    assert "*Why:* Lost or stolen" in text and "lost_or_stolen" not in text
    assert "<!date^" in text and "{date_short_pretty}" in text
    assert "expires in 24 h" in text
    assert request_views.APPROVAL_PROMISE in text and "ingerprint" not in text
    row = request_row(bot, request_id)
    link = bot.emu.calls_to("chat.getPermalink")
    assert link, "the bot asked Slack for the requester's message link"
    assert f"/archives/{HELPDESK}/p{row['requester_ts'].replace('.', '')}|their thread>" in text, (
        text[:600]
    )
    # the reason is in the public request message too
    mine = bot.emu.message(row["requester_channel"], row["requester_ts"])
    assert "INC-4411 left on the train" in flatten(mine)


def test_flags_are_shown_by_label(bot, claims):
    device = claims.fitting("reset-password", "android")
    request_id = submit(
        bot,
        "reset-password",
        device["name"],
        {"flags": ["REQUIRE_ENTRY", "LOCK_NOW"]},
        secret={"new_password": "correct-horse-9"},
    )
    text = flatten(approval_message(bot, request_id))
    assert "*Flags:* Require entry, Lock now" in text and "REQUIRE_ENTRY" not in text
    assert "*New password:* set, never shown" in text and "correct-horse" not in text


# ---- approvals that do not stall -----------------------------------------------------------------


def test_reminder_at_half_the_ttl_once_then_expiry_mentions_and_request_again(
    tmp_path, sandbox, emu, claims
):
    bot = start_bot(tmp_path, sandbox, emu, APPROVAL_TTL="2")
    try:
        device = claims.chrome("ACTIVE")
        request_id = submit(bot, "disable", device["serialNumber"], {"why": "other"})
        message = approval_message(bot, request_id)
        created = request_row(bot, request_id)["created_at"]

        def reminders() -> list[str]:
            return [
                flatten(m)
                for m in thread(bot, APPROVALS, message["ts"])
                if "still waiting" in flatten(m)
            ]

        wait_until(reminders, 10, "the reminder in the approval thread")
        assert time.time() >= created + 1.0  # not before half the TTL
        [reminder] = reminders()
        assert f"<@{APPROVER1}>" in reminder and "<!subteam^S0APPROVERS>" in reminder
        assert f"<@{OPERATOR}>" in reminder and request_id in reminder
        wait_state(bot, request_id, "expired", timeout=10)
        row = request_row(bot, request_id)
        expired_note = wait_until(
            lambda: next(
                (
                    m
                    for m in thread(bot, row["requester_channel"], row["requester_ts"])
                    if "expired" in flatten(m)
                ),
                None,
            ),
            10,
            "the expiry note in the requester's thread",
        )
        assert f"<@{OPERATOR}>, your request expired" in flatten(expired_note)
        assert "Request again" in buttons(expired_note)
        # the job keeps running: still one reminder
        runs = bot.server.jobs.runs.get("remind-approvers", 0)
        wait_until(lambda: bot.server.jobs.runs.get("remind-approvers", 0) >= runs + 2, 10)
        assert len(reminders()) == 1
        assert [e["event"] for e in audit.events(bot.store, request_id=request_id)].count(
            "reminded"
        ) == 1
        # Request again: a new pending request for the same device and details
        bot.emu.click(OPERATOR, ids.ActionId.REQUEST_AGAIN, message=expired_note)
        new_id = wait_until(
            lambda: (
                bot.store.db()
                .execute(
                    "SELECT id FROM requests WHERE id != ? AND device_ids LIKE ?",
                    [request_id, f"%{device['deviceId']}%"],
                )
                .fetchone()
            ),
            10,
            "the new request",
        )[0]
        assert request_row(bot, new_id)["state"] == "pending"
        assert request_row(bot, new_id)["reason"] == request_row(bot, request_id)["reason"]
        # once: a second click (or a forged one) hears where the first went
        bot.emu.click(OPERATOR, ids.ActionId.REQUEST_AGAIN, message=expired_note)
        bot.wait_ephemeral("was already asked again")
        rows = bot.store.db().execute(
            "SELECT count(*) FROM requests WHERE device_ids LIKE ?", [f"%{device['deviceId']}%"]
        )
        assert rows.fetchone()[0] == 2
        assert bot.sandbox.fleet.chrome[device["deviceId"]]["status"] == "ACTIVE"
    finally:
        bot.server.stop()


def test_deny_mentions_the_requester_and_reads_once(bot, claims):
    device = claims.chrome("ACTIVE")
    request_id = submit(bot, "disable", device["serialNumber"], {"why": "other"})
    message = approval_message(bot, request_id)
    bot.emu.click(APPROVER2, ids.ActionId.DENY, value=request_id, message=message)
    view = wait_until(lambda: bot.emu.open_view(APPROVER2), 10, "deny modal")
    labels = [b["label"]["text"] for b in view["blocks"] if b["type"] == "input"]
    assert labels == ["Reason"]  # Slack adds "(optional)" itself
    bot.emu.submit_view(APPROVER2, values={ids.BlockId.DENY_REASON: "no ticket"})
    row = wait_state(bot, request_id, "denied")
    note = wait_until(
        lambda: next(
            (
                flatten(m)
                for m in thread(bot, row["requester_channel"], row["requester_ts"])
                if "denied" in flatten(m)
            ),
            None,
        )
    )
    assert f"<@{OPERATOR}>, your request was denied by <@{APPROVER2}>" in note
    assert "no ticket. Nothing was done" in note
    card = wait_until(
        lambda: (
            "Denied by" in flatten(m := bot.emu.message(APPROVALS, message["ts"])) and flatten(m)
        )
    )
    assert "denied by" not in card.replace("Denied by", "")


# ---- lost-device posts you can act on ------------------------------------------------------------


def lost_post(bot: Any, serial: str) -> dict[str, Any]:
    return wait_until(
        lambda: next((m for m in bot.emu.messages(LOST) if serial in flatten(m)), None),
        10,
        f"the lost post of {serial}",
    )


def test_lost_post_has_reason_reporter_buttons_and_updates_in_place(tmp_path, sandbox, emu, claims):
    bot = start_bot(tmp_path, sandbox, emu, APPROVAL_REQUIRED="none")
    try:
        chromebook = claims.chrome("ACTIVE")
        request_id = submit(
            bot,
            "disable",
            chromebook["serialNumber"],
            {"why": "lost_or_stolen"},
            reason="INC-7 left in a taxi",
        )
        wait_state(bot, request_id, "succeeded")
        post = lost_post(bot, chromebook["serialNumber"])
        text = flatten(post)
        assert "*Why:* Lost or stolen — INC-7 left in a taxi" in text
        assert f"*Reported by* <@{OPERATOR}> <!date^" in text
        assert "Chrome OS" in text and "*Platform*\nchrome" not in text
        assert "{ago}" in text
        assert set(buttons(post)) == {"Found", "Open card"}
        found = buttons(post)["Found"]
        assert found["action_id"] == ids.device_action_id("found")
        assert found["value"] == f"chrome|{chromebook['deviceId']}"
        # a check-in edits the post itself (and is said in its thread)
        edits = len(bot.emu.calls_to("chat.update"))
        sandbox.fleet.check_in(
            chromebook["deviceId"], at=time.time() + 5, ip="10.9.9.9", wan_ip="203.0.113.77"
        )
        wait_until(
            lambda: "203.0.113.77" in flatten(bot.emu.message(LOST, post["ts"])),
            10,
            "the post edited with the new network",
        )
        assert len(bot.emu.calls_to("chat.update")) > edits
        assert any("203.0.113.77" in flatten(m) for m in thread(bot, LOST, post["ts"]))
        # Open card answers with the device card; Found opens the found form for this device
        bot.emu.click(OPERATOR, ids.ActionId.SHOW_DEVICE, message=post)
        ephemeral(bot, f"Chrome OS {chromebook['serialNumber']}")
        assert "Lost device" in flatten(bot.emu.message(LOST, post["ts"]))  # not replaced
        bot.emu.click(OPERATOR, ids.device_action_id("found"), message=post)
        view = wait_until(
            lambda: (
                (v := bot.emu.open_view(OPERATOR))
                and v.get("callback_id") == ids.CallbackId.ACTION
                and v
            ),
            10,
            "the Found form",
        )
        assert chromebook["serialNumber"] in flatten(view)
    finally:
        bot.server.stop()


def test_android_lost_post_offers_wipe(bot, claims):
    phone = claims.fitting("lost", "android")
    serial = phone["hardwareInfo"]["serialNumber"]
    device = bot.svc.devices.resolve(serial)
    from bot import lost

    lost.report(bot.svc, device, OPERATOR)
    post = lost_post(bot, serial)
    assert set(buttons(post)) == {"Found", "Wipe…", "Open card"}
    assert buttons(post)["Wipe…"]["action_id"] == ids.device_action_id("wipe")
    assert "Android" in flatten(post)


# ---- history a person can read -------------------------------------------------------------------


def test_history_in_words_with_moves_raw_detail_and_a_wiped_phone(tmp_path, sandbox, emu, claims):
    bot = start_bot(tmp_path, sandbox, emu, APPROVAL_REQUIRED="none")
    try:
        first, second = claims.chrome("ACTIVE"), claims.chrome("ACTIVE")
        devices = tuple(bot.svc.devices.resolve(d["serialNumber"]) for d in (first, second))
        move = approvals.submit(
            bot.svc,
            NewRequest(
                action="move",
                platform="chrome",
                devices=devices,
                params={"ou": "/Support"},
                requester=OPERATOR,
                reason="INC-12 loaners",
                channel=HELPDESK,
            ),
        )
        wait_state(bot, move, "succeeded", "failed")
        disable = submit(
            bot, "disable", second["serialNumber"], {"why": "other"}, reason="INC-4411"
        )
        wait_state(bot, disable, "succeeded")
        bot.slash(f"history {second['serialNumber']}")
        page = ephemeral(bot, "History of Chrome OS")
        text = flatten(page)
        assert f"<@{OPERATOR}> asked to move it to `/Support` with 1 other device" in text
        assert f"<@{OPERATOR}> asked to disable it (INC-4411; Why: Other)" in text
        assert "· disabled <!date^" in text
        assert text.index("asked to disable") < text.index("asked to move")  # newest first
        assert "executing" not in text and "params" not in text
        # Raw detail: the audit events as logged
        bot.emu.click(OPERATOR, ids.ActionId.HISTORY_RAW, message=page)
        raw = flatten(ephemeral(bot, "Audit log of"))
        assert '"event": "requested"' in raw and '"event": "executing"' in raw and move in raw

        # a wiped phone: Google forgets it, its history stays reachable by serial and by id
        phone = claims.fitting("wipe", "android")
        serial = phone["hardwareInfo"]["serialNumber"]
        wipe = submit(bot, "wipe", serial, reason="INC-99 leaver")
        wait_state(bot, wipe, "succeeded", timeout=20)
        wait_until(lambda: phone["name"] not in sandbox.fleet.android, 10, "the phone removed")

        def gone_pages() -> list[str]:
            return [
                flatten(m)
                for m in bot.emu.ephemerals(OPERATOR)
                if "no longer at Google" in flatten(m) and "asked to wipe it" in flatten(m)
            ]

        for n, ref in enumerate((serial, phone["name"].rsplit("/", 1)[-1]), start=1):
            bot.slash(f"history {ref}")
            wait_until(
                lambda n=n: len(gone_pages()) >= n, 10, f"the wiped phone's history by {ref}"
            )
            gone = gone_pages()[-1]
            assert "INC-99 leaver" in gone and "· wiped <!date^" in gone
    finally:
        bot.server.stop()


# ---- wording -------------------------------------------------------------------------------------


def test_help_is_grouped_by_platform_and_marks_approval(bot):
    bot.slash("help")
    text = bot.wait_ephemeral("/device sub-commands")
    assert "*Look up and follow*" in text
    chrome, android = text.index("*Chrome OS actions*"), text.index("*Android actions*")
    assert chrome < text.index("/device disable <device>") < android
    assert text.index("/device wipe <device>") > android
    disable_line = next(line for line in text.splitlines() if "/device disable" in line)
    assert ":lock: _needs approval_" in disable_line


def test_outsiders_hear_who_to_ask_not_variable_names(bot):
    bot.slash("find x", user=OUTSIDER)
    text = bot.wait_ephemeral("not allowed", user=OUTSIDER)
    assert "IT admin" in text and "DEVICE_" not in text


def test_every_sandbox_message_carries_the_same_mark(bot, claims):
    bot.slash("nosuchcommand")
    error = ephemeral(bot, "is not a sub-command")
    assert SANDBOX_MARK in json.dumps(error["blocks"], ensure_ascii=False) and error[
        "text"
    ].startswith("[SANDBOX] ")
    device = claims.chrome("ACTIVE")
    bot.slash(f"find id:{device['serialNumber']}")
    page = ephemeral(bot, "matches")
    assert SANDBOX_MARK in json.dumps(page["blocks"], ensure_ascii=False)
    assert "*1* device matches" in flatten(page)


def test_sentences_join_with_punctuation_and_counts_agree() -> None:
    from bot.blocks import plural, sentence

    assert sentence("Use a policy instead") + " Nothing was done." == (
        "Use a policy instead. Nothing was done."
    )
    assert sentence("Done.") == "Done." and sentence("") == ""
    assert plural(1, "device") == "1 device" and plural(2, "device") == "2 devices"
    assert request_views.hours_left(100 + 23 * 3600, 100) == "expires in 23 h"
    assert request_views.hours_left(100 + 1200, 100) == "expires in 20 min"


def test_history_shows_annotation_changes_and_a_cleared_one(tmp_path, sandbox, emu, claims):
    from test_actions import run

    bot = start_bot(tmp_path, sandbox, emu, APPROVAL_REQUIRED="none")
    try:
        device = claims.chrome(
            where=lambda d: bool(d.get("annotatedLocation") and d.get("annotatedAssetId"))
        )
        old_location, old_asset = device["annotatedLocation"], device["annotatedAssetId"]
        view = run(bot, f"annotate {device['serialNumber']}")
        bot.emu.submit_view(
            OPERATOR,
            view["id"],
            {
                "annotatedLocation": "Desk 9",
                "annotatedAssetId": "",
                ids.BlockId.CLEAR_FIELDS: ["annotatedAssetId"],
            },
        )
        wait_until(
            lambda: (
                sandbox.fleet.chrome_get(device["deviceId"]).get("annotatedLocation") == "Desk 9"
            ),
            10,
            "the annotation",
        )
        bot.slash(f"history {device['serialNumber']}")
        text = bot.wait_ephemeral("asked to change its annotations")
        assert f"Location: {old_location} → Desk 9" in text
        assert f"Asset id: cleared (was: {old_asset})" in text
        assert "previous" not in text and "(cleared)" not in text
    finally:
        bot.server.stop()
