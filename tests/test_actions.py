"""Device actions end to end: `/device <action>` over signed HTTP → modal → validation → approvals.

The bot runs for real (HTTP, Bolt, sandbox Google); Slack is the emulator. Each test claims its
own sandbox devices, so the tests run in any order and in parallel.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import (
    APPROVALS,
    HELPDESK,
    OPERATOR,
    OUTSIDER,
    Bot,
    Claims,
    flatten,
    open_modal,
    request_rows,
    serial,
    settled,
    wait_until,
)

from bot import catalog, ids

run = open_modal  # what the action tests (and modules importing from here) call it


LOADING = str(ids.CallbackId.LOADING)
ACTION = str(ids.CallbackId.ACTION)


# ---- helpers ----------------------------------------------------------------------------------


def inputs(view: dict[str, Any]) -> list[str]:
    return [b["block_id"] for b in view["blocks"] if b["type"] == "input"]


def chrome_ref(claims: Claims) -> str:
    return serial(claims.chrome())


def android_ref(claims: Claims) -> str:
    return serial(claims.android(where=lambda d: d.get("managementMode") == "DEVICE_OWNER"))


# ---- every action opens its modal ------------------------------------------------------------

#: `found` on Chrome needs an open lost case first (tests/test_lost.py opens one)
ACTION_CASES = [key for key, spec in catalog.CATALOG.items() if spec.kind != "lost_case"]


@pytest.mark.parametrize(("name", "platform"), ACTION_CASES, ids=lambda v: v)
def test_each_action_opens_its_modal(bot: Bot, claims: Claims, name: str, platform: str) -> None:
    ref = serial(claims.fitting(name, platform, "DISABLED" if name == "reenable" else "ACTIVE"))
    text = {"move": f"move /Engineering {ref}", "volume": f"volume 40 {ref}"}.get(
        name, f"{name} {ref}"
    )
    mark = bot.emu.mark()
    view = run(bot, text)
    bot.emu.wait_for_call("views.update", since=mark)
    calls = bot.emu.calls[mark:]
    opened = next(c for c in calls if c.method == "views.open")
    loading = opened.args["view"]
    loading = json.loads(loading) if isinstance(loading, str) else loading
    assert loading["callback_id"] == LOADING  # opened before Google was asked
    assert [c.method for c in calls].index("views.open") < [c.method for c in calls].index(
        "views.update"
    )
    spec = catalog.action_for(name, platform)
    assert view["callback_id"] == ACTION, flatten(view)
    # annotate adds its "Clear" ticks after the fields
    device = bot.svc.devices.resolve(ref)
    assert [i for i in inputs(view) if i != ids.BlockId.CLEAR_FIELDS] == [
        f.name for f in catalog.fields_for(spec, device)
    ]
    assert ref in flatten(view)
    meta = json.loads(view["private_metadata"])
    assert (meta["a"], meta["p"], meta["c"]) == (name, platform, HELPDESK)
    if name == "volume":
        element = next(b for b in view["blocks"] if b.get("block_id") == "volume")["element"]
        assert element["initial_value"] == "40"
    if name == "move":
        element = next(b for b in view["blocks"] if b.get("block_id") == "ou")["element"]
        assert element["initial_option"]["value"] == "/Engineering"
    assert not bot.emu.problems


def test_missing_reference_gets_the_usage(bot: Bot) -> None:
    bot.slash("volume")
    text = bot.wait_ephemeral("Usage")
    assert "/device volume <0-100> <device>" in text
    assert not bot.emu.calls_to("views.open")


# ---- validation next to the field ------------------------------------------------------------

VALIDATION_CASES = [
    ("reset-password", "android", {"new_password": "abc", "reason": "t"}, "new_password"),
    ("reset-password", "android", {"new_password": "12345", "reason": "t"}, "new_password"),
    ("reset-password", "android", {"new_password": "x" * 65, "reason": "t"}, "new_password"),
    ("wipe", "android", {"wipe_reason": "w" * 201, "reason": "t"}, "wipe_reason"),
    ("wipe", "android", {"reason": ""}, "reason"),
    ("volume", "chrome", {"volume": "150"}, "volume"),
    ("volume", "chrome", {"volume": "-1"}, "volume"),
    (
        "clear-app-data",
        "android",
        {"packages": "com.ok.app, not a package", "reason": "t"},
        "packages",
    ),
    ("add-esim", "android", {"activation_code": "short"}, "activation_code"),
    ("remove-esim", "android", {"iccid": "12345", "reason": "t"}, "iccid"),
    ("lost", "android", {"organization": "ACME"}, "message"),
    ("lost", "android", {"email": "not-an-email"}, "email"),
    ("move", "chrome", {"ou": "Sales/EMEA"}, "ou"),
    ("deprovision", "chrome", {"reason": "t"}, "deprovision_reason"),
]


@pytest.mark.parametrize(("name", "platform", "values", "field"), VALIDATION_CASES)
def test_validation_error_shows_next_to_its_field(
    bot: Bot, claims: Claims, name: str, platform: str, values: dict[str, Any], field: str
) -> None:
    if field == "wipe_reason":  # asked for only where Google shows it: a personal work profile
        ref = serial(claims.android(lambda d: d.get("ownership") == "PERSONALLY_OWNED"))
    else:
        ref = serial(claims.fitting(name, platform))
    view = run(bot, f"move /Sales {ref}" if name == "move" else f"{name} {ref}")
    reply = bot.emu.submit_view(OPERATOR, view["id"], values)
    assert reply.status == 200
    assert reply.json is not None and reply.json["response_action"] == "errors"
    assert list(reply.json["errors"]) == [field]
    assert bot.emu.view_errors(view["id"]) == reply.json["errors"]
    assert bot.emu.open_view(OPERATOR)["id"] == view["id"]  # the modal stays open
    assert request_rows(bot, name) == []
    if field == "new_password":  # the error names the rule, never echoes the password
        assert values["new_password"] not in json.dumps(reply.json)


# ---- refusals ---------------------------------------------------------------------------------


def test_wrong_platform_is_refused_in_the_modal(bot: Bot, claims: Claims) -> None:
    view = run(bot, f"lock {chrome_ref(claims)}")
    assert view["callback_id"] == LOADING and not view.get("submit")
    assert "`lock` is not something a Chrome OS device can do" in flatten(view)
    view = run(bot, f"disable {android_ref(claims)}")
    assert "`disable` is not something" in flatten(view) and "Android device" in flatten(view)
    assert not view.get("submit")


@pytest.mark.parametrize(
    ("action", "status", "words"),
    [
        ("disable", "DISABLED", "already disabled"),
        ("reenable", "ACTIVE", "already active"),
        ("powerwash", "DISABLED", "disabled"),
        ("deprovision", "DEPROVISIONED", "deprovisioned"),
    ],
)
def test_wrong_state_is_refused_in_the_modal(
    bot: Bot, claims: Claims, action: str, status: str, words: str
) -> None:
    device = claims.chrome(status=status)
    view = run(bot, f"{action} {serial(device)}")
    assert words in flatten(view)
    assert not view.get("submit")


def test_unknown_reference_says_so(bot: Bot) -> None:
    view = run(bot, "wipe NOSUCHDEVICE123")
    assert "No device matches `NOSUCHDEVICE123`" in flatten(view)
    assert not view.get("submit")


def test_outsider_cannot_start_an_action(bot: Bot, claims: Claims) -> None:
    bot.slash(f"disable {chrome_ref(claims)}", user=OUTSIDER)
    bot.wait_ephemeral("not allowed", user=OUTSIDER)
    assert not bot.emu.calls_to("views.open")


# ---- blast radius: ambiguity and bulk ---------------------------------------------------------


def test_ambiguous_reference_offers_a_picker(bot: Bot, claims: Claims) -> None:
    first, second = claims.chrome(), claims.chrome()
    asset = f"DUP-{first['deviceId'][:8]}"
    chrome = bot.svc.google.require_chrome()
    for device in (first, second):
        chrome.patch(device["deviceId"], {"annotatedAssetId": asset})
    view = run(bot, f"reboot {asset}")
    assert "matches 2 devices" in flatten(view)
    buttons = [b["accessory"] for b in view["blocks"] if "accessory" in b]
    assert {b["value"] for b in buttons} == {
        f"chrome|{first['deviceId']}",
        f"chrome|{second['deviceId']}",
    }
    assert not view.get("submit")  # never "all of them"
    chosen = next(b for b in buttons if b["value"].endswith(second["deviceId"]))
    block_id = next(b["block_id"] for b in view["blocks"] if b.get("accessory") is chosen)
    reply = bot.emu.click(OPERATOR, chosen["action_id"], block_id=block_id, view=view["id"])
    assert reply.status == 200
    form = wait_until(
        lambda: (v := bot.emu.open_view(OPERATOR)) and v["callback_id"] == ACTION and v,
        15,
        "the chosen modal",
    )
    assert form["id"] == view["id"]  # the same modal, now for the chosen device
    assert json.loads(form["private_metadata"])["d"] == [second["deviceId"]]
    assert json.loads(form["private_metadata"])["c"] == HELPDESK
    assert serial(second) in flatten(form) and serial(first) not in flatten(form)


def test_move_over_ten_devices_requires_the_typed_count(bot: Bot, claims: Claims) -> None:
    devices = [claims.chrome() for _ in range(11)]
    refs = " ".join(serial(d) for d in devices)
    view = run(bot, f"move /Engineering/Labs {refs}")
    assert view["callback_id"] == ACTION, flatten(view)
    assert ids.BlockId.CONFIRM_COUNT in inputs(view)
    for device in devices:
        assert serial(device) in flatten(view)
    reply = bot.emu.submit_view(OPERATOR, view["id"], {ids.BlockId.CONFIRM_COUNT: "10"})
    assert reply.json and list(reply.json["errors"]) == [ids.BlockId.CONFIRM_COUNT]
    assert request_rows(bot, "move") == []
    reply = bot.emu.submit_view(OPERATOR, view["id"], {ids.BlockId.CONFIRM_COUNT: "11"})
    assert reply.status == 200 and not reply.body.strip()  # closed
    assert bot.emu.open_view(OPERATOR) is None
    rows = wait_until(lambda: request_rows(bot, "move"), 10, "the move request")
    assert len(json.loads(rows[0]["device_ids"])) == 11
    fleet = bot.sandbox.fleet
    wait_until(
        lambda: all(
            fleet.chrome_get(d["deviceId"])["orgUnitPath"] == "/Engineering/Labs" for d in devices
        ),
        15,
        "all 11 devices moved",
    )


def test_move_of_ten_devices_needs_no_count(bot: Bot, claims: Claims) -> None:
    refs = " ".join(serial(claims.chrome()) for _ in range(10))
    view = run(bot, f"move /Support {refs}")
    assert ids.BlockId.CONFIRM_COUNT not in inputs(view)


# ---- device-card buttons ----------------------------------------------------------------------


def card(platform: str, device_id: str, action: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "actions",
            "block_id": "card_actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": action},
                    "action_id": ids.device_action_id(action),
                    "value": f"{platform}|{device_id}",
                }
            ],
        }
    ]


def test_device_card_button_opens_the_modal(bot: Bot, claims: Claims) -> None:
    device = claims.android(where=lambda d: d.get("managementMode") == "DEVICE_OWNER")
    ts = bot.svc.out.post(HELPDESK, "card", card("android", device["name"], "lock"))
    mark = bot.emu.mark()
    reply = bot.emu.click(
        OPERATOR, ids.device_action_id("lock"), message={"channel": HELPDESK, "ts": ts}
    )
    assert reply.status == 200
    opened = bot.emu.wait_for_call("views.open", since=mark)
    view = wait_until(lambda: settled(bot, OPERATOR, opened.response["view"]["id"]), 15)
    assert view["callback_id"] == ACTION
    assert serial(device) in flatten(view)
    assert json.loads(view["private_metadata"])["c"] == HELPDESK


def test_device_card_button_refuses_outsiders(bot: Bot, claims: Claims) -> None:
    device = claims.chrome()
    ts = bot.svc.out.post(HELPDESK, "card", card("chrome", device["deviceId"], "disable"))
    reply = bot.emu.click(
        OUTSIDER, ids.device_action_id("disable"), message={"channel": HELPDESK, "ts": ts}
    )
    assert reply.status == 200
    bot.wait_ephemeral("not allowed", user=OUTSIDER)
    assert not bot.emu.calls_to("views.open")


# ---- submission → approvals -------------------------------------------------------------------


def test_submitted_disable_lands_as_a_pending_request(bot: Bot, claims: Claims) -> None:
    device = claims.chrome()
    view = run(bot, f"disable {serial(device)}")
    reply = bot.emu.submit_view(
        OPERATOR, view["id"], {"why": "lost_or_stolen", "reason": "INC-42 left on a train"}
    )
    assert reply.status == 200 and not reply.body.strip()
    rows = wait_until(lambda: request_rows(bot, "disable"), 10, "the disable request")
    row = rows[0]
    assert row["state"] == "pending" and row["needs_approval"] == 1
    assert json.loads(row["device_ids"]) == [device["deviceId"]]
    assert row["reason"] == "INC-42 left on a train"
    assert json.loads(row["params"]) == {"why": "lost_or_stolen"}
    assert row["requester"] == OPERATOR and row["requester_channel"] == HELPDESK
    wait_until(
        lambda: any(serial(device) in flatten(m) for m in bot.messages_in(APPROVALS)),
        10,
        "approval post",
    )
    assert bot.sandbox.fleet.chrome_get(device["deviceId"])["status"] == "ACTIVE"  # nothing ran yet


def test_submitted_lock_runs_without_approval(bot: Bot, claims: Claims) -> None:
    device = claims.android(where=lambda d: d.get("managementMode") == "DEVICE_OWNER")
    view = run(bot, f"lock {serial(device)}")
    assert inputs(view) == []  # a confirmation modal: the device, no fields
    reply = bot.emu.submit_view(OPERATOR, view["id"], {})
    assert reply.status == 200 and not reply.body.strip()
    rows = wait_until(lambda: request_rows(bot, "lock"), 10, "the lock request")
    request_id = rows[0]["id"]
    assert rows[0]["needs_approval"] == 0
    wait_until(
        lambda: (
            bot.store.db()
            .execute("SELECT 1 FROM pending_commands WHERE request_id = ?", [request_id])
            .fetchone()
            or request_rows(bot, "lock")[0]["state"] == "succeeded"
        ),
        10,
        "the lock command issued",
    )
    assert request_rows(bot, "lock")[0]["state"] in ("executing", "succeeded")


def test_reset_password_secret_goes_nowhere(
    bot: Bot, claims: Claims, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Sup3r-S3cret-Pw!"
    device = claims.android(where=lambda d: d.get("managementMode") == "DEVICE_OWNER")
    view = run(bot, f"reset-password {serial(device)}")
    assert secret not in view["private_metadata"]
    reply = bot.emu.submit_view(
        OPERATOR,
        view["id"],
        {"new_password": secret, "flags": ["LOCK_NOW"], "reason": "user forgot"},
    )
    assert reply.status == 200 and not reply.body.strip()
    rows = wait_until(lambda: request_rows(bot, "reset-password"), 10, "the reset-password request")
    assert secret not in json.dumps(rows[0], default=str)
    assert json.loads(rows[0]["params"]) == {"flags": ["LOCK_NOW"]}
    wait_until(lambda: bot.messages_in(APPROVALS), 10, "approval post")
    for call in bot.emu.calls:
        assert secret not in json.dumps(call.args, default=str)
    assert secret not in caplog.text


def test_annotate_prefills_and_runs_directly(bot: Bot, claims: Claims) -> None:
    device = claims.chrome(where=lambda d: bool(d.get("annotatedUser")))
    view = run(bot, f"annotate {serial(device)}")
    elements = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert elements["annotatedUser"]["initial_value"] == device["annotatedUser"]
    reply = bot.emu.submit_view(
        OPERATOR,
        view["id"],
        {
            "annotatedUser": "new.owner@example.com",
            "annotatedLocation": "Desk 4",
            "notes": "<!channel> hi",
        },
    )
    assert reply.status == 200 and not reply.body.strip()
    fleet = bot.sandbox.fleet
    wait_until(
        lambda: fleet.chrome_get(device["deviceId"]).get("annotatedLocation") == "Desk 4",
        10,
        "the annotation",
    )
    assert fleet.chrome_get(device["deviceId"])["annotatedUser"] == "new.owner@example.com"


def test_info_card_button_opens_the_action_modal(bot: Bot, claims: Claims) -> None:
    device = claims.chrome()
    bot.slash(f"info {serial(device)}")
    bot.wait_ephemeral(serial(device))
    mark = bot.emu.mark()
    reply = bot.emu.click(OPERATOR, ids.device_action_id("disable"))
    assert reply.status == 200
    opened = bot.emu.wait_for_call("views.open", since=mark)
    view = wait_until(lambda: settled(bot, OPERATOR, opened.response["view"]["id"]), 15)
    assert view["callback_id"] == ACTION
    assert json.loads(view["private_metadata"])["d"] == [device["deviceId"]]


def test_state_refusal_escapes_device_text() -> None:
    from bot import capabilities
    from bot.catalog import action_for
    from bot.devices import Device

    device = Device(platform="chrome", id="x", serial="<!channel>", status="DISABLED")
    message = capabilities.refusal(action_for("disable", "chrome"), capabilities.facts(device))
    assert message is not None and "<!channel>" not in message and "&lt;!channel&gt;" in message
