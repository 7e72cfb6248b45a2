"""Changes made outside the bot: the Reports API reader, history and open-request threads.

The sandbox serves the Admin console's audit log (`activities.list`) for the changes it
applies through the Directory API (actor: its admin, the bot) and for changes made
"in the Admin console" by someone else (`Sandbox.outside_change`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import APPROVALS, HELPDESK, OPERATOR, Bot, flatten, start_bot, wait_until

from bot import approvals, ids, reports, requests
from bot.requests import NewRequest
from bot.sandbox.fleet import SANDBOX_ADMIN

ANA = "ana@example.com"
BO = "bo@example.com"
FAST = {"REPORTS_LAG": "0", "REPORTS_SYNC_INTERVAL": "0.3"}


def report_calls(bot: Bot) -> list[dict[str, str]]:
    """Every activities.list request the sandbox served, as its query parameters."""
    out = []
    for method, path in list(bot.sandbox.log):
        url = urlsplit(path)
        if method == "GET" and url.path.startswith("/admin/reports/v1/activity/"):
            out.append({k: v[0] for k, v in parse_qs(url.query).items()})
    return out


def first_pages(bot: Bot, start: str) -> int:
    """How many times the window starting at `start` was read from its first page."""
    return sum(1 for q in report_calls(bot) if q.get("startTime") == start and "pageToken" not in q)


def outside_rows(bot: Bot, serial: str) -> list[dict[str, Any]]:
    return list(bot.store.db().query("SELECT * FROM outside_events WHERE serial = ?", [serial]))


@pytest.fixture
def quiet(tmp_path: Any, sandbox: Any, emu: Any) -> Any:
    """A bot whose jobs the test drives (scheduler paused), reading the log without lag."""
    running = start_bot(tmp_path, sandbox, emu, REPORTS_LAG="0")
    running.settle()
    yield running
    running.server.stop()


def test_reader_is_paged_and_reads_each_window_once(quiet: Bot, claims: Any) -> None:
    first = reports.sync(quiet.svc)  # catch up with whatever the session did so far
    devices = [claims.chrome() for _ in range(3)]
    for n, d in enumerate(devices):
        quiet.sandbox.outside_change(
            d["deviceId"], "annotate", BO, field="annotatedAssetId", value=f"A-{n}"
        )
        quiet.sandbox.outside_change(d["serialNumber"], "annotate", ANA, field="notes", value="x")

    second = reports.sync(quiet.svc, page_size=2)
    assert second.start == first.end  # the next window starts where the last one ended
    assert second.pages == 3 and second.stored == 6  # 6 events, 2 a page
    pages = [q for q in report_calls(quiet) if q.get("startTime") == second.start]
    assert len(pages) == 3 and sum("pageToken" in q for q in pages) == 2
    assert {q["endTime"] for q in pages} == {second.end}

    # windows share their boundary millisecond (both ends count): what is read again there
    # is recognised, not stored twice
    third = reports.sync(quiet.svc, page_size=2)
    assert third.start == second.end and third.stored == 0
    for window in (first, second, third):
        assert first_pages(quiet, str(window.start)) == 1  # never the same window twice
    stored = outside_rows(quiet, devices[0]["serialNumber"])
    assert sorted(r["actor"] for r in stored) == [ANA, BO]
    assert {r["name"] for r in stored} == {"CHANGE_CHROME_OS_DEVICE_ANNOTATION"}


def test_an_activity_read_again_is_stored_once(quiet: Bot, claims: Any) -> None:
    reports.sync(quiet.svc)
    device = claims.chrome()
    quiet.sandbox.outside_change(device["deviceId"], "move", ANA, org_unit="/Sales")
    done = reports.sync(quiet.svc)
    assert done.stored == 1
    # a window that overlaps one already read (as after a failure part-way): nothing doubles
    with quiet.store.transaction() as db:
        db.conn.execute("UPDATE meta SET value = ? WHERE key = ?", [done.start, reports.WINDOW_KEY])
    again = reports.sync(quiet.svc)
    assert again.start == done.start and again.stored == 0
    assert len(outside_rows(quiet, device["serialNumber"])) == 1


def test_a_new_process_resumes_where_the_last_one_stopped(
    tmp_path: Any, sandbox: Any, emu: Any, claims: Any
) -> None:
    db = str(tmp_path / "shared.db")
    one = start_bot(tmp_path, sandbox, emu, REPORTS_LAG="0", DATABASE_PATH=db)
    try:
        one.settle()
        before = reports.sync(one.svc)
    finally:
        one.server.stop()
    device = claims.chrome()
    sandbox.outside_change(device["deviceId"], "disable", ANA)

    two = start_bot(tmp_path, sandbox, emu, REPORTS_LAG="0", DATABASE_PATH=db)
    try:
        two.settle()
        after = reports.sync(two.svc)
        assert after.start == before.end  # not a fresh look-back: the stored window end
        assert after.stored >= 1
        rows = outside_rows(two, device["serialNumber"])
        assert [(r["name"], r["actor"]) for r in rows] == [("CHANGE_DEVICE_STATE", ANA)]
        assert first_pages(two, str(before.start)) == 1
        assert first_pages(two, str(after.start)) == 1
    finally:
        two.server.stop()


def test_outside_changes_in_history_and_own_changes_once(
    tmp_path: Any, sandbox: Any, emu: Any, claims: Any
) -> None:
    bot = start_bot(tmp_path, sandbox, emu, **FAST)  # the real scheduler runs the reader
    try:
        device = claims.chrome()
        serial = device["serialNumber"]
        # the bot's own change (moves need no approval): it runs through the Directory API
        own = bot.svc.devices.resolve(serial)
        ou = "/Support" if device["orgUnitPath"] != "/Support" else "/Sales"
        request_id = approvals.submit(
            bot.svc,
            NewRequest(
                action="move",
                platform="chrome",
                devices=(own,),
                params={"ou": ou},
                requester=OPERATOR,
                channel=HELPDESK,
            ),
        )
        wait_until(lambda: requests.load(bot.svc, request_id).state == "succeeded", 15, "the move")
        # someone else disables it in the Admin console
        sandbox.outside_change(device["deviceId"], "disable", ANA)
        wait_until(lambda: outside_rows(bot, serial), 15, "the reader to store the outside change")

        bot.slash(f"history {serial}")
        text = bot.wait_ephemeral("History of")
        assert "*disabled* _outside the bot_" in text and ANA in text
        assert text.count("outside the bot") == 1  # the bot's own move is not repeated
        assert all(r["actor"] != SANDBOX_ADMIN for r in outside_rows(bot, serial))
        # the card's History button shows the same
        shown = len(bot.emu.ephemerals(OPERATOR))
        bot.slash(f"info {serial}")
        card = wait_until(
            lambda: next(
                (
                    e
                    for e in bot.emu.ephemerals(OPERATOR)[shown:]
                    if ids.ActionId.SHOW_HISTORY in str(e)
                ),
                None,
            ),
            15,
            "the device card",
        )
        before = len(bot.emu.ephemerals(OPERATOR))
        bot.emu.click(OPERATOR, ids.ActionId.SHOW_HISTORY, message=card)
        clicked = wait_until(
            lambda: next(
                (
                    flatten(e)
                    for e in bot.emu.ephemerals(OPERATOR)[before:]
                    if "History of" in flatten(e)
                ),
                None,
            ),
            15,
            "the history from the button",
        )
        assert "*disabled* _outside the bot_" in clicked and ANA in clicked
        # the sandbox did log the bot's move, with the admin the bot acts as
        logged = [
            a
            for _, a in sandbox.fleet.activities
            if a["events"][0]["parameters"][0]["value"] == serial
        ]
        assert [a["actor"]["email"] for a in logged] == [SANDBOX_ADMIN, ANA]
    finally:
        bot.server.stop()


def test_outside_change_to_a_device_with_an_open_request_is_said_in_its_threads(
    tmp_path: Any, sandbox: Any, emu: Any, claims: Any
) -> None:
    bot = start_bot(tmp_path, sandbox, emu, **FAST)
    try:
        device = claims.chrome()
        serial = device["serialNumber"]
        request_id = approvals.submit(
            bot.svc,
            NewRequest(
                action="disable",
                platform="chrome",
                devices=(bot.svc.devices.resolve(serial),),
                params={"why": "other"},
                requester=OPERATOR,
                reason="stolen laptop",
                channel=HELPDESK,
            ),
        )
        row = wait_until(
            lambda: (
                (
                    r := next(
                        bot.store.db().query("SELECT * FROM requests WHERE id = ?", [request_id])
                    )
                )["approval_ts"]
                and r
            ),
            10,
            "the approval message",
        )
        sandbox.outside_change(device["deviceId"], "disable", ANA)
        expected = (
            f"{serial} was disabled in the Admin console by {ANA}: the request is no longer needed"
        )

        def thread(channel: str, ts: str) -> str:
            return "\n".join(flatten(m) for m in bot.emu.messages(channel, thread_ts=ts))

        wait_until(lambda: expected in thread(APPROVALS, row["approval_ts"]), 15, "approval thread")
        wait_until(
            lambda: expected in thread(row["requester_channel"], row["requester_ts"]),
            15,
            "requester thread",
        )
        # said once, however often the reader runs
        runs = bot.server.jobs.runs.get("reports-sync", 0)
        wait_until(lambda: bot.server.jobs.runs.get("reports-sync", 0) >= runs + 2, 10, "two runs")
        said = [
            m
            for m in bot.emu.messages(APPROVALS, thread_ts=row["approval_ts"])
            if expected in flatten(m)
        ]
        assert len(said) == 1
        assert requests.load(bot.svc, request_id).state == "pending"  # said, not decided
    finally:
        bot.server.stop()


def test_describe_and_notice_words() -> None:
    state = {"DEVICE_NEW_STATE": "ACTIVE", "DEVICE_PREVIOUS_STATE": "DISABLED"}
    assert reports.describe("CHANGE_DEVICE_STATE", state) == "re-enabled"
    assert reports.describe("CHANGE_CHROME_OS_DEVICE_STATE", {"DEVICE_NEW_STATE": "DISABLED"}) == (
        "disabled"
    )
    assert reports.describe("MOVE_DEVICE_TO_ORG_UNIT_DETAILED", {"NEW_VALUE": "/Sales"}) == (
        "moved to /Sales"
    )
    annotation = {"SETTING_NAME": "annotatedAssetId", "NEW_VALUE": "A-1"}
    assert (
        reports.describe("CHANGE_CHROME_OS_DEVICE_ANNOTATION", annotation)
        == 'asset id set to "A-1"'
    )
    assert reports.describe("SEND_CHROME_OS_DEVICE_COMMAND", {"DEVICE_COMMAND_TYPE": "REBOOT"}) == (
        "sent the command REBOOT"
    )


# ---- the sandbox's Reports API --------------------------------------------------------------


def _raw(sandbox: Any, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    import json

    import httplib2

    data = None if body is None else json.dumps(body)
    resp, content = httplib2.Http().request(
        sandbox.url + path, method, body=data, headers={"Content-Type": "application/json"}
    )
    return resp.status, json.loads(content) if content else {}


def test_sandbox_reports_route_is_checked_against_the_discovery_document(
    sandbox: Any, claims: Any
) -> None:
    import json

    from googleapiclient.discovery_cache import get_static_doc
    from test_sandbox_schema import violations

    from bot.sandbox import schema
    from bot.sandbox.testing import build

    base = "admin/reports/v1/activity/users/all/applications/admin"
    found = schema.match("GET", base)
    assert found is not None and found[0].name == "activities.list"
    status, out = _raw(sandbox, "GET", f"{base}?colour=red")
    assert (
        status == 400
        and 'Unknown name "colour": Cannot bind query parameter' in (out["error"]["message"])
    )
    status, out = _raw(sandbox, "GET", base.replace("/admin", "/nonsense") + "?maxResults=1")
    assert status == 400 and "'application_name' (TYPE_ENUM)" in out["error"]["message"]
    status, out = _raw(sandbox, "GET", f"{base}?maxResults=ten")
    assert status == 400 and "'max_results' (TYPE_INT32)" in out["error"]["message"]
    status, out = _raw(sandbox, "GET", f"{base}?maxResults=1001")
    assert status == 400
    status, out = _raw(sandbox, "GET", f"{base}?pageToken=forged")
    assert status == 400 and out["error"]["message"] == "Invalid pageToken"

    device = claims.chrome()
    sandbox.outside_change(device["deviceId"], "move", ANA, org_unit="/Engineering/Labs")
    reports_api = build("admin", "reports_v1", sandbox.url)
    answer = (
        reports_api.activities()
        .list(userKey=ANA, applicationName="admin", eventName="MOVE_DEVICE_TO_ORG_UNIT_DETAILED")
        .execute()
    )
    assert answer["items"] and all(a["actor"]["email"] == ANA for a in answer["items"])
    doc = json.loads(get_static_doc("admin", "reports_v1") or "{}")
    assert violations(doc, doc["schemas"]["Activities"], answer, "activities") == []


def test_sandbox_control_route_makes_outside_changes(sandbox: Any, claims: Any) -> None:
    device = claims.chrome()
    status, activity = _raw(
        sandbox,
        "POST",
        "sandbox/outside-change",
        {"device": device["serialNumber"], "kind": "disable", "actor": ANA},
    )
    assert status == 200 and activity["actor"]["email"] == ANA
    assert activity["events"][0]["name"] == "CHANGE_DEVICE_STATE"
    assert sandbox.fleet.chrome[device["deviceId"]]["status"] == "DISABLED"
    # refused like the console would: nothing changes
    status, out = _raw(
        sandbox,
        "POST",
        "sandbox/outside-change",
        {"device": device["serialNumber"], "kind": "disable", "actor": ANA},
    )
    assert status == 412
    status, out = _raw(
        sandbox, "POST", "sandbox/outside-change", {"device": device["deviceId"], "kind": "paint"}
    )
    assert status == 400 and "kind must be one of" in out["error"]["message"]


def test_reader_goes_through_the_choke_point(quiet: Bot, claims: Any) -> None:
    """A 503 on the audit log is retried like any read; a 403 says which scope to delegate."""
    from bot.errors import Forbidden

    reports.sync(quiet.svc)
    quiet.sandbox.faults.add(status=503, count=1, path_contains="/admin/reports/")
    done = reports.sync(quiet.svc)
    assert done.pages == 1
    quiet.sandbox.faults.add(
        status=403, count=1, path_contains="/admin/reports/", reason="forbidden"
    )
    with pytest.raises(Forbidden) as refused:
        reports.sync(quiet.svc)
    assert "admin.reports.audit.readonly" in refused.value.message
    # the window that failed is read again (from the same start) next time
    again = reports.sync(quiet.svc)
    assert again.start == done.end
