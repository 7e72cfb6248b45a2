"""Any input → an answer in words, never an exception, never a Google change (hypothesis).

Generated `/device` texts go through the real `/device` listener, and generated modal values
through every modal validator (each ActionSpec's `parse`, the typed device count, the OU
path, the form's private_metadata, the search and deny modals' submissions): whatever is
typed, the person gets words — a usage line, a modal, an error next to a field — and the
bot neither raises an unexpected error nor asks Google to change anything.

The listeners run in this thread (captured from the capabilities' `register`, wrapped by
the same `guard` as in the bot) on the real services: the sandbox Google over loopback, a
SQLite file, roles through the Slack emulator. What the bot says is recorded by a SlackOut
that keeps it instead of sending it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import (
    APPROVER1,
    APPROVER2,
    BOT_TOKEN,
    OPERATOR,
    OUTSIDER,
    SIGNING_SECRET,
    base_env,
    flatten,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import catalog, ids, modals
from bot.app import CAPABILITIES
from bot.commands import Commands
from bot.errors import ValidationError
from bot.listeners import GuardedApp, guard
from bot.playground.slack_emulator import validate_blocks, validate_view
from bot.slack_out import SlackOut

HELPDESK = "C0HELPDESK"
UNEXPECTED = "Something went wrong on our side"
EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the work tree; a failure prints its example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
ALL_SPECS = catalog.all_specs()


# ---- the bot, listeners called directly -----------------------------------------------------


@dataclass
class Said:
    kind: str  # respond | post | ephemeral | update | open_view | update_view
    text: str
    blocks: list[dict[str, Any]] | None = None
    view: dict[str, Any] | None = None


class RecordingOut(SlackOut):
    """What the bot says, kept instead of sent (Web API reads still go to the emulator)."""

    def __init__(self, client: Any) -> None:
        super().__init__(client, sandbox=True)
        self.said: list[Said] = []
        self._views = 0

    def _keep(self, kind: str, text: str, blocks: Any = None) -> None:
        text, dicts = self._mark(text, blocks)
        self.said.append(Said(kind, text, dicts))

    def post(self, channel: str, text: str, blocks: Any = None, **kw: Any) -> str:
        self._keep("post", text, blocks)
        return f"{len(self.said)}.000100"

    def ephemeral(self, channel: str, user: str, text: str, blocks: Any = None, **kw: Any) -> None:
        self._keep("ephemeral", text, blocks)

    def update(self, channel: str, ts: str, text: str, blocks: Any = None) -> None:
        self._keep("update", text, blocks)

    def respond(self, response_url: str, text: str, blocks: Any = None, **kw: Any) -> None:
        self._keep("respond", text, blocks)

    def open_view(self, trigger_id: str, view: Any) -> str:
        view = view if isinstance(view, dict) else view.to_dict()
        self.said.append(Said("open_view", flatten(view), view=view))
        self._views += 1
        return f"V{self._views:08d}"

    def update_view(self, view_id: str, view: Any) -> None:
        view = view if isinstance(view, dict) else view.to_dict()
        self.said.append(Said("update_view", flatten(view), view=view))


class Listeners:
    """Stands in for Bolt's App in `register`: keeps each (guarded) listener by its key."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, str], Any] = {}

    def _on(self, kind: str, key: Any) -> Any:
        def register(func: Any) -> Any:
            self.found[(kind, str(getattr(key, "pattern", key)))] = func
            return func

        return register

    def command(self, key: Any) -> Any:
        return self._on("command", key)

    def action(self, key: Any) -> Any:
        return self._on("action", key)

    def view(self, key: Any) -> Any:
        return self._on("view", key)

    def options(self, key: Any) -> Any:
        return self._on("options", key)

    def shortcut(self, key: Any) -> Any:
        return self._on("shortcut", key)

    def event(self, key: Any) -> Any:
        return self._on("event", key)

    def function(self, key: Any) -> Any:
        return self._on("function", key)


