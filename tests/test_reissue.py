"""Re-issue is checked like any other request: only a command that
expired on the device, only by its requester or an approver, only once. The button is just
a payload anyone can forge."""

from __future__ import annotations

import copy
from typing import Any

from conftest import (
    APPROVALS,
    APPROVER1,
    OPERATOR,
    flatten,
    request_row,
    start_bot,
    thread_message,
    wait_state,
    wait_until,
)
from test_approvals import submit

from bot import approvals, audit, ids

OTHER_OPERATOR = "U0OTHEROP"


def forge_reissue(bot: Any, user: str, request_id: str, message: dict[str, Any]) -> None:
    """Click a Re-issue button planted in a copy of a real message (as a forged payload would)."""
    fake = copy.deepcopy(message)
    fake["blocks"] = [
        *(fake.get("blocks") or []),
        {
            "type": "actions",
            "block_id": "forged",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Re-issue"},
                    "action_id": ids.ActionId.REISSUE,
                    "value": request_id,
                }
            ],
        },
    ]
    reply = bot.emu.click(user, ids.ActionId.REISSUE, message=fake, as_shown=True)
    assert reply.status == 200


def request_count(bot: Any) -> int:
    return int(bot.store.db().execute("SELECT count(*) FROM requests").fetchone()[0])


def test_forged_reissue_of_a_pending_or_ttl_expired_request_makes_nothing(
    tmp_path, sandbox, emu, claims
):
    bot = start_bot(tmp_path, sandbox, emu, DEVICE_OPERATORS=f"{OPERATOR},{OTHER_OPERATOR}")
    try:
        device = claims.chrome("ACTIVE")
        request_id = submit(bot, "disable", device["serialNumber"], {"why": "other"})
        message = wait_until(
            lambda: next((m for m in bot.emu.messages(APPROVALS) if request_id in flatten(m)), None)
        )
        forge_reissue(bot, OTHER_OPERATOR, request_id, message)
        bot.wait_ephemeral("Only the requester or an approver", OTHER_OPERATOR)
        forge_reissue(bot, APPROVER1, request_id, message)
        bot.wait_ephemeral("Only a command that expired on the device", APPROVER1)
        forge_reissue(bot, OPERATOR, request_id, message)
        bot.wait_ephemeral("Only a command that expired on the device", OPERATOR)
        # an approval that ran out (never sent to Google) is not re-issued either
        assert approvals.expire_request(bot.svc, request_id)
        forge_reissue(bot, OPERATOR, request_id, message)
        wait_until(
            lambda: (
                sum("request `" + request_id + "` is expired" in t for t in bot.ephemeral_texts())
                == 1
            )
        )
        assert request_count(bot) == 1
        refused = [
            e for e in audit.events(bot.store, request_id=request_id) if e["event"] == "refused"
        ]
        assert [e["actor"] for e in refused] == [OTHER_OPERATOR]
        assert request_row(bot, request_id)["state"] == "expired"
    finally:
        bot.server.stop()


def test_expired_command_is_reissued_once_by_its_requester(tmp_path, sandbox, emu, claims):
    bot = start_bot(
        tmp_path,
        sandbox,
        emu,
        APPROVAL_REQUIRED="none",
        COMMAND_DURATION="1",
        DEVICE_OPERATORS=f"{OPERATOR},{OTHER_OPERATOR}",
    )
    device = next(
        d
        for d in (claims.android() for _ in range(50))
        if d.get("hardwareInfo", {}).get("serialNumber")
    )
    try:
        sandbox.fleet.set_never_ack(device["name"])
        request_id = submit(bot, "lock", device["hardwareInfo"]["serialNumber"])
        wait_state(bot, request_id, "expired", timeout=20)
        row = request_row(bot, request_id)
        note = thread_message(bot, request_id, ids.ActionId.REISSUE, "a Re-issue button")
        sandbox.fleet.set_never_ack(device["name"], on=False)
        emu.click(OTHER_OPERATOR, ids.ActionId.REISSUE, message=note)
        bot.wait_ephemeral("Only the requester or an approver", OTHER_OPERATOR)
        assert request_count(bot) == 1
        emu.click(OPERATOR, ids.ActionId.REISSUE, message=note)
        wait_until(lambda: request_count(bot) == 2)
        emu.click(OPERATOR, ids.ActionId.REISSUE, message=note)
        bot.wait_ephemeral("was already re-issued")
        assert request_count(bot) == 2
        new_id = (
            bot.store.db()
            .execute("SELECT id FROM requests WHERE id != ?", [request_id])
            .fetchone()[0]
        )
        wait_until(
            lambda: any(
                f"as request `{new_id}`" in flatten(m)
                for m in emu.messages(row["requester_channel"], thread_ts=row["requester_ts"])
            )
        )
        wait_state(bot, new_id, "succeeded", timeout=20)
    finally:
        sandbox.fleet.set_never_ack(device["name"], on=False)
        bot.server.stop()
