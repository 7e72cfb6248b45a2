"""The schema, one set of migrations for both stores (SQLite and PostgreSQL).

A migration asks `is_postgres(db)` where the dialects differ; `Store` applies them at
start-up (bot/store.py) and records them in sqlite-utils' table on SQLite, in
`PG_MIGRATIONS` on PostgreSQL. What a migration needs besides the database (the audit
key) is handed to it in `migrating`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import Any

import sqlite_utils
from sqlite_utils import Migrations

from bot.audit_key import legacy_boundary
from bot.pgstore import PgDatabase

migrations = Migrations("device-bot")
migrating = threading.local()  # what a migration needs besides the database (the audit key)


def is_postgres(db: object) -> bool:
    return isinstance(db, PgDatabase)


def executescript(db: Any, script: str) -> None:
    """`db.executescript`, faster on SQLite inside the migration's transaction: there
    sqlite-utils finds where each statement ends one character at a time (quadratic in its
    length: ~15 ms of every start-up for this schema); this does it a line at a time."""
    if is_postgres(db) or not db.conn.in_transaction:
        db.executescript(script)
        return
    cursor = db.conn.cursor()
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            cursor.execute(statement)  # refuses a line that holds two statements
            statement = ""
    if statement.strip():
        cursor.execute(statement)


def _audit_append_only(db: Any) -> None:
    """The database itself refuses UPDATE and DELETE on audit_events; on PostgreSQL it also
    numbers the events from a counter row (rolled back with its transaction, unlike a
    sequence, so the numbers stay gapless, and never lowered when events are deleted: the
    equivalent of SQLite's sqlite_sequence for `audit.verify`)."""
    if not is_postgres(db):
        executescript(
            db,
            """
            CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_events
                BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
            CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_events
                BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
            """,
        )
        return
    db.execute(
        "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$"
    )
    db.execute(
        "CREATE TRIGGER audit_no_update BEFORE UPDATE OR DELETE ON audit_events"
        " FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
    )
    db.execute(
        "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_events"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
    )
    db.execute("CREATE TABLE audit_sequence (last_seq BIGINT NOT NULL)")
    db.execute("INSERT INTO audit_sequence(last_seq) VALUES (0)")
    db.execute(
        "CREATE FUNCTION audit_next_seq() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " UPDATE audit_sequence SET last_seq = last_seq + 1 RETURNING last_seq INTO NEW.seq;"
        " RETURN NEW; END $$"
    )
    db.execute(
        "CREATE TRIGGER audit_seq BEFORE INSERT ON audit_events"
        " FOR EACH ROW EXECUTE FUNCTION audit_next_seq()"
    )


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    executescript(
        db,
        """
        CREATE TABLE requests (
            id TEXT PRIMARY KEY,
            action TEXT NOT NULL,
            platform TEXT NOT NULL,
            device_ids TEXT NOT NULL,          -- JSON list of target ids
            devices TEXT NOT NULL,             -- JSON summaries shown to the approver
            params TEXT NOT NULL,              -- JSON, never a secret
            secret BLOB,                       -- encrypted secret params (reset-password), erased at the end
            fingerprint TEXT NOT NULL,         -- sha256 over action, device ids, params (+ secret digest)
            reason TEXT NOT NULL DEFAULT '',
            requester TEXT NOT NULL,
            state TEXT NOT NULL,
            needs_approval INTEGER NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            expires_at REAL,
            decided_by TEXT,
            decided_at REAL,
            decision_note TEXT,
            requester_channel TEXT,
            requester_ts TEXT,
            approval_channel TEXT,
            approval_ts TEXT,
            google_ref TEXT,                   -- Android operation name / Chrome commandId
            executor TEXT,                     -- the bot process that approved / runs it
            executing_at REAL,
            reconcile INTEGER NOT NULL DEFAULT 0,  -- Google's answer was lost: read back, never resend
            result TEXT                        -- JSON outcome summary
        );
        CREATE INDEX requests_state ON requests(state);
        CREATE INDEX requests_requester ON requests(requester);

        CREATE TABLE audit_events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            event TEXT NOT NULL,
            request_id TEXT,
            platform TEXT,
            device_id TEXT,
            from_state TEXT,
            to_state TEXT,
            detail TEXT NOT NULL DEFAULT '{}',
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX audit_device ON audit_events(device_id);
        CREATE INDEX audit_request ON audit_events(request_id);

        CREATE TABLE pending_commands (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            request_id TEXT NOT NULL,
            platform TEXT NOT NULL,
            device_id TEXT NOT NULL,
            google_ref TEXT NOT NULL,          -- operation name or commandId
            command_type TEXT NOT NULL,
            state TEXT NOT NULL,               -- last state seen (PENDING, SENT_TO_CLIENT, ...)
            done INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            expires_at REAL,
            next_poll_at REAL NOT NULL,
            poll_failures INTEGER NOT NULL DEFAULT 0,
            UNIQUE (platform, google_ref)
        );
        CREATE INDEX pending_due ON pending_commands(done, next_poll_at);

        CREATE TABLE lost_devices (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            platform TEXT NOT NULL,
            device_id TEXT NOT NULL,
            serial TEXT,
            summary TEXT NOT NULL DEFAULT '{}',
            state TEXT NOT NULL,               -- open | resolved
            reported_by TEXT NOT NULL,
            reported_at REAL NOT NULL,
            request_id TEXT,
            channel TEXT,
            ts TEXT,
            last_checkin TEXT,                 -- the last check-in time already posted
            resolved_by TEXT,
            resolved_at REAL,
            resolution TEXT
        );
        CREATE UNIQUE INDEX lost_open_device ON lost_devices(platform, device_id) WHERE state = 'open';

        CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            expires_at REAL NOT NULL
        );

        CREATE TABLE deliveries (              -- Slack deliveries already handled (retry de-duplication)
            key TEXT PRIMARY KEY,
            at REAL NOT NULL
        );

        CREATE TABLE android_index (           -- AMAPI has no server-side filter: a local index
            name TEXT PRIMARY KEY,
            serial TEXT,
            user TEXT,
            model TEXT,
            state TEXT,
            synced_at REAL NOT NULL
        );
        CREATE INDEX android_index_serial ON android_index(serial);
        CREATE INDEX android_index_user ON android_index(user);
        CREATE TABLE android_raw (             -- last device JSON seen, for result lists without a call per device
            name TEXT PRIMARY KEY,
            raw TEXT NOT NULL
        );

        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT
        );
        """,
    )
    _audit_append_only(db)


@migrations()
def m002_keyed_audit_chain(db: sqlite_utils.Database) -> None:
    """From here on audit events are chained with an HMAC (bot/audit.py).

    Events written before keep their unkeyed SHA-256 links; where they end is recorded
    here, sealed with the key in the same transaction (so that no boundary can be slipped
    in later and sealed by an innocent start-up).
    """
    row = db.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
    if row is not None:
        db.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('audit_legacy', ?)",
            [json.dumps(legacy_boundary(migrating.audit_key, row[0], row[1]))],
        )


