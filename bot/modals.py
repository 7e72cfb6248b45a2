"""Modal builders for device actions: pure functions from an ActionSpec and its targets to views.

A view built here shows exactly which device(s) the action will touch, asks for exactly the
parameters its ActionSpec lists (block_id = action_id = field name, so a ValidationError's
`field` is where Slack shows the error) and carries in `private_metadata` only what the
submission handler needs to find its way back: action, platform, device ids, channel. Never
a field value, so never a secret.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot import catalog, ids
from bot.blocks import (
    MAX_MODAL_BLOCKS,
    MAX_MODAL_TITLE,
    Block,
    clip,
    context,
    divider,
    esc,
    plain,
    section,
    sections_of,
)
from bot.cards.device import device_line, device_row
from bot.catalog import ActionSpec, FieldSpec
from bot.dates import when
from bot.devices import Device, platform_name
from bot.errors import ValidationError

#: a bulk action over more than this many devices asks for the device count to be typed
CONFIRM_THRESHOLD = 10
#: Slack refuses private_metadata over 3000 characters
MAX_METADATA = 3000
#: devices listed one by one in a modal; beyond this, a count
MAX_LISTED = 200
PICKER_MAX = 20

PASSWORD_HINT = (
    "Slack has no password input: what you type is visible on your screen while the modal is open. "
    "It goes to Google sealed and is never stored, logged or shown in a message."
)


@dataclass(frozen=True)
class Metadata:
    """What a modal remembers between opening and submission (never a field value)."""

    action: str
    platform: str
    device_ids: tuple[str, ...] = ()
    channel: str | None = None
    draft: str | None = None  # server-side key of the resolved devices (see actions.Drafts)
    count: int = 0  # number of target devices
    preset: dict[str, str] = field(
        default_factory=dict
    )  # picker only: values typed with the command

    def to_json(self) -> str:
        """Compact JSON within Slack's 3000 characters: device ids are dropped if they do not fit."""
        data: dict[str, Any] = {
            "a": self.action,
            "p": self.platform,
            "c": self.channel,
            "n": self.count,
        }
        if self.draft:
            data["k"] = self.draft
        if self.preset:
            data["s"] = self.preset
        data["d"] = list(self.device_ids)
        text = json.dumps(data, separators=(",", ":"))
        if len(text) > MAX_METADATA:
            data["d"] = []
            text = json.dumps(data, separators=(",", ":"))
        return text

    @classmethod
    def from_json(cls, text: str) -> Metadata:
        """Inverse of to_json; ValidationError on anything else."""
        try:
            data = json.loads(text or "{}")
            return cls(
                action=str(data["a"]),
                platform=str(data["p"]),
                device_ids=tuple(str(d) for d in data.get("d") or ()),
                channel=data.get("c"),
                draft=data.get("k"),
                count=int(data.get("n") or 0),
                preset={str(k): str(v) for k, v in (data.get("s") or {}).items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ValidationError("This form is out of date; run the command again.") from None


# ---- simple views -------------------------------------------------------------------------


def _title(text: str) -> dict[str, Any]:
    return plain(clip(text, MAX_MODAL_TITLE), MAX_MODAL_TITLE)


def loading_view(title: str, text: str, *, metadata: Metadata | None = None) -> dict[str, Any]:
    """What opens at once (trigger ids live 3 s) while Google is asked about the device."""
    return {
        "type": "modal",
        "callback_id": ids.CallbackId.LOADING,
        "title": _title(title),
        "close": plain("Cancel", 24),
        "blocks": [section(f":hourglass_flowing_sand: {text}")],
        "private_metadata": metadata.to_json() if metadata else "",
    }


def error_view(title: str, message: str, *, blocks: Sequence[Block] = ()) -> dict[str, Any]:
    """The modal that replaces the loading view when the action cannot go ahead.

    `message` is mrkdwn-safe already: domain errors escape what they quote."""
    return {
        "type": "modal",
        "callback_id": ids.CallbackId.LOADING,
        "title": _title(title),
        "close": plain("Close", 24),
        "blocks": [section(f":warning: {message}"), *blocks][:MAX_MODAL_BLOCKS],
    }


def picker_view(
    action: str, ref: str, candidates: Sequence[Device], *, metadata: Metadata
) -> dict[str, Any]:
    """`ref` matched several devices: one button each, never "all of them"."""
    shown = list(candidates)[:PICKER_MAX]
    out: list[Block] = [
        section(
            f"`{esc(ref)}` matches {len(candidates)} devices. A `/device {action}` acts on one device only: "
            "pick the one you mean."
        )
    ]
    out += [
        device_row(d, "Choose", block_id=f"pick_{i}", action_id=ids.device_action_id(action))
        for i, d in enumerate(shown)
    ]
    if len(candidates) > len(shown):
        out.append(
            context(f"…and {len(candidates) - len(shown)} more: use a device id to be exact.")
        )
    return {
        "type": "modal",
        "callback_id": ids.CallbackId.LOADING,
        "title": _title("Which device?"),
        "close": plain("Cancel", 24),
        "blocks": out,
        "private_metadata": metadata.to_json(),
    }


# ---- device summaries -----------------------------------------------------------------------


def device_summary(devices: Sequence[Device]) -> list[Block]:
    """Exactly which device(s) the action touches: fields for one, packed lines for many."""
    if len(devices) == 1:
        d = devices[0]
        seen = "Last sync" if d.platform == "chrome" else "Last report"
        return [
            section(
                f"*Device:* {esc(d.serial or d.short_id)} ({platform_name(d.platform)})",
                fields=[
                    f"*Serial*\n{esc(d.serial)}",
                    f"*User*\n{esc(d.user)}",
                    f"*{'OU' if d.platform == 'chrome' else 'Policy'}*\n{esc(d.org_unit)}",
                    f"*{seen}*\n{when(d.last_seen, missing='never')}",
                    f"*Status*\n{esc(d.status)}",
                    f"*Model*\n{esc(d.model)}",
                    f"*Device id*\n`{esc(d.id)}`",
                ],
            )
        ]
    listed = list(devices)[:MAX_LISTED]
    out: list[Block] = [
        section(f"*{len(devices)} devices:*"),
        *sections_of(device_line(d) for d in listed),
    ]
    if len(devices) > len(listed):
        out.append(context(f"…and {len(devices) - len(listed)} more devices, not listed here."))
    return out


# ---- inputs ---------------------------------------------------------------------------------


def _option(value: str) -> dict[str, Any]:
    return {"text": plain(value.replace("_", " ").capitalize(), 75), "value": value}


def _element(spec: FieldSpec, initial: Any) -> dict[str, Any]:
    action_id = spec.name
    if spec.kind in ("text", "multiline", "password"):
        element: dict[str, Any] = {"type": "plain_text_input", "action_id": action_id}
        if spec.kind == "multiline":
            element["multiline"] = True
        if spec.max_length:
            element["max_length"] = spec.max_length
        if initial and spec.kind != "password":  # a secret is never echoed back
            element["initial_value"] = str(initial)[: spec.max_length or 3000]
    elif spec.kind == "number":
        element = {"type": "number_input", "action_id": action_id, "is_decimal_allowed": False}
        if initial not in (None, ""):
            element["initial_value"] = str(initial)
    elif spec.kind in ("select", "radio"):
        element = {
            "type": "static_select" if spec.kind == "select" else "radio_buttons",
            "action_id": action_id,
            "options": [_option(o) for o in spec.options],
        }
        if initial in spec.options:
            element["initial_option"] = _option(initial)
    elif spec.kind == "checkboxes":
        element = {
            "type": "checkboxes",
            "action_id": action_id,
            "options": [_option(o) for o in spec.options],
        }
        chosen = (
            [o for o in (initial or []) if o in spec.options] if isinstance(initial, list) else []
        )
        if chosen:
            element["initial_options"] = [_option(o) for o in chosen]
    elif spec.kind == "org_unit":
        # options come from the bot (block_suggestion), listed before anything is typed
        element = {"type": "external_select", "action_id": action_id, "min_query_length": 0}
        if initial:
            element["initial_option"] = {
                "text": plain(clip(str(initial), 75), 75),
                "value": str(initial)[:150],
            }
    else:  # pragma: no cover - FieldKind is closed
        raise ValueError(spec.kind)
    if spec.placeholder and element["type"] in (
        "plain_text_input",
        "number_input",
        "static_select",
        "external_select",
    ):
        element["placeholder"] = plain(spec.placeholder, 150)
    return element


#: the reason asked of an action that has none of its own when APPROVAL_REQUIRED names it
APPROVAL_REASON = FieldSpec(
    "reason", "Reason", "multiline", max_length=500, placeholder="Ticket, what happened"
)


def input_block(spec: FieldSpec, initial: Any = None) -> Block:
    """One input for one FieldSpec: block_id and action_id are the field's name."""
    block: Block = {
        "type": "input",
        "block_id": spec.name,
        "label": plain(spec.label, 2000),
        "optional": spec.optional,
        "element": _element(spec, initial if initial is not None else spec.initial),
    }
    hints = [h for h in (spec.hint, PASSWORD_HINT if spec.kind == "password" else None) if h]
    if spec.max_length and spec.kind in ("text", "multiline"):
        hints.append(f"At most {spec.max_length} characters.")
    if hints:
        block["hint"] = plain(" ".join(hints), 2000)
    return block


def clear_block(fields: Sequence[FieldSpec], current: dict[str, Any]) -> Block | None:
    """Annotate: one "Clear …" tick per field that has a value (None when none has).

    Clearing is never implied by an emptied field: the submission refuses an empty field
    that is not ticked here (bot/annotation.py)."""
    options = [
        {
            "text": plain(f"Clear {f.label.lower()}", 75),
            "description": plain(f"now: {clip(str(current[f.name]), 60)}", 75),
            "value": f.name,
        }
        for f in fields
        if current.get(f.name)
    ]
    if not options:
        return None
    return {
        "type": "input",
        "block_id": ids.BlockId.CLEAR_FIELDS,
        "label": plain("Clear", 2000),
        "optional": True,
        "element": {
            "type": "checkboxes",
            "action_id": ids.ActionId.CLEAR_FIELDS,
            "options": options[:10],
        },
        "hint": plain(
            "A ticked field is cleared on the device. Only the fields you change or clear are sent.",
            2000,
        ),
    }


def confirm_count_block(count: int, what: str) -> Block:
    """Bulk safety: the requester types how many devices they mean to touch."""
    return {
        "type": "input",
        "block_id": ids.BlockId.CONFIRM_COUNT,
        "label": plain(f"Type {count} to confirm you mean to {what} {count} devices", 2000),
        "element": {
            "type": "plain_text_input",
            "action_id": ids.BlockId.CONFIRM_COUNT,
            "max_length": 10,
        },
    }


def check_count(typed: Any, count: int) -> None:
    """The typed device count must be exactly the number of target devices."""
    if str(typed or "").strip() != str(count):
        raise ValidationError(
            f"Type {count}, the number of devices listed above, to confirm.",
            field=ids.BlockId.CONFIRM_COUNT,
        )


# ---- the action modal ----------------------------------------------------------------------


def submit_label(spec: ActionSpec, needs_approval: bool, *, partial: int | None = None) -> str:
    """What the submit button says: the action, or that approval will be asked for; with
    `partial`, that only that many of the devices asked for go ahead."""
    if partial is not None:
        label = f"{spec.label} the {partial} that resolve"
        if len(label) > MAX_MODAL_TITLE:
            label = f"{spec.label} {partial} that resolve"
        return clip(label, MAX_MODAL_TITLE)
    label = "Request approval" if needs_approval else spec.label
    return clip(f"⚠️ {label}" if spec.destructive else label, MAX_MODAL_TITLE)


def action_view(
    spec: ActionSpec,
    devices: Sequence[Device],
    *,
    channel: str | None,
    needs_approval: bool = False,
    initial: dict[str, Any] | None = None,
    draft: str | None = None,
    warnings: Sequence[str] = (),
    left_out: Sequence[str] = (),
) -> dict[str, Any]:
    """The modal of `spec` on `devices`: what it touches, what it asks, how it is confirmed.

    `warnings` (mrkdwn) are shown first; `left_out` lists the references that will not be
    touched and why, and the submit button then says only the others go ahead.
    """
    initial = initial or {}
    out: list[Block] = [section(f"*{esc(spec.summary)}*")]
    out += [section(f":warning: {w}") for w in warnings]
    if left_out:
        noun = "problem" if len(left_out) == 1 else "problems"
        out += sections_of(
            [
                f":warning: *{len(left_out)} {noun}: left out of this {spec.label.lower()}*",
                *(f"• {p}" for p in left_out[:MAX_LISTED]),
            ]
        )
        out.append(
            section(
                f"*{len(devices)} of {len(devices) + len(left_out)}* resolve."
                f" Submitting {spec.label.lower()}s only these:"
            )
        )
    if spec.destructive:
        out.append(
            section(
                ":rotating_light: *Destructive.* Check that the device below is the one you mean."
            )
        )
    one = devices[0] if len(devices) == 1 else None
    effect = catalog.consequence(spec, one) if one is not None else None
    if effect:
        out.append(section(effect))
    summary = device_summary(devices)
    fields = catalog.fields_for(spec, one)
    if needs_approval and not any(f.name == "reason" for f in fields):
        fields = (*fields, APPROVAL_REASON)  # the approver reads why, as for every such action
    inputs = [input_block(f, initial.get(f.name)) for f in fields]
    if spec.kind == "patch" and (clear := clear_block(spec.fields, initial)) is not None:
        inputs.append(clear)
    if len(devices) > CONFIRM_THRESHOLD:
        inputs.append(confirm_count_block(len(devices), spec.label.lower()))
    notes = []
    if needs_approval:
        notes.append("A second person must approve this in the approvals channel before it runs.")
    if spec.kind in ("chrome_command", "android_command"):
        notes.append(
            "The device runs the command the next time it is online; the outcome is posted in the thread."
        )
    room = MAX_MODAL_BLOCKS - len(out) - len(inputs) - 2 - len(notes)
    if len(summary) > room:
        summary = [*summary[: room - 1], context("…more devices not listed here.")]
    out += summary
    if inputs:
        out.append(divider())
        out += inputs
    if notes:
        out.append(context(" ".join(notes)))
    meta = Metadata(
        action=spec.name,
        platform=spec.platform,
        device_ids=tuple(d.id for d in devices),
        channel=channel,
        draft=draft,
        count=len(devices),
    )
    return {
        "type": "modal",
        "callback_id": ids.CallbackId.ACTION,
        "title": _title(
            spec.label if len(devices) == 1 else f"{spec.label} {len(devices)} devices"
        ),
        "submit": plain(
            submit_label(spec, needs_approval, partial=len(devices) if left_out else None),
            MAX_MODAL_TITLE,
        ),
        "close": plain("Cancel", 24),
        "blocks": out,
        "private_metadata": meta.to_json(),
    }


def submission_key(view: dict[str, Any]) -> str:
    """What identifies one submitted form: its view id and hash.

    Each submission (a double click, a second client) comes with its own trigger id, so
    the delivery key cannot tell them apart; the view and its hash are the same."""
    raw = json.dumps(["view_submission", view.get("id"), view.get("hash")])
    return hashlib.sha256(raw.encode()).hexdigest()


def submitted_values(state_values: dict[str, Any]) -> dict[str, Any]:
    """Flatten Slack's view.state.values into {block_id: value} (strings, option values, lists)."""
    values: dict[str, Any] = {}
    for block_id, by_action in (state_values or {}).items():
        for state in by_action.values():
            if "selected_options" in state:
                values[block_id] = [o["value"] for o in state["selected_options"] or []]
            elif "selected_option" in state:
                option = state["selected_option"]
                values[block_id] = option["value"] if option else None
            else:
                values[block_id] = state.get("value")
    return values
