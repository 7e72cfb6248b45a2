"""*Export CSV* from a person's search exports exactly the rows that search shows, end to end.

A search for an email (bare or `user:`) lists the devices assigned to that person and those
they signed in to last (`recent_user:`), on both platforms; the export of that page must hold
the same devices, no more and no fewer.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
import test_find_people as people
from conftest import OPERATOR, Bot, wait_until

from bot import ids
from tests.test_lookup import ephemeral

#: the person (three devices of one new email) and the checked bot of test_find_people
person, slack, shown_devices = people.person, people.slack, people.shown_devices

PLATFORMS = {"Chrome OS": "chrome", "Android": "android"}


def export_of(bot: Bot, page: dict[str, Any]) -> list[dict[str, str]]:
    """Click *Export CSV* on a result page; the rows of the CSV that arrives."""
    before = len(bot.emu.uploads.files())
    bot.emu.click(OPERATOR, ids.ActionId.FIND_EXPORT, message=page)
    files = wait_until(
        lambda: bot.emu.uploads.files()[before:], 30, f"the CSV\n{bot.emu.dump(last=5)}"
    )
    content = bot.emu.uploads.content(files[-1]["id"])
    assert content is not None
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))


@pytest.mark.parametrize("form", ["{email}", "user:{email}"])
def test_the_export_of_a_persons_search_holds_exactly_the_devices_it_shows(
    slack: Bot,
    person: dict[str, Any],
    form: str,
) -> None:
    query = form.format(email=person["email"])
    slack.slash(f"find {query}")
    page = ephemeral(slack, "devices match")
    shown = shown_devices(page)
    assert shown == person["values"]  # assigned, signed in last, and the phone
    rows = export_of(slack, page)
    exported = {f"{PLATFORMS[r['Platform']]}|{r['Device id']}" for r in rows}
    assert exported == shown
    assert len(rows) == len(shown)  # each device once
    by_id = {r["Device id"]: r for r in rows}
    # the device found only through recent_user: is there, with who signed in
    signed_in = by_id[person["signed_in"]["deviceId"]]
    assert signed_in["Recent user"] == person["email"] and signed_in["Annotated user"] == ""
    assert by_id[person["assigned"]["deviceId"]]["Annotated user"] == person["email"]
    assert by_id[person["phone"]["name"]]["Annotated user"] == person["email"]
