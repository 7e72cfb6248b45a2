"""Conformance over the whole catalog: every action, every representative combination of its fields.

For each ActionSpec (`catalog.all_specs()`: both `reboot`s, both `found`s) the cases are
generated from its FieldSpecs — every optional field empty, every field filled, every text
field at its longest (FieldSpec.max_length, else Slack's 3000), each select / radio option,
checkboxes all and none, a number at its smallest and largest accepted value — so a new
action or field is covered without a new test. Which combination is valid is decided by the
spec's own `parse`: a valid one is driven end to end, an invalid one must be refused in the
modal, next to the field `parse` names.

The real path each time: `/device <action> <device>` over signed HTTP → the modal → submission
through the Slack emulator → Approve by a second person where the settings ask for it → Google
(the sandbox) → the outcome in the threads. Every action except `move` is also opened once from
the device card's button. Asserted: Slack accepted every view and message (no recorded
problem, no refused Web API call), Google answered nothing 4xx/5xx and accepted the mutation
(a device command: the call for that device), every value typed reached Google whole, and
the request ended `succeeded`.

One bot, one emulator and one sandbox serve the whole module; each case takes sandbox devices
through its claims (a device is reused only by actions that leave it as it was). The module's
sandbox runs a command 0.05 s after it is sent and its bot polls every 0.05 s: the cases are
about what Slack and Google accept, and wait for no device (the poller's timing is
tests/test_outcomes.py's).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import (
    APPROVALS,
    APPROVER1,
    APPROVER2,
    BOT_TOKEN,
    OPERATOR,
    SIGNING_SECRET,
    Bot,
    Claims,
    flatten,
    request_row,
    serial,
    start_bot,
    wait_until,
)

from bot import catalog, ids
from bot.catalog import ActionSpec, FieldSpec
from bot.devices import Device, android_device
from bot.errors import ValidationError
from bot.sandbox import Sandbox
from bot.sandbox import android as sandbox_android
from bot.sandbox.server import Answer

# one bot for the whole module, started before any test's store is chosen: on SQLite alone
pytestmark = pytest.mark.sqlite_only("one module-wide bot; the cases are about Slack and Google")

#: Slack's own limit on a plain_text_input without max_length
SLACK_TEXT_MAX = 3000

#: representative valid values by field name; by kind when the name is not listed
SAMPLES: dict[str, str] = {
    "packages": "com.google.android.gm, com.android.chrome",  # installed on every sandbox device
    "phone": "+44 20 7946 0000",
    "email": "finder@example.com",
    "activation_code": "LPA:1$smdp.example.com$CONFORMANCE-1",
    "iccid": "8944000000000000001",  # put on the device first (see Devices.prepare)
    "ou": "/Engineering/Labs",
    "new_password": "Correct-Horse-9",
    "volume": "40",
}
KIND_SAMPLES: dict[str, str] = {
    "text": "Conformance check",
    "multiline": "Conformance check\nsecond line",
    "password": "Correct-Horse-9",
    "number": "40",
    "org_unit": "/Engineering/Labs",
}
NUMBER_PROBES = ("0", "1", "100", "1000", "1000000")

#: fields the bot keeps for itself (the request's reason, why a device was disabled)
NOT_SENT = frozenset({"reason", "why"})

#: Chrome commands only a kiosk session runs (a Kiosk Upgrade licence makes a kiosk device)
KIOSK_COMMANDS = frozenset({"TAKE_A_SCREENSHOT", "SET_VOLUME", "CAPTURE_LOGS"})
FINAL = frozenset({"succeeded", "failed", "expired", "denied", "cancelled"})


# ---- the cases, from the catalog ---------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One combination of field values for one action."""

    spec: ActionSpec
    label: str
    values: dict[str, Any] = field(hash=False)
    refused: str | None = None  # the field the modal must refuse (spec.parse says so)
    via_card: bool = False  # opened from the device card's button instead of the command
    #: the kind of device the case needs when the modal's fields depend on it (VARIANTS)
    variant: str = ""

    @property
    def id(self) -> str:
        return f"{self.spec.platform}-{self.spec.name}-{self.label}" + (
            "-via-card" if self.via_card else ""
        )


