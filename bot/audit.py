"""The append-only, keyed, hash-chained audit log, anchored outside the database.

Each event stores the MAC of the previous event and an HMAC-SHA256 over its own content
and that previous MAC. The key lives outside the database (AUDIT_KEY, or a generated key
file beside it), so whoever can write the database cannot re-chain edited, forged or
re-ordered events. The chain's head (sequence and MAC) is appended, itself MACed, to an
anchor file outside the database at intervals and after every event of a destructive
request: a deleted tail is caught even when `sqlite_sequence` was fixed as well.
`verify()` walks the chain with the key and checks it against the anchors. The database
also refuses UPDATE and DELETE on the table (triggers).

Events written before the chain was keyed (schema 1) keep their unkeyed SHA-256 links;
the point where they end is sealed with the key (`meta.audit_legacy`).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.audit_key import Anchor, AuditKey, legacy_text
from bot.blocks import context, section
from bot.store import Store, utcnow

log = logging.getLogger(__name__)

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


# ---- the key ---------------------------------------------------------------------------


# ---- the chain --------------------------------------------------------------------------


def _canonical(prev_hash: str, content: dict[str, Any]) -> str:
    return json.dumps([prev_hash, [content.get(k) for k in _CONTENT]], separators=(",", ":"))


def _digest(prev_hash: str, content: dict[str, Any]) -> str:
    """The unkeyed link of events written before the chain was keyed."""
    return hashlib.sha256(_canonical(prev_hash, content).encode()).hexdigest()


def _mac(key: AuditKey, prev_hash: str, content: dict[str, Any]) -> str:
    return key.mac(_canonical(prev_hash, content))


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
    anchor: bool = False,
) -> int:
    """Append one event (joins the caller's transaction if there is one); returns its seq.

    `anchor`: once committed, the chain's head is anchored outside the database (for
    every event of a destructive request)."""
    key = store.audit_key
    if key is None:  # pragma: no cover - only a store opened for reading has no key
        raise RuntimeError("this store was opened without an audit key")
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
        content["hash"] = _mac(key, prev_hash, content)
        cursor = db.conn.execute(
            "INSERT INTO audit_events(at, actor, event, request_id, platform, device_id, from_state,"
            " to_state, detail, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [content[k] for k in FIELDS[1:]],
        )
        if anchor:
            store.after_commit(lambda: anchor_head(store))
        return int(cursor.lastrowid or 0)


# ---- anchors ----------------------------------------------------------------------------


def head(store: Store) -> tuple[int, str] | None:
    row = (
        store.db()
        .execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        .fetchone()
    )
    return (int(row[0]), str(row[1])) if row else None


def anchor_head(store: Store, *, force: bool = False) -> Anchor | None:
    """Append the chain's head to the anchor file (and tell the anchor listeners, e.g. the
    approval channel). Skipped when this process anchored the same head last; never raises:
    a failed anchor is logged, the audit event itself is already committed."""
    try:
        current = head(store)
        if current is None or (not force and store.last_anchor == current):
            return None
        key = store.audit_key
        assert key is not None
        at = utcnow()
        anchor = Anchor(current[0], current[1], at, key.mac(Anchor.text(*current, at)))
        path = store.anchor_file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (anchor.line() + "\n").encode())  # one write: lines never interleave
            os.fsync(fd)
        finally:
            os.close(fd)
        store.last_anchor = current
    except Exception:
        log.exception("could not anchor the audit chain's head")
        return None
    for listener in list(store.anchor_listeners):
        try:
            listener(anchor)
        except Exception:
            log.exception("an audit anchor listener failed")
    return anchor


class SlackAnchors:
    """Posts the chain's head into the approval channel's thread of the day: a second copy
    outside the database, which the people approving see. Posts are made off the request
    path, one at a time; when heads come faster, only the latest is posted."""

    def __init__(self, svc: Any, channel: str) -> None:
        self.svc = svc
        self.channel = channel
        self._lock = threading.Lock()
        self._pending: Anchor | None = None
        self._posting = False
        self._closed = False

    def close(self, timeout: float = 2.0) -> None:
        """Post nothing more (the anchor file has every anchor); wait briefly for a post
        under way, so none is left talking to Slack after the bot stopped."""
        with self._lock:
            self._closed = True
            self._pending = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._posting:
                    return
            time.sleep(0.01)

    def __call__(self, anchor: Anchor) -> None:
        with self._lock:
            if self._closed:
                return
            if self._pending is None or anchor.seq >= self._pending.seq:
                self._pending = anchor
            if self._posting:
                return
            self._posting = True
        try:
            self.svc.executor.submit(self._drain)
        except RuntimeError:  # shutting down: the file has the anchor
            with self._lock:
                self._posting = False

    def _drain(self) -> None:
        while True:
            with self._lock:
                anchor, self._pending = self._pending, None
                if anchor is None or self._closed:
                    self._posting = False
                    return
            try:
                self._post(anchor)
            except Exception:
                log.exception("could not post the audit anchor to %s", self.channel)

    def _post(self, anchor: Anchor) -> None:
        store, out = self.svc.store, self.svc.out
        day = anchor.at[:10]
        key = f"audit_anchor_thread:{day}"
        ts = store.meta(key)
        if ts is None:
            text, blocks = anchor_thread_message(day)
            posted = out.post(self.channel, text, blocks)
            store.meta_default(key, posted)  # another process may have started one first
            ts = store.meta(key)
        text, blocks = anchor_message(anchor)
        out.post(self.channel, text, blocks, thread_ts=ts)


def anchor_thread_message(day: str) -> tuple[str, list[dict[str, Any]]]:
    """The parent of a day's anchors."""
    text = f"Audit log anchors of {day}"
    return text, [
        section(f"*{text}*"),
        context(
            "The audit log's latest event and its MAC, kept outside the bot's database. If a"
            " later `python -m bot audit --verify` disagrees with these, the log was tampered with."
        ),
    ]