class FakeAck:
    def __init__(self) -> None:
        self.response: Any = None
        self.calls: list[dict[str, Any]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(kwargs)
        self.response = kwargs or "ok"


@dataclass
class World:
    svc: Any
    sandbox: Any
    out: RecordingOut
    commands: Commands
    listeners: dict[tuple[str, str], Any]
    serials: list[str] = field(default_factory=list)

    def run(self, kind: str, key: str, **kwargs: Any) -> FakeAck:
        self.out.said.clear()
        ack = FakeAck()
        self.listeners[(kind, key)](ack=ack, **kwargs)
        return ack

    def writes(self) -> list[tuple[str, str]]:
        """Requests to Google that could change something (batch envelopes carry reads too)."""
        log = self.sandbox.log
        entries = [*log, *log.parts]
        return [(m, p) for m, p in entries if m not in ("GET", "HEAD") and "/batch" not in p]

    def requests_made(self) -> int:
        return int(self.svc.store.db().execute("SELECT count(*) FROM requests").fetchone()[0])


@pytest.fixture(scope="module")
def world(tmp_path_factory: Any) -> Iterator[World]:
    from bot.playground.slack_emulator import SlackEmulator
    from bot.sandbox import Sandbox
    from bot.services import build_services
    from bot.settings import load_settings

    sandbox = Sandbox(chrome=40, android=40, seed=53, command_delay=3600.0).start()
    emu = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN).start()
    emu.add_usergroup("S0APPROVERS", [APPROVER2])
    db = tmp_path_factory.mktemp("properties") / "bot.db"
    svc = build_services(load_settings(base_env(str(db), emu.api_url)), sandbox=sandbox)
    out = RecordingOut(svc.out.client)
    svc.out = out
    found = Listeners()
    guarded = GuardedApp(found, svc)  # type: ignore[arg-type]
    commands = Commands()
    for module in CAPABILITIES:
        module.register(guarded, svc, commands)
    found.found[("command", ids.SLASH_COMMAND)] = guard(svc, commands.listener(svc))
    fleet = sandbox.fleet
    serials = [d["serialNumber"] for d in list(fleet.chrome.values())[:6]]
    serials += [d["hardwareInfo"]["serialNumber"] for d in list(fleet.android.values())[:6]]
    svc.devices.sync_android_index()
    sandbox.log.clear()
    yield World(svc, sandbox, out, commands, found.found, serials)
    svc.close()
    emu.stop()
    sandbox.stop()


def assert_answered_in_words(world: World, what: str) -> None:
    said = world.out.said
    assert said, f"{what!r}: no answer at all"
    for item in said:
        assert item.text.strip(), f"{what!r}: an empty {item.kind}"
        assert UNEXPECTED not in item.text, f"{what!r}: {item.text}"
        if item.view is not None:
            assert validate_view(item.view) == [], (what, validate_view(item.view))
        elif item.blocks:
            assert validate_blocks(item.blocks) == [], (what, validate_blocks(item.blocks))


def assert_nothing_changed(world: World, what: str, requests_before: int) -> None:
    assert world.writes() == [], f"{what!r} changed something at Google: {world.writes()}"
    assert world.requests_made() == requests_before, f"{what!r} made a request"


# ---- `/device …` -------------------------------------------------------------------------


WORDS = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=1, max_size=16),
    st.sampled_from(
        [
            "/",
            "//",
            "/Sales",
            "/Sales//EMEA",
            "<@U0OPERATOR>",
            "<!channel>",
            "<https://evil.example|x>",
            "&amp;",
            "*",
            "%",
            "_",
            "__________",
            "id:",
            "user:",
            "status:ACTIVE",
            "asset_id:'",
            "0",
            "-1",
            "101",
            "40",
            "²",
            "١٢",
            "R" + "0" * 6,
            "enterprises/LC0sandbox/devices/x",
            "x" * 300,
        ]
    ),
)


@st.composite
def device_texts(draw: Any, names: list[str], serials: list[str]) -> str:
    if draw(st.integers(0, 9)) == 0:
        return str(draw(st.text(max_size=300)))
    name = draw(st.sampled_from(names))
    words = draw(st.lists(st.one_of(WORDS, st.sampled_from(serials)), max_size=4))
    sep = draw(st.sampled_from([" ", "  ", "\t", "\n", " \u00a0"]))
    return name + sep + sep.join(words)


TRIGGERS = itertools.count(1)


def test_any_device_command_is_answered_in_words_and_changes_nothing(world: World) -> None:
    names = [n for s in world.commands.all() for n in (s.name, *s.aliases)]
    names += ["", "HELP", "Info", "inf", "nope"]
    before = world.requests_made()

    @EXAMPLES
    @given(
        text=device_texts(names, world.serials),
        user=st.sampled_from([OPERATOR, OPERATOR, APPROVER1, APPROVER2, OUTSIDER]),
    )
    def check(text: str, user: str) -> None:
        body = {
            "command": "/device",
            "text": text,
            "user_id": user,
            "channel_id": HELPDESK,
            "response_url": "https://hooks.slack.test/commands/T0/1/x",
            # a new gesture each time: the guard drops a gesture delivered twice
            "trigger_id": f"{next(TRIGGERS)}.2.3",
        }
        ack = world.run("command", ids.SLASH_COMMAND, body=body)
        assert ack.calls, f"{text!r}: never acknowledged"
        assert_answered_in_words(world, text)
        assert_nothing_changed(world, text, before)

    check()


