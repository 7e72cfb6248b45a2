"""Search results you can work with, end to end.

A result page says how many devices match on each platform, turns with *Previous* and
*Next*, re-sorts from its menu, exports its query to CSV, and filters (`platform:`,
`status:`) apply to both platforms, or say which platform they left out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import OPERATOR, Bot, flatten, wait_until

from bot import ids
from bot.sandbox.query import search
from bot.search_query import plan_query
from tests.test_lookup import assert_slack_accepted_everything, buttons, ephemeral, stored


@pytest.fixture
def slack(bot: Bot) -> Iterator[Bot]:
    yield bot
    assert_slack_accepted_everything(bot)


def shown(message: dict[str, Any]) -> list[str]:
    return [b["value"] for b in buttons(message) if b["action_id"] == ids.ActionId.SHOW_DEVICE]


def count_line(message: dict[str, Any]) -> str:
    return str(message["blocks"][0]["text"]["text"])


def android_count(bot: Bot, query: str) -> int:
    plan = plan_query(query)
    assert plan.android is not None
    sql, args = plan.android
    row = bot.store.db().execute(f"SELECT count(*) FROM android_index WHERE {sql}", args)
    return int(row.fetchone()[0])


def test_totals_per_platform_previous_and_next(slack: Bot) -> None:
    slack.settle()
    slack.slash("find example.com")
    page = ephemeral(slack, "Results *1–")
    first = shown(page)
    chrome = len(search(slack.sandbox.fleet, "example.com"))
    android = android_count(slack, "example.com")
    assert count_line(page) == (
        f"Results *1–40* of *{chrome + android:,}* for `example.com`"
        f" · Chrome OS *{chrome:,}* · Android *{android:,}*."
    )
    assert not [b for b in buttons(page) if b["action_id"] == ids.ActionId.FIND_PREVIOUS]
    slack.emu.click(OPERATOR, ids.ActionId.FIND_NEXT, message=page)
    wait_until(lambda: "Results *41–80*" in flatten(stored(slack, page)), 15, "page 2")
    second = shown(stored(slack, page))
    assert second and not set(second) & set(first)
    slack.emu.click(OPERATOR, ids.ActionId.FIND_PREVIOUS, message=stored(slack, page))
    wait_until(lambda: "Results *1–40*" in flatten(stored(slack, page)), 15, "page 1 again")
    assert shown(stored(slack, page)) == first


def test_the_sort_menu_reorders_the_results(slack: Bot) -> None:
    slack.slash("find platform:chrome status:ACTIVE")
    page = ephemeral(slack, "Results *1–")
    slack.emu.click(
        OPERATOR,
        ids.ActionId.FIND_SORT,
        message=page,
        selected_option=next(
            o["value"]
            for b in page["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == ids.ActionId.FIND_SORT
            for o in e["options"]
            if o["value"].endswith("|serialNumber|d")
        ),
    )
    wait_until(lambda: "sorted by serial, descending" in flatten(stored(slack, page)), 15, "sorted")
    fleet = slack.sandbox.fleet
    serials = [fleet.chrome[v.split("|", 1)[1]]["serialNumber"] for v in shown(stored(slack, page))]
    assert serials == sorted(serials, key=str.lower, reverse=True)
    assert all(v.startswith("chrome|") for v in shown(stored(slack, page)))


def test_status_applies_to_both_platforms(slack: Bot) -> None:
    slack.settle()
    slack.slash("find status:DISABLED")
    page = ephemeral(slack, "status:DISABLED")
    platforms = {v.split("|")[0] for v in shown(page)}
    chrome = len(search(slack.sandbox.fleet, "status:DISABLED"))
    android = android_count(slack, "status:DISABLED")
    assert android > 0 and chrome > 0
    assert platforms == {"chrome", "android"}
    assert f"Chrome OS *{chrome}*" in count_line(page)
    assert f"Android *{android}*" in count_line(page)
    assert "not searched" not in flatten(page)


@pytest.mark.parametrize(
    ("query", "note", "platform"),
    [
        ("status:DEPROVISIONED", "exists on Chrome OS only: Android devices were not", "chrome"),
        ("location:London", "`location:` exists on Chrome OS only", "chrome"),
        ("status:LOST", "exists on Android only: Chrome OS devices were not", "android"),
    ],
)
def test_a_filter_on_one_platform_says_so(slack: Bot, query: str, note: str, platform: str) -> None:
    slack.settle()
    slack.slash(f"find {query}")
    page = ephemeral(slack, query)
    assert note in flatten(page)
    assert {v.split("|")[0] for v in shown(page)} == {platform}
    other = "Android" if platform == "chrome" else "Chrome OS"
    assert other not in count_line(page)


def test_platform_filter(slack: Bot) -> None:
    slack.settle()
    slack.slash("find platform:android example.com")
    page = ephemeral(slack, "platform:android")
    assert {v.split("|")[0] for v in shown(page)} == {"android"}
    assert "Chrome OS" not in count_line(page)
    assert "not searched" not in flatten(page)  # asked for: nothing to warn about


def test_export_csv_button_exports_the_same_query(slack: Bot) -> None:
    slack.settle()
    slack.slash("find status:LOST")
    page = ephemeral(slack, "status:LOST")
    expected = {v.split("|", 1)[1] for v in shown(page)}
    slack.emu.click(OPERATOR, ids.ActionId.FIND_EXPORT, message=page)
    files = wait_until(lambda: slack.emu.uploads.files(), 30, "the CSV")
    content = slack.emu.uploads.content(files[-1]["id"])
    assert content is not None
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert {r["Device id"] for r in rows} == expected
    assert all(r["Platform"] == "Android" for r in rows)
    assert "Exporting `status:LOST` to CSV" in slack.wait_ephemeral("Exporting")
