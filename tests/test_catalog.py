"""The catalog is the one description of each action.

A new action must come whole: its help line, its words, its capability rules, what its
kind does at Google and, for a command, the sandbox's behaviour. The first tests fail when
one of those is missing; the last adds an Android command in a fixture, touching nothing
but the catalog's table, and follows it from `/device help` to the words of its outcome.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, get_args

import pytest
from conftest import (
    APPROVALS,
    APPROVER1,
    OPERATOR,
    Bot,
    Claims,
    flatten,
    start_bot,
    wait_until,
)

from bot import catalog, execution, ids, outcome_words
from bot.catalog import rules
from bot.catalog.specs import ActionSpec, Kind
from bot.sandbox import android as sandbox_android
from bot.sandbox import chrome_commands as sandbox_chrome
from tests.test_actions import serial, settled

SPECS = catalog.all_specs()


def _placeholders(words: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(words) if name}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.name}-{s.platform}")
def test_every_action_is_described_whole(spec: ActionSpec) -> None:
    # the help line
    assert spec.summary and spec.label
    assert spec.usage.startswith(f"/device {spec.name} ") and "<device" in spec.usage
    assert spec.example.startswith(f"/device {spec.name} ")
    assert catalog.usage(spec.name) == spec.usage
    assert spec.summary in catalog.summary(spec.name)
    # its words: what it did (naming only the target and its own fields) and, in a history
    if execution.KINDS[spec.kind].done_words:
        assert spec.done, "no done words"
    assert _placeholders(spec.done) <= {"target"} | {f.name for f in spec.fields}
    assert spec.past, "no history words"
    # where it fits: said, even when it fits every device (`()`)
    assert spec.rules is not None, "no capability rules: say () if it fits every device"
    assert all(callable(rule) for rule in spec.rules)
    # what its kind does at Google, and the sandbox's behaviour for it
    assert spec.kind in execution.KINDS
    if spec.kind == "android_command":
        assert spec.google in sandbox_android.COMMANDS, "the sandbox does not model it"
    elif spec.kind == "chrome_command":
        assert spec.google in sandbox_chrome.COMMAND_TYPES
    # a lost case names how it closes
    if spec.lost is not None and not spec.lost.opens:
        assert spec.lost.closes


def test_every_kind_has_its_behaviour() -> None:
    assert set(execution.KINDS) == set(get_args(Kind))


def test_the_derived_lists_follow_the_table() -> None:
    names = {s.name for s in SPECS}
    assert set(catalog.names()) == names
    assert catalog.approval_required() == {s.name for s in SPECS if s.approval}
    assert {s.google for s in SPECS if s.files} == outcome_words.DOWNLOAD_COMMANDS
    # a status field each command reads is one of the Command's fields (bot/catalog/statuses.py)
    for status in catalog.command_statuses():
        assert any(s.status is status for s in SPECS)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"google": "LOCK_IT"}, "is not a Google value"),
        ({"kind": "lost_case"}, "makes no Google call"),
        ({"approval": False}, "usage and approval must agree"),
    ],
)
def test_a_table_google_or_the_help_could_not_follow_is_refused(
    change: dict[str, Any], words: str
) -> None:
    android_reboot = catalog.action_for("reboot", "android")
    chrome_reboot = catalog.action_for("reboot", "chrome")
    bad = replace(android_reboot, **change)
    others = [chrome_reboot, replace(bad, approval=True)] if "approval" in change else []
    with pytest.raises(ValueError, match=words):
        catalog.check_table([bad, *others])


# ---- a new Android command: the catalog's table and the sandbox, nothing else ----------------

LOCK_NOW = ActionSpec(
    name="lock-now",
    platform="android",
    kind="android_command",
    google="LOCK",  # a command type the sandbox models already
    label="Lock now",
    summary="Lock an Android 11+ device at once (an action added by a test)",
    example="/device lock-now R58N123ABC",
    states=("ACTIVE",),
    approval=True,
    rules=(rules.min_api(30, "Lock now"),),
    done="{target} is locked, at once.",
    past="locked at once",
)


@pytest.fixture
def lock_now_bot(
    tmp_path: Any, sandbox: Any, emu: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Bot]:
    """A bot whose catalog has one more Android command, added to the table alone."""
    monkeypatch.setitem(catalog.CATALOG, (LOCK_NOW.name, LOCK_NOW.platform), LOCK_NOW)
    catalog.check_table(catalog.all_specs())
    running = start_bot(tmp_path, sandbox, emu)
    yield running
    running.server.stop()


def _card(bot: Bot, serial: str) -> dict[str, Any]:
    bot.slash(f"info {serial}")
    bot.wait_ephemeral(serial)
    return bot.emu.ephemerals(OPERATOR)[-1]


def _buttons(message: dict[str, Any]) -> set[str]:
    return {
        e["action_id"]
        for b in message.get("blocks", [])
        for e in b.get("elements", [])
        if e.get("type") == "button"
    }


def _request(bot: Bot, device_name: str) -> dict[str, Any]:
    return dict(
        wait_until(
            lambda: next(
                bot.store.db().query(
                    "SELECT * FROM requests WHERE action = 'lock-now' AND device_ids LIKE ?",
                    [f"%{device_name}%"],
                ),
                None,
            ),
            10,
            "the lock-now request",
        )
    )


def test_a_new_android_command_needs_only_the_catalog_and_the_sandbox(
    lock_now_bot: Bot, claims: Claims
) -> None:
    bot = lock_now_bot
    phone = claims.android(lambda d: d["apiLevel"] >= 30)
    old = claims.android(lambda d: d["apiLevel"] < 30)

    # /device help lists it under Android, with its usage and the approval it needs
    bot.slash("help")
    help_text = bot.wait_ephemeral("/device lock-now <device>")
    line = next(t for t in help_text.split("\n") if "/device lock-now" in t)
    assert LOCK_NOW.summary in line and "needs approval" in line
    # the settings know it, and a second person approves it by default
    assert bot.svc.settings.needs_approval("lock-now")

    # the card offers it on a device it fits, and /device help <device> says why not elsewhere
    assert ids.device_action_id("lock-now") not in _buttons(_card(bot, serial(old)))
    bot.slash(f"help {serial(old)}")
    bot.wait_ephemeral("Lock now needs Android 11 or later")
    card = _card(bot, serial(phone))
    assert ids.device_action_id("lock-now") in _buttons(card)

    # the card's button opens its form; submitted, it waits for an approver
    mark = bot.emu.mark()
    assert bot.emu.click(OPERATOR, ids.device_action_id("lock-now"), message=card).status == 200
    opened = bot.emu.wait_for_call("views.open", since=mark)
    view = wait_until(lambda: settled(bot, OPERATOR, opened.response["view"]["id"]), 15)
    assert view["callback_id"] == ids.CallbackId.ACTION
    assert bot.emu.submit_view(OPERATOR, view["id"], {}).status == 200
    # the form is answered at once; the request's messages follow it
    request = wait_until(
        lambda: (r := _request(bot, phone["name"])) and r["requester_ts"] and r, 10, "the request"
    )
    assert request["state"] == "pending"
    assert not [o for o in bot.sandbox.fleet.operations.values() if o.device_name == phone["name"]]
    message = wait_until(
        lambda: next((m for m in bot.emu.messages(APPROVALS) if request["id"] in flatten(m)), None),
        10,
        "the approval message",
    )

    # approved, the sandbox runs the command, and the thread gets the action's own words
    assert (
        bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=request["id"], message=message).status
        == 200
    )
    done = f"{serial(phone)} is locked, at once."
    wait_until(
        lambda: (
            done
            in "\n".join(
                flatten(m)
                for m in bot.emu.messages(
                    request["requester_channel"], thread_ts=request["requester_ts"]
                )
            )
        ),
        20,
        f"{done!r} in the requester's thread",
    )
    sent = [o for o in bot.sandbox.fleet.operations.values() if o.device_name == phone["name"]]
    assert [o.command["type"] for o in sent] == ["LOCK"]
    assert _request(bot, phone["name"])["state"] == "succeeded"


def test_specs_can_be_keys() -> None:
    """The help and the card key their lines by spec: every spec is hashable."""
    assert len({spec: spec.name for spec in SPECS}) == len(SPECS)
