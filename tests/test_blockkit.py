"""The emulator's Block Kit check: slack_sdk.models plus the documented limits slack_sdk leaves out."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from test_modals import ALL_SPECS, device

from bot import modals
from bot.playground.slack_emulator import REFUSALS, SlackEmulator
from bot.playground.slack_emulator.blockkit import validate_blocks, validate_view
from bot.playground.slack_emulator.limits import LIMITS, RULES, limits_table

TOKEN = "xoxb-blockkit"
HELPDESK = "C0HELPDESK"
OPERATOR = "U0OPERATOR"


def _text(text: str, kind: str = "plain_text") -> dict[str, Any]:
    return {"type": kind, "text": text}


def _section(text: str = "x") -> dict[str, Any]:
    return {"type": "section", "text": _text(text, "mrkdwn")}


def _option(text: str = "a", value: str = "a") -> dict[str, Any]:
    return {"text": _text(text), "value": value}


def _input(element: dict[str, Any], block_id: str = "b") -> dict[str, Any]:
    return {"type": "input", "block_id": block_id, "label": _text("Label"), "element": element}


def _text_input(**fields: Any) -> dict[str, Any]:
    return {"type": "plain_text_input", "action_id": "a", **fields}


def _modal(blocks: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    view = {"type": "modal", "title": _text("Title"), "submit": _text("Go"), "blocks": blocks}
    return {**view, **fields}


def _button(text: str = "Go", value: str = "v") -> dict[str, Any]:
    return {"type": "button", "action_id": "go", "text": _text(text), "value": value}


def _select(options: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"type": "static_select", "action_id": "s", "options": options, **fields}


def _errors_of_view(view: dict[str, Any]) -> str:
    return "\n".join(validate_view(view))


# ------------------------------------------------------------------ limits slack_sdk does not check


@pytest.mark.parametrize(
    ("element", "needle"),
    [
        (_text_input(max_length=4096), "/element/max_length"),
        (_text_input(max_length=0), "/element/max_length"),
        (_text_input(min_length=3001), "/element/min_length"),
        (_text_input(min_length=-1), "/element/min_length"),
        (_text_input(min_length=10, max_length=5), "/element/min_length"),
        (_text_input(max_length=5, initial_value="123456"), "/element/initial_value"),
        (_text_input(min_length=5, initial_value="1234"), "/element/initial_value"),
        (_text_input(initial_value="x" * 3001), "/element/initial_value"),
        (_select([_option("t" * 76)]), "/element/options/0/text/text"),
        (_select([_option(value="v" * 151)]), "/element/options/0/value"),
        (_select([_option(value=str(i)) for i in range(101)]), "/element/options"),
        (_select([_option()], initial_option=_option("b", "b")), "/element/initial_option"),
        ({"type": "number_text_input", "action_id": "n"}, "/element/type"),
        ({"type": "file_input", "action_id": "f", "max_files": 11}, "/element/max_files"),
        ({"type": "file_input", "action_id": "f", "filetypes": "csv"}, "/element/filetypes"),
    ],
)
def test_input_elements_within_slacks_limits(element: dict[str, Any], needle: str) -> None:
    assert needle in _errors_of_view(_modal([_input(element)]))


@pytest.mark.parametrize(
    "element",
    [
        _text_input(max_length=3000, min_length=0),
        _text_input(max_length=1),
        _text_input(max_length=10, min_length=2, initial_value="12345"),
        _text_input(min_length=5),  # no initial value: nothing to hold to min_length
        _select([_option(value="v" * 150)] * 1 + [_option(str(i), str(i)) for i in range(99)]),
        _select([_option()], initial_option=_option()),
        {"type": "number_input", "action_id": "n", "is_decimal_allowed": False},
        {"type": "file_input", "action_id": "f", "filetypes": ["csv"], "max_files": 10},
    ],
)
def test_inputs_at_the_limits_are_accepted(element: dict[str, Any]) -> None:
    assert validate_view(_modal([_input(element)])) == []


@pytest.mark.parametrize(
    ("blocks", "needle"),
    [
        ([{"type": "header", "text": _text("h" * 151)}], "/blocks/0/text/text"),
        ([{"type": "actions", "elements": [_button("b" * 76)]}], "/elements/0/text/text"),
        ([{"type": "actions", "elements": [_button(value="v" * 2001)]}], "/elements/0/value"),
        ([{"type": "context", "elements": [_text("c")] * 11}], "/blocks/0/elements"),
        ([{"type": "section", "fields": [_text("f")] * 11}], "/blocks/0/fields"),
        ([{"type": "section", "fields": [_text("f" * 2001)]}], "/blocks/0/fields/0/text"),
        ([{**_section(), "block_id": "b" * 256}], "/blocks/0/block_id"),
        ([_section()] * 51, "[json-pointer:/blocks]"),
        ([{**_section(), "colour": "red"}], "unknown field [json-pointer:/blocks/0/colour]"),
    ],
)
def test_message_blocks_within_slacks_limits(blocks: list[dict[str, Any]], needle: str) -> None:
    assert needle in "\n".join(validate_blocks(blocks))


@pytest.mark.parametrize(
    ("view", "needle"),
    [
        (_modal([_section()], title=_text("t" * 25)), "/view/title/text"),
        (_modal([_section()], submit=_text("s" * 25)), "/view/submit/text"),
        (_modal([_section()], close=_text("c" * 25)), "/view/close/text"),
        (_modal([_section()], private_metadata="p" * 3001), "/view/private_metadata"),
        (_modal([_section()], callback_id="c" * 256), "/view/callback_id"),
        (_modal([_section()] * 101), "[json-pointer:/view/blocks]"),
        (
            {"type": "modal", "title": _text("T"), "blocks": [_input(_text_input())]},
            "must provide a submit",
        ),
    ],
)
def test_views_within_slacks_limits(view: dict[str, Any], needle: str) -> None:
    assert needle in _errors_of_view(view)


def test_a_hundred_blocks_in_a_view_and_fifty_in_a_message_are_fine() -> None:
    assert validate_view(_modal([_section(str(i)) for i in range(100)])) == []
    assert validate_blocks([_section(str(i)) for i in range(50)]) == []


def test_every_limit_names_its_source() -> None:
    for name, limit in LIMITS.items():
        assert limit.source.startswith("https://docs.slack.dev/reference/"), name
        assert limit.value > 0 and limit.what, name
    assert all(what and source for what, source, _ in RULES)
    table = limits_table()
    assert "plain_text_input max_length" in table and "(our reading)" in table


# ------------------------------------------------------------------ answered and recorded


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(bot_token=TOKEN).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def client(emu: SlackEmulator) -> WebClient:
    return WebClient(token=TOKEN, base_url=emu.api_url)


@pytest.mark.invalid_blocks_expected
def test_views_update_with_a_too_long_max_length_is_refused_and_recorded(
    emu: SlackEmulator, client: WebClient
) -> None:
    start = REFUSALS.total
    opened = client.views_open(trigger_id=emu.issue_trigger(OPERATOR), view=_modal([_section()]))
    view_id = opened["view"]["id"]
    bad = _modal([_input(_text_input(max_length=4096), block_id="message")])
    with pytest.raises(SlackApiError) as err:
        client.views_update(view_id=view_id, view=bad)
    answer = err.value.response.data
    assert answer["ok"] is False and answer["error"] == "invalid_blocks"
    assert any("/view/blocks/0/element/max_length" in e for e in answer["errors"])
    # the modal the user sees did not change, and the refusal is on record for the harness
    assert emu.open_view(OPERATOR)["blocks"][0]["type"] == "section"  # type: ignore[index]
    assert [r.where for r in emu.refusals] == ["views.update"]
    assert [r.where for r in REFUSALS.since(start)] == ["views.update"]


@pytest.mark.invalid_blocks_expected
def test_a_view_whose_own_fields_are_wrong_is_invalid_arguments(
    emu: SlackEmulator, client: WebClient
) -> None:
    with pytest.raises(SlackApiError) as err:
        client.views_open(
            trigger_id=emu.issue_trigger(OPERATOR),
            view=_modal([_section()], private_metadata="p" * 3001),
        )
    assert err.value.response["error"] == "invalid_arguments"
    assert emu.refusals[-1].error == "invalid_arguments"


@pytest.mark.invalid_blocks_expected
@pytest.mark.parametrize("method", ["chat_postMessage", "chat_postEphemeral"])
def test_messages_with_bad_blocks_are_refused_and_recorded(
    emu: SlackEmulator, client: WebClient, method: str
) -> None:
    blocks = [{"type": "header", "text": _text("h" * 151)}]
    extra = {"user": OPERATOR} if method == "chat_postEphemeral" else {}
    with pytest.raises(SlackApiError) as err:
        getattr(client, method)(channel=HELPDESK, text="x", blocks=blocks, **extra)
    assert err.value.response["error"] == "invalid_blocks"
    assert emu.refusals[-1].payload["blocks"] == blocks
    assert emu.messages(HELPDESK) == [] and emu.ephemerals(OPERATOR) == []


@pytest.mark.invalid_blocks_expected
def test_chat_update_with_bad_blocks_keeps_the_message(
    emu: SlackEmulator, client: WebClient
) -> None:
    posted = client.chat_postMessage(channel=HELPDESK, text="x", blocks=[_section("before")])
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel=HELPDESK, ts=posted["ts"], text="x", blocks=[_section("")])
    assert err.value.response["error"] == "invalid_blocks"
    assert emu.messages(HELPDESK)[0]["blocks"][0]["text"]["text"] == "before"
    assert [r.where for r in emu.refusals] == ["chat.update"]


@pytest.mark.invalid_blocks_expected
def test_response_url_with_bad_blocks_answers_invalid_blocks(emu: SlackEmulator) -> None:
    url = emu._issue_response_url({"user": OPERATOR, "channel": HELPDESK})
    body = json.dumps({"text": "x", "blocks": [_section("x" * 3001)]}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=5)
    answer = json.loads(err.value.read())
    assert err.value.code == 400 and answer["ok"] is False and answer["error"] == "invalid_blocks"
    assert answer["errors"] and emu.refusals[-1].where == "response_url"


# ------------------------------------------------------------------ the bot's modals at their limits


def _longest(field: Any) -> Any:
    """The largest value a person could leave in ``field`` (the builders must cut it to fit)."""
    if field.kind == "checkboxes":
        return list(field.options)
    if field.options:
        return max(field.options, key=len)
    if field.kind == "number":
        return "9" * 30
    return "x" * 5000


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: f"{s.platform}-{s.name}")
def test_every_action_modal_stays_within_slacks_limits(spec: Any) -> None:
    """Every field filled to the brim, on more devices than a modal can list."""
    devices = [device(spec.platform, n) for n in range(150)]
    initial = {f.name: _longest(f) for f in spec.fields}
    view = modals.action_view(
        spec, devices, channel=HELPDESK, needs_approval=True, initial=initial, draft="d" * 40
    )
    assert validate_view(view) == []
