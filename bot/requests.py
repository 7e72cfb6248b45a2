"""The requests table: the only code that reads or writes it, and the transitions between
a request's states (`bot/request_model.py` says what a request and its states are).

Every transition is a conditional write (`UPDATE … WHERE state = <from>`) inside a
write-locked transaction together with its audit event; the row count decides who won,
so two approvers clicking at once, a re-delivered click or a second process can never
run a request twice. What other modules need from the table (lists, counts, look-ups)
is asked through the named functions at the end.
"""

from __future__ import annotations

import json
import logging
import secrets
from functools import partial
from typing import TYPE_CHECKING, Any

from bot import audit, catalog
from bot.blocks import esc
from bot.changes import RequestChanged
from bot.errors import Conflict, NotFound
from bot.request_model import (  # the names callers know as requests.*
    FINAL,
    OPEN,
    NewRequest,
    Request,
    RequestState,
    fingerprint,
)
from bot.store import IntegrityErrors

if TYPE_CHECKING:  # annotations only: the metrics that Services holds read this table
    from bot.services import Services
    from bot.store import Store

log = logging.getLogger(__name__)


BOT = "device-bot"


def load(svc: Services, request_id: str) -> Request:
    row = svc.store.db().execute("SELECT * FROM requests WHERE id = ?", [request_id]).fetchone()
    if row is None:
        raise NotFound(f"There is no request `{esc(request_id[:40])}`.")
    cols = [c[0] for c in svc.store.db().execute("SELECT * FROM requests LIMIT 0").description]
    r = dict(zip(cols, row, strict=True))
    return Request(
        id=r["id"],
        action=r["action"],
        platform=r["platform"],
        device_ids=json.loads(r["device_ids"]),
        devices=json.loads(r["devices"]),
        params=json.loads(r["params"]),
        fingerprint=r["fingerprint"],
        reason=r["reason"],
        requester=r["requester"],
        state=RequestState(r["state"]),
        needs_approval=bool(r["needs_approval"]),
        created_at=r["created_at"],
        expires_at=r["expires_at"],
        decided_by=r["decided_by"],
        decision_note=r["decision_note"],
        requester_channel=r["requester_channel"],
        requester_ts=r["requester_ts"],
        approval_channel=r["approval_channel"],
        approval_ts=r["approval_ts"],
        google_ref=r["google_ref"],
        executor=r["executor"],
        executing_at=r["executing_at"],
        reconcile=bool(r["reconcile"]),
        result=json.loads(r["result"] or "{}"),
        has_secret=r["secret"] is not None or r.get("secret_holder") is not None,
        secret_holder=r.get("secret_holder"),
    )


def transition(
    svc: Services,
    request_id: str,
    from_states: tuple[RequestState, ...],
    to_state: RequestState,
    actor: str,
    *,
    detail: dict[str, Any] | None = None,
    set_: dict[str, Any] | None = None,
) -> bool:
    """Move a request from one of `from_states` to `to_state` if nobody else did first.

    The conditional UPDATE and the audit event commit together; False means another
    click, process or job won, and nothing was changed.
    """
    now = svc.clock()
    columns = {"state": to_state, "updated_at": now, **(set_ or {})}
    if to_state in FINAL:
        columns["secret"] = None  # a secret never outlives its request
        columns["secret_holder"] = None
    assignments = ", ".join(f"{c} = ?" for c in columns)
    marks = ",".join("?" * len(from_states))
    with svc.store.transaction() as db:
        row = db.execute(
            f"SELECT state, platform, device_ids, action, secret IS NOT NULL FROM requests"
            f" WHERE id = ? AND state IN ({marks})",
            [request_id, *from_states],
        ).fetchone()
        if row is None:
            return False
        db.execute(
            f"UPDATE requests SET {assignments} WHERE id = ? AND state = ?",
            [*columns.values(), request_id, row[0]],
        )
        device_ids = json.loads(row[2])
        audit.record(
            svc.store,
            actor=actor,
            event=to_state,
            request_id=request_id,
            platform=row[1],
            device_id=device_ids[0] if len(device_ids) == 1 else None,
            from_state=row[0],
            to_state=to_state,
            detail={**(detail or {}), **({"devices": device_ids} if len(device_ids) > 1 else {})},
            anchor=catalog.action_for(row[3], row[1]).destructive,
        )
    svc.store.after_commit(lambda: svc.changed(RequestChanged(request_id, to_state)))
    if to_state in FINAL:
        svc.secrets.forget(request_id)
        if row[4] and not svc.store.erase_freed():
            svc.store.db().execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('erase_pending', '1')"
            )
            log.warning(
                "request %s: readers kept the -wal busy; its erasure is retried", request_id
            )
    return True


