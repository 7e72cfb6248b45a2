"""Bulk lists: reading pasted references or a CSV, judging every row, the two modals.

Every row is resolved to exactly one device (`DeviceDirectory.resolve_each`, exact matches
only). Blank rows, duplicates (the same reference, or two references to one device),
references that name no device exactly (a partial serial never matches) or several, a
device of the other platform, or one the action cannot run on (`capabilities.refusal`)
are left out, each with its reason, and never acted on.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot import capabilities, catalog, ids, modals
from bot.blocks import Block, context, divider, esc, plain, section, sections_of
from bot.devices import Device, platform_name
from bot.errors import Ambiguous, DeviceBotError, NotFound, ValidationError
from bot.modals import Metadata
from bot.services import Services

#: the actions offered in bulk (`ActionSpec.bulk` in the catalog), with their platform
BULK_ACTIONS: dict[str, str] = {s.name: s.platform for s in catalog.all_specs() if s.bulk}
MAX_ROWS = 5000
PREVIEW_ROWS = 10
ANNOTATION_COLUMNS = ("annotatedUser", "annotatedLocation", "annotatedAssetId", "notes")


@dataclass(frozen=True)
class Row:
    """One line of the pasted list or the CSV (line numbers as the requester sees them)."""

    line: int
    ref: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """A row and what becomes of it: its device (acted on) or why it is left out."""

    row: Row
    device: Device | None = None
    reason: str | None = None
    kind: str = "ok"  # ok, blank, duplicate, not_found, ambiguous, invalid, platform, refused
    changes: dict[str, str] = field(default_factory=dict)  # annotate: what this row sets

    @property
    def ok(self) -> bool:
        return self.device is not None and self.reason is None


@dataclass(frozen=True)
class Plan:
    """A resolved bulk list waiting for its confirmation (kept server-side)."""

    action: str
    platform: str
    verdicts: tuple[Verdict, ...]
    channel: str | None
    created: float

    @property
    def devices(self) -> list[Device]:
        return [v.device for v in self.verdicts if v.ok and v.device is not None]


KIND_WORDS = {
    "blank": "blank",
    "duplicate": "duplicate",
    "not_found": "no exact match",
    "ambiguous": "ambiguous",
    "invalid": "not a reference",
    "platform": "wrong platform",
    "refused": "action cannot run",
    "no_change": "nothing to change",
}


# ---- reading the list ---------------------------------------------------------------------


def read_pasted(text: str) -> list[Row]:
    """One reference per line; every line counts (a blank one is reported, not skipped)."""
    lines = (text or "").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()  # the trailing newline of a paste is not a row
    return [Row(n, line.strip()) for n, line in enumerate(lines, start=1)]


def read_csv(data: bytes, action: str) -> list[Row]:
    """A CSV with a header row: `device`, and for annotate the annotation columns."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError(
            "The file is not UTF-8 text; save it as CSV (UTF-8).", field=ids.BlockId.BULK_FILE
        ) from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ValidationError("The CSV file is empty.", field=ids.BlockId.BULK_FILE) from None
    except csv.Error as exc:
        raise ValidationError(f"The CSV file cannot be read: {esc(exc)}.") from None
    lowered = [h.lower() for h in header]
    if "device" not in lowered:
        raise ValidationError(
            "The CSV needs a header row with a `device` column (serial, device id or asset id).",
            field=ids.BlockId.BULK_FILE,
        )
    columns = {
        name: lowered.index(name.lower()) for name in ANNOTATION_COLUMNS if name.lower() in lowered
    }
    if action == "annotate" and not columns:
        raise ValidationError(
            "An annotate CSV needs at least one of the columns "
            + ", ".join(ANNOTATION_COLUMNS)
            + " beside `device`.",
            field=ids.BlockId.BULK_FILE,
        )
    where = lowered.index("device")
    rows = []
    try:
        for line, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                rows.append(Row(line, ""))
                continue
            ref = cells[where].strip() if where < len(cells) else ""
            values = {
                name: cells[i].strip()
                for name, i in columns.items()
                if i < len(cells) and cells[i].strip()
            }
            rows.append(Row(line, ref, values))
    except csv.Error as exc:
        raise ValidationError(f"The CSV file cannot be read: {esc(exc)}.") from None
    while rows and not rows[-1].ref and not rows[-1].values:
        rows.pop()
    return rows


# ---- judging every row ----------------------------------------------------------------------


