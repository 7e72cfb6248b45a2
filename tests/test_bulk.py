"""Bulk actions end to end: `/device bulk <action>` → list or CSV → preview → one approval → batched run.

Over signed HTTP through the Slack emulator (file_input, files.info, the external upload
flow), Google through googleapiclient to the sandbox, a real SQLite file.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from typing import Any

import pytest
from conftest import (
    APPROVER1,
    HELPDESK,
    OPERATOR,
    Bot,
    Claims,
    approval_message,
    flatten,
    request_row,
    serial,
    start_bot,
    wait_until,
)

from bot import bulk_list, ids

LIST = str(ids.CallbackId.BULK_LIST)
CONFIRM = str(ids.CallbackId.BULK_CONFIRM)


def disabled(claims: Claims) -> dict[str, Any]:
    """A disabled Chrome device (an active one disabled here: the shared fleet has few)."""
    device = claims.chrome("ACTIVE")
    claims.sandbox.fleet.set_chrome_status(device, "DISABLED")
    return device


def open_list(bot: Bot, action: str) -> dict[str, Any]:
    mark = bot.emu.mark()
    bot.slash(f"bulk {action}", channel_id=HELPDESK)
    opened = bot.emu.wait_for_call("views.open", since=mark)
    assert opened.ok, opened
    view: dict[str, Any] = opened.response["view"]
    assert view["callback_id"] == LIST
    return view


def preview(bot: Bot, view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Submit the list modal; wait for the preview (or the error view) that replaces it."""
    reply = bot.emu.submit_view(OPERATOR, view["id"], values)
    assert reply.status == 200, reply
    assert (reply.json or {}).get("response_action") == "update", reply.body
    shown: dict[str, Any] = wait_until(
        lambda: (
            (v := bot.emu.open_view(OPERATOR))
            and v["id"] == view["id"]
            and v.get("callback_id") != str(ids.CallbackId.LOADING)
            and v
        ),
        60,
        "the bulk preview",
    )
    return shown


def csv_file(bot: Bot, rows: list[list[str]]) -> dict[str, Any]:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    file: dict[str, Any] = bot.emu.uploads.user_upload(
        OPERATOR, "devices.csv", out.getvalue().encode()
    )
    return file