@migrations()
def m003_secret_holder(db: sqlite_utils.Database) -> None:
    """Without BOT_SECRET_KEY a new password lives in one process's memory: which one."""
    db.execute("ALTER TABLE requests ADD COLUMN secret_holder TEXT")


@migrations()
def m004_outside_events(db: sqlite_utils.Database) -> None:
    """Device events read from the Admin SDK Reports API (changes made outside the bot).

    (time, qualifier, idx) is Google's id of the activity (`id.time`, `id.uniqueQualifier`)
    plus the event's place in it: an activity read twice (overlapping windows, a page read
    again) is stored once. `at` is `id.time` written the way audit events write times, so
    the two sort together in a device's history.
    """
    db.execute(
        """
        CREATE TABLE outside_events (
            time TEXT NOT NULL,
            qualifier TEXT NOT NULL,
            idx INTEGER NOT NULL,
            at TEXT NOT NULL,
            name TEXT NOT NULL,                -- CHANGE_DEVICE_STATE, MOVE_DEVICE_TO_ORG_UNIT_DETAILED, …
            actor TEXT NOT NULL,               -- actor.email (or profile id / caller type)
            serial TEXT,
            device_id TEXT,
            params TEXT NOT NULL DEFAULT '{}', -- the event's parameters, name → value
            read_at REAL NOT NULL,
            PRIMARY KEY (time, qualifier, idx)
        )
        """
    )
    db.execute("CREATE INDEX outside_events_serial ON outside_events(serial)")
    db.execute("CREATE INDEX outside_events_device ON outside_events(device_id)")


@migrations()
def m005_home_tabs_and_workflow_steps(db: sqlite_utils.Database) -> None:
    """Who opened the App Home (their tab is republished when something of theirs changes),
    and the Workflow Builder steps waiting for a request to end (completed once, even after
    a restart)."""
    db.execute("CREATE TABLE home_tabs (user TEXT PRIMARY KEY, opened_at REAL NOT NULL)")
    db.execute(
        """
        CREATE TABLE workflow_steps (
            execution_id TEXT PRIMARY KEY,     -- Slack's function_execution_id
            request_id TEXT,                   -- set once the request exists
            state TEXT NOT NULL,               -- open | completing | completed | failed
            error TEXT,                        -- why the step failed
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX workflow_steps_request ON workflow_steps(request_id)")


@migrations()
def m006_search_pages(db: sqlite_utils.Database) -> None:
    """Where each page of a search result starts, for *Previous* and *Next* (Google's page
    tokens only go forward; a button cannot carry the way back)."""
    db.execute(
        """
        CREATE TABLE search_pages (
            session TEXT NOT NULL,         -- one per search shown
            page INTEGER NOT NULL,         -- 0 = the first page
            start INTEGER NOT NULL,        -- results before this page
            query TEXT NOT NULL,           -- as typed (filters included)
            sort TEXT,                     -- JSON [orderBy, descending] or NULL
            cursor TEXT,                   -- DeviceDirectory cursor; NULL on the first page
            created_at REAL NOT NULL,
            PRIMARY KEY (session, page)
        )
        """
    )
    db.execute("CREATE INDEX search_pages_created ON search_pages(created_at)")


SCHEMA_VERSION = len(migrations._migrations)
PG_MIGRATIONS = "_migrations"  # PostgreSQL's record of applied migrations
