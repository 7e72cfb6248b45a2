"""The look-up builders (bot.cards): plain dicts in, Block Kit out, always within Slack's limits."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from bot import ids
from bot.blocks import packed, sections_of, who
from bot.cards.device import device_card, device_value, parse_device_value
from bot.cards.history import history_lines, history_page, raw_history
from bot.cards.pending import requests_list
from bot.cards.search import Paging, picker, results_count, results_page, search_modal
from bot.dates import when
from bot.devices import Device
from bot.directory import SearchPage
from bot.playground.slack_emulator import validate_blocks, validate_view

EVIL = "<!channel> & <https://evil|click>"
EVIL_ESCAPED = "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;"


def chrome(n: int = 0, **kw: Any) -> Device:
    values: dict[str, Any] = {
        "platform": "chrome",
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "serial": f"5CD{n:07d}",
        "user": f"user{n}@example.com",
        "org_unit": "/Sales/EMEA",
        "model": "HP Chromebook 14",
        "os_version": "131.0.6778.9",
        "status": "ACTIVE",
        "last_seen": "2026-11-19T00:08:32.467Z",
        "network": "10.0.0.1 / WAN 203.0.113.9",
        "asset_id": f"ASSET-{n}",
        "location": "London",
        "notes": "spare",
    }
    values.update(kw)
    return Device(**values)


def android(n: int = 0, **kw: Any) -> Device:
    values: dict[str, Any] = {
        "platform": "android",
        "id": f"enterprises/LC0sandbox/devices/{n:016x}",
        "serial": f"R58N{n:06d}",
        "user": f"user{n}@example.com",
        "org_unit": "fully-managed",
        "model": "samsung SM-G991B",
        "os_version": "13",
        "status": "ACTIVE",
        "last_seen": "2026-11-02T20:47:02.553Z",
        "management_mode": "DEVICE_OWNER",
        "ownership": "COMPANY_OWNED",
        "api_level": 33,
    }
    values.update(kw)
    return Device(**values)


def texts(blocks: Any) -> str:
    """Every text string in `blocks`, joined."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    out.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return "\n".join(out)