ID_ATTEMPTS = 5


def new_request_id() -> str:
    """48 random bits ("R" + 12 hex digits): a collision is rare, and retried when it happens."""
    return "R" + secrets.token_hex(6).upper()


def set_columns(svc: Services, request_id: str, **columns: Any) -> None:
    """Store Slack bookkeeping (message ts, refs) — not a state change, so no audit event."""
    assignments = ", ".join(f"{c} = ?" for c in columns)
    with svc.store.transaction() as db:
        db.execute(
            f"UPDATE requests SET {assignments} WHERE id = ?", [*columns.values(), request_id]
        )


def create(svc: Services, new: NewRequest, *, needs_approval: bool) -> str:
    """Record a new request (pending, or approved when it needs no approval) with its
    `requested` audit event and its sealed secret, under a fresh id; returns the id."""
    needs = needs_approval
    spec = catalog.action_for(new.action, new.platform)
    device_ids = [d.id for d in new.devices]
    now = svc.clock()
    owner = svc.owner
    for attempt in range(ID_ATTEMPTS):
        request_id = new_request_id()
        with svc.store.transaction() as db:
            try:
                db.execute(
                    "INSERT INTO requests(id, action, platform, device_ids, devices, params, fingerprint,"
                    " reason, requester, state, needs_approval, created_at, updated_at, expires_at,"
                    " requester_channel, approval_channel, executor) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [
                        request_id,
                        new.action,
                        new.platform,
                        json.dumps(device_ids),
                        json.dumps([d.summary() for d in new.devices]),
                        json.dumps(new.params, sort_keys=True),
                        fingerprint(new.action, new.platform, device_ids, new.params),
                        new.reason,
                        new.requester,
                        RequestState.PENDING if needs else RequestState.APPROVED,
                        int(needs),
                        now,
                        now,
                        now + svc.settings.approval_ttl if needs else None,
                        new.channel,
                        svc.settings.approval_channel if needs else None,
                        None if needs else owner,
                    ],
                )
            except IntegrityErrors:  # the id is taken: nothing written, draw another
                log.warning(
                    "request id %s is taken (attempt %d); drawing another", request_id, attempt + 1
                )
                continue
            try:
                if new.secret:  # only now that the row is ours: never onto another request
                    sealed = svc.secrets.seal(request_id, new.secret)
                    db.execute(
                        "UPDATE requests SET secret = ?, secret_holder = ? WHERE id = ?",
                        [sealed, owner if sealed is None else None, request_id],
                    )
                audit.record(
                    svc.store,
                    actor=new.requester,
                    event="requested",
                    request_id=request_id,
                    platform=new.platform,
                    device_id=device_ids[0] if len(device_ids) == 1 else None,
                    to_state=RequestState.PENDING if needs else RequestState.APPROVED,
                    detail={
                        "action": new.action,
                        "params": new.params,
                        "reason": new.reason,
                        "needs_approval": needs,
                        **({"devices": device_ids} if len(device_ids) > 1 else {}),
                    },
                    anchor=spec.destructive,
                )
            except BaseException:
                svc.secrets.forget(request_id)  # the row is rolled back: so is the secret
                raise
        made = RequestChanged(request_id, RequestState.PENDING if needs else RequestState.APPROVED)
        svc.store.after_commit(partial(svc.changed, made))
        return request_id
    raise Conflict("Could not give the request an id; try again.")


