"""SQLite state through sqlite-utils: one connection per thread, WAL, busy timeout, migrations.

Never share a connection between threads (sqlite3 refuses it): `store.db()` gives the
calling thread its own. Writes that decide something (a state transition, a lease)
go through `store.transaction()`, which takes the write lock up front (BEGIN IMMEDIATE)
so that two threads or two processes cannot both read-then-write.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils
from sqlite_utils import Migrations

from bot.audit_key import Anchor, AuditKey, adopt_key, anchor_file_for, legacy_boundary, load_key

BUSY_TIMEOUT_MS = 10_000

migrations = Migrations("device-bot")
_migrating = threading.local()  # what a migration needs besides the database (the audit key)


def utcnow() -> str:
    """Now as an ISO-8601 UTC string with microseconds; sorts as text."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def epoch() -> float:
    return time.time()


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
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
        CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_events
            BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
        CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_events
            BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;

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
        """
    )


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
            [json.dumps(legacy_boundary(_migrating.audit_key, row[0], row[1]))],
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


class Store:
    """Where the bot keeps its state; hands each thread its own connection."""

    def __init__(
        self,
        path: Path | str,
        *,
        audit_key: AuditKey | None = None,
        anchor_file: Path | None = None,
        migrate: bool = True,
    ) -> None:
        """Open (and migrate) the database. `audit_key` keys the audit chain (default: the
        key file beside the database, see `audit.load_key`); `anchor_file` is where the
        chain's head is anchored (default: beside the database). `migrate=False` opens an
        existing file as it is (for `audit --verify`)."""
        self.path = Path(path)
        self._local = threading.local()
        self.anchor_file = anchor_file or anchor_file_for(self.path)
        self.anchor_listeners: list[Callable[[Anchor], None]] = []
        self.last_anchor: tuple[int, str] | None = None
        self.audit_key: AuditKey | None
        if not migrate:
            self.audit_key = audit_key or load_key(None, self.path, create=False)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self.db()
        db.enable_wal()
        self.audit_key = audit_key or load_key(None, self.path, create=True)
        _migrating.audit_key = self.audit_key
        try:
            migrations.apply(db)
        finally:
            _migrating.audit_key = None
        key = self.audit_key
        assert key is not None  # created above when missing
        adopt_key(key, self.meta_default("audit_key_check", key.check))

    def connect(self) -> sqlite_utils.Database:
        """A new connection, autocommit, with busy timeout: transactions are explicit."""
        conn = sqlite3.connect(
            str(self.path),
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=True,
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")  # erased secrets are zeroed in the file too
        return sqlite_utils.Database(conn)

    def db(self) -> sqlite_utils.Database:
        """This thread's connection (created on first use)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self.connect()
            self._local.db = db
        return db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """BEGIN IMMEDIATE … COMMIT: the write lock is taken first, so read-then-write is safe.

        Work registered with `after_commit` inside it runs once it committed (never after
        a rollback)."""
        db = self.db()
        if db.conn.in_transaction:  # nested: join the outer transaction
            yield db
            return
        db.conn.execute("BEGIN IMMEDIATE")
        self._local.after_commit = []
        try:
            yield db
        except BaseException:
            self._local.after_commit = []
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            raise
        else:
            db.conn.execute("COMMIT")
            hooks, self._local.after_commit = self._local.after_commit, []
            for hook in hooks:
                hook()

    def after_commit(self, hook: Callable[[], object]) -> None:
        """Run `hook` when the calling thread's transaction commits (now, if none is open)."""
        pending = getattr(self._local, "after_commit", None)
        if self.db().conn.in_transaction and pending is not None:
            pending.append(hook)
        else:
            hook()

    def meta(self, key: str) -> str | None:
        row = self.db().execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    def meta_default(self, key: str, value: str) -> str:
        """The stored value of `key`, storing `value` first if there is none (race-free)."""
        self.db().execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", [key, value])
        stored = self.meta(key)
        assert stored is not None
        return stored

    def erase_freed(self, attempts: int = 1) -> bool:
        """Make erased data unrecoverable from the files: secure_delete zeroes freed space
        in the pages, and a TRUNCATE checkpoint copies the last version of every page into
        the database and empties the -wal, where older versions (a secret before it was
        erased) would otherwise survive. False if readers kept it from finishing."""
        for _ in range(attempts):
            busy, _log, _done = self.db().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy and self.wal_size() == 0:
                return True
        return False

    def wal_size(self) -> int:
        wal = Path(str(self.path) + "-wal")
        return wal.stat().st_size if wal.exists() else 0

    def schema_version(self) -> int:
        return len(migrations.applied(self.db()))

    def first_delivery(self, key: str) -> bool:
        """Record a Slack delivery; False when it was seen before (a retry)."""
        cursor = self.db().conn.execute(
            "INSERT OR IGNORE INTO deliveries(key, at) VALUES (?, ?)", (key, epoch())
        )
        return cursor.rowcount == 1

    def prune_deliveries(self, older_than: float = 3600) -> None:
        self.db().conn.execute("DELETE FROM deliveries WHERE at < ?", (epoch() - older_than,))

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
