"""The action modal builders: every ActionSpec renders a modal Slack accepts, with no secret in it."""

from __future__ import annotations

import json

import pytest

from bot import catalog, ids, modals
from bot.devices import Device
from bot.errors import ValidationError
from bot.playground.slack_emulator import element_state, iter_elements, validate_view

ALL_SPECS = catalog.all_specs()


def device(platform: str = "chrome", n: int = 0, **kw: object) -> Device:
    base: dict[str, object] = {
        "platform": platform,
        "id": f"{n:08x}-0000-4000-a000-000000000000"
        if platform == "chrome"
        else f"enterprises/LC0/devices/3{n:015x}",
        "serial": f"SER{n:07d}",
        "user": f"user{n}@example.com",
        "org_unit": "/Sales/EMEA",
        "status": "ACTIVE",
        "last_seen": "2024-05-01T09:30:00.000Z",
        "model": "Model X",
    }
    base.update(kw)
    return Device(**base)  # type: ignore[arg-type]


def ids_in(view: dict) -> list[str]:
    return [el["action_id"] for _, el in iter_elements(view["blocks"]) if "action_id" in el]


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: f"{s.platform}-{s.name}")
def test_every_action_renders_a_valid_modal(spec: catalog.ActionSpec) -> None:
    target = [device(spec.platform)]
    view = modals.action_view(spec, target, channel="C0HELPDESK", needs_approval=True, draft="k")
    assert validate_view(view) == []
    assert len(view["blocks"]) <= 100
    assert len(view["title"]["text"]) <= 24
    assert len(view["submit"]["text"]) <= 24
    assert all(len(a) <= 255 for a in ids_in(view))
    assert view["callback_id"] == ids.CallbackId.ACTION
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    # an action waiting for approval always asks why, in its own field or the form's
    assert set(inputs) == {f.name for f in catalog.fields_for(spec, target[0])} | {"reason"}
    for block_id, block in inputs.items():
        assert block["element"]["action_id"] == block_id
    meta = modals.Metadata.from_json(view["private_metadata"])
    assert (meta.action, meta.platform, meta.device_ids, meta.channel) == (
        spec.name,
        spec.platform,
        (target[0].id,),
        "C0HELPDESK",
    )
    text = json.dumps(view)
    assert target[0].serial in text and "user0@example.com" in text and "/Sales/EMEA" in text
    assert "2024-05-01 09:30 UTC" in text


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: f"{s.platform}-{s.name}")
def test_submit_label_marks_destructive_actions(spec: catalog.ActionSpec) -> None:
    label = modals.submit_label(spec, needs_approval=False)
    assert label.startswith("⚠️") == spec.destructive
    assert modals.submit_label(spec, needs_approval=True).endswith("Request approval")


def test_secret_never_in_private_metadata_or_prefilled() -> None:
    spec = catalog.action_for("reset-password", "android")
    view = modals.action_view(
        spec, [device("android")], channel="C1", initial={"new_password": "hunter2hunter2"}
    )
    assert "hunter2" not in json.dumps(view)
    password = next(b for b in view["blocks"] if b.get("block_id") == "new_password")
    assert password["element"]["type"] == "plain_text_input"
    assert "no password input" in password["hint"]["text"]


def test_annotate_prefills_current_values() -> None:
    spec = catalog.action_for("annotate", "chrome")
    view = modals.action_view(
        spec,
        [device()],
        channel=None,
        initial={"annotatedUser": "ada@example.com", "notes": "<!channel>"},
    )
    elements = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert elements["annotatedUser"]["initial_value"] == "ada@example.com"
    assert elements["notes"]["initial_value"] == "<!channel>"  # plain text input: not mrkdwn


def test_device_strings_are_escaped() -> None:
    evil = device(user="<!channel>", org_unit="/a&b", serial="<http://x|y>")
    view = modals.action_view(catalog.action_for("disable", "chrome"), [evil], channel=None)
    text = json.dumps([b for b in view["blocks"] if b["type"] != "input"])
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "<http" not in text and "/a&amp;b" in text


def test_bulk_move_lists_devices_and_asks_for_the_count() -> None:
    devices = [device(n=i) for i in range(600)]
    view = modals.action_view(
        catalog.action_for("move", "chrome"), devices, channel="C1", initial={"ou": "/Sales"}
    )
    assert validate_view(view) == []
    blocks = {b.get("block_id") for b in view["blocks"]}
    assert ids.BlockId.CONFIRM_COUNT in blocks
    assert "600" in json.dumps(view["blocks"])
    assert len(view["private_metadata"]) <= 3000
    meta = modals.Metadata.from_json(view["private_metadata"])
    assert meta.count == 600 and meta.device_ids == ()  # ids do not fit: the draft carries them


def test_ten_devices_need_no_count_eleven_do() -> None:
    spec = catalog.action_for("move", "chrome")
    ten = modals.action_view(spec, [device(n=i) for i in range(10)], channel=None)
    eleven = modals.action_view(spec, [device(n=i) for i in range(11)], channel=None)
    assert ids.BlockId.CONFIRM_COUNT not in {b.get("block_id") for b in ten["blocks"]}
    assert ids.BlockId.CONFIRM_COUNT in {b.get("block_id") for b in eleven["blocks"]}


def test_check_count() -> None:
    modals.check_count(" 12 ", 12)
    with pytest.raises(ValidationError) as err:
        modals.check_count("11", 12)
    assert err.value.field == ids.BlockId.CONFIRM_COUNT


def test_picker_offers_one_button_per_candidate() -> None:
    candidates = [device(n=1), device("android", n=2)]
    meta = modals.Metadata(action="reboot", platform="", channel="C1", preset={})
    view = modals.picker_view("reboot", "ASSET-1", candidates, metadata=meta)
    assert validate_view(view) == []
    buttons = [el for _, el in iter_elements(view["blocks"])]
    assert [b["value"] for b in buttons] == [f"{d.platform}|{d.id}" for d in candidates]
    assert all(ids.DEVICE_ACTION_PATTERN.match(b["action_id"]) for b in buttons)


def test_loading_and_error_views_are_valid() -> None:
    assert validate_view(modals.loading_view("Reset password", "Looking…")) == []
    view = modals.error_view(
        "A very long title that does not fit", "`&lt;!here&gt;` is not a device"
    )
    assert validate_view(view) == []
    assert "&lt;!here&gt;" in json.dumps(view)  # messages arrive escaped; not escaped twice
    assert "&amp;lt;" not in json.dumps(view)


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: f"{s.platform}-{s.name}")
def test_submitted_values_round_trip(spec: catalog.ActionSpec) -> None:
    """Slack's state for each rendered element flattens back to what spec.parse expects."""
    target = device(spec.platform)
    view = modals.action_view(spec, [target], channel=None)
    state: dict = {}
    for block, element in iter_elements(view["blocks"]):
        if block["type"] != "input":
            continue
        kind = element["type"]
        value: object = "x"
        if kind in ("static_select", "radio_buttons"):
            value = element["options"][0]["value"]
        elif kind == "checkboxes":
            value = [element["options"][0]["value"]]
        state[block["block_id"]] = {element["action_id"]: element_state(element, value)}
    values = modals.submitted_values(state)
    assert set(values) == {f.name for f in catalog.fields_for(spec, target)}
    for f in catalog.fields_for(spec, target):
        if f.kind == "checkboxes":
            assert values[f.name] == [f.options[0]]
        elif f.kind in ("select", "radio"):
            assert values[f.name] == f.options[0]


def test_metadata_rejects_garbage() -> None:
    with pytest.raises(ValidationError):
        modals.Metadata.from_json("not json")
