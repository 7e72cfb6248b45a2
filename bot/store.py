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
(bot/migrations.py).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import sqlite_utils

from bot.audit_key import Anchor, AuditKey, adopt_key, anchor_file_for, load_key
from bot.errors import SettingsError
from bot.migrations import PG_MIGRATIONS, migrating, migrations
from bot.pgstore import PgDatabase

BUSY_TIMEOUT_MS = 10_000


def utcnow() -> str:
    """Now as an ISO-8601 UTC string with microseconds; sorts as text."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def epoch() -> float:
    return time.time()


#: the integrity errors of both databases (a duplicate key)
IntegrityErrors: tuple[type[Exception], ...] = (sqlite3.IntegrityError, psycopg.IntegrityError)


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
        migrating.audit_key = self.audit_key
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
            migrating.audit_key = None
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

    def stream(
        self, sql: str, params: list[Any] | None = None, size: int = 1000
    ) -> Iterator[list[tuple[Any, ...]]]:
        """A large read, `size` rows at a time, never all of it in memory: SQLite's cursor
        steps through the table; on PostgreSQL a server-side cursor (see PgDatabase.stream)."""
        if self._pg is not None:
            yield from self._pg.stream(sql, params, size)
            return
        cursor = self.db().conn.execute(sql, params or [])
        while rows := cursor.fetchmany(size):
            yield rows

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
