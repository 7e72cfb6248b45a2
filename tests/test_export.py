"""`/device export` end to end: Slack command → Directory pages with `fields` → CSV → Slack upload.

The bot runs against its own sandbox (650 Chrome devices: three pages of 300), so the
paging, the MEID column and the progress edits are all exercised.
"""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import OPERATOR, OUTSIDER, Bot, flatten, wait_until

from bot import audit, export

DM = "D" + OPERATOR[1:]


def chrome_list_calls(bot: Bot) -> list[dict[str, list[str]]]:
    out = []
    for method, target in list(bot.sandbox.log):
        url = urlsplit(target)
        if method == "GET" and url.path.endswith("/devices/chromeos"):
            out.append(parse_qs(url.query))
    return out


def exported(bot: Bot) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The uploaded file object and its CSV rows (waits for the upload to complete)."""
    files = wait_until(lambda: bot.emu.uploads.files(), 30, f"an upload\n{bot.emu.dump()}")
    (file,) = files
    content = bot.emu.uploads.content(file["id"])
    assert content is not None
    return file, list(csv.DictReader(io.StringIO(content.decode("utf-8"))))


def test_export_uploads_a_csv_of_both_platforms_with_meids(
    fleet_bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = fleet_bot
    monkeypatch.setattr(export, "PROGRESS_EVERY", 0.0)  # an edit per page, to see them
    mark = bot.emu.mark()
    reply = bot.slash("export")
    assert reply.status == 200
    assert "Progress and the file arrive in your direct messages" in bot.wait_ephemeral(
        "Exporting all devices"
    )
    file, rows = exported(bot)

    # Slack: the external upload flow, into the requester's DM
    calls = [c for c in bot.emu.calls[mark:] if c.method.startswith("files.")]
    assert [c.method for c in calls] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    assert all(c.ok for c in calls), bot.emu.dump()
    assert calls[1].args["channel_id"] == DM
    assert file["name"].startswith("devices-") and file["name"].endswith(".csv")
    assert file["channels"] == [DM] and file["mimetype"] == "text/csv"

    # Google: pages of 300 with the partial response the Directory guide shows for MEIDs
    lists = chrome_list_calls(bot)
    export_lists = [c for c in lists if "fields" in c]
    assert len(export_lists) == 3
    for call in export_lists:
        assert call["maxResults"] == ["300"]
        (selector,) = call["fields"]
        assert selector.startswith("chromeosdevices(") and selector.endswith(",meid),nextPageToken")
    assert "pageToken" not in export_lists[0] and all("pageToken" in c for c in export_lists[1:])

    # the CSV: every device once, the columns filled from Google's answers
    fleet = bot.sandbox.fleet
    chrome = {r["Device id"]: r for r in rows if r["Platform"] == "Chrome OS"}
    android = {r["Device id"]: r for r in rows if r["Platform"] == "Android"}
    assert len(chrome) == 650 and len(android) == 60 and len(rows) == 710
    with_meid = [d for d in fleet.chrome.values() if d.get("meid")]
    assert with_meid
    for d in with_meid:
        assert chrome[d["deviceId"]]["MEID / IMEI"] == d["meid"]
    assert sum(1 for r in chrome.values() if r["MEID / IMEI"]) == len(with_meid)
    sample = next(
        d for d in fleet.chrome.values() if d.get("recentUsers") and d.get("annotatedAssetId")
    )
    row = chrome[sample["deviceId"]]
    assert row["Serial"] == sample["serialNumber"] and row["Model"] == sample["model"]
    assert row["Status"] == sample["status"] and row["OU / policy"] == sample["orgUnitPath"]
    assert row["Annotated user"] == sample.get("annotatedUser", "")
    assert row["Recent user"] == sample["recentUsers"][0]["email"]
    assert row["Asset id"] == sample["annotatedAssetId"]
    assert row["OS version"] == sample["osVersion"] and row["Last sync"] == sample["lastSync"]
    phone = next(d for d in fleet.android.values() if (d.get("networkInfo") or {}).get("imei"))
    arow = android[phone["name"]]
    assert arow["Serial"] == phone["hardwareInfo"]["serialNumber"]
    assert arow["MEID / IMEI"] == phone["networkInfo"]["imei"]
    assert arow["Last sync"] == phone["lastStatusReportTime"]

    # progress: one message in the DM, edited in place, ending with the summary
    progress = [m for m in bot.messages_in(DM) if not m.get("files")]
    assert len(progress) == 1
    wait_until(
        lambda: (
            "Exported 710 devices (650 Chrome OS, 60 Android)"
            in flatten(bot.emu.message(DM, progress[0]["ts"]))
        ),
        10,
        "the final progress edit",
    )
    assert "Android rows come from the bot's device index, refreshed 20" in flatten(
        bot.emu.message(DM, progress[0]["ts"])
    )
    updates = [c for c in bot.emu.calls_to("chat.update") if c.args.get("ts") == progress[0]["ts"]]
    assert len(updates) >= 5  # three pages, the Android rows, the upload, the end
    assert any("Chrome OS devices read (3 pages)" in flatten(c.args) for c in updates)
    shared = [m for m in bot.messages_in(DM) if m.get("files")]
    assert [m["files"][0]["id"] for m in shared] == [file["id"]]

    (event,) = wait_until(
        lambda: [e for e in audit.events(bot.store) if e["event"] == "export"], 10, "the audit"
    )
    assert event["actor"] == OPERATOR
    assert event["detail"]["chrome"] == 650 and event["detail"]["android"] == 60
    assert not bot.emu.problems


def test_export_of_a_chrome_query(fleet_bot: Bot) -> None:
    bot = fleet_bot
    fleet = bot.sandbox.fleet
    bot.slash("export status:DEPROVISIONED")
    _, rows = exported(bot)
    gone = {d["deviceId"] for d in fleet.chrome.values() if d["status"] == "DEPROVISIONED"}
    assert gone and {r["Device id"] for r in rows} == gone
    # DEPROVISIONED is a Chrome status only: no Android device matches it
    assert {r["Platform"] for r in rows} == {"Chrome OS"}
    (call,) = [c for c in chrome_list_calls(bot) if "fields" in c]
    assert call["query"] == ["status:DEPROVISIONED"]


def test_export_of_a_status_on_both_platforms(fleet_bot: Bot) -> None:
    bot = fleet_bot
    fleet = bot.sandbox.fleet
    bot.slash("export status:DISABLED")
    _, rows = exported(bot)
    disabled = {d["deviceId"] for d in fleet.chrome.values() if d["status"] == "DISABLED"}
    disabled |= {d["name"] for d in fleet.android.values() if d["state"] == "DISABLED"}
    assert {r["Device id"] for r in rows} == disabled
    assert {r["Platform"] for r in rows} == {"Chrome OS", "Android"}


def test_formula_cells_are_defused() -> None:
    row = export.chrome_row({"deviceId": "d", "annotatedUser": "=cmd|' /C calc'!A0", "notes": "x"})
    assert [export._cell(v) for v in row][5] == "'=cmd|' /C calc'!A0"


def test_an_outsider_cannot_export(bot: Bot) -> None:
    bot.slash("export", user=OUTSIDER)
    bot.wait_ephemeral("not allowed", user=OUTSIDER)
    assert not bot.emu.calls_to("files.getUploadURLExternal")
    assert not any(e["event"] == "export" for e in audit.events(bot.store))


def test_a_google_failure_mid_export_is_told_in_place_and_nothing_is_uploaded(
    fleet_bot: Bot,
) -> None:
    bot = fleet_bot
    bot.sandbox.faults.add(400, count=1, path_contains="pageToken=", message="Invalid page token")
    bot.slash("export")
    progress = wait_until(
        lambda: next((m for m in bot.messages_in(DM) if "export stopped" in flatten(m)), None),
        15,
        f"the failure in the progress message\n{bot.emu.dump()}",
    )
    assert "Invalid page token" in flatten(progress)
    assert len(bot.messages_in(DM)) == 1
    assert not bot.emu.calls_to("files.getUploadURLExternal") and not bot.emu.uploads.files()
    failed = wait_until(
        lambda: [e for e in audit.events(bot.store) if e["event"] == "export failed"],
        10,
        "the failed export in the audit log",
    )
    assert len(failed) == 1 and failed[0]["actor"] == OPERATOR
