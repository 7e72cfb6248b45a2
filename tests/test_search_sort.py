"""Sorted search and BASIC projection, end to end: `/device find … sort:… order:…` and the modal.

Chrome OS is sorted by Google (chromeosdevices.list orderBy / sortOrder); Android on the
equivalent field of the bot's index. Lists ask for projection=BASIC.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import OPERATOR, Bot, flatten, wait_until

from bot import ids
from bot.search_query import Sort
from tests.test_lookup import assert_slack_accepted_everything, buttons, ephemeral, stored


@pytest.fixture
def slack(bot: Bot) -> Iterator[Bot]:
    bot.settle()
    yield bot
    assert_slack_accepted_everything(bot)


def list_calls(bot: Bot, since: int) -> list[dict[str, list[str]]]:
    """Query parameters of the chromeosdevices.list calls the sandbox served after `since`."""
    out = []
    for method, target in list(bot.sandbox.log)[since:]:
        url = urlsplit(target)
        if method == "GET" and url.path.endswith("/devices/chromeos"):
            out.append(parse_qs(url.query))
    return out


def rows(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(platform, device id) of each result row, in order."""
    out = []
    for b in message.get("blocks") or []:
        if str(b.get("block_id", "")).startswith(f"{ids.BlockId.RESULT}-"):
            platform, _, device_id = b["accessory"]["value"].partition("|")
            out.append((platform, device_id))
    return out


def chrome_values(bot: Bot, found: list[tuple[str, str]], key: str) -> list[str]:
    fleet = bot.sandbox.fleet
    return [str(fleet.chrome[d].get(key) or "").lower() for p, d in found if p == "chrome"]


def android_values(bot: Bot, found: list[tuple[str, str]], path: tuple[str, ...]) -> list[str]:
    fleet = bot.sandbox.fleet
    out = []
    for p, name in found:
        if p != "android":
            continue
        value: Any = fleet.android[name]
        for key in path:
            value = (value or {}).get(key)
        out.append(str(value or ""))
    return out


def test_find_sorts_by_last_sync_descending_on_both_platforms(slack: Bot) -> None:
    since = len(slack.sandbox.log)
    slack.slash("find sort:lastsync order:desc")
    page = ephemeral(slack, "sorted by last sync, descending")
    (call,) = list_calls(slack, since)
    assert call["orderBy"] == ["lastSync"] and call["sortOrder"] == ["DESCENDING"]
    assert call["projection"] == ["BASIC"]
    found = rows(page)
    chrome = chrome_values(slack, found, "lastSync")
    android = android_values(slack, found, ("lastStatusReportTime",))
    assert len(chrome) >= 10 and len(android) >= 10
    assert chrome == sorted(chrome, reverse=True)
    assert android == sorted(android, reverse=True)


def test_find_sorts_by_serial_ascending_and_next_keeps_the_order(slack: Bot) -> None:
    since = len(slack.sandbox.log)
    slack.slash("find sort:serial")
    page = ephemeral(slack, "sorted by serial, ascending")
    first = rows(page)
    assert chrome_values(slack, first, "serialNumber") == sorted(
        chrome_values(slack, first, "serialNumber")
    )
    slack.emu.click(OPERATOR, ids.ActionId.FIND_NEXT, message=page)
    wait_until(lambda: "Results *41–" in flatten(stored(slack, page)), 15, "page 2")
    second = rows(stored(slack, page))
    calls = list_calls(slack, since)
    assert len(calls) == 2 and "pageToken" in calls[1]
    assert all(c["orderBy"] == ["serialNumber"] and c["sortOrder"] == ["ASCENDING"] for c in calls)
    chrome = chrome_values(slack, first, "serialNumber") + chrome_values(
        slack, second, "serialNumber"
    )
    assert chrome == sorted(chrome)
    fleet = slack.sandbox.fleet
    android = [
        fleet.android[d]["hardwareInfo"]["serialNumber"]
        for p, d in first + second
        if p == "android"
    ]
    assert android == sorted(android)


