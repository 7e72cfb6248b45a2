"""Annotate end to end: only the changed fields reach Google, clearing is ticked, history shows old → new."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import OPERATOR, Bot, Claims, flatten, wait_until

from bot import annotation, audit, catalog, ids, modals
from bot.devices import chrome_device
from bot.errors import ValidationError
from tests.test_actions import run, serial

SPEC = catalog.action_for("annotate", "chrome")


def patch_bodies(bot: Bot, device_id: str) -> list[dict[str, Any]]:
    """Bodies of the PATCH/PUT calls the bot sent for `device_id` (from the Google call log)."""
    return [
        json.loads(body)
        for method, path, body in bot.extras.get("google_bodies", [])
        if method in ("PATCH", "PUT") and device_id in path
    ]


@pytest.fixture
def recorded(bot: Bot) -> Bot:
    """The bot, with every Google request body recorded as the sandbox received it."""
    app = bot.sandbox._app
    bodies: list[tuple[str, str, bytes]] = []
    original = app.dispatch

    def dispatch(method: str, target: str, body: bytes) -> Any:
        bodies.append((method, target, body))
        return original(method, target, body)

    app.dispatch = dispatch
    bot.extras["google_bodies"] = bodies
    yield bot
    app.dispatch = original


def annotated(claims: Claims) -> dict[str, Any]:
    return claims.chrome(
        where=lambda d: bool(
            d.get("annotatedUser") and d.get("annotatedLocation") and d.get("annotatedAssetId")
        )
    )


def test_only_the_changed_field_is_sent_and_history_shows_old_to_new(
    recorded: Bot, claims: Claims
) -> None:
    bot = recorded
    device = annotated(claims)
    old_location = device["annotatedLocation"]
    view = run(bot, f"annotate {serial(device)}")
    reply = bot.emu.submit_view(OPERATOR, view["id"], {"annotatedLocation": "Desk 9"})
    assert reply.status == 200 and not reply.body.strip()
    fleet = bot.sandbox.fleet
    wait_until(
        lambda: fleet.chrome_get(device["deviceId"]).get("annotatedLocation") == "Desk 9",
        10,
        "patch",
    )
    assert patch_bodies(bot, device["deviceId"]) == [{"annotatedLocation": "Desk 9"}]
    assert fleet.chrome_get(device["deviceId"])["annotatedUser"] == device["annotatedUser"]
    # the requester's thread and the audit trail say old → new
    wait_until(
        lambda: any(
            f"Location: {old_location} → Desk 9" in flatten(reply)
            for m in bot.messages_in("C0HELPDESK")
            for reply in bot.emu.thread("C0HELPDESK", m["ts"])  # said once: in the thread
        ),
        10,
        "the outcome in the thread",
    )
    events = audit.events(bot.store, device_ids=[device["deviceId"]])
    requested = next(e for e in events if e["event"] == "requested")
    assert requested["detail"]["params"] == {
        "annotatedLocation": "Desk 9",
        "previous": {"annotatedLocation": old_location},
    }
    done = next(e for e in events if e["event"] == "succeeded")
    assert done["detail"]["changes"] == {"annotatedLocation": f"{old_location} → Desk 9"}
    bot.slash(f"history {serial(device)}")
    assert f"{old_location} → Desk 9" in bot.wait_ephemeral("History of")


def test_clearing_is_ticked_shown_and_sent_as_empty(recorded: Bot, claims: Claims) -> None:
    bot = recorded
    device = annotated(claims)
    old_asset = device["annotatedAssetId"]
    view = run(bot, f"annotate {serial(device)}")
    clear = next(b for b in view["blocks"] if b.get("block_id") == ids.BlockId.CLEAR_FIELDS)
    options = {o["value"]: flatten(o) for o in clear["element"]["options"]}
    assert {"annotatedUser", "annotatedLocation", "annotatedAssetId"} <= set(options)
    assert device["annotatedUser"] in options["annotatedUser"]  # shows what will be cleared
    # an emptied field without its tick is refused next to it; nothing is sent
    refused = bot.emu.submit_view(OPERATOR, view["id"], {"annotatedAssetId": ""})
    assert refused.json and refused.json["response_action"] == "errors"
    assert "tick “Clear asset id”" in refused.json["errors"]["annotatedAssetId"]
    # typing a value and ticking its clear box is refused too
    both = bot.emu.submit_view(
        OPERATOR,
        view["id"],
        {"annotatedUser": "someone@example.com", ids.BlockId.CLEAR_FIELDS: ["annotatedUser"]},
    )
    assert both.json and "not both" in both.json["errors"]["annotatedUser"]
    # nothing changed
    same = bot.emu.submit_view(OPERATOR, view["id"], {})
    assert same.json and "Nothing changed" in same.json["errors"]["annotatedUser"]
    assert patch_bodies(bot, device["deviceId"]) == []
    # the tick clears: the field is sent empty, the others not at all
    ok = bot.emu.submit_view(
        OPERATOR,
        view["id"],
        {"annotatedAssetId": "", ids.BlockId.CLEAR_FIELDS: ["annotatedAssetId"]},
    )
    assert ok.status == 200 and not ok.body.strip()
    fleet = bot.sandbox.fleet
    wait_until(
        lambda: "annotatedAssetId" not in fleet.chrome_get(device["deviceId"]), 10, "the clearing"
    )
    assert patch_bodies(bot, device["deviceId"]) == [{"annotatedAssetId": ""}]
    done = wait_until(
        lambda: next(
            (
                e
                for e in audit.events(bot.store, device_ids=[device["deviceId"]])
                if e["event"] == "succeeded"
            ),
            None,
        ),
        10,
        "the succeeded event",
    )
    assert done["detail"]["changes"] == {"annotatedAssetId": f"{old_asset} → (cleared)"}


# ---- pure -----------------------------------------------------------------------------------


def test_changes_rules() -> None:
    current = {"annotatedUser": "ada", "notes": "old note"}
    assert annotation.changes(
        SPEC.fields, current, {"annotatedUser": "bob", "notes": "old note"}, []
    ) == {
        "annotatedUser": "bob",
        "previous": {"annotatedUser": "ada"},
    }
    assert annotation.changes(
        SPEC.fields, current, {"annotatedUser": "ada", "annotatedLocation": "Desk"}, ["notes"]
    ) == {
        "annotatedLocation": "Desk",
        "notes": "",
        "previous": {"annotatedLocation": "", "notes": "old note"},
    }
    with pytest.raises(ValidationError) as exc:
        annotation.changes(SPEC.fields, current, {"annotatedUser": "ada"}, [])
    assert exc.value.field == "notes"
    # ticking an already-empty field changes nothing
    with pytest.raises(ValidationError, match="Nothing changed"):
        annotation.changes(
            SPEC.fields,
            current,
            {"annotatedUser": "ada", "notes": "old note"},
            ["annotatedLocation"],
        )
    params = {
        "notes": "",
        "annotatedUser": "bob",
        "previous": {"notes": "x", "annotatedUser": "ada"},
    }
    assert catalog.command_body(SPEC, params) == {"annotatedUser": "bob", "notes": ""}
    labels = {f.name: f.label for f in SPEC.fields}
    assert annotation.change_lines(params, labels) == [
        "Annotated user: ada → bob",
        "Notes: cleared (was: x)",
    ]


def test_the_modal_offers_clear_only_for_fields_with_a_value() -> None:
    device = chrome_device({"deviceId": "d1", "serialNumber": "S1", "notes": "n"})
    view = modals.action_view(SPEC, [device], channel=None, initial={"notes": "n"})
    clear = next(b for b in view["blocks"] if b.get("block_id") == ids.BlockId.CLEAR_FIELDS)
    assert [o["value"] for o in clear["element"]["options"]] == ["notes"]
    empty = modals.action_view(SPEC, [device], channel=None, initial={})
    assert ids.BlockId.CLEAR_FIELDS not in {b.get("block_id") for b in empty["blocks"]}
