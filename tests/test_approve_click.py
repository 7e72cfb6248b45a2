"""What one Approve click costs: the Slack writes and request loads it makes.

A click wins pending → approved → executing; the threads hear of both changes once (each
message edited once, one note per thread), before the one Google call.
"""

from __future__ import annotations

from typing import Any

from conftest import APPROVALS, APPROVER1, HELPDESK, OPERATOR, flatten, wait_until

from bot import approvals, ids, requests
from bot.requests import NewRequest


def _submit(bot: Any, device: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    found = bot.svc.devices.resolve(device["serialNumber"])
    request_id = approvals.submit(
        bot.svc,
        NewRequest(
            action="disable",
            platform=found.platform,
            devices=(found,),
            params={"why": "other"},
            requester=OPERATOR,
            reason="ticket 7",
            channel=HELPDESK,
        ),
    )
    message = wait_until(
        lambda: next((m for m in bot.emu.messages(APPROVALS) if request_id in flatten(m)), None),
        10,
        f"the approval message of {request_id}",
    )
    return request_id, message


def _state(bot: Any, request_id: str) -> str:
    row = bot.store.db().execute("SELECT state FROM requests WHERE id = ?", [request_id])
    return str(row.fetchone()[0])


def test_one_approve_click_tells_each_change_once(bot, claims, monkeypatch):
    device = claims.chrome("ACTIVE")
    request_id, message = _submit(bot, device)
    row = next(bot.store.db().query("SELECT * FROM requests WHERE id = ?", [request_id]))
    # the request's own two messages (the audit anchors go to a thread of their own)
    ours = {(APPROVALS, message["ts"]), (row["requester_channel"], row["requester_ts"])}
    mutations = bot.sandbox.log.count(method="POST", path_contains="batchChangeStatus")
    loads: list[bool] = []  # per load: was the Google call made already?
    real_load = requests.load

    def counting_load(svc: Any, rid: str) -> requests.Request:
        sent = bot.sandbox.log.count(method="POST", path_contains="batchChangeStatus")
        loads.append(sent > mutations)
        return real_load(svc, rid)

    monkeypatch.setattr(requests, "load", counting_load)
    start = bot.emu.mark()
    reply = bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
    assert reply.status == 200
    wait_until(lambda: _state(bot, request_id) == "succeeded", 15, "the request to succeed")
    done = f"{device['serialNumber']} is now disabled."

    def told() -> list[Any]:
        calls = [
            c
            for c in bot.emu.calls[start:]
            if (c.args.get("channel"), c.args.get("thread_ts") or c.args.get("ts")) in ours
        ]
        return calls if sum(done in str(c.args) for c in calls) == 2 else []

    calls = wait_until(told, 10, "the outcome in both threads")
    assert [c.method for c in calls] == [
        # approved and executing, told once: each message edited, a note in each thread
        "chat.update",
        "chat.update",
        "chat.postMessage",
        "chat.postMessage",
        # then the Google call, and its outcome told the same way
        "chat.update",
        "chat.update",
        "chat.postMessage",
        "chat.postMessage",
    ]
    assert all("Approved by" in str(c.args) for c in calls[2:4])
    assert all(done in str(c.args) for c in calls[6:])
    assert "executing" in str(calls[1].args) or "executing" in str(calls[0].args)
    # the request is read twice before the Google call (to decide, then to tell), once after
    assert loads == [False, False, True]


def test_every_hook_hears_every_change_and_a_failing_one_stops_none(caplog):
    from bot.changes import LostCaseChanged, RequestChanged
    from bot.requests import RequestState
    from bot.services import Services

    svc = Services(*([None] * 8))  # no store, Slack or Google: only the hooks are used
    heard: list[tuple[str, Any]] = []

    def broken(svc: Any, change: Any) -> None:
        raise RuntimeError("a broken hook")

    svc.hooks += [
        lambda svc, change: heard.append(("first", change)),
        broken,
        lambda svc, change: heard.append(("last", change)),
    ]
    changes = [RequestChanged("R1", RequestState.APPROVED), LostCaseChanged("android", "d/1")]
    for change in changes:
        svc.changed(change)
    assert heard == [(who, c) for c in changes for who in ("first", "last")]
    failures = [
        r for r in caplog.records if r.name == "bot.services" and "hook broken" in r.message
    ]
    assert len(failures) == 2