def elements(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = [b["accessory"] for b in blocks if "accessory" in b]
    found += [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    return found


def page_of(
    devices: list[Device], *, cursor: str | None = None, android_total: int | None = None
) -> SearchPage:
    return SearchPage(
        devices=devices,
        next_cursor=cursor,
        android_total=android_total,
        chrome_more=cursor is not None,
    )


# ---- values --------------------------------------------------------------------------------


def test_device_value_round_trips() -> None:
    device = android(7)
    assert device_value(device) == f"android|{device.id}"
    assert parse_device_value(device_value(device)) == ("android", device.id)


@pytest.mark.parametrize("value", ["", "chrome", "chrome|", "ios|x", "x|y"])
def test_parse_device_value_rejects_garbage(value: str) -> None:
    with pytest.raises(ValueError):
        parse_device_value(value)


def test_when_is_a_slack_date_and_escapes_garbage() -> None:
    assert when("2026-11-19T00:08:32.467Z").startswith("<!date^1795046912^")
    assert when(0.0).endswith("|1970-01-01 00:00 UTC>")
    assert when(None) == "—"
    assert when("<!here>") == "&lt;!here&gt;"
    assert when(None, missing="never") == "never"
    assert when("", missing="never") == "never"


def test_packed_lines_stay_within_the_limit_and_in_order() -> None:
    lines = [f"line {i} " + "x" * 50 for i in range(200)] + ["y" * 5000]
    texts = packed(lines, 1000)
    assert all(len(text) <= 1000 for text in texts)
    assert "\n".join(texts).split("\n")[:200] == lines[:200]
    assert texts[-1].startswith("y") and texts[-1].endswith("…")
    assert [b["text"]["text"] for b in sections_of(lines, 1000)] == texts


def test_who_mentions_user_ids_only() -> None:
    assert who("U0OPERATOR") == "<@U0OPERATOR>"
    assert who("<!channel>") == "&lt;!channel&gt;"
    assert who("scheduler") == "scheduler"


# ---- the device card ------------------------------------------------------------------------


def test_chrome_card_shows_everything_and_fits_actions() -> None:
    device = chrome(1)
    blocks = device_card(device)
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Chrome OS 5CD0000001", "emoji": True},
    }
    text = texts(blocks)
    for expected in (
        "ACTIVE",
        "user1@example.com",
        "/Sales/EMEA",
        "HP Chromebook 14",
        "131.0.6778.9",
        "Last sync",
        "10.0.0.1",
        "ASSET-1",
        "London",
        "spare",
        device.id,
    ):
        assert expected in text
    buttons = {e["action_id"]: e for e in elements(blocks)}
    assert ids.device_action_id("disable") in buttons
    assert ids.device_action_id("reenable") not in buttons
    assert buttons[ids.device_action_id("disable")]["style"] == "danger"
    assert buttons[ids.device_action_id("powerwash")]["style"] == "danger"
    assert "style" not in buttons[ids.device_action_id("reboot")]
    assert {e["value"] for e in buttons.values()} == {f"chrome|{device.id}"}
    assert ids.ActionId.SHOW_HISTORY in buttons and ids.ActionId.SHOW_DEVICE in buttons
    assert validate_blocks(blocks) == []


def test_disabled_chrome_card_offers_reenable_not_disable() -> None:
    actions = {e["action_id"] for e in elements(device_card(chrome(2, status="DISABLED")))}
    assert ids.device_action_id("reenable") in actions
    assert ids.device_action_id("disable") not in actions
    assert ids.device_action_id("reboot") not in actions


def test_android_card_has_platform_bits_and_android_actions() -> None:
    blocks = device_card(android(3))
    text = texts(blocks)
    for expected in (
        "API level",
        "33",
        "Fully managed",
        "Company-owned",
        "Last status report",
        "fully-managed",
    ):
        assert expected in text
    actions = {e["action_id"] for e in elements(blocks)}
    assert {ids.device_action_id(a) for a in ("lock", "reboot", "wipe", "lost")} <= actions
    assert ids.device_action_id("disable") not in actions
    assert all(ids.DEVICE_ACTION_PATTERN.match(a) for a in actions if a.startswith("device_action"))
    assert validate_blocks(blocks) == []


def test_card_escapes_device_strings() -> None:
    blocks = device_card(chrome(4, notes=EVIL, user=EVIL, location=EVIL, asset_id=EVIL, model=EVIL))
    text = texts([b for b in blocks if b["type"] != "header"])
    assert EVIL_ESCAPED in text
    assert "<!channel>" not in text and "<https://evil" not in text


def test_card_clips_huge_notes() -> None:
    blocks = device_card(chrome(5, notes="x" * 10_000))
    assert validate_blocks(blocks) == []


# ---- search pages ---------------------------------------------------------------------------


def test_results_page_rows_count_and_buttons() -> None:
    devices = [chrome(i) for i in range(20)] + [android(i) for i in range(20)]
    page = page_of(devices, cursor="tok", android_total=123)
    paging = Paging(previous="s|1", next="s|3", export="s|2", sort="s")
    blocks = results_page("example.com", page, start=40, paging=paging)
    count = blocks[0]["text"]["text"]
    assert count.startswith("Results *41–80* for `example.com`")
    assert "Android *123*" in count and "Chrome OS (count unknown)" in count
    rows = [
        b for b in blocks if b.get("accessory", {}).get("action_id") == ids.ActionId.SHOW_DEVICE
    ]
    assert len(rows) == 40
    assert rows[0]["block_id"] == "result-0"
    assert rows[0]["accessory"]["value"] == f"chrome|{devices[0].id}"
    buttons = {e["action_id"]: e.get("value") for e in elements(blocks)}
    assert buttons[ids.ActionId.FIND_PREVIOUS] == "s|1"
    assert buttons[ids.ActionId.FIND_NEXT] == "s|3"
    assert buttons[ids.ActionId.FIND_EXPORT] == "s|2"
    assert ids.ActionId.FIND_SORT in buttons
    assert validate_blocks(blocks) == []


def test_last_and_empty_pages() -> None:
    both = replace(page_of([chrome(1), chrome(2)]), chrome_total=2, android_total=0)
    assert results_count("q", both, 0) == "*2* devices match `q` · Chrome OS *2* · Android *0*."
    last = replace(page_of([chrome(1)]), platforms=("chrome",), chrome_total=21)
    assert results_count("q", last, 20) == "Results *21–21* of *21* for `q` · Chrome OS *21*."
    assert results_count("q", page_of([]), 0).startswith("No device matches `q`.")
    blocks = results_page("q", page_of([]), paging=Paging(next="s|2", export="s|1", sort="s"))
    assert not elements(blocks)


def test_results_page_never_exceeds_block_limit() -> None:
    devices = [chrome(i) for i in range(1000)]
    blocks = results_page("x", page_of(devices, cursor="c"), paging=Paging(next="s|2"))
    assert len(blocks) <= 49  # room for the sandbox mark
    assert validate_blocks(blocks) == []
    assert "not shown" in texts(blocks)


def test_results_page_escapes_query_and_devices() -> None:
    blocks = results_page(EVIL, page_of([chrome(1, user=EVIL)]))
    text = texts(blocks)
    assert EVIL_ESCAPED in text and "<!channel>" not in text


def test_search_modal_is_valid_and_carries_metadata() -> None:
    view = search_modal(json.dumps({"response_url": "https://x"}))
    assert view["callback_id"] == ids.CallbackId.SEARCH
    assert view["blocks"][0]["block_id"] == ids.BlockId.SEARCH
    assert view["blocks"][0]["element"]["action_id"] == ids.ActionId.SEARCH_INPUT
    assert len(view["title"]["text"]) <= 24
    assert validate_view(view) == []


# ---- picker, history, requests ------------------------------------------------------------


def test_picker_offers_one_button_per_candidate() -> None:
    candidates = [chrome(1), android(2)]
    blocks = picker("ASSET-9", candidates)
    values = [e["value"] for e in elements(blocks) if e["action_id"] == ids.ActionId.SHOW_DEVICE]
    assert values == [device_value(d) for d in candidates]
    assert "`ASSET-9` matches *2* devices" in blocks[0]["text"]["text"]
    assert validate_blocks(blocks) == []


def test_picker_cuts_long_candidate_lists() -> None:
    blocks = picker("x", [chrome(i) for i in range(100)])
    assert len(blocks) <= 49
    assert "60 more not shown" in texts(blocks)
    assert validate_blocks(blocks) == []


def event(n: int, **kw: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "seq": n,
        "at": "2026-11-19T00:08:32.467Z",
        "actor": "U0OPERATOR",
        "event": "executed",
        "request_id": f"r{n}",
        "platform": "chrome",
        "device_id": "d",
        "from_state": "ACTIVE",
        "to_state": "DISABLED",
        "detail": {"reason": "lost"},
    }
    values.update(kw)
    return values


def test_history_lists_events_and_notes_truncation() -> None:
    events = [event(n, request_id=None) for n in range(40, 0, -1)]
    lines = history_lines(events, {}, "d")
    blocks = history_page("Chrome OS 5CD1", lines, raw_value="d")
    text = texts(blocks)
    assert "*executed*" in text and "<@U0OPERATOR>" in text and "ACTIVE → DISABLED" in text
    assert "Showing the latest 30 of 40 entries" in text
    assert ids.ActionId.HISTORY_RAW in str(blocks)
    assert validate_blocks(blocks) == []


def test_history_escapes_details_and_stays_in_section_limits() -> None:
    events = [event(n, actor=EVIL, detail={"note": EVIL + "y" * 5000}) for n in range(30)]
    blocks = history_page("x", history_lines(events, {}, "d"))
    assert "<!channel>" not in texts(blocks)
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    assert validate_blocks(blocks) == []
    raw = raw_history("x", events)
    assert "<!channel>" not in texts(raw) and validate_blocks(raw) == []


def _request(action: str, **kw: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": "R1",
        "action": action,
        "platform": "chrome",
        "device_ids": ["d"],
        "params": {},
        "reason": "INC-4411",
        "requester": "U0OLIVIA",
        "decided_by": "U0ALEX",
        "state": "succeeded",
        "created_at": 1_790_000_000.0,
    }
    values.update(kw)
    return values


def _events(*names: tuple[str, str], detail: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [
        {
            "seq": n,
            "at": "2026-09-21T14:02:00Z",
            "actor": actor,
            "event": name,
            "request_id": "R1",
            "device_id": None,
            "detail": detail if name in ("succeeded", "failed", "denied") else {},
        }
        for n, (name, actor) in enumerate(names)
    ]


def test_history_groups_a_request_into_one_line_in_words() -> None:
    request = _request("disable", params={"why": "lost_or_stolen"})
    events = _events(
        ("requested", "U0OLIVIA"),
        ("approved", "U0ALEX"),
        ("executing", "device-bot"),
        ("succeeded", "device-bot"),
        detail={"outcome": "Done"},
    )
    [line] = history_lines(events, {"R1": request}, "d")
    assert "<@U0OLIVIA> asked to disable it (INC-4411; Why: Lost or stolen)" in line
    assert "<@U0ALEX> approved" in line and "· disabled <!date^" in line
    assert "executing" not in line and "{}" not in line


def test_history_words_for_lost_found_moves_denials_and_annotations() -> None:
    lost = history_lines(
        _events(("requested", "U0O"), ("succeeded", "device-bot")),
        {"R1": _request("lost", platform="android")},
        "d",
    )[0]
    assert "asked to put it in lost mode" in lost and "asked to lost" not in lost
    found = history_lines(
        _events(("requested", "U0O")), {"R1": _request("found", state="pending")}, "d"
    )[0]
    assert "asked to mark it found" in found and "waiting for approval" in found
    move = _request("move", device_ids=["a", "d", "c"], params={"ou": "/Loaners"})
    moved = history_lines(
        _events(("requested", "U0O"), ("succeeded", "device-bot"), detail={"failed": []}),
        {"R1": move},
        "d",
    )[0]
    assert "asked to move it to `/Loaners` with 2 other devices" in moved and "moved" in moved
    denied = history_lines(
        _events(("requested", "U0O"), ("denied", "U0SAM"), detail={"note": "no ticket"}),
        {"R1": _request("wipe", platform="android", state="denied")},
        "d",
    )[0]
    assert "<@U0SAM> denied it (no ticket)" in denied
    annotated = history_lines(
        _events(
            ("requested", "U0O"),
            ("succeeded", "device-bot"),
            detail={"changes": {"notes": "old note → (cleared)", "annotatedLocation": " → Desk 4"}},
        ),
        {"R1": _request("annotate")},
        "d",
    )[0]
    assert "Notes: cleared (was: old note)" in annotated
    assert "Location: — → Desk 4" in annotated


def test_history_without_events() -> None:
    assert "Nothing has been done" in texts(history_page("x", []))


def request_row(n: int, **kw: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": f"R{n}",
        "action": "wipe",
        "platform": "android",
        "devices": json.dumps(
            [{"serial": f"S{i}", "user": "ada@example.com", "id": "x"} for i in range(5)]
        ),
        "requester": "U0OPERATOR",
        "reason": "stolen",
        "state": "pending",
        "created_at": 1795046912.0,
        "expires_at": 1795133312.0,
    }
    values.update(kw)
    return values


def test_requests_list_for_approver_and_operator() -> None:
    blocks = requests_list([request_row(1), request_row(2, requester="U0APPROVER2")], everyone=True)
    text = texts(blocks)
    assert "All pending requests" in text
    assert (
        "`R1`" in text and "*Wipe* on *S0* (ada@example.com), *S1*" in text and "and 2 more" in text
    )
    assert "<@U0APPROVER2>" in text and "_Reason:_ stolen" in text and "\n>" not in text
    assert "Your pending requests" in texts(requests_list([request_row(1)], everyone=False))
    assert "no pending request" in texts(requests_list([], everyone=False))
    assert validate_blocks(blocks) == []


def test_requests_list_escapes_and_truncates() -> None:
    rows = [request_row(n, reason=EVIL * 50) for n in range(40)]
    blocks = requests_list(rows, everyone=True, total=40)
    text = texts(blocks)
    assert "<!channel>" not in text
    assert "Showing the oldest 30 of 40" in text
    assert validate_blocks(blocks) == []
