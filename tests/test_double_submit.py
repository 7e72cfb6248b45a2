"""One form, one request: a modal submitted twice — a double click, a
second client — arrives with two trigger ids; the second is refused with a clear message and
makes no second request."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
from conftest import (
    OPERATOR,
    flatten,
    open_modal,
    request_rows,
    serial,
    wait_until,
)


def dm_texts(bot: Any, user: str) -> list[str]:
    return [flatten(m) for m in bot.emu.messages("D" + user[1:])]


def resubmit(bot: Any, payload: dict[str, Any]) -> Any:
    """The same view submitted again: Slack sends it with a new trigger id."""
    again = copy.deepcopy(payload)
    again["trigger_id"] = bot.emu.issue_trigger(OPERATOR)
    return bot.emu._deliver_payload("view_submission", again)


def test_a_form_submitted_twice_makes_one_request(bot, claims):
    device = claims.chrome()
    view = open_modal(bot, f"disable {serial(device)}")
    reply = bot.emu.submit_view(OPERATOR, view["id"], {"why": "other", "reason": "INC-7"})
    assert reply.status == 200
    payload = next(d for d in reversed(bot.emu.deliveries) if d.kind == "view_submission").payload
    second = resubmit(bot, payload)
    assert second.status == 200
    wait_until(
        lambda: any("already submitted" in t for t in dm_texts(bot, OPERATOR)),
        10,
        "the second submission refused in words",
    )
    rows = request_rows(bot, "disable")
    assert len([r for r in rows if serial(device) in r["devices"]]) == 1
    # the same draft under another view hash (a forged or re-rendered view): refused as well
    forged = copy.deepcopy(payload)
    forged["view"]["hash"] = "1.forged"
    resubmit(bot, forged)
    wait_until(lambda: sum("already submitted" in t for t in dm_texts(bot, OPERATOR)) == 2)
    rows = request_rows(bot, "disable")
    assert len([r for r in rows if serial(device) in r["devices"]]) == 1


@pytest.mark.both_stores
def test_simultaneous_submissions_make_one_request(bot, claims):
    device = claims.chrome()
    view = open_modal(bot, f"disable {serial(device)}")
    # capture what a submission looks like, then send it twice at once with two trigger ids
    state = {"why": "other", "reason": "INC-8"}
    template: dict[str, Any] = {
        "type": "view_submission",
        "team": {"id": bot.emu.team_id, "domain": bot.emu.team_domain},
        "user": bot.emu._user_ref(OPERATOR),
        "api_app_id": "A0DEVICEBOT",
        "token": bot.emu.verification_token,
        "view": {**view, "state": {"values": bot.emu._state_values(view, state)}},
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    barrier = threading.Barrier(2)
    replies: list[Any] = []

    def send() -> None:
        barrier.wait()
        replies.append(resubmit(bot, template))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status for r in replies] == [200, 200]
    wait_until(lambda: any(serial(device) in r["devices"] for r in request_rows(bot, "disable")))
    wait_until(lambda: any("already submitted" in t for t in dm_texts(bot, OPERATOR)))
    rows = [r for r in request_rows(bot, "disable") if serial(device) in r["devices"]]
    assert len(rows) == 1