def judge(svc: Services, action: str, rows: Sequence[Row]) -> list[Verdict]:
    """Each row resolved to exactly one device the action can run on, or left out with why."""
    platform = BULK_ACTIONS[action]
    spec = catalog.action_for(action, platform)
    first_line: dict[str, int] = {}
    for row in rows:
        if row.ref:
            first_line.setdefault(row.ref.casefold(), row.line)
    wanted = [r.ref for r in rows if r.ref and first_line[r.ref.casefold()] == r.line]
    found = svc.devices.resolve_each(wanted)
    seen_device: dict[str, int] = {}
    out: list[Verdict] = []
    for row in rows:
        if not row.ref:
            out.append(Verdict(row, reason="Blank row: no device named.", kind="blank"))
            continue
        first = first_line[row.ref.casefold()]
        if first != row.line:
            out.append(Verdict(row, reason=f"Duplicate of row {first}.", kind="duplicate"))
            continue
        answer = found[row.ref]
        if isinstance(answer, NotFound):
            reason = (
                "No device has exactly this serial, device id or asset id"
                " (a partial serial never matches)."
            )
            out.append(Verdict(row, reason=reason, kind="not_found"))
            continue
        if isinstance(answer, Ambiguous):
            reason = (
                f"Names {len(answer.candidates)} devices; use the device id of the one you mean."
            )
            out.append(Verdict(row, reason=reason, kind="ambiguous"))
            continue
        if isinstance(answer, DeviceBotError):
            out.append(Verdict(row, reason=answer.message, kind="invalid"))
            continue
        device = answer
        if device.id in seen_device:
            reason = f"Same device as row {seen_device[device.id]}."
            out.append(Verdict(row, device, reason, kind="duplicate"))
            continue
        seen_device[device.id] = row.line
        if device.platform != platform:
            other = "an Android" if device.platform == "android" else "a Chrome OS"
            mine = platform_name(platform)
            reason = f"It is {other} device; bulk {spec.label.lower()} is for {mine} devices."
            out.append(Verdict(row, device, reason, kind="platform"))
            continue
        refusal = capabilities.refusal(spec, capabilities.facts_for(svc, device))
        if refusal:
            out.append(Verdict(row, device, refusal, kind="refused"))
            continue
        if spec.kind == "patch":
            out.append(_annotation_verdict(spec, row, device))
            continue
        out.append(Verdict(row, device))
    return out


def _annotation_verdict(spec: catalog.ActionSpec, row: Row, device: Device) -> Verdict:
    """Annotate: the row's non-blank cells that differ from the device (a blank cell changes nothing)."""
    limits = {f.name: f.max_length for f in spec.fields}
    for name, value in row.values.items():
        limit = limits.get(name)
        if limit and len(value) > limit:
            return Verdict(
                row, device, f"{name} is longer than {limit} characters.", kind="invalid"
            )
    changes = {k: v for k, v in row.values.items() if (device.raw.get(k) or "") != v}
    if not changes:
        return Verdict(
            row, device, "Nothing to change: the device already has these values.", kind="no_change"
        )
    return Verdict(row, device, changes=changes)


# ---- Block Kit ------------------------------------------------------------------------------


def _title(text: str) -> dict[str, Any]:
    return plain(text if len(text) <= 24 else text[:23] + "…", 24)


def list_view(action: str, channel: str | None) -> dict[str, Any]:
    """The first modal: paste references, or pick a CSV file."""
    spec = catalog.action_for(action, BULK_ACTIONS[action])
    columns = "`device`" + (
        ", and any of " + ", ".join(f"`{c}`" for c in ANNOTATION_COLUMNS)
        if action == "annotate"
        else ""
    )
    blocks: list[Block] = [
        section(
            f"*Bulk {esc(spec.label.lower())}* — {esc(spec.summary)}.\nEvery row must name exactly"
            " one device (serial, device id or asset id). You see a preview of what will be done,"
            " and what is left out and why, before anything is asked."
        ),
        {
            "type": "input",
            "block_id": ids.BlockId.BULK_PASTE,
            "optional": True,
            "label": plain("Devices, one per line"),
            "element": {
                "type": "plain_text_input",
                "action_id": ids.BlockId.BULK_PASTE,
                "multiline": True,
                "placeholder": plain("5CD1234XYZ\n5CD9876ABC"),
            },
        },
        {
            "type": "input",
            "block_id": ids.BlockId.BULK_FILE,
            "optional": True,
            "label": plain("…or a CSV file"),
            "hint": plain(
                f"Columns: {columns.replace('`', '')}. A header row names them."
                + (" A blank cell leaves that field as it is." if action == "annotate" else ""),
                2000,
            ),
            "element": {
                "type": "file_input",
                "action_id": ids.BlockId.BULK_FILE,
                "filetypes": ["csv"],
                "max_files": 1,
            },
        },
    ]
    meta = Metadata(action=action, platform=spec.platform, channel=channel)
    return {
        "type": "modal",
        "callback_id": ids.CallbackId.BULK_LIST,
        "title": _title(f"Bulk {spec.label.lower()}"),
        "submit": plain("Preview", 24),
        "close": plain("Cancel", 24),
        "blocks": blocks,
        "private_metadata": meta.to_json(),
    }


