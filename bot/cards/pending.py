"""`/device requests`: the pending requests, one line each."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.blocks import Block, clip, context, divider, esc, fit, header, section, sections_of, who
from bot.catalog import action_for
from bot.dates import when
from bot.errors import ValidationError

REQUESTS_LIMIT = 30


def _targets(devices_json: str | None) -> str:
    try:
        devices = json.loads(devices_json or "[]")
    except ValueError:
        devices = []
    labels = []
    for d in devices[:3]:
        if isinstance(d, dict):
            name = d.get("serial") or str(d.get("id", "?")).rsplit("/", 1)[-1]
            labels.append(f"*{esc(name)}*" + (f" ({esc(d['user'])})" if d.get("user") else ""))
    more = f" and {len(devices) - 3} more" if len(devices) > 3 else ""
    return (", ".join(labels) or "—") + more


def _action_label(row: dict[str, Any]) -> str:
    """A request's action by its label ("Reset password"), its name if the catalog lacks it."""
    try:
        return action_for(str(row.get("action")), str(row.get("platform"))).label
    except ValidationError:
        return str(row.get("action"))


def request_line(row: dict[str, Any]) -> str:
    """One pending request: id, action, targets, requester, age, expiry, reason."""
    parts = [
        f"`{esc(row.get('id'))}`",
        f"*{esc(_action_label(row))}* on {_targets(row.get('devices'))}",
        f"by {who(row.get('requester'))}",
        f"asked {when(row.get('created_at'))}",
    ]
    if row.get("expires_at"):
        parts.append(f"expires {when(row['expires_at'])}")
    line = " · ".join(parts)
    if row.get("reason"):
        line += "\n_Reason:_ " + esc(clip(str(row["reason"]), 300)).replace("\n", " ")
    return line


def requests_list(
    rows: Sequence[dict[str, Any]], *, everyone: bool, total: int | None = None
) -> list[Block]:
    """Pending requests: an approver sees everyone's, an operator their own."""
    total = len(rows) if total is None else total
    whose = "All pending requests" if everyone else "Your pending requests"
    out: list[Block] = [header(whose)]
    if not rows:
        out.append(
            section(
                "Nothing is waiting for approval." if everyone else "You have no pending request."
            )
        )
        return out
    shown = rows[:REQUESTS_LIMIT]
    out += sections_of(request_line(r) for r in shown)
    if total > len(shown):
        out.append(context(f"Showing the oldest {len(shown)} of {total}."))
    if everyone:
        out.append(divider())
        out.append(context("Approve or deny from the request's message in the approvals channel."))
    return fit(out)