def the_request(bot: Bot, action: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        row = (
            bot.store.db().execute("SELECT id FROM requests WHERE action = ?", [action]).fetchone()
        )
        return request_row(bot, row[0]) if row else None

    found: dict[str, Any] = wait_until(find, 15, f"the bulk {action} request")
    return found


def test_a_csv_with_blank_partial_duplicate_and_wrong_state_rows_acts_on_none_of_them(
    bot: Bot, claims: Claims
) -> None:
    """The case a partial-serial match once turned into a fleet-wide deprovision."""
    good = claims.chrome("ACTIVE")
    other = claims.chrome("ACTIVE")
    off = disabled(claims)
    partial = serial(other)[:-2]
    before = {
        d["deviceId"]: d["status"] for d in bot.sandbox.fleet.chrome.values()
    }  # every device's status, to prove nothing else changed
    file = csv_file(
        bot,
        [["device"], [serial(good)], [""], [partial], [serial(good).lower()], [serial(off)]],
    )
    view = open_list(bot, "disable")
    shown = preview(bot, view, {ids.BlockId.BULK_FILE: [file]})
    assert shown["callback_id"] == CONFIRM, flatten(shown)
    text = flatten(shown)
    assert (
        "5 rows read" in text and "1 devices will be acted on" in text and "4 rows left out" in text
    )
    assert "Row 3: `(blank)` — Blank row" in text, text
    assert f"Row 4: `{partial}` — No device has exactly" in text
    assert "Row 5:" in text and "Duplicate of row 2" in text
    assert "Row 6:" in text and "already disabled" in text
    meta = json.loads(shown["private_metadata"])
    assert meta["n"] == 1

    # a wrong typed count changes nothing; the right one submits one request for one device
    reply = bot.emu.submit_view(
        OPERATOR, shown["id"], {ids.BlockId.CONFIRM_COUNT: "5", "why": "other", "reason": "cart"}
    )
    assert reply.json and ids.BlockId.CONFIRM_COUNT in reply.json["errors"]
    bot.emu.submit_view(
        OPERATOR, shown["id"], {ids.BlockId.CONFIRM_COUNT: "1", "why": "other", "reason": "cart"}
    )
    row = the_request(bot, "disable")
    assert json.loads(row["device_ids"]) == [good["deviceId"]]
    left_out = {"blank": 1, "no exact match": 1, "duplicate": 1, "action cannot run": 1}
    assert json.loads(row["params"])["bulk"] == {
        "rows": 5,
        "skipped": 4,
        "cap": None,
        "left_out": left_out,
    }
    message = approval_message(bot, row["id"])  # the approver sees the same counts
    words = "4 rows left out (1 action cannot run, 1 blank, 1 duplicate, 1 no exact match)"
    assert words in flatten(message), flatten(message)
    # the full list, with every left-out row's reason, is a CSV in the approval thread
    listed = wait_until(
        lambda: next((f for f in bot.emu.uploads.files() if f["name"].endswith("-list.csv")), None),
        10,
        "the full list CSV",
    )
    content = (bot.emu.uploads.content(listed["id"]) or b"").decode()
    assert content.count("left out") == 4 and partial in content

    mark = len(bot.sandbox.log)
    bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=row["id"], message=message)
    wait_until(lambda: request_row(bot, row["id"])["state"] == "succeeded", 20, "the run")
    assert sum("batchChangeStatus" in p for _, p in list(bot.sandbox.log)[mark:]) == 1
    after = {d["deviceId"]: d["status"] for d in bot.sandbox.fleet.chrome.values()}
    changed = {d for d in after if after[d] != before.get(d)}
    assert changed == {good["deviceId"]}  # the partial match, duplicate and others: untouched


def test_a_list_of_only_bad_rows_offers_nothing_to_confirm(bot: Bot, claims: Claims) -> None:
    off = disabled(claims)
    view = open_list(bot, "disable")
    shown = preview(bot, view, {ids.BlockId.BULK_PASTE: f"\n{serial(off)}\nNOPE-0000\n"})
    assert not shown.get("submit") and "0 devices will be acted on" in flatten(shown)
    assert "Nothing will be done" in flatten(shown)


def test_bulk_refuses_unknown_actions_and_needs_a_list(bot: Bot) -> None:
    bot.slash("bulk powerwash")
    bot.wait_ephemeral("Usage: `/device bulk <action>`")
    view = open_list(bot, "lock")
    reply = bot.emu.submit_view(OPERATOR, view["id"], {})
    assert reply.json and ids.BlockId.BULK_PASTE in reply.json["errors"]
    bot.emu.close_view(OPERATOR)
    view = open_list(bot, "annotate")  # per-device values come from a CSV's columns
    reply = bot.emu.submit_view(OPERATOR, view["id"], {ids.BlockId.BULK_PASTE: "5CD1234XYZ"})
    assert reply.json and "takes a CSV file" in reply.json["errors"][ids.BlockId.BULK_PASTE]