def test_any_whitespace_separates_the_sub_command(world: World) -> None:
    serial = world.serials[0]
    for text in (f"info\t{serial}", f"info\u00a0{serial}", f"  INFO   {serial} "):
        body = {"text": text, "user_id": OPERATOR, "channel_id": HELPDESK, "response_url": "u"}
        world.run("command", ids.SLASH_COMMAND, body=body)
        assert [s.kind for s in world.out.said] == ["respond"], text
        assert f"{serial}: ACTIVE" in world.out.said[0].text or serial in world.out.said[0].text


# ---- the action modals' validators ---------------------------------------------------------


#: digits beyond ASCII: "٤٠" and "４０" are int()-able, "²" and "③" pass isdigit() but are not
DIGITS = st.one_of(
    st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=22),
    st.sampled_from(["²", "③", "4²", "٤٠", "４０", "١" * 20]),
)


def _value(spec: catalog.FieldSpec) -> st.SearchStrategy[Any]:
    """What Slack could send for this input (and some it would not)."""
    texts = st.one_of(st.none(), st.text(max_size=80), st.text(max_size=5000), WORDS, DIGITS)
    if spec.kind in ("select", "radio"):
        return st.one_of(st.none(), st.sampled_from(spec.options), st.text(max_size=30))
    if spec.kind == "checkboxes":
        return st.lists(st.one_of(st.sampled_from(spec.options), st.text(max_size=20)), max_size=4)
    if spec.kind == "number":
        return st.one_of(DIGITS, st.integers(-10, 1000).map(str), texts)
    return texts


def _values(spec: catalog.ActionSpec) -> st.SearchStrategy[dict[str, Any]]:
    """Some of the spec's inputs filled in (Slack leaves an empty optional input out)."""
    return st.fixed_dictionaries({}, optional={f.name: _value(f) for f in spec.fields})


@st.composite
def submissions(draw: Any) -> tuple[catalog.ActionSpec, dict[str, Any]]:
    spec = draw(st.sampled_from(ALL_SPECS))
    return spec, draw(_values(spec))


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: f"{s.platform}-{s.name}")
def test_every_action_validator_answers_in_words(spec: catalog.ActionSpec) -> None:
    names = {f.name for f in spec.fields}

    @settings(max_examples=80, deadline=None, database=None)
    @given(values=_values(spec))
    def check(values: dict[str, Any]) -> None:
        try:
            params = spec.parse(dict(values))
        except ValidationError as exc:
            assert exc.message.strip()
            assert exc.field is None or exc.field in names, (exc.field, names)
            return
        json.dumps(catalog.command_body(spec, params))  # what would be sent is JSON

    check()


def test_digits_that_are_not_ascii_are_refused_in_words() -> None:
    """Found by the property above: "²".isdigit() is true, and int("²") raises."""
    for raw in ("²", "١٢", "４０"):
        with pytest.raises(ValidationError):
            catalog.action_for("volume", "chrome").parse({"volume": raw})
    with pytest.raises(ValidationError) as caught:
        catalog.action_for("remove-esim", "android").parse({"iccid": "١" * 20, "reason": "x"})
    assert caught.value.field == "iccid"


@EXAMPLES
@given(typed=st.one_of(st.none(), st.text(max_size=20), st.integers()), count=st.integers(0, 5000))
def test_the_typed_count_answers_in_words(typed: Any, count: int) -> None:
    try:
        modals.check_count(typed, count)
    except ValidationError as exc:
        assert str(count) in exc.message and exc.field == ids.BlockId.CONFIRM_COUNT
    else:
        assert str(typed).strip() == str(count)


@EXAMPLES
@given(path=st.one_of(st.text(max_size=600), WORDS))
def test_the_ou_path_answers_in_words(path: str) -> None:
    try:
        ou = catalog.validate_ou(path)
    except ValidationError as exc:
        assert exc.message.strip() and exc.field == "ou"
    else:
        assert ou.startswith("/") and "//" not in ou and "\n" not in ou


