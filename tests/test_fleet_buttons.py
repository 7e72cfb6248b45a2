"""Over a whole sandbox fleet, end to end: no card offers an action the sandbox would refuse
for that device, and every action a card leaves out is refused when typed, before any
approval is asked.

The fleet is the playground's (`python -m bot playground`: 500 devices, seed 1). Every device
is read through the bot over HTTP and its card built as `/device info` builds it (a sample is
also typed through Slack, to hold the builder to what Slack receives). Then every button of
every card is *run* against the sandbox through the bot's Google client, with the body the
bot would send (`catalog.command_body` of the form's values): a status change must be
accepted, a Chrome command must execute with SUCCESS, an Android command must end without
an error code. After each run the device is put back as it was, so that the next button is
checked on the device its card described.

Not run: `annotate` and `move` (a PATCH of annotations and a move to an existing OU: Google
sets no per-device condition on them) and Chrome *Found* (closes the bot's own lost case,
no Google call).
"""

from __future__ import annotations

import copy
import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from conftest import APPROVALS, OPERATOR, Bot, flatten, start_bot

from bot import capabilities, catalog, ids
from bot.devices import Device
from bot.errors import DeviceBotError
from bot.google.android import google_duration
from bot.lookup_buttons import card_for
from bot.sandbox import Sandbox
from bot.sandbox.testing import wait_for
from tests.test_actions import run

PREFIX = f"{ids.ActionId.DEVICE_ACTION}:"
NOT_RUN = {("chrome", "annotate"), ("chrome", "move"), ("chrome", "found")}
#: what a person would type in each form (valid everywhere the action is offered)
FORM = {
    "disable": {"why": "other"},
    "deprovision": {"deprovision_reason": "retiring_device"},
    "volume": {"volume": "40"},
    "reset-password": {"password_choice": "SET_A_NEW_PASSWORD", "new_password": "Tr0ub4dor&3x"},
    "clear-app-data": {"packages": "com.example.kiosk"},
    "lost": {"message": "Please call IT on +1 555 0100"},
    "add-esim": {
        "activation_code": "LPA:1$smdp.example.com$ABC123",
        "activation_state": "NOT_ACTIVATED",
    },
    "remove-esim": {"iccid": "8944110000000000001"},
}


@pytest.fixture
def fleet_bot(tmp_path: Any, emu: Any) -> Iterator[Bot]:
    """A bot on its own copy of the playground's fleet (it changes devices and puts them back)."""
    sandbox = Sandbox(devices=500, seed=1, command_delay=0.02, licenses=10**6).start()
    running = start_bot(tmp_path, sandbox, emu)
    running.settle()
    yield running
    running.server.stop()
    sandbox.stop()


def card_buttons(bot: Bot, device: Device) -> set[str]:
    """The actions on the device's card, as `/device info` builds it."""
    _, blocks = card_for(bot.svc, device)
    return {
        e["action_id"].removeprefix(PREFIX)
        for b in blocks
        for e in b.get("elements") or []
        if e.get("type") == "button" and e.get("action_id", "").startswith(PREFIX)
    }


def every_device(bot: Bot) -> list[tuple[str, str]]:
    fleet = bot.sandbox.fleet
    with fleet.lock:
        return [("chrome", k) for k in fleet.chrome_order] + [
            ("android", k) for k in fleet.android_order
        ]