def mark_sent(svc: Services, request_id: str, google_ref: str) -> None:
    """The command of the request is at Google under `google_ref` (in the caller's
    transaction, with the pending command that follows it)."""
    svc.store.db().execute(
        "UPDATE requests SET google_ref = ?, reconcile = 0 WHERE id = ?",
        [google_ref, request_id],
    )


def sealed_secret(svc: Services, request_id: str) -> Any:
    """The request's secret as stored (sealed), or None."""
    row = (
        svc.store.db().execute("SELECT secret FROM requests WHERE id = ?", [request_id]).fetchone()
    )
    return row[0] if row else None


# ---- lists and counts other modules ask for ------------------------------------------------


def due_reminders(svc: Services, created_before: float) -> list[str]:
    """Pending requests with an approval message, made before `created_before`, whose
    approvers were not reminded yet."""
    rows = (
        svc.store.db()
        .execute(
            "SELECT id FROM requests WHERE state = ? AND approval_ts IS NOT NULL AND created_at <= ?"
            " AND id NOT IN (SELECT request_id FROM audit_events WHERE event = 'reminded'"
            " AND request_id IS NOT NULL)",
            [RequestState.PENDING, created_before],
        )
        .fetchall()
    )
    return [row[0] for row in rows]


def past_ttl(svc: Services, now: float) -> list[str]:
    """Pending requests whose approval time ran out."""
    rows = (
        svc.store.db()
        .execute(
            "SELECT id FROM requests WHERE state = ? AND expires_at < ?",
            [RequestState.PENDING, now],
        )
        .fetchall()
    )
    return [row[0] for row in rows]


def held_here(svc: Services, owner: str, decided_before: float) -> list[str]:
    """Approved requests whose secret only `owner`'s memory holds, decided before then."""
    rows = (
        svc.store.db()
        .execute(
            "SELECT id FROM requests WHERE state = ? AND secret_holder = ? AND executor = ?"
            " AND decided_at < ?",  # one approved here runs at once; leave it to that thread
            [RequestState.APPROVED, owner, owner, decided_before],
        )
        .fetchall()
    )
    return [row[0] for row in rows]


def unfinished(svc: Services) -> list[tuple[str, str, str | None, int, str | None]]:
    """(id, state, executor, reconcile, google_ref) of every approved or executing request."""
    rows = (
        svc.store.db()
        .execute(
            "SELECT id, state, executor, reconcile, google_ref FROM requests WHERE state IN (?, ?)",
            [RequestState.APPROVED, RequestState.EXECUTING],
        )
        .fetchall()
    )
    return [tuple(row) for row in rows]


def bulk_waiting(svc: Services) -> list[str]:
    """Executing bulk Android requests that wait on their devices' commands."""
    rows = (
        svc.store.db()
        .execute(
            "SELECT id FROM requests WHERE state = ? AND platform = 'android'"
            " AND result LIKE '%\"waiting\": true%'",
            [RequestState.EXECUTING],
        )
        .fetchall()
    )
    return [row[0] for row in rows]


def not_yet_running(svc: Services) -> list[dict[str, Any]]:
    """The devices of every pending or approved request (id, device_ids, devices, created_at)."""
    return list(
        svc.store.db().query(
            "SELECT id, device_ids, devices, created_at FROM requests WHERE state IN (?, ?)",
            [RequestState.PENDING, RequestState.APPROVED],
        )
    )


def ended_with_open_step(svc: Services, step_state: str) -> list[str]:
    """Requests that ended while their Workflow Builder step is still in `step_state`."""
    rows = (
        svc.store.db()
        .execute(
            "SELECT s.request_id FROM workflow_steps s JOIN requests r ON r.id = s.request_id"
            f" WHERE s.state = ? AND r.state IN ({','.join('?' * len(FINAL))})",
            [step_state, *FINAL],
        )
        .fetchall()
    )
    return [row[0] for row in rows]


