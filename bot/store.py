"""The bot's state: SQLite through sqlite-utils (the default), or PostgreSQL (DATABASE_URL).

SQLite: one connection per thread, WAL, busy timeout. Never share a connection between
threads (sqlite3 refuses it): `store.db()` gives the calling thread its own. Writes that
decide something (a state transition, a lease) go through `store.transaction()`, which
takes the write lock up front (BEGIN IMMEDIATE) so that two threads or two processes
cannot both read-then-write.

PostgreSQL (bot/pgstore.py): the same SQL, translated; `store.db()` is shared by the
threads and borrows a pooled connection per statement; `store.transaction()` takes one
advisory lock first (`pg_advisory_xact_lock`), so write transactions of every replica
run one at a time exactly as on SQLite. One schema and one set of migrations serve both
(a migration asks `is_postgres(db)` where the dialects differ).
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
from typing import Any

import psycopg
import sqlite_utils
from sqlite_utils import Migrations

from bot.audit_key import Anchor, AuditKey, adopt_key, anchor_file_for, legacy_boundary, load_key
from bot.errors import SettingsError
from bot.pgstore import PgDatabase

BUSY_TIMEOUT_MS = 10_000

migrations = Migrations("device-bot")
_migrating = threading.local()  # what a migration needs besides the database (the audit key)


def utcnow() -> str:
    """Now as an ISO-8601 UTC string with microseconds; sorts as text."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def epoch() -> float:
    return time.time()


#: the integrity errors of both databases (a duplicate key)
IntegrityErrors: tuple[type[Exception], ...] = (sqlite3.IntegrityError, psycopg.IntegrityError)


def is_postgres(db: object) -> bool:
    return isinstance(db, PgDatabase)


