"""The append-only, hash-chained audit log.

Each event stores the hash of the previous event and a hash over its own content and that
previous hash, so editing, deleting or re-ordering any event breaks the chain that
`verify()` walks. The database also refuses UPDATE and DELETE on the table (triggers).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bot.store import Store, utcnow

GENESIS = "0" * 64
FIELDS = (
    "seq",
    "at",
    "actor",
    "event",
    "request_id",
    "platform",
    "device_id",
    "from_state",
    "to_state",
    "detail",
    "prev_hash",
    "hash",
)
_CONTENT = FIELDS[1:10]


def _digest(prev_hash: str, content: dict[str, Any]) -> str:
    canonical = json.dumps([prev_hash, [content.get(k) for k in _CONTENT]], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    store: Store,
    *,
    actor: str,
    event: str,
    request_id: str | None = None,
    platform: str | None = None,
    device_id: str | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    detail: dict[str, Any] | None = None,
) -> int:
    """Append one event (joins the caller's transaction if there is one); returns its seq."""
    with store.transaction() as db:
        row = db.conn.execute("SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
        prev_hash = row[0] if row else GENESIS
        content: dict[str, Any] = {
            "at": utcnow(),
            "actor": actor,
            "event": event,
            "request_id": request_id,
            "platform": platform,
            "device_id": device_id,
            "from_state": from_state,
            "to_state": to_state,
            "detail": json.dumps(detail or {}, sort_keys=True, separators=(",", ":")),
        }
        content["prev_hash"] = prev_hash
        content["hash"] = _digest(prev_hash, content)
        cursor = db.conn.execute(
            "INSERT INTO audit_events(at, actor, event, request_id, platform, device_id, from_state,"
            " to_state, detail, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [content[k] for k in FIELDS[1:]],
        )
        return int(cursor.lastrowid or 0)


def events(
    store: Store,
    *,
    since: str | None = None,
    device_ids: list[str] | None = None,
    request_id: str | None = None,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[dict[str, Any]]:
    """Events as dicts (detail decoded), filtered."""
    where, args = [], []  # type: ignore[var-annotated]
    if since:
        where.append("at >= ?")
        args.append(since)
    if device_ids:
        where.append(f"device_id IN ({','.join('?' * len(device_ids))})")
        args.extend(device_ids)
    if request_id:
        where.append("request_id = ?")
        args.append(request_id)
    sql = "SELECT * FROM audit_events"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY seq" + (" DESC" if newest_first else "")
    if limit:
        sql += f" LIMIT {int(limit)}"
    rows = list(store.db().query(sql, args))
    for row in rows:
        row["detail"] = json.loads(row["detail"] or "{}")
    return rows


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    problem: str | None = None


def verify(store: Store) -> Verification:
    """Walk the chain; the first broken link is reported with its seq."""
    prev_hash = GENESIS
    expected_seq = None
    checked = 0
    for row in store.db().query("SELECT * FROM audit_events ORDER BY seq"):
        if expected_seq is not None and row["seq"] != expected_seq:
            return Verification(
                False, checked, f"event {expected_seq} is missing (next is {row['seq']})"
            )
        if row["prev_hash"] != prev_hash:
            return Verification(
                False, checked, f"event {row['seq']} does not follow the event before it"
            )
        if _digest(prev_hash, row) != row["hash"]:
            return Verification(False, checked, f"event {row['seq']} was altered")
        prev_hash = row["hash"]
        expected_seq = row["seq"] + 1
        checked += 1
    last = (
        store.db()
        .conn.execute("SELECT seq FROM sqlite_sequence WHERE name='audit_events'")
        .fetchone()
    )
    if last and expected_seq is not None and last[0] >= expected_seq:
        return Verification(False, checked, f"events after {expected_seq - 1} are missing")
    if last and expected_seq is None and last[0] > 0:
        return Verification(False, checked, "every event is missing")
    return Verification(True, checked)


def export(store: Store, *, since: str | None = None, fmt: str = "jsonl") -> Iterator[str]:
    """Yield the log as CSV or JSON lines, chain fields included, for compliance."""
    rows = events(store, since=since)
    if fmt == "jsonl":
        for row in rows:
            yield json.dumps(row, sort_keys=True) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(FIELDS))
    writer.writeheader()
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(
            {**row, "detail": json.dumps(row["detail"], sort_keys=True, separators=(",", ":"))}
        )
        yield buffer.getvalue()


def parse_export(text: str, fmt: str = "jsonl") -> list[dict[str, Any]]:
    """Read an export back (round-trip tests, offline checks)."""
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    rows: list[dict[str, Any]] = []
    for row in csv.DictReader(io.StringIO(text)):
        parsed: dict[str, Any] = {k: (v if v != "" else None) for k, v in row.items()}
        parsed["seq"] = int(row["seq"])
        parsed["detail"] = json.loads(row["detail"] or "{}")
        rows.append(parsed)
    return rows