def anchor_message(anchor: Anchor) -> tuple[str, list[dict[str, Any]]]:
    text = f"Audit log head: event {anchor.seq}, MAC {anchor.hash}"
    return text, [
        section(f"Audit log head: event *{anchor.seq}*\n`{anchor.hash}`"),
        context(f"anchored {anchor.at} · anchor MAC `{anchor.mac}`"),
    ]


def anchor_job(svc: Any) -> None:
    """The interval job: anchor the head if it moved since the last anchor."""
    anchor_head(svc.store)


def read_anchors(path: Path, key: AuditKey) -> tuple[list[Anchor], str | None]:
    """The anchors in a file; a problem when a line is not one the key made."""
    anchors: list[Anchor] = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            anchor = Anchor(int(data["seq"]), str(data["hash"]), str(data["at"]), str(data["mac"]))
        except (ValueError, KeyError, TypeError):
            return anchors, f"line {number} of the anchor file {path} is not an anchor"
        expected = key.mac(Anchor.text(anchor.seq, anchor.hash, anchor.at))
        if not hmac.compare_digest(expected, anchor.mac):
            return anchors, f"line {number} of the anchor file {path} was not written with this key"
        anchors.append(anchor)
    return anchors, None


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
    anchors: int = 0  # anchors the chain was checked against
    note: str | None = None  # what was not checked, said to the operator


def _applied(store: Store, name: str) -> bool:
    return store.migration_applied(name)


def verify(
    store: Store,
    *,
    key: AuditKey | None = None,
    anchor_file: Path | None = None,
    anchors_required: bool = False,
) -> Verification:
    """Walk the chain with the key, then hold it against the anchors; the first problem
    found is reported with its seq."""
    key = key or store.audit_key
    if key is None:
        return Verification(False, 0, "no audit key to check the chain with")
    if "audit_events" not in store.db().table_names():
        return Verification(False, 0, "this is not a device-bot database (no audit_events)")
    stored_check = store.meta("audit_key_check")
    if stored_check is not None and not hmac.compare_digest(stored_check, key.check):
        return Verification(False, 0, "the audit key is not the one this log was written with")
    if _applied(store, "m002_keyed_audit_chain"):
        legacy_seq = 0
        legacy = store.meta("audit_legacy")
        if legacy is not None:
            try:
                boundary = json.loads(legacy)
                sealed = hmac.compare_digest(str(boundary["mac"]), key.mac(legacy_text(boundary)))
                legacy_seq = int(boundary["seq"])
            except (ValueError, KeyError, TypeError):
                sealed = False
            if not sealed:
                return Verification(
                    False, 0, "the record of where the unkeyed (pre-upgrade) events end was altered"
                )
    else:
        legacy_seq = 2**63  # a schema-1 file: every event has an unkeyed link
    path = anchor_file or store.anchor_file
    anchors: list[Anchor] = []
    note = None
    if path.exists():
        anchors, problem = read_anchors(path, key)
        if problem:
            return Verification(False, 0, problem)
    elif anchors_required:
        note = f"no anchor file at {path}: a deleted tail cannot be ruled out"
    anchored: dict[int, list[Anchor]] = {}
    for anchor in anchors:
        anchored.setdefault(anchor.seq, []).append(anchor)
    prev_hash = GENESIS
    expected_seq = None
    checked = 0
    for row in store.db().query("SELECT * FROM audit_events ORDER BY seq"):
        seq = row["seq"]
        if expected_seq is not None and seq != expected_seq:
            return Verification(False, checked, f"event {expected_seq} is missing (next is {seq})")
        if row["prev_hash"] != prev_hash:
            return Verification(False, checked, f"event {seq} does not follow the event before it")
        link = _digest(prev_hash, row) if seq <= legacy_seq else _mac(key, prev_hash, row)
        if not hmac.compare_digest(link, str(row["hash"])):
            return Verification(False, checked, f"event {seq} was altered")
        for anchor in anchored.get(seq, ()):
            if anchor.hash != row["hash"]:
                return Verification(
                    False, checked, f"event {seq} is not the one anchored at {anchor.at}"
                )
        prev_hash = row["hash"]
        expected_seq = seq + 1
        checked += 1
    last_seq = (expected_seq or 1) - 1
    beyond = [a for a in anchors if a.seq > last_seq]
    if beyond:
        latest = max(beyond, key=lambda a: a.seq)
        return Verification(
            False,
            checked,
            f"events after {last_seq} are missing: event {latest.seq} was anchored at {latest.at}",
        )
    sequence = store.audit_sequence()
    last = None if sequence is None else (sequence,)
    if last and expected_seq is not None and last[0] >= expected_seq:
        return Verification(False, checked, f"events after {expected_seq - 1} are missing")
    if last and expected_seq is None and last[0] > 0:
        return Verification(False, checked, "every event is missing")
    if note and checked:
        return Verification(False, checked, note, 0)
    if legacy_seq and checked:
        unkeyed = min(legacy_seq, last_seq)
        note = f"events 1–{unkeyed} predate the audit key and have unkeyed links"
    return Verification(True, checked, None, len(anchors), note)


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