def parse_error(spec: ActionSpec, values: dict[str, Any]) -> ValidationError | None:
    """What spec.parse says of these values: None when they are valid."""
    try:
        spec.parse(dict(values))
    except ValidationError as exc:
        return exc
    return None


def sample(f: FieldSpec) -> Any:
    """A representative valid value of one field."""
    if f.kind in ("select", "radio"):
        return f.initial if f.initial in f.options else f.options[0]
    if f.kind == "checkboxes":
        return list(f.options)
    return SAMPLES.get(f.name, KIND_SAMPLES[f.kind])


def empty(f: FieldSpec) -> Any:
    return [] if f.kind == "checkboxes" else None if f.kind in ("select", "radio") else ""


def padded(text: str, length: int) -> list[str]:
    """`text` grown to exactly `length`: whole copies as words (spaces fill the rest; when two
    copies fit), and by repeating its last character."""
    grown = [text + text[-1] * (length - len(text))]
    copies = (length + 1) // (len(text) + 1)
    if copies > 1:  # widen the first gap so that both ends stay words (Slack strips the ends)
        gap = " " * (1 + length - (copies * (len(text) + 1) - 1))
        grown.insert(0, text + gap + " ".join([text] * (copies - 1)))
    return grown


def longest(spec: ActionSpec, f: FieldSpec, base: dict[str, Any]) -> tuple[str, str | None]:
    """The longest value of a text field the spec accepts (up to its limit), and one over it.

    The limit is the field's max_length, else Slack's 3000. The second value is a value of
    exactly that limit which `parse` refuses, or None when the limit itself is accepted.
    """
    limit = f.max_length or SLACK_TEXT_MAX
    start = str(sample(f))
    best = start
    for n in range(limit, len(start), -1):
        accepted = [v for v in padded(start, n) if parse_error(spec, {**base, f.name: v}) is None]
        if accepted:
            best = accepted[0]
            break
    over = None
    if len(best) < limit:
        refused = [v for v in padded(start, limit) if parse_error(spec, {**base, f.name: v})]
        over = refused[0] if refused else None
    return best, over


def number_bounds(spec: ActionSpec, f: FieldSpec, base: dict[str, Any]) -> list[str]:
    """The smallest and largest probes the spec accepts for a number field."""
    accepted = [p for p in NUMBER_PROBES if parse_error(spec, {**base, f.name: p}) is None]
    return list(dict.fromkeys([accepted[0], accepted[-1]])) if accepted else []


#: actions whose modal asks for different fields on different devices (catalog.fields_for):
#: each variant is a kind of device, with the fields the modal shows on it
VARIANTS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("wipe", "android"): {
        # factory reset: reset protection, SD card, eSIMs; no message for the user
        "company": {"ownership": "COMPANY_OWNED", "management_mode": "DEVICE_OWNER"},
        # only the work profile goes, with the message for the person (on Android 16, where
        # managed eSIMs go with the profile anyway: any personal phone shows these fields, so
        # the few with an eSIM chip on Android 15 are left to the tests that need one)
        "personal": {
            "ownership": "PERSONALLY_OWNED",
            "management_mode": "PROFILE_OWNER",
            "api_level": 36,
        },
    },
}


def variant_device(profile: dict[str, Any]) -> Device:
    """A device of that kind with an eSIM chip (on Android 15 unless the profile says)."""
    raw = {"hardwareInfo": {"euiccChipInfo": [{"eid": "89049032000000000000000000000001"}]}}
    kw: dict[str, Any] = {"api_level": 35, **profile}
    return Device(platform="android", id="enterprises/E/devices/variant", raw=raw, **kw)


