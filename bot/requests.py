"""A request: its record, its states, and the only code that changes them.

    pending ─approve─▶ approved ─▶ executing ─▶ succeeded | failed | expired
       ├─deny──▶ denied
       ├─cancel─▶ cancelled
       └─ttl───▶ expired

Every transition is a conditional write (`UPDATE … WHERE state = <from>`) inside a
write-locked transaction together with its audit event; the row count decides who won,
so two approvers clicking at once, a re-delivered click or a second process can never
run a request twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot import audit, catalog
from bot.blocks import esc
from bot.devices import Device
from bot.errors import (
    NotFound,
)
from bot.services import Services

log = logging.getLogger(__name__)


class RequestState(StrEnum):
    """Where a request is in its life; the value is the text the requests table stores."""

    PENDING = "pending"
    APPROVED = "approved"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    DENIED = "denied"
    CANCELLED = "cancelled"


#: the states a request never leaves
FINAL = frozenset(
    {
        RequestState.SUCCEEDED,
        RequestState.FAILED,
        RequestState.EXPIRED,
        RequestState.DENIED,
        RequestState.CANCELLED,
    }
)
#: the states of a request still under way (waiting, approved, or running)
OPEN = (RequestState.PENDING, RequestState.APPROVED, RequestState.EXECUTING)

BOT = "device-bot"


@dataclass(frozen=True)
class NewRequest:
    """What an operator asked for, validated, ready to become a request."""

    action: str  # catalog name, e.g. "wipe"
    platform: str  # "chrome" | "android"
    devices: tuple[Device, ...]
    params: dict[str, Any]  # validated, never a secret
    requester: str  # Slack user id
    reason: str = ""
    secret: dict[str, Any] | None = (
        None  # e.g. {"new_password": "…"}: sealed, never stored in plaintext
    )
    channel: str | None = None  # where the requester asked (their thread is posted there)
    response_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """A row of the requests table."""

    id: str
    action: str
    platform: str
    device_ids: list[str]
    devices: list[dict[str, Any]]
    params: dict[str, Any]
    fingerprint: str
    reason: str
    requester: str
    state: RequestState
    needs_approval: bool
    created_at: float
    expires_at: float | None
    decided_by: str | None
    decision_note: str | None
    requester_channel: str | None
    requester_ts: str | None
    approval_channel: str | None
    approval_ts: str | None
    google_ref: str | None
    executor: str | None
    executing_at: float | None
    reconcile: bool
    result: dict[str, Any]
    has_secret: bool
    secret_holder: str | None = None  # the process whose memory holds the secret (no key)

    @property
    def spec(self) -> catalog.ActionSpec:
        return catalog.action_for(self.action, self.platform)

    @property
    def target(self) -> str:
        """The devices in words: serials (and users)."""
        labels = [f"{d.get('serial') or d['id'].rsplit('/', 1)[-1]}" for d in self.devices]
        if len(labels) > 3:
            return ", ".join(labels[:3]) + f" and {len(labels) - 3} more"
        return ", ".join(labels)


def fingerprint(action: str, platform: str, device_ids: list[str], params: dict[str, Any]) -> str:
    """Binds an approval to exactly this command: action, targets and parameters."""
    canonical = json.dumps(
        [action, platform, sorted(device_ids), params], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


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
    svc.store.after_commit(lambda: svc.notify("request", request_id=request_id, state=to_state))
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
