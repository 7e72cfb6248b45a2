"""A reset-password's new password: erased for real, cleared on purpose, never on the wrong
request, and run where it lives when two processes share the database without a key."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import (
    APPROVALS,
    APPROVER1,
    OPERATOR,
    flatten,
    request_row,
    start_bot,
    wait_state,
    wait_until,
)
from test_approvals import submit
from test_resilience import BotProcess, _one, process_env, state_of

from bot import execution, ids, requests
from bot.secrets_box import SALT_KEY, SecretBox


@pytest.fixture
def processes() -> Any:
    """`python -m bot` child processes on a shared database, stopped after the test."""
    started: list[BotProcess] = []

    def start(env: dict[str, str]) -> BotProcess:
        started.append(BotProcess(env))
        return started[-1]

    yield start
    for process in started:
        process.stop()


FERNET_TOKEN = re.compile(rb"gAAAAA[0-9A-Za-z_=-]{20,}")


def android_serial(claims: Any) -> tuple[dict[str, Any], str]:
    device = claims.android(lambda d: d["managementMode"] == "DEVICE_OWNER")
    return device, device["hardwareInfo"]["serialNumber"]


def ask_reset_password(emu: Any, serial: str, values: dict[str, Any]) -> Any:
    """The way a person does it: the slash command, the modal, a submission."""
    emu.slash_command(OPERATOR, f"reset-password {serial}")
    view = wait_until(
        lambda: (v := emu.open_view(OPERATOR)) and "new_password" in json.dumps(v) and v,
        15,
        "the reset-password modal",
    )
    return emu.submit_view(OPERATOR, view["id"], values)


def approval_of(emu: Any, serial: str) -> tuple[str, dict[str, Any]]:
    message = wait_until(
        lambda: next(
            (
                m
                for m in emu.messages(APPROVALS)
                if "Reset password" in flatten(m) and serial in flatten(m)
            ),
            None,
        ),
        15,
        "the approval message",
    )
    return re.search(r"`(R[0-9A-F]{12})`", flatten(message)).group(1), message


def operation_body(sandbox: Any, device: dict[str, Any]) -> dict[str, Any]:
    ops = [op for op in sandbox.fleet.operations.values() if op.device_name == device["name"]]
    assert len(ops) == 1
    return dict(ops[0].extra)


# ---- defect 5: nothing recoverable in any file once the request ended --------------------


def leftovers(db_dir: Path, password: str, ciphertext: bytes, box: SecretBox) -> list[str]:
    found = []
    for path in sorted(db_dir.iterdir()):
        found += recoverable(path.name, path.read_bytes(), password, ciphertext, box)
    return found


def recoverable(
    where: str, data: bytes, password: str, ciphertext: bytes, box: SecretBox
) -> list[str]:
    """What of the secret `data` gives away: the password, its sealed form, a token that opens."""
    found = []
    if password.encode() in data:
        found.append(f"the password in {where}")
    if ciphertext in data:
        found.append(f"the sealed password in {where}")
    for token in FERNET_TOKEN.findall(data):
        if box.open("?", token) is not None:
            found.append(f"a token in {where} that decrypts")
    return found


def table_leftovers(url: str, password: str, ciphertext: bytes, box: SecretBox) -> list[str]:
    """On PostgreSQL: what of the secret any table of the database holds, every row and column."""
    found = []
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        ).fetchall()
        for (table,) in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                data = b"\x00".join(
                    bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row
                )
                found += recoverable(f"table {table}", data, password, ciphertext, box)
    return found


def files_with(folder: Path, needle: bytes, since: float) -> list[str]:
    """The files under `folder` written since `since` that contain `needle` (a PostgreSQL
    cluster: its tables, its write-ahead log, its server log)."""
    found = []
    for path in sorted(folder.rglob("*")):
        with contextlib.suppress(OSError):  # the server may remove a file as it is walked
            if path.is_file() and path.stat().st_mtime >= since and needle in path.read_bytes():
                found.append(str(path.relative_to(folder)))
    return found


def test_an_ended_reset_password_leaves_nothing_recoverable_in_any_file(
    tmp_path, sandbox, emu, claims, processes, backend, request
):
    """SQLite: nothing of the secret in the database's files (db, -wal, -shm) once the request
    ended. PostgreSQL keeps its secrets sealed with BOT_SECRET_KEY (required there), which no
    file of the server holds: the password never reaches any file of the cluster (its write-ahead
    log included), and once the request ended no table holds the secret in any form."""
    started = time.time() - 1  # files written since then (mtime resolution)
    db_dir = tmp_path / "db"
    db_dir.mkdir()
    env = process_env(db_dir, sandbox, emu)
    bot = processes(env)
    emu.bot_url = bot.url + "/slack/events"
    device, serial = android_serial(claims)
    password = "Okapi-Lantern-5521!"
    reply = ask_reset_password(emu, serial, {"new_password": password, "reason": "user forgot it"})
    assert reply.status == 200
    request_id, message = approval_of(emu, serial)
    ciphertext, salt = _one(
        env,
        "SELECT secret, (SELECT value FROM meta WHERE key = ?) FROM requests WHERE id = ?",
        [SALT_KEY, request_id],
    )
    ciphertext = bytes(ciphertext)
    box = SecretBox(env["BOT_SECRET_KEY"], bytes.fromhex(salt))
    assert box.open(request_id, ciphertext) == {"new_password": password}  # the test can tell
    if backend == "postgresql":
        cluster = request.getfixturevalue("pg_cluster").dir
        url = env["DATABASE_URL"]

        def left() -> list[str]:
            found = table_leftovers(url, password, ciphertext, box)
            return found + [
                f"the password in {f}" for f in files_with(cluster, password.encode(), started)
            ]

        # while pending it is there, sealed; the cluster's files (which the test can read) hold
        # it sealed too, in the write-ahead log at least: sealed is all they ever hold
        assert "the sealed password in table requests" in left()
        wait_until(lambda: files_with(cluster, ciphertext, started), 10, "the sealed row written")
    else:

        def left() -> list[str]:
            return leftovers(db_dir, password, ciphertext, box)

        assert left()  # while pending it is there, sealed
    assert not [f for f in left() if f.startswith("the password")]  # sealed, never in plaintext
    emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
    wait_until(lambda: state_of(env, request_id) in ("succeeded", "failed"), 20)
    assert state_of(env, request_id) == "succeeded", bot.log[-2000:]
    assert operation_body(sandbox, device)["newPassword"] == password
    # the bot still runs (no closing checkpoint to help): every file, db, -wal, -shm
    wait_until(lambda: not left(), 10, f"the secret gone from every file: {left()}")
    bot.proc.send_signal(signal.SIGKILL)
    bot.proc.wait(10)
    assert not left()


def test_the_secret_key_goes_through_a_salted_kdf(tmp_path):
    a = SecretBox("the-same-setting-0123456789", b"salt-one-16bytes")
    b = SecretBox("the-same-setting-0123456789", b"salt-two-16bytes")
    sealed = a.seal("R1", {"new_password": "x"})
    assert sealed is not None and b.open("R1", sealed) is None  # the salt is part of the key
    legacy = SecretBox("the-same-setting-0123456789")  # sealed before the KDF (no salt)
    old = legacy.seal("R2", {"new_password": "y"})
    assert a.open("R2", old) == {"new_password": "y"}  # still opens after the upgrade


# ---- defect 6: clearing the password is a choice, shown, and it runs -----------------------


def test_clearing_the_password_is_an_explicit_choice_that_runs(bot, claims):
    device, serial = android_serial(claims)
    emu = bot.emu
    # neither a password nor the choice to clear: asked again, nothing recorded
    reply = ask_reset_password(emu, serial, {"reason": "kiosk"})
    assert "Clear the password" in json.dumps(reply.json)
    reply = emu.submit_view(
        OPERATOR,
        None,
        {"password_choice": "CLEAR_THE_PASSWORD", "new_password": "Typed-Anyway-1", "reason": "k"},
    )
    assert "leave the new password empty" in json.dumps(reply.json)
    assert "Typed-Anyway-1" not in json.dumps(reply.json)
    assert not bot.store.db().execute("SELECT 1 FROM requests").fetchall()
    reply = emu.submit_view(
        OPERATOR, None, {"password_choice": "CLEAR_THE_PASSWORD", "reason": "kiosk"}
    )
    assert reply.status == 200 and not reply.body.strip()
    request_id, message = approval_of(emu, serial)
    assert "the password will be cleared" in flatten(message)
    assert "never shown" not in flatten(message)
    emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
    row = wait_state(bot, request_id, "succeeded", "failed", timeout=20)
    assert row["state"] == "succeeded", row["result"]
    assert operation_body(bot.sandbox, device)["newPassword"] == ""


# ---- defect 10: long ids; a collision retries and never moves a secret ----------------------


def collide(bot: Any, claims: Any, monkeypatch: Any) -> None:
    """Two reset-passwords, the second drawing the first's id twice: a fresh id, its own secret."""
    (_, first_serial), (_, second_serial) = android_serial(claims), android_serial(claims)
    first = submit(
        bot, "reset-password", first_serial, {}, secret={"new_password": "First-Pass-111"}
    )
    assert re.fullmatch(r"R[0-9A-F]{12}", first)
    drawn = iter([first, first, "R00000000BEEF"])
    monkeypatch.setattr(requests, "new_request_id", lambda: next(drawn))
    second = submit(
        bot, "reset-password", second_serial, {}, secret={"new_password": "Second-Pass-22"}
    )
    assert second == "R00000000BEEF"
    opened = {
        rid: execution.secret(bot.svc, requests.load(bot.svc, rid)) for rid in (first, second)
    }
    assert opened == {
        first: {"new_password": "First-Pass-111"},
        second: {"new_password": "Second-Pass-22"},
    }
    assert request_row(bot, first)["device_ids"] != request_row(bot, second)["device_ids"]