def _device_words(device: Device) -> str:
    return (
        f"`{esc(device.serial or device.short_id)}` {esc(device.model or '')} — "
        f"{esc(device.user or 'no user')}, {esc(device.status.lower())}"
    )


def preview_view(plan: Plan, key: str, *, cap: int | None, needs_approval: bool) -> dict[str, Any]:
    """The second modal: counts, the first rows, what is left out and why, then confirm."""
    spec = catalog.action_for(plan.action, plan.platform)
    good = [v for v in plan.verdicts if v.ok]
    left = [v for v in plan.verdicts if not v.ok]
    kinds = Counter(v.kind for v in left)
    blocks: list[Block] = [
        section(
            f"*Bulk {esc(spec.label.lower())}:* {len(plan.verdicts)} rows read —"
            f" *{len(good)} devices will be acted on*, {len(left)} rows left out"
            + (
                " ("
                + ", ".join(f"{n} {KIND_WORDS.get(k, k)}" for k, n in kinds.most_common())
                + ")"
                if left
                else ""
            )
            + "."
        )
    ]
    if spec.destructive and good:
        blocks.append(section(":rotating_light: *Destructive.* Check the list before you confirm."))
    if cap is not None and len(good) > cap:
        blocks.append(
            section(
                f":rotating_light: *Above the cap:* bulk {esc(spec.name)} touches at most {cap}"
                f" device(s) on a plain approval. An approver must choose “Approve all {len(good)}”"
                " explicitly to raise it for this request."
            )
        )
    if good:
        lines = [
            f"Row {v.row.line}: {_device_words(v.device)}" for v in good[:PREVIEW_ROWS] if v.device
        ]
        if len(good) > PREVIEW_ROWS:
            lines.append(
                f"…and {len(good) - PREVIEW_ROWS} more (the full list goes to the approval thread as a CSV)."
            )
        blocks += sections_of(["*Will be acted on*", *lines])
    if left:
        lines = [
            f"Row {v.row.line}: `{esc(v.row.ref[:80]) if v.row.ref else '(blank)'}` — {esc(v.reason)}"
            for v in left[:PREVIEW_ROWS]
        ]
        if len(left) > PREVIEW_ROWS:
            lines.append(f"…and {len(left) - PREVIEW_ROWS} more left out (in the CSV).")
        blocks += sections_of(["*Left out — never acted on*", *lines])
    meta = Metadata(
        action=plan.action, platform=plan.platform, channel=plan.channel, draft=key, count=len(good)
    )
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": ids.CallbackId.BULK_CONFIRM,
        "title": _title(f"Bulk {spec.label.lower()}"),
        "close": plain("Cancel", 24),
        "private_metadata": meta.to_json(),
    }
    if not good:
        blocks.append(
            context("Nothing will be done: no row names a device this action can run on.")
        )
        view["blocks"] = blocks
        return view
    blocks.append(divider())
    if spec.kind != "patch":
        blocks += [modals.input_block(f, f.initial) for f in spec.fields]
    blocks.append(modals.confirm_count_block(len(good), spec.label.lower()))
    if needs_approval:
        blocks.append(
            context(
                "One approval covers the whole batch; a second person gives it in the approvals channel."
            )
        )
    view["blocks"] = blocks
    view["submit"] = plain(modals.submit_label(spec, needs_approval), 24)
    return view


def list_csv(verdicts: Iterable[Verdict]) -> bytes:
    """Every row of a bulk request: acted on, or left out and why."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["row", "reference", "device_id", "serial", "user", "status", "verdict", "reason"]
    )
    for v in verdicts:
        d = v.device
        writer.writerow(
            [
                v.row.line,
                v.row.ref,
                d.id if d else "",
                (d.serial or "") if d else "",
                (d.user or "") if d else "",
                d.status if d else "",
                "act" if v.ok else "left out",
                v.reason or "",
            ]
        )
    return out.getvalue().encode()