def pending(svc: Services, requester: str | None, limit: int) -> tuple[list[dict[str, Any]], int]:
    """The oldest `limit` pending requests (of `requester`, or everyone's), and how many in all."""
    where, args = "state = 'pending'", []
    if requester is not None:
        where += " AND requester = ?"
        args.append(requester)
    db = svc.store.db()
    total = db.execute(f"SELECT count(*) FROM requests WHERE {where}", args).fetchone()[0]
    rows = list(
        db.query(
            f"SELECT * FROM requests WHERE {where} ORDER BY created_at LIMIT {limit}",
            args,
        )
    )
    return rows, total


def open_of(svc: Services, user: str, limit: int) -> tuple[list[dict[str, Any]], int]:
    """`user`'s newest `limit` open requests, and how many they have open."""
    db = svc.store.db()
    marks = ",".join("?" * len(OPEN))
    mine = list(
        db.query(
            f"SELECT * FROM requests WHERE requester = ? AND state IN ({marks})"
            f" ORDER BY created_at DESC LIMIT {limit}",
            [user, *OPEN],
        )
    )
    mine_total = db.execute(
        f"SELECT count(*) FROM requests WHERE requester = ? AND state IN ({marks})",
        [user, *OPEN],
    ).fetchone()[0]
    return mine, mine_total


def waiting_for(svc: Services, user: str, limit: int) -> tuple[list[dict[str, Any]], int]:
    """The oldest `limit` pending requests `user` may decide (not their own), and how many."""
    db = svc.store.db()
    waiting = list(
        db.query(
            "SELECT * FROM requests WHERE state = 'pending' AND requester != ?"
            f" ORDER BY created_at LIMIT {limit}",
            [user],
        )
    )
    waiting_total = db.execute(
        "SELECT count(*) FROM requests WHERE state = 'pending' AND requester != ?", [user]
    ).fetchone()[0]
    return waiting, waiting_total


def count_open(svc: Services) -> int:
    """How many requests are waiting, approved or running."""
    return int(
        svc.store.db()
        .execute(
            "SELECT count(*) FROM requests WHERE state IN ('pending', 'approved', 'executing')"
        )
        .fetchone()[0]
    )


def count_by_state(store: Store) -> list[tuple[str, int]]:
    """(state, how many) for every state that has requests."""
    return [
        (state, count)
        for state, count in store.db()
        .execute("SELECT state, COUNT(*) FROM requests GROUP BY state")
        .fetchall()
    ]


def people(svc: Services, request_id: str) -> tuple[str | None, ...]:
    """Who asked for the request and who decided it (empty when there is no such request)."""
    row = (
        svc.store.db()
        .execute("SELECT requester, decided_by FROM requests WHERE id = ?", [request_id])
        .fetchone()
    )
    return tuple(row or ())


def remembered_device(svc: Services, ref: str) -> tuple[Any, ...] | None:
    """(device id, serial, platform) of the newest request that named a device by this
    serial or id, or None."""
    row = (
        svc.store.db()
        .execute(
            "SELECT json_extract(j.value, '$.id'), json_extract(j.value, '$.serial'), r.platform"
            " FROM requests r, json_each(r.devices) j"
            " WHERE upper(json_extract(j.value, '$.serial')) = upper(?)"
            " OR json_extract(j.value, '$.id') = ? OR json_extract(j.value, '$.id') LIKE ?"
            " ORDER BY r.created_at DESC LIMIT 1",
            [ref, ref, "%/" + ref],
        )
        .fetchone()
    )
    return tuple(row) if row is not None else None


def naming_device(svc: Services, device_id: str) -> list[dict[str, Any]]:
    """Every request that named the device (its raw row, secret column included)."""
    return list(
        svc.store.db().query(
            # instr() first: a cheap text test that spares json_each on almost every row
            "SELECT r.* FROM requests r WHERE instr(r.device_ids, ?) > 0 AND EXISTS"
            " (SELECT 1 FROM json_each(r.device_ids) j WHERE j.value = ?)",
            [json.dumps(device_id), device_id],
        )
    )
