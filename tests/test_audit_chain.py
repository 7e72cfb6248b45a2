"""The keyed, anchored audit chain: each known tampering is caught, with the key and
the anchors that live outside the database; `audit --verify` never creates a database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    APPROVALS,
    APPROVER1,
    approval_message,
    flatten,
    store_url,
    wait_state,
    wait_until,
)
from test_approvals import submit

from bot import audit, audit_key, ids
from bot.migrations import migrations
from bot.store import Store

KEY = "audit-key-for-tests-0123456789abcdef"


def keyed_store(path: Path, url: str | None = None) -> Store:
    return Store(path, audit_key=audit_key.derive_key(KEY, "AUDIT_KEY"), url=url)


def cli(path: Path, *args: str, key: str | None = KEY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDIT_", "DATABASE_"))}
    if key:
        env["AUDIT_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "bot", "audit", "--verify", "--database", str(path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def attacker(path: Path, sql: str, params: list[Any] | None = None) -> None:
    """Someone with write access to the database file (and not to the key)."""
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;"
    )
    conn.execute(sql, params or [])
    conn.commit()
    conn.close()


def rows(path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM audit_events ORDER BY seq")]
    finally:
        conn.close()


def unkeyed_rechain(path: Path, start: int) -> None:
    """Recompute every link from `start` on the way the old, unkeyed chain did."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    events = [dict(r) for r in conn.execute("SELECT * FROM audit_events ORDER BY seq")]
    prev = audit.GENESIS
    for event in events:
        if event["seq"] >= start:
            event["prev_hash"] = prev
            event["hash"] = audit._digest(prev, event)
            conn.execute(
                "UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?",
                [event["prev_hash"], event["hash"], event["seq"]],
            )
        prev = event["hash"]
    conn.commit()
    conn.close()


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    """Five events; the last two belong to a destructive request, so they are anchored."""
    path = tmp_path / "bot.db"
    store = keyed_store(path)
    for i in range(3):
        audit.record(store, actor=f"U{i}", event="looked")
    audit.record(store, actor="U1", event="requested", request_id="R1", anchor=True)
    audit.record(store, actor="U2", event="approved", request_id="R1", anchor=True)
    store.close()
    assert cli(path).returncode == 0
    return path