def generate(spec: ActionSpec) -> list[Case]:
    """The representative combinations of an action's fields, per kind of device if they
    depend on it."""
    variants = VARIANTS.get((spec.name, spec.platform))
    if not variants:
        return generate_for(spec, spec.fields)
    return [
        Case(c.spec, f"{name}-{c.label}", c.values, c.refused, c.via_card, name)
        for name, profile in variants.items()
        for c in generate_for(spec, catalog.fields_for(spec, variant_device(profile)))
    ]


def generate_for(spec: ActionSpec, fields: tuple[FieldSpec, ...]) -> list[Case]:
    """The representative combinations of these fields (valid ones, and refused ones)."""
    full = {f.name: sample(f) for f in fields}
    minimal = {f.name: empty(f) if f.optional else sample(f) for f in fields}
    combos: list[tuple[str, dict[str, Any]]] = [("empty", minimal), ("filled", full)]
    longest_values = dict(full)
    for f in fields:
        if f.kind in ("text", "multiline", "password"):
            value, over = longest(spec, f, full)
            longest_values[f.name] = value
            if over is not None:
                combos.append((f"{f.name}-over-limit", {**full, f.name: over}))
    if longest_values != full:
        combos.append(("longest", longest_values))
    for f in fields:
        if f.kind in ("select", "radio"):
            for o in f.options:
                combos.append((f"{f.name}={o}", {**full, f.name: o}))
                if parse_error(spec, combos[-1][1]):  # an option that asks the others be empty
                    combos.append((f"{f.name}={o}-others-empty", {**minimal, f.name: o}))
        elif f.kind == "checkboxes":
            combos += [(f"{f.name}=all", full), (f"{f.name}=none", {**full, f.name: []})]
        elif f.kind == "number":
            combos += [(f"{f.name}={n}", {**full, f.name: n}) for n in number_bounds(spec, f, full)]
    cases: list[Case] = []
    seen: set[str] = set()
    for label, values in combos:
        key = json.dumps(values, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        error = parse_error(spec, values)
        refused = (error.field or (fields[0].name if fields else "")) if error else None
        cases.append(Case(spec, label, values, refused))
    if spec.kind != "move":  # a move starts from `/device move` only, never from one card
        cases.append(Case(spec, "filled", full, None, via_card=True))
    return cases


CASES = [case for spec in catalog.all_specs() for case in generate(spec)]


def test_cases_cover_the_whole_catalog() -> None:
    """Every action on every platform has a case that runs, and every option is driven."""
    covered = {(c.spec.name, c.spec.platform) for c in CASES if c.refused is None}
    assert covered == {(s.name, s.platform) for s in catalog.all_specs()}
    assert ("reboot", "android") in covered and ("found", "chrome") in covered
    for spec in catalog.all_specs():
        running = [c for c in CASES if c.spec is spec and c.refused is None]
        for f in spec.fields:
            if f.kind in ("select", "radio"):
                assert {c.values[f.name] for c in running} == set(f.options), spec.name
            if f.kind == "checkboxes":  # every option ticked somewhere, and none
                chosen = [c.values[f.name] for c in running if f.name in c.values]
                assert [] in chosen, spec.name
                assert {o for values in chosen for o in values} == set(f.options), spec.name
            if f.kind in ("text", "multiline") and f.max_length:
                shown = [c for c in running if f.name in c.values]  # variants: where it is asked
                assert max(len(str(c.values[f.name] or "")) for c in shown) == f.max_length
    lost = catalog.action_for("lost", "android")
    assert next(c for c in CASES if c.spec is lost and c.label == "empty").refused == "message"
    message = max(
        len(c.values["message"] or "") for c in CASES if c.spec is lost and c.refused is None
    )
    assert message == 3000  # the lost-mode message at Slack's limit runs end to end


# ---- the bot, the devices ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def csandbox() -> Iterator[Any]:
    """The module's own sandbox (the session's size and seed), whose devices run a command
    0.05 s after it is sent."""
    sb = Sandbox(devices=440, seed=7, command_delay=0.05).start()
    yield sb
    sb.stop()


@pytest.fixture(scope="module")
def cbot(csandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    """One bot and one Slack emulator for every case of the module; it polls its commands'
    outcomes every 0.05 s."""
    from bot.playground.slack_emulator import SlackEmulator

    emulator = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN).start()
    emulator.add_usergroup("S0APPROVERS", [APPROVER2])
    running = start_bot(
        tmp_path_factory.mktemp("conformance"), csandbox, emulator, POLL_INTERVAL="0.05"
    )
    yield running
    running.server.stop()
    emulator.stop()
    # whatever the bot posted after the last case was looked at too
    assert [c for c in emulator.calls if not c.ok] == [] and emulator.problems == []


def device_id(device: dict[str, Any]) -> str:
    return str(device.get("deviceId") or device["name"])


class _Op:
    """What the sandbox's Android rules read of an operation (the command's extra fields)."""

    def __init__(self, extra: dict[str, Any]) -> None:
        self.extra = extra


class Devices:
    """Picks, per case, a sandbox device on which the action is legal, and prepares it.

    A device is kept for the next case of the same action while it is still there, in the
    state it was claimed in (a wipe, a relinquish, a deprovision, a disable or lost mode end
    that) and the action still fits it.
    """

    def __init__(self, claims: Claims, sandbox: Any) -> None:
        self.claims = claims
        self.sandbox = sandbox
        self.fleet = sandbox.fleet
        self.kept: dict[tuple[str, str], dict[str, Any]] = {}
        self.claimed_state: dict[str, str] = {}
        self.used = 0

    def for_case(self, case: Case) -> dict[str, Any]:
        spec = case.spec
        key = (spec.name, spec.platform)
        kept = self.kept.pop(key, None)
        if kept is not None and self._still_fits(spec, case, kept):
            device = kept
        else:
            device = self._claim(spec, case)
            self.claimed_state[device_id(device)] = device.get("status") or device["state"]
            self.used += 1
        self.kept[key] = device
        return device

    def _params(self, case: Case) -> dict[str, Any]:
        try:
            return case.spec.parse(dict(case.values))
        except ValidationError:
            return {}

    def _android_fits(self, spec: ActionSpec, case: Case, d: dict[str, Any]) -> bool:
        if case.variant:  # the kind of device whose modal shows the case's fields
            profile = VARIANTS[(spec.name, spec.platform)][case.variant]
            if (d.get("ownership"), d.get("managementMode")) != (
                profile["ownership"],
                profile["management_mode"],
            ):
                return False
            shown = {f.name for f in catalog.fields_for(spec, android_device(d))}
            if not set(case.values) <= shown:  # e.g. the flags only where one applies
                return False
        extra = {"newPassword": case.values.get("new_password") or ""}
        if sandbox_android._rule_error(d, spec.google, _Op(extra)) is not None:  # type: ignore[arg-type]
            return False
        try:
            catalog.check_device(spec, self._params(case), d.get("ownership"), android_device(d))
        except ValidationError:
            return False
        return True

    def _still_fits(self, spec: ActionSpec, case: Case, d: dict[str, Any]) -> bool:
        """The device is as it was claimed (same state) and the action still fits it."""
        if spec.platform == "android":
            current = self.fleet.android_get(d["name"])
            return (
                current is not None
                and current["state"] == self.claimed_state[d["name"]]
                and self._android_fits(spec, case, current)
            )
        current = self.fleet.chrome_get(d["deviceId"])
        return current is not None and current["status"] == self.claimed_state[d["deviceId"]]

    def _claim(self, spec: ActionSpec, case: Case) -> dict[str, Any]:
        if spec.platform == "chrome":
            status = spec.states[0] if spec.states else "ACTIVE"
            device = self.claims.chrome(status=status)
            if spec.google in KIOSK_COMMANDS:
                with self.fleet.lock:
                    device["deviceLicenseType"] = "kioskUpgrade"
            return device

        def fits(d: dict[str, Any]) -> bool:
            return self._android_fits(spec, case, d)

        def rich(d: dict[str, Any]) -> bool:  # with an eSIM chip and a SIM: every command applies
            return fits(d) and bool(
                d["hardwareInfo"].get("euiccChipInfo") and d["networkInfo"].get("telephonyInfos")
            )

        if case.variant:  # a kind of device: the plainest that shows the case's fields
            with contextlib.suppress(LookupError):
                return self.claims.android(where=lambda d: fits(d) and not rich(d))
        try:
            return self.claims.android(where=rich)
        except LookupError:
            return self.claims.android(where=fits)

    def prepare(self, bot: Bot, case: Case, device: dict[str, Any]) -> None:
        """Put the device (and the sandbox) in the state the action needs."""
        spec = case.spec
        if spec.name == "reenable":  # re-enabling needs a free licence in the pool
            with self.fleet.lock:
                self.fleet.licenses = max(self.fleet.licenses, self.fleet.licenses_used() + 1)
        if spec.kind == "patch":  # annotations to change or clear (the same before each case)
            before = {f.name: f"Before: {f.label}" for f in spec.fields}
            bot.svc.google.require_chrome().patch(device["deviceId"], before)
        if spec.kind == "move":  # the organisational unit moved to exists
            ou = case.values.get("ou")
            if ou and case.refused is None:
                self.fleet.add_org_unit(catalog.validate_ou(ou))
        if spec.google == "STOP_LOST_MODE":  # in lost mode, as START_LOST_MODE leaves it
            with self.fleet.lock:
                live = self.fleet.android_get(device["name"])
                live["state"] = live["appliedState"] = "LOST"
        if spec.google == "REMOVE_ESIM" and case.refused is None:  # the eSIM is on the device
            iccid = str(spec.parse(dict(case.values))["iccid"])
            with self.fleet.lock:
                live = self.fleet.android_get(device["name"])
                infos = live["networkInfo"].setdefault("telephonyInfos", [])
                infos.append(
                    {
                        "iccId": iccid,
                        "activationState": "ACTIVATED",
                        "configMode": "ADMIN_CONFIGURED",
                    }
                )
        if spec.kind == "lost_case":  # an open lost case: disabled as lost or stolen first
            from bot import lost

            if lost.open_case_for(bot.svc, "chrome", device["deviceId"]) is None:
                disable = catalog.action_for("disable", "chrome")
                values = {**{f.name: sample(f) for f in disable.fields}, "why": "lost_or_stolen"}
                drive(bot, self, Case(disable, "lost_or_stolen", values), device)
                wait_until(
                    lambda: lost.open_case_for(bot.svc, "chrome", device["deviceId"]),
                    10,
                    "the lost case opened by the disable",
                )


@pytest.fixture(scope="module")
def devices(csandbox: Any) -> Devices:
    return Devices(Claims(csandbox), csandbox)


# ---- driving one case ----------------------------------------------------------------------------


class Window:
    """What Slack and Google saw from a point on: to assert nothing was refused."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.calls = bot.emu.mark()
        self.problems = len(bot.emu.problems)
        self.answers = len(bot.sandbox.log.answers)

    def slack_refusals(self) -> list[str]:
        emu = self.bot.emu
        refused = [
            f"{c.method}: {c.error} {c.response}" for c in emu.calls[self.calls :] if not c.ok
        ]
        return refused + list(emu.problems[self.problems :])

    def google(self) -> list[Answer]:
        """Every Google call (batch parts one by one) answered since, with its status."""
        return list(self.bot.sandbox.log.answers[self.answers :])

    def mutations(self) -> list[Answer]:
        """The calls that change something (a batch's parts count, not the batch)."""
        return [a for a in self.google() if a.method != "GET" and a.path.split("?")[0] != "/batch"]


def leaves(node: Any) -> Iterator[str]:
    """Every scalar in a JSON value, as text; JSON inside a string (a Chrome payload) too."""
    if isinstance(node, dict):
        for value in node.values():
            yield from leaves(value)
    elif isinstance(node, list):
        for value in node:
            yield from leaves(value)
    elif isinstance(node, str):
        yield node
        if node[:1] in "{[":
            with contextlib.suppress(ValueError):
                yield from leaves(json.loads(node))
    elif node is not None:
        yield str(node)


def sent_to_google(window: Window) -> set[str]:
    """Every value in the bodies and query strings of the calls that changed something."""
    out: set[str] = set()
    for answer in window.mutations():
        for values in parse_qs(urlsplit(answer.path).query).values():
            out.update(values)
        if answer.body:
            out.update(leaves(json.loads(answer.body)))
    return out


def request_ids(bot: Bot, action: str, device: str) -> list[str]:
    rows = bot.store.db().execute(
        "SELECT id FROM requests WHERE action = ? AND device_ids LIKE ? ORDER BY created_at",
        [action, f"%{device}%"],
    )
    return [r[0] for r in rows.fetchall()]


def click_card_button(bot: Bot, spec: ActionSpec, device: dict[str, Any]) -> None:
    """`/device info <device>`, then the action's button on the card it shows."""
    action_id = ids.device_action_id(spec.name)
    known = len(bot.emu.ephemerals(OPERATOR))
    bot.slash(f"info {serial(device)}")

    def card() -> dict[str, Any] | None:
        fresh = bot.emu.ephemerals(OPERATOR)[known:]
        return next((m for m in fresh if serial(device) in flatten(m)), None)

    shown: dict[str, Any] = wait_until(card, 15, f"the card of {serial(device)}")
    buttons = [
        e
        for b in shown.get("blocks", [])
        for e in b.get("elements", [])
        if e.get("action_id") == action_id
    ]
    assert buttons, f"the card of {serial(device)} offers no {spec.label} button"
    assert buttons[0]["value"].startswith(f"{spec.platform}|")
    reply = bot.emu.click(OPERATOR, action_id, message=shown)
    assert reply.status == 200


def open_modal(bot: Bot, case: Case, device: dict[str, Any], window: Window) -> dict[str, Any]:
    """`/device <action> <device>` (or the card's button): the modal opens at once and settles
    with the action's form. Fails at once, with Slack's words, when Slack refused a view."""
    spec = case.spec
    text = f"{spec.name} {serial(device)}"
    if spec.kind == "move":
        text = f"move {SAMPLES['ou']} {serial(device)}"
    mark = bot.emu.mark()
    if case.via_card:
        text = f"info {serial(device)} → {spec.label}"
        click_card_button(bot, spec, device)
    else:
        bot.slash(text)
    opened = bot.emu.wait_for_call("views.open", since=mark)
    assert opened.ok, opened
    view_id = opened.response["view"]["id"]

    def settled() -> dict[str, Any] | None:
        assert window.slack_refusals() == [], f"Slack refused the modal of /device {text}"
        view = bot.emu.open_view(OPERATOR)
        if not view or view["id"] != view_id or ":hourglass" in flatten(view):
            return None  # still loading
        return view

    view: dict[str, Any] = wait_until(settled, 15, f"the modal of /device {text}")
    assert view["callback_id"] == ids.CallbackId.ACTION, flatten(view)
    shown = [b["block_id"] for b in view["blocks"] if b["type"] == "input"]
    target = android_device(device) if spec.platform == "android" else None
    expected = [f.name for f in catalog.fields_for(spec, target)]
    assert [i for i in shown if i != ids.BlockId.CLEAR_FIELDS] == expected
    return view


def clear_ticks(view: dict[str, Any], case: Case) -> dict[str, Any]:
    """Annotate: the person ticks "Clear" for each field the case leaves empty that has a value."""
    block = next((b for b in view["blocks"] if b.get("block_id") == ids.BlockId.CLEAR_FIELDS), None)
    if block is None:
        return {}
    offered = [o["value"] for o in block["element"]["options"]]
    return {block["block_id"]: [n for n in offered if not case.values.get(n)]}


def drive(bot: Bot, devices: Devices, case: Case, device: dict[str, Any]) -> dict[str, Any] | None:
    """Run one case end to end; returns the request row (None for a refused combination)."""
    spec = case.spec
    window = Window(bot)
    before = set(request_ids(bot, spec.name, device_id(device)))
    view = open_modal(bot, case, device, window)
    values = case.values
    reply = bot.emu.submit_view(OPERATOR, view["id"], {**values, **clear_ticks(view, case)})
    assert reply.status == 200, reply
    if case.refused is not None:
        assert reply.json is not None and reply.json.get("response_action") == "errors", reply.body
        assert list(reply.json["errors"]) == [case.refused]
        assert bot.emu.open_view(OPERATOR)["id"] == view["id"]  # the modal stays open
        bot.emu.close_view(OPERATOR)
        assert set(request_ids(bot, spec.name, device_id(device))) == before
        assert window.mutations() == []  # nothing sent to Google
        assert window.slack_refusals() == []
        return None
    assert not reply.body.strip(), f"the modal refused {values}: {reply.body}"
    request_id = wait_until(
        lambda: next(iter(set(request_ids(bot, spec.name, device_id(device))) - before), None),
        10,
        f"the {spec.name} request",
    )
    if bot.svc.settings.needs_approval(spec.name):
        row = wait_until(
            lambda: (r := request_row(bot, request_id))["approval_ts"] and r, 10, "approval post"
        )
        message = bot.emu.message(APPROVALS, row["approval_ts"])
        assert message is not None and request_id in flatten(message)
        click = bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
        assert click.status == 200
    row = wait_until(
        lambda: (r := request_row(bot, request_id))["state"] in FINAL and r,
        20,
        f"request {request_id} ({case.id}) to finish",
    )
    # the outcome reached the requester's thread before looking at what Slack refused
    wait_until(
        lambda: any(
            json.loads(row["result"] or "{}").get("text", "\0")[:40] in flatten(m)
            for m in bot.emu.messages(row["requester_channel"], thread_ts=row["requester_ts"])
        ),
        10,
        "the outcome in the requester's thread",
    )
    assert row["state"] == "succeeded", f"{case.id}: {row['state']}: {row['result']}"
    google = window.google()
    assert [a[:3] for a in google if not 200 <= a.status < 400] == [], f"Google refused {case.id}"
    if spec.kind != "lost_case":
        accepted = [a for a in window.mutations() if 200 <= a.status < 300]
        assert accepted, f"no Google mutation: {[a[:3] for a in google]}"
        if spec.kind in ("chrome_command", "android_command", "patch"):  # the device's own call
            short = device_id(device).rsplit("/", 1)[-1]
            assert any(short in a.path for a in accepted), accepted
        # what was typed reached Google whole (as the action's validation normalised it)
        sent = sent_to_google(window)
        options = {f.name for f in spec.fields if f.options}
        typed = {f.name for f in spec.fields} - NOT_SENT  # not what validation derives from them
        for name, value in spec.parse(dict(values)).items():
            for item in [] if name not in typed else value if isinstance(value, list) else [value]:
                if name in options:  # an option may be sent as Google's enum: DEPROVISION_REASON_…
                    found = any(v.upper().endswith(str(item).upper()) for v in sent)
                else:
                    found = str(item) in sent
                assert found, f"{case.id}: {name} {str(item)[:60]!r} did not reach Google whole"
    assert window.slack_refusals() == []
    return row


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_action_conforms(cbot: Bot, devices: Devices, case: Case) -> None:
    device = devices.for_case(case)
    devices.prepare(cbot, case, device)
    row = drive(cbot, devices, case, device)
    if row is not None and case.spec.kind == "lost_case":
        from bot import lost

        wait_until(
            lambda: lost.open_case_for(cbot.svc, "chrome", device["deviceId"]) is None,
            10,
            "the lost case closed",
        )


def test_devices_used_stay_reasonable(devices: Devices) -> None:
    """The sandbox has 440 devices, as the session's: the conformance run takes few of them."""
    assert devices.used <= 60, devices.used