def test_a_request_id_collision_is_retried_and_keeps_each_secret_apart(
    tmp_path, sandbox, emu, claims, monkeypatch
):
    bot = start_bot(tmp_path, sandbox, emu, BOT_SECRET_KEY="with-a-secret-key-0123456789")
    try:
        collide(bot, claims, monkeypatch)
    finally:
        bot.server.stop()


@pytest.mark.sqlite_only("without BOT_SECRET_KEY, which PostgreSQL refuses (test_approvals)")
def test_without_a_key_a_request_id_collision_keeps_each_secret_apart_in_memory(
    tmp_path, sandbox, emu, claims, monkeypatch
):
    bot = start_bot(tmp_path, sandbox, emu, BOT_SECRET_KEY="")
    try:
        collide(bot, claims, monkeypatch)
    finally:
        bot.server.stop()


# ---- defect 9: two processes, no BOT_SECRET_KEY ------------------------------------------------


@pytest.mark.sqlite_only("without BOT_SECRET_KEY, which PostgreSQL refuses: see the next test")
def test_without_a_key_a_request_approved_on_the_other_process_runs_where_its_secret_is(
    tmp_path, sandbox, emu, claims, processes
):
    env = process_env(tmp_path, sandbox, emu, BOT_SECRET_KEY="", LEASE_SECONDS="5")
    holder = processes(env)
    emu.bot_url = holder.url + "/slack/events"
    device, serial = android_serial(claims)
    password = "Heron-Marble-8080"
    assert ask_reset_password(emu, serial, {"new_password": password, "reason": "r"}).status == 200
    request_id, message = approval_of(emu, serial)
    other = processes(env)  # e.g. a rolling restart: a second process on the same database
    emu.bot_url = other.url + "/slack/events"
    emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
    wait_until(lambda: state_of(env, request_id) in ("succeeded", "failed"), 20)
    assert state_of(env, request_id) == "succeeded", other.log[-1500:] + holder.log[-1500:]
    assert operation_body(sandbox, device)["newPassword"] == password
    conn = sqlite3.connect(env["DATABASE_PATH"], timeout=10)
    executor, decided_by = conn.execute(
        "SELECT executor, decided_by FROM requests WHERE id = ?", [request_id]
    ).fetchone()
    conn.close()
    assert decided_by == APPROVER1
    assert executor.split(":")[1] == str(holder.proc.pid)  # ran in the process holding it
    thread = "\n".join(flatten(m) for m in emu.messages(APPROVALS, thread_ts=message["ts"]))
    assert "no longer held" not in thread


