"""Text from Google or from a device never reaches Slack as markup.

Hostile text is planted in every device field the sandbox serves (Chrome and Android), in
Google's error messages, in a Chrome command's errorMessage and payload, in file names and
download URLs and in eSIM details; then every flow runs end to end through the Slack
emulator: the info card, find, an action modal, approvals and their outcome threads, the
lost-devices post and its check-ins, resolution and history. No Slack call may carry the
hostile markup raw (`<!channel>`, `<@…>`, `<https://…|…>`) in a message's fallback `text`
or in any mrkdwn text, and nothing is escaped twice.

Plain-text objects (headers, titles, buttons) and input values are not scanned: Slack
renders them literally, and an input prefilled with `&lt;` would write entities back to
Google on save.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import (
    APPROVALS,
    APPROVER1,
    LOST,
    OPERATOR,
    approval_message,
    flatten,
    request_row,
    start_bot,
    wait_state,
    wait_until,
)
from test_actions import run
from test_approvals import submit, thread_texts

from bot import ids, lost
from bot.sandbox.api import rfc3339

TOKEN = "zqx7tok"
#: what an attacker would plant; each planted value also names its field
RAW_MARKUP = ("<!channel", "<!here", "<!subteam", "<@U0EVIL", "<https://evil.example")


def hostile(field: str) -> str:
    return (
        f"{TOKEN} {field} <!channel> <!here> <https://evil.example/|sso-login> "
        "<@U0EVIL> <!subteam^S0EVIL> a&b"
    )


# ---- what the emulator recorded ------------------------------------------------------------


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _mrkdwn(node: Any) -> Iterator[str]:
    """Every mrkdwn text object under `node`."""
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
            yield node["text"]
        for value in node.values():
            yield from _mrkdwn(value)
    elif isinstance(node, list):
        for item in node:
            yield from _mrkdwn(item)


def rendered_texts(emu: Any) -> list[tuple[str, str]]:
    """(where, text) of every fallback text and mrkdwn text the bot sent to Slack."""
    out: list[tuple[str, str]] = []
    for call in emu.calls:
        args = call.args
        if isinstance(args.get("text"), str):
            out.append((f"{call.method} text", args["text"]))
        for key in ("blocks", "attachments", "view"):
            for text in _mrkdwn(_json(args.get(key))):
                out.append((f"{call.method} {key}", text))
    for response in emu.responses:
        body = response.body
        if isinstance(body.get("text"), str):
            out.append(("response_url text", body["text"]))
        for text in _mrkdwn(_json(body.get("blocks"))):
            out.append(("response_url blocks", text))
    return out


# ---- planting --------------------------------------------------------------------------------


class Planted:
    """Hostile fields on claimed sandbox devices, put back as they were at the end."""

    def __init__(self, fleet: Any) -> None:
        self.fleet = fleet
        self.saved: list[tuple[str, dict[str, Any]]] = []

    def set(self, ref: str, fields: dict[str, Any]) -> None:
        self.saved.append((ref, self.fleet.set_fields(ref, fields)))

    def restore(self) -> None:
        for ref, previous in reversed(self.saved):
            self.fleet.set_fields(ref, previous)
            self.fleet.clear_outcome(ref)


def plant_chrome(planted: Planted, device: dict[str, Any], *, annotated: bool) -> None:
    fields: dict[str, Any] = {
        "serialNumber": hostile("serial"),
        "annotatedLocation": hostile("location"),
        "annotatedAssetId": hostile("asset"),
        "notes": hostile("notes"),
        "model": hostile("model"),
        "osVersion": hostile("os"),
        "platformVersion": hostile("platform"),
        "orgUnitPath": "/" + hostile("ou"),
        "recentUsers": [{"type": "USER_TYPE_MANAGED", "email": hostile("recent-user")}],
        "lastKnownNetwork": [{"ipAddress": hostile("ip"), "wanIpAddress": hostile("wan-ip")}],
        "annotatedUser": hostile("annotated-user") if annotated else None,
    }
    planted.set(device["deviceId"], fields)


def plant_android(planted: Planted, device: dict[str, Any]) -> None:
    network = dict(device["networkInfo"])
    network.update(
        networkOperatorName=hostile("operator"),
        wifiMacAddress=hostile("wifi-mac"),
        telephonyInfos=[{"carrierName": hostile("carrier"), "iccId": "8944000000000000001"}],
    )
    planted.set(
        device["name"],
        {
            "hardwareInfo": {
                **device["hardwareInfo"],
                "serialNumber": hostile("android-serial"),
                "brand": hostile("brand"),
                "model": hostile("android-model"),
                "manufacturer": hostile("manufacturer"),
            },
            "softwareInfo": {**device["softwareInfo"], "androidVersion": hostile("version")},
            "user": {"accountIdentifier": hostile("android-user")},
            "policyName": device["policyName"] + "-" + hostile("policy").replace("/", "_"),
            "networkInfo": network,
        },
    )


# ---- the flows ---------------------------------------------------------------------------------


def approve(bot: Any, request_id: str) -> dict[str, Any]:
    message = approval_message(bot, request_id)
    reply = bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
    assert reply.status == 200
    return message


def settle_thread(bot: Any, request_id: str, needle: str) -> str:
    """The approval thread of a request once it tells `needle`."""
    ts = request_row(bot, request_id)["approval_ts"]
    return wait_until(
        lambda: (t := thread_texts(bot, APPROVALS, ts)) and needle in t and t,
        15,
        f"{needle!r} in the approval thread of {request_id}",
    )


def ephemeral(bot: Any, needle: str) -> str:
    return bot.wait_ephemeral(needle, timeout=15)


@pytest.fixture
def hostile_bot(tmp_path, sandbox, emu, claims):
    chrome_a = claims.chrome_kiosk()  # screenshots and volume run in kiosk sessions only
    chrome_b = claims.chrome("ACTIVE")
    phone = claims.android(
        lambda d: (
            d["apiLevel"] >= 35
            and d["managementMode"] == "DEVICE_OWNER"
            and d["ownership"] == "COMPANY_OWNED"
        )
    )
    planted = Planted(sandbox.fleet)
    plant_chrome(planted, chrome_a, annotated=True)
    plant_chrome(planted, chrome_b, annotated=False)
    plant_android(planted, phone)
    bot = start_bot(
        tmp_path,
        sandbox,
        emu,
        APPROVAL_REQUIRED="disable,reboot,screenshot,lost,found,add-esim",
    )
    try:
        yield bot, chrome_a, chrome_b, phone, planted
    finally:
        bot.server.stop()
        sandbox.faults.clear()
        planted.restore()


def test_nothing_from_google_or_a_device_reaches_slack_as_markup(hostile_bot):
    bot, chrome_a, chrome_b, phone, planted = hostile_bot
    sandbox, fleet = bot.sandbox, bot.sandbox.fleet
    a_id, b_id, phone_id = chrome_a["deviceId"], chrome_b["deviceId"], phone["name"]
    phone_short = phone_id.rsplit("/", 1)[-1]

    # look-ups: the cards of all three devices, find, and a Google error that echoes input
    for ref, needle in ((a_id, a_id), (b_id, b_id), (phone_short, "android-serial")):
        bot.slash(f"info {ref}")
        ephemeral(bot, needle)
    bot.slash(f"find {TOKEN}")
    ephemeral(bot, f"match `{TOKEN}`")
    sandbox.faults.add(
        status=400, message=hostile("google-400"), path_contains="zqx8err", method="GET"
    )
    bot.slash("find zqx8err")
    ephemeral(bot, "Google rejected the request")

    # an action modal, then a Chrome command whose errorMessage is hostile
    fleet.set_outcome(a_id, result="FAILURE", error_message=hostile("errorMessage"))
    view = run(bot, f"reboot {a_id}")
    assert bot.emu.submit_view(OPERATOR, view["id"], {}).status == 200
    reboot = wait_until(
        lambda: (
            bot.store.db().execute("SELECT id FROM requests WHERE action = 'reboot'").fetchone()
        ),
        10,
        "the reboot request",
    )[0]
    approve(bot, reboot)
    wait_state(bot, reboot, "failed")
    settle_thread(bot, reboot, "Failed on the device")

    # a screenshot whose files carry hostile names and URLs; a volume with a hostile payload
    fleet.clear_outcome(a_id)
    later = rfc3339(time.time() + 3600)
    planted.set(
        a_id,
        {
            "screenshotFiles": [
                {
                    "name": hostile("file"),
                    "type": "SCREENSHOT_FILE",
                    "createTime": later,
                    "downloadUrl": "https://evil.example/x|<!channel>",
                },
                {
                    "name": hostile("file2"),
                    "type": "SCREENSHOT_FILE",
                    "createTime": later,
                    "downloadUrl": "https://files.example/a?b=1&c=2",
                },
            ]
        },
    )
    shot = submit(bot, "screenshot", a_id)
    approve(bot, shot)
    wait_state(bot, shot, "succeeded")
    settle_thread(bot, shot, "Download")
    fleet.set_outcome(a_id, result_payload=hostile("payload"))
    volume = submit(bot, "volume", a_id, {"volume": 30})
    wait_state(bot, volume, "succeeded")
    fleet.clear_outcome(a_id)

    # a status change refused by Google with a message that echoes hostile text
    sandbox.faults.add(
        status=412,
        message=hostile("google-412") + " Illegal device state transition",
        path_contains=":batchChangeStatus",
        body_contains=b_id,
    )
    refused = submit(bot, "disable", b_id, {"why": "other"})
    approve(bot, refused)
    wait_state(bot, refused, "failed")
    settle_thread(bot, refused, "Failed")

    # a stolen Chromebook: the lost-devices post, a check-in from a hostile network, found
    stolen = submit(bot, "disable", a_id, {"why": "lost_or_stolen"})
    approve(bot, stolen)
    wait_state(bot, stolen, "succeeded")
    case = wait_until(
        lambda: (c := lost.open_case_for(bot.svc, "chrome", a_id)) and c["ts"] and c,
        10,
        "the Chrome case",
    )
    fleet.check_in(a_id, at=time.time() + 5, ip=hostile("ip2"), wan_ip=hostile("wan2"))
    wait_until(lambda: bot.emu.messages(LOST, thread_ts=case["ts"]), 15, "the Chrome check-in")

    # a lost phone: lost mode, a check-in from a hostile operator, an eSIM failure
    lost_mode = submit(bot, "lost", phone_id, {"phone": "+1 555 0100", "message": "Call IT"})
    approve(bot, lost_mode)
    wait_state(bot, lost_mode, "succeeded")
    phone_case = wait_until(
        lambda: (c := lost.open_case_for(bot.svc, "android", phone_id)) and c["ts"] and c,
        10,
        "the Android case",
    )
    fleet.check_in(phone_id, at=time.time() + 5, operator=hostile("operator2"))
    wait_until(
        lambda: bot.emu.messages(LOST, thread_ts=phone_case["ts"]), 15, "the Android check-in"
    )
    fleet.set_outcome(
        phone_id,
        status="INTERNAL_ERROR",
        esim_details={"errorCode": hostile("esim-code"), hostile("esim-key"): "1"},
    )
    esim = submit(
        bot,
        "add-esim",
        phone_id,
        {"activation_code": "LPA:1$smdp.example$ABC", "activation_state": "ACTIVATED"},
    )
    approve(bot, esim)
    wait_state(bot, esim, "failed")
    settle_thread(bot, esim, "Internal error details")

    found = submit(bot, "found", a_id)
    approve(bot, found)
    wait_state(bot, found, "succeeded")
    wait_until(
        lambda: "Resolved" in flatten(bot.emu.message(LOST, case["ts"])), 10, "the resolved post"
    )
    bot.slash(f"history {a_id}")
    ephemeral(bot, "History of")

    # ---- what Slack was sent ------------------------------------------------------------------
    texts = rendered_texts(bot.emu)
    raw = [(where, text) for where, text in texts if any(m in text for m in RAW_MARKUP)]
    assert raw == [], "\n\n".join(f"{where}: {text}" for where, text in raw[:5])
    twice = [(where, text) for where, text in texts if "&amp;lt;" in text or "&amp;amp;" in text]
    assert twice == [], "\n\n".join(f"{where}: {text}" for where, text in twice[:5])
    # and the hostile text did arrive, escaped, wherever it is shown
    shown = "\n".join(text for _, text in texts)
    for field in (
        "annotated-user",
        "recent-user",
        "serial",
        "location",
        "asset",
        "notes",
        "model",
        "ou",
        "google-400",
        "errorMessage",
        "file",
        "payload",
        "google-412",
        "ip2",
        "android-serial",
        "android-user",
        "operator2",
        "esim-code",
        "esim-key",
    ):
        assert f"{TOKEN} {field} &lt;!channel&gt;" in shown, field
    # an annotated user of `<!channel>` in the lost-devices post and its fallback text pings nobody
    post = bot.emu.message(LOST, case["ts"])
    assert f"{TOKEN} annotated-user &lt;!channel&gt;" in post["text"]
    assert f"{TOKEN} annotated-user &lt;!channel&gt;" in "\n".join(_mrkdwn(post["blocks"]))


# ---- where the words are built (pure) --------------------------------------------------------

EVIL = "<!channel> <https://evil.example/|sso-login> <@U0EVIL> a&b"
ESCAPED = "&lt;!channel&gt; &lt;https://evil.example/|sso-login&gt; &lt;@U0EVIL&gt; a&amp;b"


def test_outcome_words_escape_what_the_device_reported() -> None:
    from bot import outcome_words

    _, text, _ = outcome_words.describe_chrome(
        {
            "state": "EXECUTED_BY_CLIENT",
            "commandResult": {"result": "FAILURE", "errorMessage": EVIL},
        }
    )
    assert ESCAPED in text and "<!channel>" not in text
    _, text, _ = outcome_words.describe_chrome(
        {
            "state": "EXECUTED_BY_CLIENT",
            "commandResult": {"result": "SUCCESS", "commandResultPayload": EVIL},
        }
    )
    assert ESCAPED in text and "<!channel>" not in text
    esim = {"status": "INTERNAL_ERROR", "internalErrorDetails": {"errorCode": EVIL}}
    _, text, _ = outcome_words.describe_android({"metadata": {"esimStatus": esim}})
    assert f"errorCode={ESCAPED}" in text
    for metadata, error in (
        ({"errorCode": EVIL}, {}),
        ({"startLostModeStatus": {"status": EVIL}}, {}),
        ({"clearAppsDataStatus": {"results": {EVIL: {"clearingResult": EVIL}}}}, {}),
        ({"requestDeviceInfoStatus": {"status": EVIL, "eidInfo": {"eids": [{"eid": EVIL}]}}}, {}),
        ({}, {"code": 9, "message": EVIL}),
    ):
        _, text, _ = outcome_words.describe_android({"metadata": metadata, "error": error})
        assert ESCAPED in text and "<!channel>" not in text, text


def test_download_links_never_let_google_text_out_of_the_link() -> None:
    from bot.outcome_words import download_line

    assert download_line(EVIL, "https://files.example/a?b=1&c=2") == (
        f"Download: <https://files.example/a?b=1&amp;c=2|{ESCAPED}>"
    )
    line = download_line("shot.png", "https://evil.example/x|<!channel>")
    assert line == "Download shot.png: `https://evil.example/x|&lt;!channel&gt;`"
    assert "<" not in download_line("x", "javascript:alert(1)")


def test_google_error_messages_are_escaped_once_and_kept_raw_for_the_log() -> None:
    from bot.google.errors import map_error, map_rpc_status

    error = map_error(400, EVIL, what="search Chrome devices (<!here>)")
    assert ESCAPED in error.message and "&lt;!here&gt;" in error.message
    assert "<!" not in error.message and error.detail == EVIL
    for code in (9, 13, 3, 99):  # via map_error, OutcomeUnknown, and the generic branch
        error = map_rpc_status({"code": code, "message": EVIL}, what="disable <@U0X>")
        assert ESCAPED in error.message and "&amp;lt;" not in error.message, error.message
        assert "<@U0X>" not in error.message


def test_fallback_texts_and_history_escape_once() -> None:
    from bot.cards.device import device_card_text, device_title
    from bot.cards.history import event_line, history_text
    from bot.cards.search import search_text
    from bot.devices import Device
    from bot.directory import SearchPage

    device = Device(platform="chrome", id="x", serial=EVIL, status=EVIL)
    assert "<" not in device_card_text(device)
    assert "<" not in history_text(device_title(device))
    assert "<" not in search_text(EVIL, SearchPage([], None, None, False))
    line = event_line(
        {"event": "succeeded", "detail": {"outcome": f"Failed: {ESCAPED}", "network": EVIL}}
    )
    assert line.count(ESCAPED) == 2 and "&amp;lt;" not in line and "<!channel>" not in line
    title, _ = lost.case_message(
        {
            "summary": json.dumps({"id": "x", "serial": EVIL, "user": EVIL}),
            "platform": "chrome",
            "state": "open",
            "reported_by": "U0OPERATOR",
            "reported_at": 0,
        }
    )
    assert title == f"Lost: {ESCAPED} ({ESCAPED})"


def test_sandbox_set_fields_keeps_the_indexes_and_restores() -> None:
    from bot.sandbox import Sandbox

    fleet = Sandbox(chrome=20, android=5, seed=3).fleet
    device_id = fleet.chrome_order[0]
    before = json.dumps(fleet.chrome[device_id], sort_keys=True)
    serial = fleet.chrome[device_id]["serialNumber"]
    previous = fleet.set_fields(
        device_id, {"serialNumber": EVIL, "annotatedUser": "evil@x", "notes": None}
    )
    assert fleet.chrome_by_serial(EVIL)["deviceId"] == device_id
    assert fleet.chrome_by_serial(serial) is None
    assert fleet.chrome_user_prefix("evil@") == [device_id]
    fleet.set_fields(device_id, previous)
    assert fleet.chrome_by_serial(serial)["deviceId"] == device_id
    assert fleet.chrome_user_prefix("evil@") == []
    restored = dict(fleet.chrome[device_id], etag=json.loads(before)["etag"])
    assert json.dumps(restored, sort_keys=True) == before
    name = fleet.android_order[0]
    hardware = dict(fleet.android[name]["hardwareInfo"], serialNumber=EVIL)
    fleet.set_fields(name, {"hardwareInfo": hardware})
    assert fleet.android_by_serial(EVIL)["name"] == name
