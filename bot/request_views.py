"""Block Kit for requests: the approval message, the requester's message, thread notes, deny modal."""

from __future__ import annotations

import json
import time
from typing import Any

from bot import annotation, ids
from bot.blocks import (
    actions,
    button,
    confirm_dialog,
    context,
    esc,
    fit,
    header,
    mention,
    plain,
    section,
)
from bot.cards.words import asks, option_words
from bot.dates import when
from bot.requests import Request, RequestState

STATE_WORDS = {
    RequestState.PENDING: ":hourglass_flowing_sand: Waiting for approval",
    RequestState.APPROVED: ":white_check_mark: Approved",
    RequestState.EXECUTING: ":gear: Running",
    RequestState.SUCCEEDED: ":white_check_mark: Done",
    RequestState.FAILED: ":x: Failed",
    RequestState.EXPIRED: ":alarm_clock: Expired",
    RequestState.DENIED: ":no_entry: Denied",
    RequestState.CANCELLED: ":heavy_multiplication_x: Cancelled",
}

APPROVAL_PROMISE = "Approving runs exactly this; any change needs a new request."


def hours_left(expires_at: float, now: float) -> str:
    """`expires in 23 h`, `expires in 40 min`, `expired`."""
    left = expires_at - now
    if left <= 0:
        return "expired"
    if left >= 5400:
        return f"expires in {round(left / 3600)} h"
    return f"expires in {max(1, round(left / 60))} min"


def _bulk_text(request: Request) -> str:
    """A bulk request: what the requester's preview said (rows read, acted on, left out)."""
    bulk = request.params.get("bulk") or {}
    count = len(request.device_ids)
    left: dict[str, int] = bulk.get("left_out") or {}
    line = (
        f"*Bulk:* {count} devices from {bulk.get('rows', count)} rows;"
        f" {bulk.get('skipped', 0)} rows left out"
        + (" (" + ", ".join(f"{n} {esc(k)}" for k, n in left.items()) + ")" if left else "")
        + ", never acted on; the CSV in this thread lists every row and why."
    )
    cap = bulk.get("cap")
    if cap is not None and count > int(cap):
        line += (
            f"\n:rotating_light: *Above the cap:* `{esc(request.action)}` may touch {cap} device(s)"
            f" on a plain approval; approving this batch raises it to {count} for this request only."
        )
    return line


def _params_text(request: Request) -> str:
    if request.params.get("bulk"):
        params = {k: v for k, v in request.params.items() if k not in ("bulk", "rows")}
        if request.spec.kind == "patch":
            params = {"annotations": "per device, from the CSV (see the list in this thread)"}
        return "\n".join(
            f"• {esc(k)}: `{esc(json.dumps(v) if not isinstance(v, str) else v)}`"
            for k, v in params.items()
        )
    if request.spec.kind == "patch":  # annotate: each changed field as old → new
        labels = {f.name: f.label for f in request.spec.fields}
        return "\n".join(
            f"• {esc(line)}" for line in annotation.change_lines(request.params, labels)
        )
    fields = {f.name: f for f in request.spec.fields}
    params = dict(request.params)
    cleared = params.pop("clear_password", False)
    lines = []
    for name, value in params.items():
        field = fields.get(name)
        if field is None:
            shown = value if isinstance(value, str) else json.dumps(value)
            lines.append(f"• {esc(name)}: {esc(shown)}")
        else:
            lines.append(f"• *{esc(field.label)}:* {esc(option_words(field, value))}")
    if request.spec.secret_fields():
        if cleared:
            done = request.state == RequestState.SUCCEEDED
            password = "none: the password " + ("was cleared" if done else "will be cleared")
        elif request.has_secret or request.state == RequestState.PENDING:
            password = "set, never shown"
        else:
            password = "erased"
        lines.append(f"• *New password:* {password}")
    return "\n".join(lines)


def _devices_text(request: Request) -> str:
    lines = []
    for d in request.devices[:10]:
        name = d.get("serial") or str(d["id"]).rsplit("/", 1)[-1]
        lines.append(
            f"• *{esc(name)}* {esc(d.get('model'))} · {esc(d.get('user'))} · {esc(d.get('org_unit'))}"
            f" · {esc(str(d.get('status') or '').lower())} · last seen {when(d.get('last_seen'))}"
        )
    if len(request.devices) > 10:
        lines.append(f"…and {len(request.devices) - 10} more")
    return "\n".join(lines)


def reason_line(request: Request) -> str:
    """The requester's reason (ticket, what happened), or a dash."""
    return f"*Reason:* {esc(request.reason)}" if request.reason else "*Reason:* —"


def _state_line(request: Request) -> str:
    line = STATE_WORDS.get(request.state, request.state)
    decider = f"<@{request.decided_by}>" if request.decided_by else ""
    if decider and request.state == RequestState.DENIED:
        line += f" by {decider}"
        if request.decision_note:
            line += f": {esc(request.decision_note)}"
    elif decider and request.state in (RequestState.APPROVED, RequestState.EXECUTING):
        line += (
            f" · approved by {decider}"
            if request.state == RequestState.EXECUTING
            else f" by {decider}"
        )
    elif decider and request.state in (RequestState.SUCCEEDED, RequestState.FAILED):
        line += f" · approved by {decider}"
    elif decider and request.state == RequestState.CANCELLED:
        line += f" by {decider}"
    # the outcome itself is said once, as a reply in the thread (with any file), not here too
    if request.state == RequestState.EXPIRED and not request.result.get("text"):
        line += ": nobody approved it in time. Nothing was done."
    return line