@pytest.mark.both_stores
def test_with_a_key_a_password_asked_on_one_process_runs_where_it_is_approved(
    tmp_path, sandbox, emu, claims, processes
):
    """Replicas (PostgreSQL needs the key): the secret is sealed in the database, so the
    process the approval reaches runs the request, and the password arrives."""
    env = process_env(tmp_path, sandbox, emu, LEASE_SECONDS="5")
    asked = processes(env)
    emu.bot_url = asked.url + "/slack/events"
    device, serial = android_serial(claims)
    password = "Plover-Anchor-3131"
    assert ask_reset_password(emu, serial, {"new_password": password, "reason": "r"}).status == 200
    request_id, message = approval_of(emu, serial)
    other = processes(env)
    emu.bot_url = other.url + "/slack/events"
    emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
    wait_until(lambda: state_of(env, request_id) in ("succeeded", "failed"), 20)
    assert state_of(env, request_id) == "succeeded", other.log[-1500:] + asked.log[-1500:]
    assert operation_body(sandbox, device)["newPassword"] == password
    executor, holder, secret = _one(
        env, "SELECT executor, secret_holder, secret FROM requests WHERE id = ?", [request_id]
    )
    assert executor.split(":")[1] == str(other.proc.pid)  # where the click arrived
    assert holder is None and secret is None  # and the secret is gone with the request