def test_deprovision_above_the_cap_needs_the_approvers_explicit_raise(
    bot: Bot, claims: Claims
) -> None:
    devices = [claims.chrome("ACTIVE") for _ in range(2)]
    view = open_list(bot, "deprovision")
    shown = preview(bot, view, {ids.BlockId.BULK_PASTE: "\n".join(serial(d) for d in devices)})
    assert "Above the cap" in flatten(shown)
    bot.emu.submit_view(
        OPERATOR,
        shown["id"],
        {
            ids.BlockId.CONFIRM_COUNT: "2",
            "deprovision_reason": "retiring_device",
            "reason": "retired batch",
        },
    )
    row = the_request(bot, "deprovision")
    message = approval_message(bot, row["id"])
    assert ids.ActionId.APPROVE_ABOVE_CAP in str(message)
    assert f'"{ids.ActionId.APPROVE}"' not in json.dumps(message)  # no plain Approve
    # a plain Approve (an old client, a forged click) is refused and audited
    from bot import approvals
    from bot.errors import PermissionDenied

    try:
        approvals.approve(bot.svc, row["id"], APPROVER1)
        raise AssertionError("approved above the cap without the raise")
    except PermissionDenied as exc:
        assert "above the cap" in exc.message
    assert request_row(bot, row["id"])["state"] == "pending"
    bot.emu.click(APPROVER1, ids.ActionId.APPROVE_ABOVE_CAP, value=row["id"], message=message)
    wait_until(lambda: request_row(bot, row["id"])["state"] == "succeeded", 20, "the run")
    fleet = bot.sandbox.fleet
    assert all(fleet.chrome[d["deviceId"]]["status"] == "DEPROVISIONED" for d in devices)
    from bot import audit

    events = audit.events(bot.store, request_id=row["id"])
    refused = [e for e in events if e["event"] == "refused"]
    assert [e["detail"]["attempt"] for e in refused] == ["approve-above-cap"]
    approved = next(e for e in events if e["event"] == "approved")
    assert approved["actor"] == APPROVER1 and approved["detail"]["raised_cap"] == 1


def test_a_400_device_disable_makes_8_batch_calls_and_shows_progress_in_place(
    tmp_path: Any, emu: Any
) -> None:
    from bot.sandbox import Sandbox

    sb = Sandbox(chrome=420, android=2, seed=11, command_delay=0.1).start()
    try:
        fleet = sb.fleet
        chosen = [fleet.chrome[k] for k in list(fleet.chrome_order)[:400]]
        for device in chosen:  # all active, whatever the seed drew
            fleet.set_chrome_status(device, "ACTIVE")
        running = start_bot(tmp_path, sb, emu, BULK_CAPS="none")
        try:
            view = open_list(running, "disable")
            shown = preview(
                running, view, {ids.BlockId.BULK_PASTE: "\n".join(serial(d) for d in chosen)}
            )
            assert "400 devices will be acted on" in flatten(shown), flatten(shown)[:500]
            running.emu.submit_view(
                OPERATOR,
                shown["id"],
                {ids.BlockId.CONFIRM_COUNT: "400", "why": "other", "reason": "stolen cart"},
            )
            row = the_request(running, "disable")
            assert len(json.loads(row["device_ids"])) == 400
            message = approval_message(running, row["id"])
            mark = len(sb.log)
            slack_mark = running.emu.mark()
            running.emu.click(APPROVER1, ids.ActionId.APPROVE, value=row["id"], message=message)
            wait_until(
                lambda: request_row(running, row["id"])["state"] == "succeeded", 60, "the run"
            )
            assert sum("batchChangeStatus" in p for _, p in list(sb.log)[mark:]) == 8
            assert all(d["status"] == "DISABLED" for d in chosen)
            # progress: one message per thread, edited in place, ending at 400 of 400
            row = request_row(running, row["id"])
            requester = (row["requester_channel"], row["requester_ts"])
            replies = running.emu.messages(requester[0], thread_ts=requester[1])
            progress = [m for m in replies if "of 400 done" in flatten(m)]
            assert len(progress) == 1, [flatten(m) for m in replies]
            assert "400 of 400 done, 0 failed" in flatten(progress[0])
            edits = [
                c
                for c in running.emu.calls[slack_mark:]
                if c.method == "chat.update" and c.args.get("ts") == progress[0]["ts"]
            ]
            assert edits, "the progress message was never edited"
            # and a per-device results CSV in the thread
            results = wait_until(
                lambda: next(
                    (f for f in running.emu.uploads.files() if f["name"].endswith("-results.csv")),
                    None,
                ),
                10,
                "the results CSV",
            )
            lines = (running.emu.uploads.content(results["id"]) or b"").decode().splitlines()
            assert len(lines) == 401 and all(line.split(",")[3] == "done" for line in lines[1:])
        finally:
            running.server.stop()
    finally:
        sb.stop()


