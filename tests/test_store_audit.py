import os
import sqlite3
import subprocess
import sys
import threading

import psycopg
import pytest
from conftest import store_url

from bot import audit
from bot.migrations import SCHEMA_VERSION
from bot.store import Store

BOTH_STORES = True


def _store(path):
    return Store(path, url=store_url())


def _cli_env():
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    if store_url():
        env["DATABASE_URL"] = store_url()
    return env


@pytest.fixture
def store(tmp_path):
    s = _store(tmp_path / "bot.db")
    yield s
    s.close()


def test_schema_versioned_and_wal(store, tmp_path, backend):
    assert store.schema_version() == SCHEMA_VERSION
    if backend == "sqlite":
        assert store.db().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # re-opening applies nothing twice
    again = _store(tmp_path / "bot.db")
    assert again.schema_version() == SCHEMA_VERSION


def test_connection_per_thread(store, backend):
    if backend == "postgresql":
        pytest.skip("PostgreSQL: the threads share a pool, a transaction pins one connection")
    seen = []

    def worker():
        seen.append(store.db())

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen[0] is not store.db()


def test_audit_rejects_update_and_delete(store):
    audit.record(store, actor="U1", event="requested", device_id="d1")
    refused = (sqlite3.DatabaseError, psycopg.Error)
    with pytest.raises(refused, match="append-only"):
        store.db().execute("UPDATE audit_events SET actor = 'U2'")
    with pytest.raises(refused, match="append-only"):
        store.db().execute("DELETE FROM audit_events")
    assert audit.events(store)[0]["actor"] == "U1"


def test_chain_verifies_and_export_round_trips(store):
    for i in range(5):
        audit.record(
            store, actor=f"U{i}", event="e", device_id="d", detail={"i": i, "text": 'a,"b"\nc'}
        )
    assert audit.verify(store).ok
    original = audit.events(store)
    for fmt in ("jsonl", "csv"):
        text = "".join(audit.export(store, fmt=fmt))
        assert audit.parse_export(text, fmt) == original


def _tamper(path, sql):
    if store_url():  # a superuser switches the triggers off
        with psycopg.connect(store_url(), autocommit=True) as pg:
            pg.execute("ALTER TABLE audit_events DISABLE TRIGGER USER;" + sql)
        return
    conn = sqlite3.connect(path)
    conn.executescript("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;" + sql)
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("UPDATE audit_events SET actor = 'U9' WHERE seq = 2;", "event 2 was altered"),
        ("DELETE FROM audit_events WHERE seq = 2;", "event 2 is missing"),
        ("DELETE FROM audit_events WHERE seq = 3;", "missing"),
        (
            "UPDATE audit_events SET seq = 10 WHERE seq = 1; UPDATE audit_events SET seq = 1 WHERE seq = 2;"
            " UPDATE audit_events SET seq = 2 WHERE seq = 10;",
            "does not follow",
        ),
    ],
)
def test_verify_catches_tampering_behind_the_bots_back(tmp_path, sql, problem):
    path = tmp_path / "bot.db"
    store = _store(path)
    for i in range(3):
        audit.record(store, actor=f"U{i}", event="e")
    store.close()
    _tamper(path, sql)
    result = audit.verify(_store(path))
    assert not result.ok
    assert problem in result.problem
    cli = subprocess.run(
        [sys.executable, "-m", "bot", "audit", "--verify", "--database", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_cli_env(),
    )
    assert cli.returncode == 1
    assert "BROKEN" in cli.stderr


def test_audit_cli_export(tmp_path):
    path = tmp_path / "bot.db"
    store = _store(path)
    audit.record(store, actor="U1", event="requested", detail={"a": 1})
    audit.anchor_head(store)
    store.close()
    out = subprocess.run(
        [sys.executable, "-m", "bot", "audit", "--format", "csv", "--database", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=_cli_env(),
    ).stdout
    assert audit.parse_export(out, "csv")[0]["actor"] == "U1"
    ok = subprocess.run(
        [sys.executable, "-m", "bot", "audit", "--verify", "--database", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_cli_env(),
    )
    assert ok.returncode == 0 and "1 events" in ok.stdout


def test_deliveries_dedupe(store):
    assert store.first_delivery("k1")
    assert not store.first_delivery("k1")


def test_transaction_serialises_writers(tmp_path):
    path = tmp_path / "bot.db"
    _store(path)
    errors = []

    def worker(n):
        s = _store(path)
        try:
            for i in range(20):
                audit.record(s, actor=f"W{n}", event=str(i))
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    s = _store(path)
    assert audit.verify(s).ok and audit.verify(s).checked == 80


def test_a_large_read_streams_in_batches(store):
    with store.transaction() as db:
        db.conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?)",
            [(f"stream-{i:04d}", str(i)) for i in range(2500)],
        )
    batches = list(
        store.stream(
            "SELECT value FROM meta WHERE key LIKE ? ORDER BY key", ["stream-%"], size=1000
        )
    )
    assert [len(b) for b in batches] == [1000, 1000, 500]
    assert [int(v) for b in batches for (v,) in b] == list(range(2500))


def test_a_streamed_read_on_postgresql_is_fetched_a_batch_at_a_time(store, backend):
    if backend != "postgresql":
        pytest.skip("PostgreSQL's server-side cursor; SQLite's cursor steps through the file")
    # the 1500th row divides by zero: read in full, the statement fails before any row;
    # streamed, the first batches arrive and the error comes with the batch that holds it
    rows = store.stream("SELECT 1 / (1500 - g) FROM generate_series(1, 3000) g", size=100)
    got = 0
    with pytest.raises(psycopg.errors.DivisionByZero):
        for batch in rows:
            got += len(batch)
    assert got == 1400
    # its connection went back to the pool, out of its transaction
    assert store.db().execute("SELECT 1").fetchone() == (1,)
    assert store._pg.pool._idle.qsize() >= 1
    conn = store._pg.pool.get(timeout=1)
    try:
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    finally:
        store._pg.pool.put(conn)


def test_a_streamed_read_left_half_way_gives_its_connection_back(tmp_path, backend):
    if backend != "postgresql":
        pytest.skip("PostgreSQL's pool of connections")
    small = Store(tmp_path / "bot.db", url=store_url())
    small._pg.pool.close()
    small._pg.pool = type(small._pg.pool)(store_url(), size=1)
    try:
        rows = small.stream("SELECT g FROM generate_series(1, 5000) g", size=100)
        assert next(rows) == [(g,) for g in range(1, 101)]
        rows.close()
        conn = small._pg.pool.get(timeout=1)  # the only connection, free again
        small._pg.pool.put(conn)
        assert small.db().execute("SELECT count(*) FROM meta").fetchone()[0] >= 1
    finally:
        small.close()
