"""Approver groups fail closed.

A user group's member list is cached; for the approver role a list past its lifetime is not
trusted when Slack cannot list the group again: approving through that group is refused,
with the reason, and the refused attempt is audited.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import APPROVALS, APPROVER2, HELPDESK, OPERATOR, flatten, wait_until
from slack_sdk.errors import SlackApiError

from bot import approvals, audit, ids
from bot.requests import NewRequest
from bot.roles import MembershipUnknown, Role, Roles


class FakeClient:
    """usergroups.users.list from a dict; `error` makes every call fail."""

    def __init__(self, groups: dict[str, list[str]]) -> None:
        self.groups = groups
        self.error: str | None = None
        self.calls = 0

    def usergroups_users_list(self, usergroup: str) -> dict[str, Any]:
        self.calls += 1
        if self.error:
            raise SlackApiError("failed", {"ok": False, "error": self.error})  # type: ignore[arg-type]
        return {"users": self.groups[usergroup]}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def roles(client: FakeClient, clock: Clock) -> Roles:
    return Roles(
        ("U0OP", "S0OPS"),
        ("U0DIRECT", "S0APPROVERS"),
        client,  # type: ignore[arg-type]
        cache_seconds=300,
        approver_cache_seconds=60,
        clock=clock,
    )


def test_an_expired_approver_list_is_not_used_when_slack_fails():
    client, clock = FakeClient({"S0APPROVERS": ["U0ANN"], "S0OPS": ["U0BOB"]}), Clock()
    r = roles(client, clock)
    assert r.role_of("U0ANN") is Role.APPROVER
    assert r.role_of("U0BOB") is Role.OPERATOR
    client.error = "internal_error"
    clock.now += 30  # within the lifetime: the cached list holds, Slack is not asked
    assert r.role_of("U0ANN") is Role.APPROVER
    calls = client.calls
    clock.now += 31  # past it
    with pytest.raises(MembershipUnknown) as caught:
        r.is_approver("U0ANN")
    assert caught.value.groups == ("S0APPROVERS",)
    assert caught.value.errors == ("internal_error",)
    assert "approving is refused" in caught.value.message
    assert r.role_of("U0ANN") is Role.NONE
    assert client.calls > calls  # it did ask Slack again
    # a directly listed approver does not depend on Slack
    assert r.is_approver("U0DIRECT")
    # operator groups keep their stale list while Slack cannot answer
    assert r.role_of("U0BOB") is Role.OPERATOR
    # Slack answers again: the fresh list decides
    client.error = None
    client.groups["S0APPROVERS"] = []
    assert r.role_of("U0ANN") is Role.NONE
    assert not r.is_approver("U0ANN")


def test_an_approver_group_never_listed_is_unknown_not_empty():
    client, clock = FakeClient({"S0APPROVERS": ["U0ANN"], "S0OPS": []}), Clock()
    client.error = "ratelimited"
    r = roles(client, clock)
    with pytest.raises(MembershipUnknown):
        r.is_approver("U0ANN")
    assert r.role_of("U0OP") is Role.OPERATOR  # an operator still looks devices up


def test_removed_approver_cannot_approve_while_slack_cannot_list_the_group(bot, claims):
    device = claims.chrome("ACTIVE")
    found = bot.svc.devices.resolve(device["serialNumber"])
    request_id = approvals.submit(
        bot.svc,
        NewRequest(
            action="disable",
            platform="chrome",
            devices=(found,),
            params={"why": "other"},
            requester=OPERATOR,
            reason="ticket 7",
            channel=HELPDESK,
        ),
    )
    message = wait_until(
        lambda: next((m for m in bot.emu.messages(APPROVALS) if request_id in flatten(m)), None)
    )
    # APPROVER2 is an approver through the S0APPROVERS group; the bot caches that
    bot.slash("requests", user=APPROVER2)
    bot.wait_ephemeral("pending request", APPROVER2)
    # ... is then removed from the group, while Slack cannot list it, and the cache ages
    bot.emu.add_usergroup("S0APPROVERS", [])
    bot.emu.fail_next("usergroups.users.list", "internal_error")
    lifetime = bot.svc.settings.approver_group_cache
    bot.svc.roles.clock = lambda: time.monotonic() + lifetime + 1

    bot.emu.click(APPROVER2, ids.ActionId.APPROVE, value=request_id, message=message)
    told = bot.wait_ephemeral(
        "Slack did not answer whether you are in the approver group", APPROVER2
    )
    assert "nothing was done" in told
    events = audit.events(bot.store, request_id=request_id)
    unknown = [e for e in events if e["event"] == "membership_unknown"]
    assert len(unknown) == 1 and unknown[0]["actor"] == APPROVER2
    assert "S0APPROVERS" in str(unknown[0]["detail"])
    row = bot.store.db().execute("SELECT state FROM requests WHERE id = ?", [request_id]).fetchone()
    assert row[0] == "pending"
    assert bot.sandbox.fleet.chrome[device["deviceId"]]["status"] == "ACTIVE"

    # Slack answers again: the group no longer holds APPROVER2, who is refused as a non-approver
    bot.emu.click(APPROVER2, ids.ActionId.APPROVE, value=request_id, message=message)
    bot.wait_ephemeral("Only device approvers can approve", APPROVER2)
    assert (
        bot.store.db()
        .execute("SELECT state FROM requests WHERE id = ?", [request_id])
        .fetchone()[0]
        == "pending"
    )
    # a member of the group only (not an operator) hears the same reason for a look-up
    bot.emu.fail_next("usergroups.users.list", "internal_error", times=5)
    bot.svc.roles.clock = lambda: time.monotonic() + 2 * (lifetime + 1)
    bot.slash("requests", user=APPROVER2)
    bot.wait_ephemeral("so using device-bot is refused for now", APPROVER2)
    assert [
        e
        for e in audit.events(bot.store)
        if e["event"] == "membership_unknown" and not e["request_id"]
    ]
    assert audit.verify(bot.store).ok
