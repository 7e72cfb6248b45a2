"""Block Kit for requests: the approval message, the requester's message, thread notes, deny modal."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bot import ids
from bot.blocks import actions, button, confirm_dialog, context, esc, fit, header, plain, section

if TYPE_CHECKING:
    from bot.approvals import Request

STATE_WORDS = {
    "pending": ":hourglass_flowing_sand: Waiting for approval",
    "approved": ":white_check_mark: Approved",
    "executing": ":gear: Running",
    "succeeded": ":white_check_mark: Done",
    "failed": ":x: Failed",
    "expired": ":alarm_clock: Expired",
    "denied": ":no_entry: Denied",
    "cancelled": ":heavy_multiplication_x: Cancelled",
}


def _params_text(request: Request) -> str:
    if request.spec.kind == "patch":  # annotate: each changed field as old → new
        from bot import annotation

        labels = {f.name: f.label for f in request.spec.fields}
        return "\n".join(
            f"• {esc(line)}" for line in annotation.change_lines(request.params, labels)
        )
    params = dict(request.params)
    if request.spec.secret_fields():
        if params.pop("clear_password", False):
            params["new password"] = (
                "none: the password was cleared"
                if request.state == "succeeded"
                else "none: the password will be cleared"
            )
        else:
            params["new password"] = (
                "(set, never shown)"
                if request.has_secret or request.state == "pending"
                else "(erased)"
            )
    if not params:
        return ""
    return "\n".join(
        f"• {esc(k)}: `{esc(json.dumps(v) if not isinstance(v, str) else v)}`"
        for k, v in params.items()
    )


def _devices_text(request: Request) -> str:
    lines = []
    for d in request.devices[:10]:
        lines.append(
            f"• `{esc(d.get('serial') or d['id'])}` {esc(d.get('model'))} — user {esc(d.get('user'))},"
            f" {esc(d.get('org_unit'))}, status {esc(d.get('status'))}, last seen {esc(d.get('last_seen'))}"
        )
    if len(request.devices) > 10:
        lines.append(f"…and {len(request.devices) - 10} more")
    return "\n".join(lines)


def _state_line(request: Request) -> str:
    line = STATE_WORDS.get(request.state, request.state)
    if request.decided_by and request.state in (
        "approved",
        "executing",
        "succeeded",
        "failed",
        "denied",
    ):
        verb = "denied" if request.state == "denied" else "approved"
        line += f" — {verb} by <@{request.decided_by}>"
    if request.decided_by and request.state == "cancelled":
        line += f" — by <@{request.decided_by}>"
    outcome = request.result.get("text")
    if outcome and request.state in ("succeeded", "failed", "expired"):
        line += f"\n{outcome}"
    return line


def approval_message(request: Request) -> tuple[str, list[dict[str, Any]]]:
    """The message in the approvals channel: device, action, parameters, requester, reason, buttons."""
    spec = request.spec
    title = f"{spec.label} requested for {esc(request.target)}"
    body = [
        header(clip_header(f"{spec.label}: {request.target}")),
        section(
            f"*Request* `{request.id}` from <@{request.requester}>\n*Action:* {esc(spec.summary)}"
            + (f"\n*Reason:* {esc(request.reason)}" if request.reason else "\n*Reason:* —")
        ),
        section("*Device*\n" + _devices_text(request)),
    ]
    params = _params_text(request)
    if params:
        body.append(section("*Parameters*\n" + params))
    body.append(
        context(f"Fingerprint `{request.fingerprint[:12]}` · approval runs exactly this command")
    )
    body.append(section(_state_line(request)))
    if request.state == "pending":
        body.append(
            actions(
                [
                    button(
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
                    ),
                    button("Deny", ids.ActionId.DENY, request.id, style="danger"),
                ],
                block_id="decision",
            )
        )
    return title, fit(body)


def requester_message(request: Request) -> tuple[str, list[dict[str, Any]]]:
    """The requester's message (their thread) with the live state."""
    spec = request.spec
    text = f"{spec.label} {esc(request.target)}: {request.state}"
    body = [
        section(
            f"<@{request.requester}> requested *{esc(spec.label)}* on {esc(request.target)} (request `{request.id}`)"
        ),
        section(_state_line(request)),
    ]
    if request.state == "pending":
        body.append(actions([button("Cancel request", ids.ActionId.CANCEL_REQUEST, request.id)]))
    return text, body


def thread_note(request: Request, text: str, *, reissue: bool = False) -> list[dict[str, Any]]:
    """A reply in a request's thread; an expired command offers Re-issue."""
    blocks = [section(text)]
    if reissue and not request.spec.secret_fields():
        blocks.append(actions([button("Re-issue", ids.ActionId.REISSUE, request.id)]))
    return blocks


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
                "label": plain("Reason (optional)"),
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