def test_read_csv_needs_a_device_column_and_keeps_blank_rows() -> None:
    from bot.errors import ValidationError

    rows = bulk_list.read_csv(b"device,notes\nA1\n\n,x\nB2,n\n", "annotate")
    assert [(r.line, r.ref, r.values) for r in rows] == [
        (2, "A1", {}),
        (3, "", {}),
        (4, "", {"notes": "x"}),
        (5, "B2", {"notes": "n"}),
    ]
    try:
        bulk_list.read_csv(b"serial\nA1\n", "disable")
        raise AssertionError("a CSV without a device column was read")
    except ValidationError as exc:
        assert "`device` column" in exc.message


def results_of(bot: Bot, request_id: str) -> list[dict[str, str]]:
    file = wait_until(
        lambda: next(
            (f for f in bot.emu.uploads.files() if f["name"].endswith(f"{request_id}-results.csv")),
            None,
        ),
        20,
        f"the results CSV of {request_id}",
    )
    text = (bot.emu.uploads.content(file["id"]) or b"").decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_a_lost_batch_answer_is_read_back_per_device_never_resent(bot: Bot, claims: Claims) -> None:
    devices = [disabled(claims) for _ in range(3)]
    bot.sandbox.faults.add(
        status=503,
        after_apply=True,
        path_contains=":batchChangeStatus",
        body_contains=devices[1]["deviceId"],
    )
    view = open_list(bot, "reenable")
    shown = preview(bot, view, {ids.BlockId.BULK_PASTE: "\n".join(serial(d) for d in devices)})
    mark = len(bot.sandbox.log)
    bot.emu.submit_view(OPERATOR, shown["id"], {ids.BlockId.CONFIRM_COUNT: "3", "reason": "back"})
    row = the_request(bot, "reenable")  # no approval needed: it runs at once
    wait_until(lambda: request_row(bot, row["id"])["state"] == "succeeded", 20, "the run")
    assert sum(":batchChangeStatus" in p for _, p in list(bot.sandbox.log)[mark:]) == 1
    read_back = [
        p for m, p in list(bot.sandbox.log)[mark:] if m == "GET" and devices[1]["deviceId"] in p
    ]
    assert read_back, "the device whose answer was lost was not read back"
    assert all(bot.sandbox.fleet.chrome[d["deviceId"]]["status"] == "ACTIVE" for d in devices)
    assert [r["result"] for r in results_of(bot, row["id"])] == ["done"] * 3


def test_bulk_lock_sends_one_command_per_android_device_and_leaves_out_chrome(
    bot: Bot, claims: Claims
) -> None:
    phones = [claims.fitting("lock", "android") for _ in range(3)]
    laptop = claims.chrome("ACTIVE")
    view = open_list(bot, "lock")
    refs = [serial(p) for p in phones] + [serial(laptop)]
    shown = preview(bot, view, {ids.BlockId.BULK_PASTE: "\n".join(refs)})
    assert "3 devices will be acted on" in flatten(shown)
    assert "is for Android devices" in flatten(shown)
    bot.sandbox.fleet.set_outcome(phones[2]["name"], error_code="UNSUPPORTED")
    mark = len(bot.sandbox.log)
    bot.emu.submit_view(OPERATOR, shown["id"], {ids.BlockId.CONFIRM_COUNT: "3"})
    row = the_request(bot, "lock")
    # each device's command is followed until the device answers, as a single command is
    wait_until(lambda: request_row(bot, row["id"])["state"] == "failed", 20, "the devices")
    assert sum(":issueCommand" in p for _, p in list(bot.sandbox.log)[mark:]) == 3
    results = {r["device_id"]: r for r in results_of(bot, row["id"])}
    assert set(results) == {p["name"] for p in phones}
    assert [results[p["name"]]["result"] for p in phones] == ["done", "done", "failed"]
    assert "does not support this command" in results[phones[2]["name"]]["detail"]
    final = request_row(bot, row["id"])
    replies = bot.emu.messages(final["requester_channel"], thread_ts=final["requester_ts"])
    assert any("3 of 3 done, 1 failed" in flatten(m) for m in replies)


