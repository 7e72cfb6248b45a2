"""The local index of Android devices: the Android Management API has no server-side
filter, so searches, serial look-ups and counts run on a copy kept in SQLite.

A full sync replaces it (scheduled, and once before the first look-up); a device read
fresh from Google on its own (`DeviceDirectory.get`) updates its row at once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from bot.devices import Device, android_device
from bot.search_query import Sort, escape_like
from bot.store import Store

log = logging.getLogger(__name__)

#: the index column (or raw JSON path) equivalent to each Chrome orderBy; None: none
SORT_COLUMNS: dict[str, str | None] = {
    "lastSync": "json_extract(r.raw, '$.lastStatusReportTime')",
    "serialNumber": "i.serial",
    "status": "i.state",
    "annotatedUser": "i.user",
    "annotatedLocation": None,
    "notes": None,
}

#: a filter as SQL on the index (`i`) and its arguments, as `search_query.android_filter` gives
Where = tuple[str, list[Any]]


class AndroidIndex:
    """The Android devices known locally: their searchable columns and their raw records."""

    def __init__(self, google: Any, store: Store) -> None:
        self.google = google
        self.store = store
        self._sync = threading.Lock()  # one sync at a time in this process

    # ---- reading ------------------------------------------------------------------
    def count(self, where: Where) -> int:
        """How many indexed devices match `where`."""
        self.ensure()
        sql, args = where
        row = self.store.db().execute(f"SELECT count(*) FROM android_index WHERE {sql}", args)
        return int(row.fetchone()[0])

    def page(self, where: Where, sort: Sort | None, limit: int, offset: int) -> list[str]:
        """The names of one page of the devices matching `where`, in `sort`'s order (by serial
        where the index has no such field, and within equal values)."""
        self.ensure()
        sql, args = where
        order = "i.serial"
        if sort is not None:
            column = SORT_COLUMNS[sort.order_by] or "i.serial"
            order = f"{column} {'DESC' if sort.descending else 'ASC'}, i.serial"
        rows = self.store.db().execute(
            "SELECT i.name FROM android_index i LEFT JOIN android_raw r ON r.name = i.name"
            f" WHERE {sql} ORDER BY {order} LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )
        return [row[0] for row in rows.fetchall()]

    def named(self, ref: str) -> list[str]:
        """The names of the devices whose serial or short id is exactly `ref`."""
        self.ensure()
        rows = self.store.db().execute(
            # exact: `_` and `%` in a reference are characters, not wildcards
            "SELECT name FROM android_index WHERE upper(serial) = upper(?)"
            " OR name LIKE ? ESCAPE '\\'",
            [ref, f"%/devices/{escape_like(ref)}"],
        )
        return [row[0] for row in rows.fetchall()]

    def cached(self, name: str) -> Device | None:
        """The device as last read from Google (None if it is not indexed)."""
        db = self.store.db()
        row = db.execute("SELECT raw FROM android_raw WHERE name = ?", [name]).fetchone()
        if row is None:
            return None
        return android_device(json.loads(row[0]))

    # ---- keeping it current --------------------------------------------------------
    def synced_at(self) -> float | None:
        """When the last full sync started (None: never)."""
        row = (
            self.store.db()
            .execute("SELECT value FROM meta WHERE key = 'android_index_synced_at'")
            .fetchone()
        )
        return float(row[0]) if row else None

    def ensure(self) -> None:
        """Build the index once if it has never been built (later syncs are scheduled)."""
        if self.synced_at() is None:
            self.sync(only_if_never=True)

    def sync(self, *, only_if_never: bool = False) -> int:
        """Refresh the index from a full device list; returns the count.

        One sync at a time: a caller that finds one running waits for it (and with
        `only_if_never`, a first look-up racing the start-up sync, does not sync again).
        """
        with self._sync:
            if only_if_never and self.synced_at() is not None:
                return 0
            return self._sync_all()

    def _sync_all(self) -> int:
        android = self.google.android
        if android is None:
            return 0
        started = time.time()
        batch: list[dict[str, Any]] = []
        count = 0
        for raw in android.iter_devices():  # AMAPI pages hold at most 100 devices
            batch.append(raw)
            if len(batch) >= 1000:
                self.add(batch, synced_at=started)
                count += len(batch)
                batch = []
        if batch:
            self.add(batch, synced_at=started)
            count += len(batch)
        with self.store.transaction() as db:
            db.execute("DELETE FROM android_index WHERE synced_at < ?", [started])
            db.execute("DELETE FROM android_raw WHERE name NOT IN (SELECT name FROM android_index)")
            db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('android_index_synced_at', ?)",
                [str(started)],
            )
        log.info("android index synced: %d devices in %.1fs", count, time.time() - started)
        return count

    def add(self, raws: list[dict[str, Any]], *, synced_at: float | None = None) -> None:
        """Index (or re-index) these AMAPI device records."""
        now = synced_at or time.time()
        rows = []
        raw_rows = []
        for raw in raws:
            device = android_device(raw)
            rows.append((device.id, device.serial, device.user, device.model, device.status, now))
            raw_rows.append((device.id, json.dumps(raw, separators=(",", ":"))))
        with self.store.transaction() as db:
            db.conn.executemany(
                "INSERT OR REPLACE INTO android_index(name, serial, user, model, state, synced_at)"
                " VALUES (?,?,?,?,?,?)",
                rows,
            )
            db.conn.executemany(
                "INSERT OR REPLACE INTO android_raw(name, raw) VALUES (?, ?)", raw_rows
            )
