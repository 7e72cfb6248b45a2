"""Annotations of a Chrome device: only what changed is sent, and clearing is explicit.

The annotate modal is pre-filled with the device's current values (as read when it
opened). On submit, a field whose text differs becomes a change; a field ticked under
*Clear* becomes a clearing (sent as "", which the Directory API accepts: "Empty values
are allowed"); a field emptied without its tick is refused next to it, so nothing is
cleared by accident. The Directory guide: "For an update request, only include the
properties with updated values in your request."

The request's params hold the new values of the changed fields only, plus
`previous`: their values before, so the approval message, the outcome and the audit log
read `old → new`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.catalog import FieldSpec
from bot.errors import ValidationError

#: the patchable annotation fields, in the modal's order
FIELDS = ("annotatedUser", "annotatedLocation", "annotatedAssetId", "notes")
PREVIOUS = "previous"


def changes(
    fields: Sequence[FieldSpec],
    current: Mapping[str, Any],
    params: Mapping[str, Any],
    clear: Sequence[str],
) -> dict[str, Any]:
    """The params of an annotate request: changed fields (new value, "" to clear) + `previous`.

    Raises ValidationError(field=…) for an emptied field not ticked to clear, a field both
    typed in and ticked, and a form that changes nothing.
    """
    out: dict[str, Any] = {}
    previous: dict[str, str] = {}
    for spec in fields:
        old = str(current.get(spec.name) or "")
        new = params.get(spec.name)
        if spec.name in clear:
            if new and new != old:
                raise ValidationError(
                    f"Either type a new {spec.label.lower()} or tick “Clear {spec.label.lower()}”, not both.",
                    field=spec.name,
                )
            if old:
                out[spec.name], previous[spec.name] = "", old
            continue
        if not new:
            if old:
                raise ValidationError(
                    f"{spec.label} is empty: tick “Clear {spec.label.lower()}” below to clear it,"
                    " or put its value back.",
                    field=spec.name,
                )
            continue
        if new != old:
            out[spec.name], previous[spec.name] = str(new), old
    if not out:
        raise ValidationError(
            "Nothing changed: edit a field, or tick one under Clear.",
            field=fields[0].name if fields else None,
        )
    out[PREVIOUS] = previous
    return out


def body(params: Mapping[str, Any]) -> dict[str, str]:
    """The PATCH body: the changed fields only ("" clears)."""
    return {name: str(params[name]) for name in FIELDS if name in params}


def change_lines(params: Mapping[str, Any], labels: Mapping[str, str]) -> list[str]:
    """`Annotated user: ada → bob`, `Notes: cleared (was: …)` for each changed field."""
    previous = params.get(PREVIOUS) or {}
    lines = []
    for name in FIELDS:
        if name not in params:
            continue
        label = labels.get(name, name)
        old = previous.get(name) or "—"
        new = params[name]
        lines.append(f"{label}: {old} → {new}" if new else f"{label}: cleared (was: {old})")
    return lines


def audit_detail(params: Mapping[str, Any]) -> dict[str, str]:
    """{field: "old → new"} for the audit log."""
    previous = params.get(PREVIOUS) or {}
    return {
        name: f"{previous.get(name) or ''} → {params[name]}"
        if params[name]
        else f"{previous.get(name) or ''} → (cleared)"
        for name in FIELDS
        if name in params
    }