def test_verify_refuses_a_missing_database_and_creates_nothing(tmp_path):
    path = tmp_path / "nothing-here.db"
    result = cli(path)
    assert result.returncode == 2
    assert "no database" in result.stderr
    assert not path.exists()
    export = subprocess.run(
        [sys.executable, "-m", "bot", "audit", "--database", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert export.returncode == 2 and not path.exists()


def test_events_are_keyed_and_the_head_is_anchored_outside_the_database(logged):
    events = rows(logged)
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    # not the unkeyed SHA-256 of old: without the key the link cannot be recomputed
    assert events[0]["hash"] != audit._digest(audit.GENESIS, events[0])
    anchors = [
        json.loads(line) for line in audit_key.anchor_file_for(logged).read_text().splitlines()
    ]
    assert [(a["seq"], a["hash"]) for a in anchors] == [
        (4, events[3]["hash"]),
        (5, events[4]["hash"]),
    ]
    ok = cli(logged)
    assert "intact: 5 events" in ok.stdout and "against 2 anchors" in ok.stdout


def test_tail_deleted_and_sqlite_sequence_fixed_is_caught(logged):
    attacker(logged, "DELETE FROM audit_events WHERE seq > 3")
    attacker(logged, "UPDATE sqlite_sequence SET seq = 3 WHERE name = 'audit_events'")
    store = Store(logged, migrate=False)
    result = audit.verify(store, key=audit_key.derive_key(KEY, "AUDIT_KEY"))
    assert not result.ok
    assert "events after 3 are missing: event 5 was anchored" in (result.problem or "")
    broken = cli(logged)
    assert broken.returncode == 1 and "BROKEN" in broken.stderr and "event 5" in broken.stderr


def test_an_edited_event_rechained_without_the_key_is_caught(logged):
    attacker(logged, "UPDATE audit_events SET actor = 'U9' WHERE seq = 2")
    unkeyed_rechain(logged, 2)
    broken = cli(logged, "--no-anchors")
    assert broken.returncode == 1
    assert "event 2 was altered" in broken.stderr


def test_a_forged_event_appended_is_caught(logged):
    last = rows(logged)[-1]
    forged = {**last, "seq": 6, "actor": "U9", "event": "approved", "prev_hash": last["hash"]}
    forged["hash"] = audit._digest(last["hash"], forged)  # the best it can do without the key
    guessed = audit_key.derive_key("a guess at the key, 0123456789abcdef", "guess")
    for link in (forged["hash"], audit._mac(guessed, last["hash"], forged)):
        attacker(logged, "DELETE FROM audit_events WHERE seq = 6")
        attacker(
            logged,
            "INSERT INTO audit_events VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [forged[k] for k in audit.FIELDS[:-1]] + [link],
        )
        broken = cli(logged)
        assert broken.returncode == 1 and "event 6 was altered" in broken.stderr


def test_a_forged_anchor_line_and_a_wrong_key_are_caught(logged):
    assert "not the one this log was written with" in cli(logged, key="another-key-" * 4).stderr
    anchors = audit_key.anchor_file_for(logged)
    line = json.loads(anchors.read_text().splitlines()[-1])
    with anchors.open("a") as f:
        f.write(json.dumps({**line, "seq": 3, "mac": "0" * 64}) + "\n")
    broken = cli(logged)
    assert broken.returncode == 1 and "not written with this key" in broken.stderr


def test_without_an_anchor_file_verify_says_a_tail_could_be_gone(logged):
    audit_key.anchor_file_for(logged).unlink()
    broken = cli(logged)
    assert broken.returncode == 1 and "no anchor file" in broken.stderr
    assert cli(logged, "--no-anchors").returncode == 0


def test_without_a_key_verify_refuses(logged):
    result = cli(logged, key=None)
    assert result.returncode == 2 and "AUDIT_KEY" in result.stderr


def test_schema_1_events_keep_their_unkeyed_links_and_the_boundary_is_sealed(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    import sqlite_utils

    old = sqlite_utils.Database(conn)
    migrations.apply(old, stop_before="m002_keyed_audit_chain")
    prev = audit.GENESIS
    for i in range(3):  # written by the previous version: unkeyed SHA-256 links
        event = {
            "at": f"2026-01-0{i + 1}T00:00:00Z",
            "actor": f"U{i}",
            "event": "e",
            "detail": "{}",
        }
        link = audit._digest(prev, event)
        conn.execute(
            "INSERT INTO audit_events(at, actor, event, detail, prev_hash, hash) VALUES (?,?,?,?,?,?)",
            [event["at"], event["actor"], event["event"], event["detail"], prev, link],
        )
        prev = link
    conn.close()
    store = keyed_store(path)  # the upgrade: migration m002
    audit.record(store, actor="U3", event="e", anchor=True)
    result = audit.verify(store, anchors_required=True)
    assert result.ok and result.checked == 4 and "events 1–3 predate" in (result.note or "")
    store.close()
    # an attacker edits an old event and re-chains everything the unkeyed way
    attacker(path, "UPDATE audit_events SET actor = 'U9' WHERE seq = 1")
    unkeyed_rechain(path, 1)
    assert "event 4 was altered" in cli(path, "--no-anchors").stderr
    # … and moves the boundary so every event counts as unkeyed: the seal gives it away
    attacker(
        path,
        "UPDATE meta SET value = ? WHERE key = 'audit_legacy'",
        [json.dumps({"seq": 4, "head": rows(path)[-1]["hash"], "mac": "0" * 64})],
    )
    assert "where the unkeyed (pre-upgrade) events end was altered" in cli(path).stderr


def test_start_with_another_audit_key_is_refused(tmp_path):
    path = tmp_path / "bot.db"
    keyed_store(path, store_url()).close()
    with pytest.raises(audit_key.AuditKeyMismatch, match="another key"):
        Store(path, audit_key=audit_key.derive_key("x" * 40, "AUDIT_KEY"), url=store_url())


@pytest.mark.sqlite_only("deletes the tail from the SQLite file behind the bot's back")
def test_a_destructive_request_anchors_its_events_end_to_end(tmp_path, sandbox, emu, claims):
    from conftest import start_bot

    anchors = tmp_path / "elsewhere" / "anchors.log"
    bot = start_bot(tmp_path, sandbox, emu, AUDIT_KEY=KEY, AUDIT_ANCHOR_FILE=str(anchors))
    try:
        device = claims.chrome("ACTIVE")
        request_id = submit(bot, "disable", device["serialNumber"], {"why": "other"})
        message = approval_message(bot, request_id)
        bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
        wait_state(bot, request_id, "succeeded")
        final = audit.events(bot.store, request_id=request_id)[-1]
        wait_until(
            lambda: anchors.exists() and f'"seq": {final["seq"]}' in anchors.read_text(),
            10,
            "the final event of the disable to be anchored",
        )
        # … and the same head in the approval channel's thread of the day
        parent = wait_until(
            lambda: next(
                (m for m in emu.messages(APPROVALS) if "Audit log anchors of" in flatten(m)), None
            ),
            10,
            "the thread of the day's anchors",
        )
        wait_until(
            lambda: any(
                final["hash"] in flatten(m) and f"event *{final['seq']}*" in flatten(m)
                for m in emu.messages(APPROVALS, thread_ts=parent["ts"])
            ),
            10,
            "the final head posted in the thread",
        )
        path = Path(bot.env["DATABASE_PATH"])
    finally:
        bot.server.stop()
    assert cli(path, "--anchors", str(anchors)).returncode == 0
    # remove the disable's events from the tail, fix sqlite_sequence: the anchors tell
    first = audit.events(Store(path, migrate=False), request_id=request_id)[0]["seq"]
    attacker(path, f"DELETE FROM audit_events WHERE seq >= {first}")
    attacker(path, f"UPDATE sqlite_sequence SET seq = {first - 1} WHERE name = 'audit_events'")
    broken = cli(path, "--anchors", str(anchors))
    assert broken.returncode == 1 and "are missing" in broken.stderr


def test_production_without_audit_settings_says_so_at_start_up(tmp_path, caplog):
    from bot.services import open_store
    from bot.settings import load_settings

    env = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        "APPROVAL_REQUIRED": "none",
        "DATABASE_PATH": str(tmp_path / "prod.db"),
    }
    with caplog.at_level("WARNING"):
        open_store(load_settings(env)).close()
    assert "AUDIT_KEY is not set" in caplog.text and "AUDIT_ANCHOR_FILE is not set" in caplog.text
    assert audit_key.key_file_for(tmp_path / "prod.db").stat().st_mode & 0o077 == 0  # owner only
    caplog.clear()
    with caplog.at_level("WARNING"):
        open_store(
            load_settings(
                {
                    **env,
                    "DATABASE_PATH": str(tmp_path / "prod2.db"),
                    "AUDIT_KEY": KEY,
                    "AUDIT_ANCHOR_FILE": str(tmp_path / "a"),
                }
            )
        ).close()
    assert "AUDIT_KEY is not set" not in caplog.text


def test_python_m_bot_refuses_another_audit_key_in_one_line(tmp_path):
    from conftest import base_env

    path = tmp_path / "bot.db"
    keyed_store(path, store_url()).close()  # base_env names the same store
    env = base_env(str(path), "http://127.0.0.1:9/api/", AUDIT_KEY="a-different-key-" * 3)
    env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    result = subprocess.run(
        [sys.executable, "-m", "bot"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "AUDIT_KEY" in lines[0] and "another key" in lines[0], lines


def test_a_boundary_slipped_in_later_is_not_sealed_by_the_next_start(logged):
    # mark every event as "written before the key" and re-chain them the unkeyed way …
    attacker(logged, "INSERT INTO meta(key, value) VALUES ('audit_legacy', '{}')")
    unkeyed_rechain(logged, 1)
    head = rows(logged)[-1]
    attacker(
        logged,
        "UPDATE meta SET value = ? WHERE key = 'audit_legacy'",
        [json.dumps({"seq": head["seq"], "head": head["hash"]})],
    )
    keyed_store(logged).close()  # … and wait for the bot to start again
    broken = cli(logged, "--no-anchors")
    assert broken.returncode == 1
    assert "where the unkeyed (pre-upgrade) events end was altered" in broken.stderr