def body_of(spec: catalog.ActionSpec, device: Device) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parameters and the JSON the bot would send for `spec` on `device` from the form."""
    values = {"reason": "INC-1 fleet check", **FORM.get(spec.name, {})}
    if spec.name == "remove-esim":  # an eSIM the device has, when it has one
        infos = (device.raw.get("networkInfo") or {}).get("telephonyInfos") or []
        icc = next((t["iccId"] for t in infos if t.get("iccId")), None)
        values["iccid"] = icc or values["iccid"]
    params = spec.parse(values)
    params.pop("reason", None)  # the request's reason, not sent to Google
    catalog.check_device(spec, params, device.ownership, device)
    secret = {name: params.pop(name) for name in spec.secret_fields() if name in params}
    return params, catalog.command_body(spec, params, secret)


class Restore:
    """Put a sandbox device back exactly as it was (status, state, or the device itself)."""

    def __init__(self, fleet: Any, platform: str, key: str) -> None:
        self.fleet, self.platform, self.key = fleet, platform, key
        with fleet.lock:
            store = fleet.chrome if platform == "chrome" else fleet.android
            self.raw = copy.deepcopy(store[key])
            order = fleet.chrome_order if platform == "chrome" else fleet.android_order
            self.position = order.index(key)

    def __call__(self) -> None:
        fleet = self.fleet
        with fleet.lock:
            if self.platform == "chrome":
                d = fleet.chrome[self.key]
                fleet.set_chrome_status(d, self.raw["status"])  # keeps the licence count right
                d.clear()
                d.update(copy.deepcopy(self.raw))
                fleet.bump(d)
                return
            d = fleet.android.get(self.key)
            if d is None:  # wiped or relinquished: the device is back, where it was
                fleet.android[self.key] = d = {}
                fleet.android_order.insert(min(self.position, len(fleet.android_order)), self.key)
                serial = self.raw["hardwareInfo"]["serialNumber"].upper()
                fleet._android_serial[serial] = self.key
            d.clear()
            d.update(copy.deepcopy(self.raw))
            fleet.touch()


def refused(bot: Bot, spec: catalog.ActionSpec, device: Device) -> str | None:
    """Run `spec` on `device` against the sandbox; why it was refused, or None."""
    google = bot.svc.google
    try:
        params, body = body_of(spec, device)
        if spec.kind == "status":  # as bot/execution.py sends it
            (result,) = google.require_chrome().change_status(
                [device.id], spec.google, params.get("deprovision_reason")
            )
            return None if result.ok else f"status change: {result.error}"
        if spec.kind == "chrome_command":
            chrome = google.require_chrome()
            payload = body.get("payload")
            command_id = chrome.issue_command(
                device.id, spec.google, json.loads(payload) if payload else None
            )
            command = wait_for(
                lambda: (
                    (c := chrome.get_command(device.id, command_id))["state"]
                    in ("EXECUTED_BY_CLIENT", "EXPIRED", "CANCELLED")
                    and c
                ),
                10,
                f"{spec.name} on {device.id}",
            )
            result = command.get("commandResult") or {}
            if result.get("result") != "SUCCESS":
                return f"{command['state']}: {result}"
            return None
        android = google.require_android()
        operation = android.issue_command(device.id, {**body, "duration": google_duration(600)})

        def settled() -> dict[str, Any] | None:
            op = android.get_operation(operation["name"])
            status = next(
                (
                    (op.get("metadata") or {}).get(k, {}).get("status")
                    for k in (
                        "startLostModeStatus",
                        "stopLostModeStatus",
                        "esimStatus",
                        "requestDeviceInfoStatus",
                    )
                    if k in (op.get("metadata") or {})
                ),
                None,
            )
            return op if op.get("done") or status == "PENDING_USER_ACTION" else None

        op = wait_for(settled, 10, f"{spec.name} on {device.id}")
        metadata = op.get("metadata") or {}
        if (metadata.get("esimStatus") or {}).get("status") == "ERROR_ICC_ID_NOT_FOUND":
            return None  # no such eSIM on this device: the command ran, the data was wrong
        code = metadata.get("errorCode")
        if code and code != "COMMAND_ERROR_CODE_UNSPECIFIED":
            return f"errorCode {code}"
        if op.get("error"):
            return f"error {op['error']}"
        return None
    except DeviceBotError as exc:
        return f"{type(exc).__name__}: {exc.message}"


def test_no_card_offers_an_action_the_sandbox_would_refuse(fleet_bot: Bot) -> None:
    bot = fleet_bot
    fleet = bot.sandbox.fleet
    svc = bot.svc

    def check(ref: tuple[str, str]) -> tuple[list[str], Counter[str], set[str]]:
        platform, key = ref
        device = svc.devices.get(platform, key)  # read through the bot, over HTTP
        offered = card_buttons(bot, device)
        problems: list[str] = []
        ran: Counter[str] = Counter()
        for name in sorted(offered):
            if (platform, name) in NOT_RUN:
                continue
            spec = catalog.action_for(name, platform)
            restore = Restore(fleet, platform, key)
            try:
                why = refused(bot, spec, device)
            finally:
                restore()
            ran[f"{platform} {name}"] += 1
            if why is not None:
                problems.append(
                    f"{platform} {device.serial} ({key}): {name} offered, refused: {why}"
                )
        return problems, ran, offered

    started = time.perf_counter()
    devices = every_device(bot)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(check, devices))
    problems = [p for a in answers for p in a[0]]
    ran: Counter[str] = sum((a[1] for a in answers), Counter())
    assert not problems, "\n".join(problems[:40])
    # the whole fleet was seen, and every action a card can offer was run somewhere
    assert len(answers) == 500
    runnable = {
        f"{s.platform} {s.name}"
        for s in catalog.all_specs()
        if (s.platform, s.name) not in NOT_RUN and s.kind != "move"
    }
    assert set(ran) == runnable, runnable - set(ran)
    assert sum(ran.values()) > 2000
    print(
        f"\n{sum(ran.values())} buttons run on 500 devices in {time.perf_counter() - started:.1f}s"
    )


def test_a_sample_of_cards_through_slack_has_the_same_buttons(fleet_bot: Bot) -> None:
    """The builder the fleet check uses is what `/device info` sends: one device of each kind."""
    bot = fleet_bot
    fleet = bot.sandbox.fleet
    kinds: dict[tuple[Any, ...], str] = {}
    for d in fleet.iter_chrome():
        if d.get("serialNumber"):
            kinds.setdefault(("chrome", d["status"], d.get("deviceLicenseType")), d["serialNumber"])
    for name in list(fleet.android_order):
        d = fleet.android[name]
        key = ("android", d["state"], d["managementMode"], d["ownership"], d["apiLevel"] >= 30)
        kinds.setdefault(key, d["hardwareInfo"]["serialNumber"])
    assert len(kinds) >= 10
    for serial in kinds.values():
        mark = len(bot.emu.ephemerals(OPERATOR))
        bot.slash(f"info {serial}")
        card = wait_for(
            lambda s=serial, m=mark: next(
                (e for e in bot.emu.ephemerals(OPERATOR)[m:] if s in flatten(e)), None
            ),
            15,
            f"the card of {serial}",
        )
        shown = {
            e["action_id"].removeprefix(PREFIX)
            for b in card.get("blocks") or []
            for e in b.get("elements") or []
            if e.get("type") == "button" and e.get("action_id", "").startswith(PREFIX)
        }
        device = bot.svc.devices.resolve(serial)
        assert shown == card_buttons(bot, device), serial
        assert shown == {
            s.name for s in capabilities.available(capabilities.facts_for(bot.svc, device))
        }


def test_every_action_a_card_leaves_out_is_refused_when_typed_before_any_approval(
    fleet_bot: Bot,
) -> None:
    """For each action some card of the fleet leaves out, one such device: typing the
    sub-command gets the capability model's reason and no form to submit; no request is made
    and nothing reaches the approvals channel."""
    bot = fleet_bot
    svc = bot.svc
    fleet = bot.sandbox.fleet
    cases: dict[tuple[str, str], tuple[str, str]] = {}
    for platform, key in every_device(bot):
        raw = fleet.chrome[key] if platform == "chrome" else fleet.android[key]
        serial = raw.get("serialNumber") or (raw.get("hardwareInfo") or {}).get("serialNumber")
        if not serial:
            continue
        device = svc.devices.get(platform, key)
        facts = capabilities.facts_for(svc, device)
        for spec, why in capabilities.unavailable(facts):
            if spec.kind == "move":
                continue
            cases.setdefault((platform, spec.name), (serial, why))
    # every action is left out on some device of the fleet
    assert {n for _, n in cases} >= {
        "reenable",
        "disable",
        "screenshot",
        "relinquish",
        "lost",
        "found",
        "reboot",
        "device-info",
        "add-esim",
    }, sorted(cases)
    for (_platform, name), (serial, why) in sorted(cases.items()):
        view = run(bot, f"{name} {serial}")
        text = flatten(view)
        assert flatten({"text": why}) in text or why.split(";")[0] in text, (name, serial, text)
        assert not view.get("submit"), (name, serial)  # nothing to submit
    assert bot.store.db().execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 0
    assert not bot.messages_in(APPROVALS)


def test_a_device_moved_into_a_kiosk_ou_runs_the_kiosk_commands_its_card_offers(
    tmp_path: Any, sandbox: Any, emu: Any, claims: Any
) -> None:
    """KIOSK_ORG_UNITS: a Chrome device in a kiosk OU runs a kiosk session whatever its
    licence. The card offers Screenshot, Set volume and Capture logs there, and the sandbox,
    whose kiosk OU is the same, runs them; back in its own OU the same device is offered none
    and the sandbox refuses them."""
    kiosk_only = ("screenshot", "volume", "logs")
    bot = start_bot(tmp_path, sandbox, emu, KIOSK_ORG_UNITS="/Kiosks")
    fleet = sandbox.fleet
    raw = claims.chrome(
        where=lambda d: (
            d.get("deviceLicenseType") != "kioskUpgrade" and d.get("orgUnitPath") != "/Kiosks"
        )
    )
    key = raw["deviceId"]
    restore = Restore(fleet, "chrome", key)
    try:
        outside = bot.svc.devices.get("chrome", key)
        assert not set(kiosk_only) & card_buttons(bot, outside)
        for name in kiosk_only:
            why = refused(bot, catalog.action_for(name, "chrome"), outside)
            assert why is not None and "kiosk" in why.lower(), why

        with fleet.lock:  # moved as moveDevicesToOu moves it
            raw["orgUnitPath"], raw["orgUnitId"] = "/Kiosks", fleet.org_units["/Kiosks"]
        inside = bot.svc.devices.get("chrome", key)
        assert inside.raw.get("deviceLicenseType") != "kioskUpgrade"
        assert set(kiosk_only) <= card_buttons(bot, inside)
        for name in kiosk_only:
            assert refused(bot, catalog.action_for(name, "chrome"), inside) is None, name
    finally:
        restore()
        bot.server.stop()
