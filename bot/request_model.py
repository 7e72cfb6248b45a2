"""What a request is, without any I/O: its states, what an operator asked for, the record
as stored, and the fingerprint that binds an approval to exactly one command.

    pending ─approve─▶ approved ─▶ executing ─▶ succeeded | failed | expired
       ├─deny──▶ denied
       ├─cancel─▶ cancelled
       └─ttl───▶ expired

The requests table and the transitions between these states are in `bot/requests.py`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot import catalog
from bot.devices import Device


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