def test_find_by_status_with_user_sort_descending(slack: Bot) -> None:
    since = len(slack.sandbox.log)
    slack.slash("find status:ACTIVE sort:user order:desc")
    page = ephemeral(slack, "sorted by user, descending")
    (call,) = list_calls(slack, since)
    assert call["query"] == ["status:ACTIVE"] and call["orderBy"] == ["annotatedUser"]
    users = chrome_values(slack, rows(page), "annotatedUser")
    assert users == sorted(users, reverse=True)


def test_location_sort_tells_android_has_none(slack: Bot) -> None:
    slack.slash("find sort:location")
    page = ephemeral(slack, "sorted by location")
    assert "Android devices have no location: they are sorted by serial." in flatten(page)


def test_a_bad_sort_gets_the_usage_line_and_no_google_call(slack: Bot) -> None:
    since = len(slack.sandbox.log)
    slack.slash("find status:ACTIVE sort:colour")
    text = slack.wait_ephemeral("Cannot sort by")
    assert "`sort:lastsync`" in text and "Usage: `/device find <query>`" in text
    slack.slash("find order:desc")
    assert "goes with a `sort:<field>`" in slack.wait_ephemeral("goes with")
    assert list_calls(slack, since) == []


def test_the_search_modal_sorts(slack: Bot) -> None:
    slack.slash("")
    view = slack.emu.wait_for(lambda: slack.emu.open_view(OPERATOR), 5, "the search modal")
    assert {b.get("block_id") for b in view["blocks"]} >= {
        ids.BlockId.SEARCH_SORT,
        ids.BlockId.SEARCH_ORDER,
    }
    since = len(slack.sandbox.log)
    reply = slack.emu.submit_view(
        OPERATOR,
        values={
            ids.BlockId.SEARCH: "status:ACTIVE",
            ids.BlockId.SEARCH_SORT: "lastSync",
            ids.BlockId.SEARCH_ORDER: "DESCENDING",
        },
    )
    assert reply.status == 200
    page = ephemeral(slack, "sorted by last sync, descending")
    (call,) = list_calls(slack, since)
    assert call["orderBy"] == ["lastSync"] and call["sortOrder"] == ["DESCENDING"]
    synced = chrome_values(slack, rows(page), "lastSync")
    assert synced == sorted(synced, reverse=True)


def test_lists_are_basic_and_cards_full(slack: Bot, claims: Any) -> None:
    """A result list carries no full-only field; the device card still reads the full record."""
    page = slack.svc.devices.search("status:ACTIVE", page_size=5, sort=Sort("serialNumber"))
    chrome = [d for d in page.devices if d.platform == "chrome"]
    assert chrome and all(
        "recentUsers" not in d.raw and "lastKnownNetwork" not in d.raw for d in chrome
    )
    device = claims.chrome(where=lambda d: bool(d.get("recentUsers")))
    since = len(slack.sandbox.log)
    slack.slash(f"info {device['serialNumber']}")
    slack.wait_ephemeral(device["serialNumber"])
    assert all(c["projection"] == ["FULL"] for c in list_calls(slack, since))
    assert buttons(ephemeral(slack, device["serialNumber"]))


def test_the_sort_fields_are_the_directory_apis_order_by_enum() -> None:
    """The words map onto exactly the values Google's discovery document allows."""
    import json
    from pathlib import Path

    import googleapiclient

    from bot.search_query import SORT_LABELS, SORT_WORDS

    doc = (
        Path(googleapiclient.__file__).parent / "discovery_cache/documents/admin.directory_v1.json"
    )
    params = json.loads(doc.read_text())["resources"]["chromeosdevices"]["methods"]["list"][
        "parameters"
    ]
    assert set(SORT_WORDS.values()) == set(params["orderBy"]["enum"]) == set(SORT_LABELS)
    assert {s.sort_order for s in (Sort("status"), Sort("status", True))} == set(
        params["sortOrder"]["enum"]
    )