def test_a_password_sealed_with_another_key_fails_saying_so(tmp_path, sandbox, emu, claims):
    db = str(tmp_path / "keys.db")
    _, serial = android_serial(claims)
    bot = start_bot(tmp_path, sandbox, emu, DATABASE_PATH=db, BOT_SECRET_KEY="first-key-0123456789")
    try:
        request_id = submit(bot, "reset-password", serial, {}, secret={"new_password": "Pw-1234-x"})
    finally:
        bot.server.stop()
    bot = start_bot(tmp_path, sandbox, emu, DATABASE_PATH=db, BOT_SECRET_KEY="other-key-0123456789")
    try:
        message = next(m for m in emu.messages(APPROVALS) if request_id in flatten(m))
        bot.sandbox.log.clear()
        emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
        row = wait_state(bot, request_id, "failed")
        assert "every process on the database needs the same key" in row["result"]
        assert bot.sandbox.log.count(method="POST") == 0
    finally:
        bot.server.stop()


def test_an_erasure_a_reader_held_up_is_finished_by_the_job(tmp_path):
    from types import SimpleNamespace

    from bot.store import Store

    store = Store(tmp_path / "e.db")
    sealed = b"gAAAAA-not-really-a-token-but-secret-bytes" * 4
    store.db().execute("INSERT INTO meta(key, value) VALUES ('sealed', ?)", [sealed])
    reader = sqlite3.connect(tmp_path / "e.db", isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM meta").fetchone()  # holds the old snapshot
    store.db().execute("DELETE FROM meta WHERE key = 'sealed'")
    store.db().execute("PRAGMA busy_timeout = 100")
    assert not store.erase_freed()  # what `transition` meets: it flags the erasure as pending
    store.db().execute("INSERT INTO meta(key, value) VALUES ('erase_pending', '1')")
    svc = SimpleNamespace(store=store)
    assert not execution.erase_pending(svc)  # still held up
    assert any(sealed in p.read_bytes() for p in tmp_path.iterdir())
    reader.execute("COMMIT")
    reader.close()
    assert execution.erase_pending(svc)
    assert store.meta("erase_pending") is None
    assert not [p.name for p in tmp_path.iterdir() if sealed in p.read_bytes()]
