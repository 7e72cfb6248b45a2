"""Item 11 (wording), end to end: a help-desk morning played against the sandbox, then every
word the bot sent to Slack held against the defects the issue lists.

Played: `/device help` (with and without a device), a search with one match, lost mode and
*Found* on a company phone (approved), a disable denied with a reason, a self-approval
refused, a typed sub-command that does not fit, an outsider. Then every message, edit,
ephemeral, response and modal the bot sent (the emulator's record of Web API calls) is read.
"""

from __future__ import annotations

import json
import re
from typing import Any

from conftest import APPROVER1, APPROVER2, OPERATOR, OUTSIDER, Bot, Claims, flatten

from bot import ids
from bot.slack_out import SANDBOX_MARK
from tests.test_actions import run
from tests.test_approvals import approval_message, submit, wait_state

#: Web API methods whose arguments are words a person reads
SAYING = (
    "chat.postMessage",
    "chat.postEphemeral",
    "chat.update",
    "views.open",
    "views.update",
    "views.push",
    "views.publish",
)

#: the issue's examples of wording a person would not write, as patterns
DEFECTS = {
    "a made-up verb": re.compile(r"asked to (lost|found)\b"),
    "a doubled (optional)": re.compile(r"\(optional\)\s*\(optional\)"),
    "a count that disagrees": re.compile(r"\b1\*? devices\b|\b(?:[02-9]|\d\d+)\*? device match\b"),
    "two sentences run together": re.compile(r"[a-z0-9`)] Nothing was done"),
    "Denied said twice": re.compile(r"Denied\s*[—-]\s*denied", re.IGNORECASE),
    "a quote mark before a reason": re.compile(r"(?m)^\s*(>|&gt;)\s*\S"),
    "an environment variable named to a person": re.compile(
        r"\b(DEVICE_OPERATORS|DEVICE_APPROVERS|APPROVAL_CHANNEL)\b"
    ),
    "raw JSON": re.compile(r"params: \{\}|\[\"[A-Z_]+\""),
}


def said(bot: Bot) -> list[tuple[str, str, Any]]:
    """(method, text, arguments) of everything the bot said to Slack so far."""
    out: list[tuple[str, str, Any]] = []
    for call in bot.emu.calls:
        if call.method not in SAYING:
            continue
        args = dict(call.args)
        for key in ("blocks", "view"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        out.append((call.method, flatten(args), args))
    for response in bot.emu.responses:
        out.append(("response_url", flatten(response.body), response.body))
    return out


def test_a_morning_at_the_help_desk_reads_as_a_person_would_write(bot: Bot, claims: Claims) -> None:
    phone = claims.fitting("lost", "android")
    serial = phone["hardwareInfo"]["serialNumber"]
    laptop = claims.chrome("ACTIVE")
    managed = claims.android(lambda d: d["managementMode"] == "DEVICE_OWNER")

    bot.slash("help")
    bot.wait_ephemeral("/device sub-commands")
    bot.slash(f"help {serial}")
    bot.wait_ephemeral("Not for this device")
    bot.slash(f"find id:{laptop['serialNumber']}")
    bot.wait_ephemeral("device matches")

    # lost mode, approved; then Found, approved
    lost = submit(bot, "lost", serial, {"message": "Please call IT"}, reason="INC-7781 taxi")
    if bot.svc.settings.needs_approval("lost"):
        message = approval_message(bot, lost)
        bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=lost, message=message)
    wait_state(bot, lost, "succeeded", timeout=20)
    found = submit(bot, "found", serial, reason="INC-7781 handed in")
    if bot.svc.settings.needs_approval("found"):
        message = approval_message(bot, found)
        bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=found, message=message)
    wait_state(bot, found, "succeeded", "failed", timeout=20)

    # a disable: its requester may not approve it; an approver denies it with a reason
    disable = submit(
        bot,
        "disable",
        laptop["serialNumber"],
        {"why": "other"},
        reason="INC-5120",
        requester=APPROVER1,
    )
    message = approval_message(bot, disable)
    bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=disable, message=message)
    bot.wait_ephemeral("your own request", user=APPROVER1)
    bot.emu.click(OPERATOR, ids.ActionId.APPROVE, value=disable, message=message)
    bot.wait_ephemeral("Only device approvers", user=OPERATOR)
    bot.emu.click(APPROVER2, ids.ActionId.DENY, value=disable, message=message)
    bot.emu.wait_for(lambda: bot.emu.open_view(APPROVER2), 10, "the deny modal")
    bot.emu.submit_view(APPROVER2, values={ids.BlockId.DENY_REASON: "no ticket"})
    wait_state(bot, disable, "denied")

    # a typed sub-command that does not fit, and an outsider
    view = run(bot, f"relinquish {managed['hardwareInfo']['serialNumber']}")
    assert not view.get("submit")
    bot.slash("find x", user=OUTSIDER)
    bot.wait_ephemeral("not allowed", user=OUTSIDER)

    everything = said(bot)
    assert len(everything) > 30, len(everything)
    problems = [
        f"{name} in {method}: {match.group(0)!r} in {text[:300]!r}"
        for method, text, _ in everything
        for name, pattern in DEFECTS.items()
        if (match := pattern.search(text))
    ]
    assert not problems, "\n".join(problems[:20])
    # the sandbox mark: the same line on every message and ephemeral, never a bare "⚠️" prefix
    for method, text, args in everything:
        if method in ("chat.postMessage", "chat.postEphemeral", "chat.update"):
            assert SANDBOX_MARK in json.dumps(args.get("blocks"), ensure_ascii=False), text[:200]
            assert str(args.get("text", "")).startswith("[SANDBOX] "), args.get("text")
    # the words the issue asked for are there
    joined = "\n".join(text for _, text, _ in everything)
    assert "asked to *put it in lost mode*" in joined or "asked to put it in lost mode" in joined
    assert "mark it found" in joined
    assert "*1* device matches" in joined
    assert "Reason: INC-7781 taxi" in joined or "INC-7781 taxi" in joined