def approval_message(
    request: Request, *, now: float | None = None, requester_link: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The message in the approvals channel: who asks what, why, on which device, until when."""
    spec = request.spec
    now = time.time() if now is None else now
    title = f"{spec.label} requested for {esc(request.target)}"
    what = asks(spec.name, spec.label, len(request.devices))
    asked = f"<@{request.requester}> asked to *{esc(what)}*"
    asked += f" · {when(request.created_at)}"
    if requester_link:
        asked += f" · <{requester_link}|their thread>"
    body = [
        header(clip_header(f"{spec.label}: {request.target}")),
        section(f"{asked}\n{reason_line(request)}"),
        section("*Device*\n" + _devices_text(request)),
    ]
    if request.params.get("bulk"):
        body.append(section(_bulk_text(request)))
    params = _params_text(request)
    if params:
        body.append(section("*Details*\n" + params))
    facts = [APPROVAL_PROMISE, f"Request `{request.id}`"]
    if request.state == RequestState.PENDING and request.expires_at:
        facts.append(f"{hours_left(request.expires_at, now)} ({when(request.expires_at)})")
    body.append(context(" · ".join(facts)))
    body.append(section(_state_line(request)))
    if request.state == RequestState.PENDING:
        body.append(
            actions(
                [
                    _approve_button(request),
                    button("Deny", ids.ActionId.DENY, request.id, style="danger"),
                ],
                block_id="decision",
            )
        )
    return title, fit(body)


def _approve_button(request: Request) -> dict[str, Any]:
    """Approve; for a bulk batch above its cap, only the explicit raise “Approve all N”."""
    spec = request.spec
    bulk = request.params.get("bulk") or {}
    count = len(request.device_ids)
    cap = bulk.get("cap")
    if cap is not None and count > int(cap):
        return button(
            f"Approve all {count} (above the cap)",
            ids.ActionId.APPROVE_ABOVE_CAP,
            request.id,
            style="danger",
            confirm=confirm_dialog(
                f"Approve all {count}?",
                f"{spec.label} {count} devices for <@{request.requester}>. The cap for"
                f" {esc(spec.name)} is {cap}: this raises it for this request only.",
                f"Approve all {count}",
                danger=True,
            ),
        )
    return button(
        "Approve",
        ids.ActionId.APPROVE,
        request.id,
        style="primary",
        confirm=confirm_dialog(
            "Approve?",
            f"{spec.label} {esc(request.target)} for <@{request.requester}>.",
            "Approve",
            danger=spec.destructive,
        ),
    )


def requester_message(request: Request) -> tuple[str, list[dict[str, Any]]]:
    """The requester's message (their thread) with the live state and the reason."""
    spec = request.spec
    text = f"{spec.label} {esc(request.target)}: {request.state}"
    what = asks(spec.name, spec.label, len(request.devices))
    body = [
        section(
            f"<@{request.requester}> asked to *{esc(what)}*:"
            f" {esc(request.target)} (request `{request.id}`)\n{reason_line(request)}"
        ),
        section(_state_line(request)),
    ]
    if request.state == RequestState.PENDING:
        body.append(actions([button("Cancel request", ids.ActionId.CANCEL_REQUEST, request.id)]))
    elif request.state == RequestState.EXPIRED and not request.spec.secret_fields():
        body.append(actions([request_again_button(request)]))
    return text, body


def request_again_button(request: Request) -> dict[str, Any]:
    """On an expired request: *Re-issue* a command that expired on the device, *Request again*
    one that expired before anyone approved it (the same action, devices and details, asked anew)."""
    if request.google_ref is not None:
        return button("Re-issue", ids.ActionId.REISSUE, request.id)
    return button("Request again", ids.ActionId.REQUEST_AGAIN, request.id, style="primary")


def thread_note(request: Request, text: str, *, reissue: bool = False) -> list[dict[str, Any]]:
    """A reply in a request's thread; an expired request offers *Request again*."""
    blocks = [section(text)]
    if reissue and not request.spec.secret_fields():
        blocks.append(actions([request_again_button(request)]))
    return blocks


def reminder_text(request: Request, approvers: list[str], now: float) -> str:
    """The half-time nudge in the approval thread, mentioning who can approve."""
    who = " ".join(mention(a) for a in approvers) or "Approvers"
    left = hours_left(request.expires_at or now, now)
    return (
        f"{who}: request `{request.id}` from <@{request.requester}> is still waiting"
        f" ({left}). Approve or deny it above."
    )


def deny_modal(request: Request) -> dict[str, Any]:
    """Deny asks for an optional reason."""
    return {
        "type": "modal",
        "callback_id": ids.CallbackId.DENY,
        "private_metadata": request.id,
        "title": plain("Deny request", 24),
        "submit": plain("Deny", 24),
        "close": plain("Back", 24),
        "blocks": [
            section(
                f"Deny *{esc(request.spec.label)}* on {esc(request.target)} for <@{request.requester}>?"
            ),
            {
                "type": "input",
                "block_id": ids.BlockId.DENY_REASON,
                "optional": True,
                "label": plain("Reason"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": ids.BlockId.DENY_REASON,
                    "multiline": True,
                    "max_length": 500,
                },
            },
        ],
    }


def clip_header(text: str) -> str:
    return text if len(text) <= 150 else text[:149] + "…"