def _audit_append_only(db: Any) -> None:
    """The database itself refuses UPDATE and DELETE on audit_events; on PostgreSQL it also
    numbers the events from a counter row (rolled back with its transaction, unlike a
    sequence, so the numbers stay gapless, and never lowered when events are deleted: the
    equivalent of SQLite's sqlite_sequence for `audit.verify`)."""
    if not is_postgres(db):
        db.executescript(
            """
            CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_events
                BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
            CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_events
                BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
            """
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
PG_MIGRATIONS = "_migrations"  # PostgreSQL's record of applied migrations


class Store:
    """Where the bot keeps its state; hands each thread its own connection."""

    def __init__(
        self,
        path: Path | str,
        *,
        audit_key: AuditKey | None = None,
        anchor_file: Path | None = None,
        migrate: bool = True,
        url: str | None = None,
    ) -> None:
        """Open (and migrate) the database. `audit_key` keys the audit chain (default: the
        key file beside the database, see `audit.load_key`); `anchor_file` is where the
        chain's head is anchored (default: beside the database). `migrate=False` opens an
        existing file as it is (for `audit --verify`). With `url` (postgresql://…) the
        state is in PostgreSQL; `path` then only places the default key and anchor files."""
        self.path = Path(path)
        self.url = url
        self.dialect = "postgresql" if url else "sqlite"
        self._pg = PgDatabase(url) if url else None
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
            if self._pg is not None:
                try:
                    self._migrate_postgres()
                except psycopg.OperationalError as exc:  # the message names host and port only
                    first = (
                        str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    )
                    raise SettingsError(
                        "DATABASE_URL", f"cannot reach PostgreSQL: {first}"
                    ) from exc
            else:
                migrations.apply(db)
        finally:
            _migrating.audit_key = None
        key = self.audit_key
        assert key is not None  # created above when missing
        adopt_key(key, self.meta_default("audit_key_check", key.check))

    def _migrate_postgres(self) -> None:
        """The same migrations, recorded in `_migrations`; under the write lock, so that of
        two replicas starting at once one migrates and the other then finds it done."""
        with self.transaction() as db:
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {PG_MIGRATIONS} (migration_set TEXT NOT NULL,"
                " name TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (migration_set, name))"
            )
            done = {
                row[0]
                for row in db.execute(
                    f"SELECT name FROM {PG_MIGRATIONS} WHERE migration_set = ?", [migrations.name]
                )
            }
            for migration in migrations._migrations:
                if migration.name not in done:
                    migration.fn(db)  # type: ignore[arg-type]
                    db.execute(
                        f"INSERT INTO {PG_MIGRATIONS}(migration_set, name, applied_at)"
                        " VALUES (?, ?, ?)",
                        [migrations.name, migration.name, utcnow()],
                    )

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
        """This thread's connection (created on first use); on PostgreSQL the shared pool."""
        if self._pg is not None:
            return self._pg  # type: ignore[return-value]
        db = getattr(self._local, "db", None)
        if db is None:
            db = self.connect()
            self._local.db = db
        return db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """BEGIN IMMEDIATE … COMMIT: the write lock is taken first, so read-then-write is safe.

        Work registered with `after_commit` inside it runs once it committed (never after
        a rollback). On PostgreSQL: BEGIN, then the advisory write lock."""
        if self._pg is not None:
            yield from self._pg_transaction(self._pg)
            return
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

    def _pg_transaction(self, db: PgDatabase, lock: bool = True) -> Iterator[Any]:
        if db.in_transaction:  # nested: join the outer transaction
            yield db
            return
        db.begin(lock=lock)
        self._local.after_commit = []
        try:
            yield db
        except BaseException:
            self._local.after_commit = []
            db.end(commit=False)
            raise
        else:
            db.end(commit=True)
            hooks, self._local.after_commit = self._local.after_commit, []
            for hook in hooks:
                hook()

    def claim_due_commands(self, now: float, hold: float, limit: int) -> list[dict[str, Any]]:
        """Pending commands due for a poll. On PostgreSQL the rows are claimed (`FOR UPDATE
        SKIP LOCKED`, their next poll moved `hold` seconds on), so that replicas share the
        polling and never ask about one command twice; SQLite has one poller (the lease)."""
        if self._pg is None:
            return list(
                self.db().query(
                    "SELECT * FROM pending_commands WHERE done = 0 AND next_poll_at <= ?"
                    " ORDER BY next_poll_at LIMIT ?",
                    [now, limit],
                )
            )
        rows = self._pg.query(
            "UPDATE pending_commands SET next_poll_at = ? WHERE id IN (SELECT id FROM"
            " pending_commands WHERE done = 0 AND next_poll_at <= ? ORDER BY next_poll_at"
            " LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING *",
            [now + hold, now, limit],
        )
        return sorted(rows, key=lambda r: r["id"])

    @property
    def shared_polling(self) -> bool:
        """Whether every process polls (claiming rows) instead of the lease holder alone."""
        return self._pg is not None

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
        erased) would otherwise survive. False if readers kept it from finishing.
        PostgreSQL: nothing to do here (its secrets are always sealed with BOT_SECRET_KEY,
        whose key is not in the database)."""
        if self._pg is not None:
            return True
        for _ in range(attempts):
            busy, _log, _done = self.db().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy and self.wal_size() == 0:
                return True
        return False

    def wal_size(self) -> int:
        if self._pg is not None:
            return 0
        wal = Path(str(self.path) + "-wal")
        return wal.stat().st_size if wal.exists() else 0

    def schema_version(self) -> int:
        if self._pg is not None:
            return len(self._pg.execute(f"SELECT name FROM {PG_MIGRATIONS}").fetchall())
        return len(migrations.applied(self.db()))

    def migration_applied(self, name: str) -> bool:
        table = PG_MIGRATIONS if self._pg is not None else migrations.migrations_table
        if table not in self.db().table_names():
            return False
        return bool(self.db().execute(f"SELECT 1 FROM {table} WHERE name = ?", [name]).fetchone())

    def audit_sequence(self) -> int | None:
        """The highest audit event number ever given (deleting events does not lower it)."""
        if self._pg is not None:
            row = self._pg.execute("SELECT last_seq FROM audit_sequence").fetchone()
        else:
            row = (
                self.db()
                .conn.execute("SELECT seq FROM sqlite_sequence WHERE name='audit_events'")
                .fetchone()
            )
        return int(row[0]) if row else None

    def first_delivery(self, key: str) -> bool:
        """Record a Slack delivery; False when it was seen before (a retry)."""
        cursor = self.db().conn.execute(
            "INSERT OR IGNORE INTO deliveries(key, at) VALUES (?, ?)", (key, epoch())
        )
        return cursor.rowcount == 1

    def prune_deliveries(self, older_than: float = 3600) -> None:
        self.db().conn.execute("DELETE FROM deliveries WHERE at < ?", (epoch() - older_than,))

    def close(self) -> None:
        """Close this thread's connection (SQLite); on PostgreSQL, every pooled one."""
        if self._pg is not None:
            self._pg.close()
            return
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