def test_bulk_annotate_from_a_csv_sets_each_rows_fields(bot: Bot, claims: Claims) -> None:
    first, second, same = (claims.chrome("ACTIVE") for _ in range(3))
    file = csv_file(
        bot,
        [
            ["Device", "annotatedLocation", "notes"],
            [serial(first), "Room 1", "cart A"],
            [serial(second), "Room 2", ""],  # a blank cell leaves the notes as they are
            [serial(same), same.get("annotatedLocation") or "", same.get("notes") or ""],
        ],
    )
    notes_before = second.get("notes")
    view = open_list(bot, "annotate")
    shown = preview(bot, view, {ids.BlockId.BULK_FILE: [file]})
    assert "2 devices will be acted on" in flatten(shown), flatten(shown)
    assert "Nothing to change" in flatten(shown)
    bot.emu.submit_view(OPERATOR, shown["id"], {ids.BlockId.CONFIRM_COUNT: "2"})
    row = the_request(bot, "annotate")
    wait_until(lambda: request_row(bot, row["id"])["state"] == "succeeded", 20, "the run")
    fleet = bot.sandbox.fleet
    assert fleet.chrome[first["deviceId"]]["annotatedLocation"] == "Room 1"
    assert fleet.chrome[first["deviceId"]]["notes"] == "cart A"
    assert fleet.chrome[second["deviceId"]]["annotatedLocation"] == "Room 2"
    assert fleet.chrome[second["deviceId"]].get("notes") == notes_before