@EXAMPLES
@given(text=st.one_of(st.text(max_size=200), st.sampled_from(["{}", "[]", "null", '{"a":1}'])))
def test_form_metadata_answers_in_words(text: str) -> None:
    try:
        meta = modals.Metadata.from_json(text)
    except ValidationError as exc:
        assert "run the command again" in exc.message
    else:
        assert isinstance(meta.action, str) and isinstance(meta.count, int)


def _state(spec: catalog.ActionSpec, values: dict[str, Any]) -> dict[str, Any]:
    """`values` in the shape of Slack's view.state.values for the spec's inputs."""
    state: dict[str, Any] = {}
    for f in spec.fields:
        if f.name not in values:
            continue
        value = values[f.name]
        if f.kind in ("select", "radio"):
            entry = {"selected_option": {"value": value} if value is not None else None}
        elif f.kind == "checkboxes":
            entry = {"selected_options": [{"value": v} for v in value]}
        else:
            entry = {"value": value}
        state[f.name] = {f.name: {"type": "x", **entry}}
    return state


def test_invalid_modal_submissions_are_answered_next_to_a_field(world: World) -> None:
    """Through the bot's submission listener: an invalid form gets its error next to a field,
    and nothing is asked of Google nor any request made."""
    before = world.requests_made()
    chrome = world.svc.devices.resolve(world.serials[0])
    android = world.svc.devices.resolve(world.serials[-1])

    @EXAMPLES
    @given(submission=submissions(), count=st.sampled_from([1, 1, 12]))
    def check(submission: Any, count: int) -> None:
        spec, values = submission
        device = chrome if spec.platform == "chrome" else android
        view = modals.action_view(spec, [device] * count, channel=HELPDESK, draft=None)
        state = _state(spec, values)
        if count > modals.CONFIRM_THRESHOLD:
            state[ids.BlockId.CONFIRM_COUNT] = {ids.BlockId.CONFIRM_COUNT: {"value": "11"}}
        try:
            spec.parse(modals.submitted_values(state))
        except ValidationError:
            pass
        else:
            if count <= modals.CONFIRM_THRESHOLD:
                return  # a valid form goes on to make a request: not this test's business
        view = {**view, "id": "V0PROPERTY", "state": {"values": state}}
        body = {"type": "view_submission", "user": {"id": OPERATOR}, "view": view}
        ack = world.run("view", ids.CallbackId.ACTION, body=body, view=view)
        assert ack.calls, spec.name
        answer = ack.calls[0]
        if answer.get("response_action") == "errors":
            (field_name, message), *rest = answer["errors"].items()
            assert not rest and message.strip()
            assert field_name in state or field_name in {f.name for f in spec.fields}
        else:  # no input to show the error next to (an action without fields)
            assert_answered_in_words(world, spec.name)
        assert UNEXPECTED not in "".join(s.text for s in world.out.said)
        assert_nothing_changed(world, spec.name, before)

    check()


def test_search_and_deny_modals_answer_in_words(world: World) -> None:
    before = world.requests_made()
    meta = json.dumps({"response_url": "https://hooks.slack.test/x", "channel": HELPDESK})

    @EXAMPLES
    @given(
        query=st.one_of(st.none(), st.text(max_size=250), WORDS),
        note=st.one_of(st.none(), st.text(max_size=600)),
        request_id=st.one_of(st.text(max_size=20), st.just("R0000000")),
        user=st.sampled_from([OPERATOR, APPROVER1, OUTSIDER]),
    )
    def check(query: str | None, note: str | None, request_id: str, user: str) -> None:
        values = {ids.BlockId.SEARCH: {ids.ActionId.SEARCH_INPUT: {"value": query}}}
        view = {"id": "V0SEARCH", "private_metadata": meta, "state": {"values": values}}
        body = {"type": "view_submission", "user": {"id": user}, "view": view}
        ack = world.run("view", ids.CallbackId.SEARCH, body=body, view=view)
        if ack.calls[0].get("response_action") != "errors":
            assert_answered_in_words(world, query or "")
        values = {ids.BlockId.DENY_REASON: {ids.BlockId.DENY_REASON: {"value": note}}}
        view = {"id": "V0DENY", "private_metadata": request_id, "state": {"values": values}}
        body = {"type": "view_submission", "user": {"id": user}, "view": view}
        ack = world.run("view", ids.CallbackId.DENY, body=body, view=view)
        if ack.calls[0].get("response_action") != "errors":
            assert_answered_in_words(world, note or "")
        assert_nothing_changed(world, f"{query!r} / {note!r}", before)

    check()