@pytest.mark.both_stores  # the store: bulk rows and their reconciliation
def test_a_batch_whose_read_back_fails_is_reconciled_later_never_resent(
    tmp_path: Any, sandbox: Any, emu: Any, claims: Claims, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the recovery job runs every 0.5 s (LEASE_SECONDS), and the reads Google refuses are
    # retried without the back-off's waits (every attempt is made all the same)
    running = start_bot(tmp_path, sandbox, emu, GOOGLE_TIMEOUT="1", LEASE_SECONDS="0.5")
    executor = running.svc.google.require_chrome().executor
    monkeypatch.setattr(executor, "policy", replace(executor.policy, sleep=lambda _s: None))
    try:
        devices = [disabled(claims) for _ in range(2)]
        lost = devices[0]["deviceId"]
        view = open_list(running, "reenable")
        shown = preview(
            running, view, {ids.BlockId.BULK_PASTE: "\n".join(serial(d) for d in devices)}
        )
        sandbox.faults.add(
            status=503, after_apply=True, path_contains=":batchChangeStatus", body_contains=lost
        )
        reads = sandbox.faults.add(status=503, count=10_000, method="GET", path_contains=lost)
        mark = len(sandbox.log)
        try:
            reply = running.emu.submit_view(
                OPERATOR, shown["id"], {ids.BlockId.CONFIRM_COUNT: "2", "reason": "back"}
            )
            assert reply.status == 200 and not reply.body.strip(), (reply, flatten(shown))
            row = the_request(running, "reenable")
            wait_until(
                lambda: request_row(running, row["id"])["reconcile"] == 1, 20, "reconcile mark"
            )
            assert request_row(running, row["id"])["state"] == "executing"
        finally:
            reads.count = 0  # Google answers reads again: the recovery job settles it
        wait_until(
            lambda: request_row(running, row["id"])["state"] == "succeeded", 30, "the recovery"
        )
        assert sum(":batchChangeStatus" in p for _, p in list(sandbox.log)[mark:]) == 1
        assert [r["result"] for r in results_of(running, row["id"])] == ["done", "done"]
        assert all(sandbox.fleet.chrome[d["deviceId"]]["status"] == "ACTIVE" for d in devices)
    finally:
        running.server.stop()


def test_two_references_to_one_device_and_an_ambiguous_asset_id_are_left_out(
    bot: Bot, claims: Claims
) -> None:
    one = claims.chrome("ACTIVE")
    twins = [claims.chrome("ACTIVE"), claims.chrome("ACTIVE")]
    fleet = bot.sandbox.fleet
    for device in twins:  # two devices carry one asset id
        old = device.get("annotatedAssetId")
        device["annotatedAssetId"] = "TWIN-ASSET-1"
        fleet.reindex_chrome(device["deviceId"], "annotatedAssetId", old, "TWIN-ASSET-1")
    rows = bulk_list.read_pasted(f"{serial(one)}\n{one['deviceId']}\nTWIN-ASSET-1\n")
    verdicts = bulk_list.judge(bot.svc, "disable", rows)
    assert [v.kind for v in verdicts] == ["ok", "duplicate", "ambiguous"]
    assert verdicts[1].reason == "Same device as row 1."
    assert "Names 2 devices" in (verdicts[2].reason or "")


def test_bulk_caps_setting() -> None:
    from conftest import base_env

    from bot.settings import SettingsError, load_settings

    def caps(raw: str) -> Any:
        return load_settings(base_env("x.db", "http://127.0.0.1:1/api/", BULK_CAPS=raw)).bulk_caps

    assert dict(caps("")) == {"deprovision": 1, "wipe": 1}
    assert dict(caps("wipe=5, disable=100")) == {"wipe": 5, "disable": 100}
    assert caps("none") == ()
    for bad in ("wipe", "wipe=0", "explode=3", "wipe=x"):
        try:
            caps(bad)
            raise AssertionError(f"BULK_CAPS={bad!r} was accepted")
        except SettingsError as exc:
            assert "BULK_CAPS" in str(exc)


def test_bulk_move_asks_for_the_ou_and_moves_by_batch(bot: Bot, claims: Claims) -> None:
    devices = [claims.chrome("ACTIVE") for _ in range(3)]
    view = open_list(bot, "move")
    shown = preview(bot, view, {ids.BlockId.BULK_PASTE: "\n".join(serial(d) for d in devices)})
    assert "ou" in [b.get("block_id") for b in shown["blocks"]]
    reply = bot.emu.submit_view(
        OPERATOR, shown["id"], {ids.BlockId.CONFIRM_COUNT: "3", "ou": "not a path"}
    )
    assert reply.json and "ou" in reply.json["errors"]  # the catalog's own validation
    mark = len(bot.sandbox.log)
    bot.emu.submit_view(OPERATOR, shown["id"], {ids.BlockId.CONFIRM_COUNT: "3", "ou": "/Support"})
    row = the_request(bot, "move")
    wait_until(lambda: request_row(bot, row["id"])["state"] == "succeeded", 20, "the move")
    assert sum("moveDevicesToOu" in p for _, p in list(bot.sandbox.log)[mark:]) == 1
    fleet = bot.sandbox.fleet
    assert all(fleet.chrome[d["deviceId"]]["orgUnitPath"] == "/Support" for d in devices)


def test_the_preview_replaces_the_named_loading_view_once_it_exists(bot: Bot) -> None:
    """The loading view comes from the ack's `response_action: update`; the preview may be
    ready before Slack has applied it, so it is addressed by its external_id and waits."""
    from slack_sdk.errors import SlackApiError

    from bot import modals

    out = bot.svc.out
    preview_view = modals.error_view("Bulk disable", "the preview")
    try:
        out.update_view_external("bulk-not-yet", preview_view, wait=0.1)
        raise AssertionError("a view that does not exist was updated")
    except SlackApiError as exc:
        assert exc.response["error"] == "not_found"
    loading = modals.loading_view("Bulk disable", "Reading the list…")
    out.open_view(bot.emu.issue_trigger(OPERATOR), {**loading, "external_id": "bulk-now"})
    out.update_view_external("bulk-now", preview_view)
    assert "the preview" in flatten(bot.emu.open_view(OPERATOR))
