"""Bulk actions: `/device bulk <action>` on a pasted list or a CSV file, as one request.

The same catalog entry, capability rules, approval, exactly-once execution and audit as a
single-device action: a bulk run is one row of the requests table with many device ids and
`params["bulk"]`; only how it is executed differs (batched, with progress in place).

1. The list modal takes pasted references (one per line) or a CSV file (`file_input`;
   a `device` column and, for annotate, the annotation columns).
2. Every row is resolved to exactly one device (`DeviceDirectory.resolve_each`, exact
   matches only). Blank rows, duplicates, references that name no device exactly (a
   partial serial), several devices, a device of the other platform, or a device the
   action cannot run on (`capabilities.refusal`) are left out, each with its reason, and
   never acted on.
3. The preview (the modal, updated) shows the counts and the first rows; the requester
   types the device count. One request covers the batch; the full list goes to the
   approval thread as a CSV. Above the action's cap (BULK_CAPS) only an approver's
   explicit "Approve all N" runs it.
4. Execution: batchChangeStatus / moveDevicesToOu by 50, Android commands and annotations
   in parallel within ANDROID_CONCURRENCY; one progress message per thread, edited in
   place; lost answers read back per device (never resent); a per-device results CSV.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, cast

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot import approvals, capabilities, catalog, ids, modals
from bot.blocks import Block, context, divider, esc, plain, section, sections_of
from bot.commands import Commands, Invocation, Subcommand, refuse
from bot.devices import Device
from bot.errors import (
    Ambiguous,
    Conflict,
    DeviceBotError,
    NotFound,
    OutcomeUnknown,
    ValidationError,
)
from bot.google.android import google_duration
from bot.google.chrome import CHUNK, StatusAction
from bot.google.client import DeviceResult
from bot.modals import Metadata
from bot.roles import Role
from bot.services import Services

log = logging.getLogger(__name__)

#: the actions that make sense in bulk, with their platform
BULK_ACTIONS: dict[str, str] = {
    "disable": "chrome",
    "reenable": "chrome",
    "deprovision": "chrome",
    "annotate": "chrome",
    "move": "chrome",
    "lock": "android",
    "reboot": "android",
    "wipe": "android",
}
USAGE = "/device bulk <action>"
MAX_ROWS = 5000
MAX_FILE_BYTES = 2 * 1024 * 1024
PREVIEW_ROWS = 10
ANDROID_CONCURRENCY = 8  # Android commands (and annotations) in flight at once
PROGRESS_EVERY = 0.5  # seconds between two edits of the progress message
PLAN_TTL = 3600.0
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
            mine = "Android" if platform == "android" else "Chrome OS"
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


# ---- execution ------------------------------------------------------------------------------


@dataclass
class Outcome:
    state: str  # done, failed, unknown
    detail: str = ""


class Progress:
    """One message per thread of the request, edited in place: "120 of 400 done, 2 failed"."""

    def __init__(self, svc: Services, request: approvals.Request) -> None:
        self.svc = svc
        self.request = request
        self.total = len(request.device_ids)
        self.posted: list[tuple[str, str]] = []
        self.last = 0.0
        self._lock = threading.Lock()
        text = self._text(0, 0)
        for channel, ts in (
            (request.requester_channel, request.requester_ts),
            (request.approval_channel, request.approval_ts),
        ):
            if channel and ts:
                try:
                    self.posted.append(
                        (channel, svc.out.post(channel, text, [section(text)], thread_ts=ts))
                    )
                except Exception:
                    log.exception("could not post the progress of %s", request.id)

    def _text(self, done: int, failed: int) -> str:
        label = self.request.spec.label.lower()
        return f":gear: Bulk {label}: {done + failed} of {self.total} done, {failed} failed."

    def show(self, outcomes: dict[str, Outcome], *, final: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not final and now - self.last < PROGRESS_EVERY:
                return
            self.last = now
            failed = sum(o.state != "done" for o in outcomes.values())
            text = self._text(len(outcomes) - failed, failed)
            if final:
                text = text.replace(":gear:", ":checkered_flag:")
            for channel, ts in self.posted:
                try:
                    self.svc.out.update(channel, ts, text, [section(text)])
                except Exception:
                    log.exception("could not update the progress of %s", self.request.id)


def perform(svc: Services, request: approvals.Request) -> None:
    """Run a bulk request: batched Google calls, progress in place, per-device outcomes."""
    spec = request.spec
    progress = Progress(svc, request)
    outcomes: dict[str, Outcome] = {}
    results: list[DeviceResult] = []
    ids_ = list(request.device_ids)
    if spec.kind in ("status", "move"):
        chrome = svc.google.require_chrome()
        for start in range(0, len(ids_), CHUNK):
            chunk = ids_[start : start + CHUNK]
            if spec.kind == "status":
                got = chrome.change_status(
                    chunk,
                    cast(StatusAction, spec.google),
                    request.params.get("deprovision_reason"),
                )
            else:
                got = chrome.move(chunk, request.params["ou"])
            results += got
            for r in got:
                outcomes[r.device_id] = _outcome(r)
            progress.show(outcomes)
        if any(r.outcome_unknown for r in results):
            results = _read_back(svc, request, results)
            outcomes = {r.device_id: _outcome(r) for r in results}
            if any(r.outcome_unknown for r in results):
                known = {
                    d: [o.state, o.detail] for d, o in outcomes.items() if o.state != "unknown"
                }
                approvals._set(svc, request.id, result=json.dumps({"known": known}))
                progress.show(outcomes, final=True)
                raise OutcomeUnknown("Google's answer was lost for some devices of the batch.")
    else:
        _in_parallel(svc, request, outcomes, progress)
    progress.show(outcomes, final=True)
    _end(svc, request, outcomes)


def _outcome(result: DeviceResult) -> Outcome:
    if result.ok:
        return Outcome("done")
    message = result.error.message if result.error else "unknown error"
    return Outcome("unknown" if result.outcome_unknown else "failed", message)


def _read_back(
    svc: Services, request: approvals.Request, results: list[DeviceResult]
) -> list[DeviceResult]:
    """Lost answers settled by reading each such device back (never by sending again)."""
    chrome = svc.google.require_chrome()
    if request.spec.kind == "status":
        return chrome.confirm_status(results, cast(StatusAction, request.spec.google))
    return chrome.confirm_moved(results, request.params["ou"])


def _in_parallel(
    svc: Services, request: approvals.Request, outcomes: dict[str, Outcome], progress: Progress
) -> None:
    """Android commands and annotations: one call per device, ANDROID_CONCURRENCY at a time."""
    spec = request.spec
    rows: dict[str, dict[str, str]] = request.params.get("rows") or {}

    def one(device_id: str) -> Outcome:
        try:
            if spec.kind == "patch":
                svc.google.require_chrome().patch(device_id, rows[device_id])
                return Outcome("done", "; ".join(f"{k}={v}" for k, v in rows[device_id].items()))
            body = catalog.command_body(spec, _action_params(request.params))
            body["duration"] = google_duration(svc.settings.command_duration)
            operation = svc.google.require_android().issue_command(device_id, body)
            return Outcome("done", f"sent as {operation.get('name', '')}")
        except OutcomeUnknown as exc:
            return Outcome("unknown", f"{exc.message} It was not resent; look at the device.")
        except DeviceBotError as exc:
            return Outcome("failed", exc.message)

    with ThreadPoolExecutor(ANDROID_CONCURRENCY, thread_name_prefix="bulk") as pool:
        futures = {pool.submit(one, d): d for d in request.device_ids}
        for future in as_completed(futures):
            outcomes[futures[future]] = future.result()
            progress.show(outcomes)


def _action_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in ("bulk", "rows")}


def reconcile(svc: Services, request: approvals.Request) -> None:
    """A bulk run whose answers were lost for some devices: read those back, then end it."""
    known: dict[str, list[str]] = request.result.get("known") or {}
    unknown = OutcomeUnknown("Google's answer was lost for some devices of the batch.")
    results = [
        DeviceResult(
            d, known[d][0] == "done", None if known[d][0] == "done" else DeviceBotError(known[d][1])
        )
        if d in known
        else DeviceResult(d, False, unknown)
        for d in request.device_ids
    ]
    if request.spec.kind not in ("status", "move"):
        outcomes = {r.device_id: _outcome(r) for r in results}
        _end(svc, request, outcomes)
        return
    results = _read_back(svc, request, results)
    if any(r.outcome_unknown for r in results):
        raise unknown  # a device could not be read: the next recovery run tries again
    _end(svc, request, {r.device_id: _outcome(r) for r in results})


def results_csv(request: approvals.Request, outcomes: dict[str, Outcome]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["device_id", "serial", "user", "result", "detail"])
    for d in request.devices:
        o = outcomes.get(d["id"], Outcome("unknown", "no answer recorded"))
        writer.writerow([d["id"], d.get("serial") or "", d.get("user") or "", o.state, o.detail])
    return out.getvalue().encode()


def _end(svc: Services, request: approvals.Request, outcomes: dict[str, Outcome]) -> None:
    """The per-device results CSV in the threads, then the request's final state."""
    spec = request.spec
    total = len(request.device_ids)
    bad = [d for d, o in outcomes.items() if o.state != "done"]
    data = results_csv(request, outcomes)
    for channel, ts in (
        (request.requester_channel, request.requester_ts),
        (request.approval_channel, request.approval_ts),
    ):
        if channel and ts:
            try:
                svc.out.upload(
                    channel,
                    f"bulk-{spec.name}-{request.id}-results.csv",
                    data,
                    title=f"Results of bulk {spec.name} {request.id}",
                    comment="Per-device results.",
                    thread_ts=ts,
                )
            except Exception:
                log.exception("could not upload the results of %s", request.id)
    text = f"Bulk {spec.label.lower()}: {total - len(bad)} of {total} devices done"
    if bad:
        first = outcomes[bad[0]].detail or "unknown error"
        text += f", {len(bad)} failed (first: {esc(first)})"
    text += ". Per-device results: the CSV in this thread."
    approvals.finish(
        svc,
        request.id,
        approvals.FAILED if bad else approvals.SUCCEEDED,
        text,
        {"done": total - len(bad), "failed": bad[:100]},
    )


class _Runner:
    perform = staticmethod(perform)
    reconcile = staticmethod(reconcile)


# ---- Slack wiring -------------------------------------------------------------------------------


class Plans:
    """Resolved lists waiting for their confirmation (device summaries do not fit in a view)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._items: dict[str, Plan] = {}

    def put(self, plan: Plan) -> str:
        key = secrets.token_urlsafe(12)
        with self._lock:
            now = self.clock()
            for old in [k for k, p in self._items.items() if now - p.created > PLAN_TTL]:
                del self._items[old]
            self._items[key] = plan
        return key

    def take(self, key: str | None) -> Plan | None:
        with self._lock:
            plan = self._items.pop(key or "", None)
        if plan is None or self.clock() - plan.created > PLAN_TTL:
            return None
        return plan


def register(app: App, svc: Services, commands: Commands) -> None:
    """`/device bulk <action>`, its two modals and the approver's explicit raise of the cap."""
    approvals.bulk_runner = _Runner
    plans = Plans()

    def update(view_id: str, view: dict[str, Any]) -> None:
        try:
            svc.out.update_view(view_id, view)
        except SlackApiError as exc:  # the user closed the modal meanwhile
            log.info("views.update %s failed: %s", view_id, exc.response.get("error"))

    def bulk_command(inv: Invocation) -> None:
        words = inv.words
        action = words[0].lower() if words else ""
        if len(words) != 1 or action not in BULK_ACTIONS:
            inv.reply(
                f"Usage: `{USAGE}` with one of: {', '.join(f'`{a}`' for a in BULK_ACTIONS)}."
                " It opens a form for a pasted list or a CSV file."
            )
            return
        svc.out.open_view(inv.trigger_id, list_view(action, inv.channel_id))

    def list_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        """The list (or CSV) was given: resolve every row, then show the preview."""
        user = body["user"]["id"]
        meta = Metadata.from_json(view.get("private_metadata", ""))
        values = (view.get("state") or {}).get("values") or {}
        pasted = str(
            values.get(ids.BlockId.BULK_PASTE, {}).get(ids.BlockId.BULK_PASTE, {}).get("value")
            or ""
        )
        files = (
            values.get(ids.BlockId.BULK_FILE, {}).get(ids.BlockId.BULK_FILE, {}).get("files") or []
        )
        if bool(pasted.strip()) == bool(files):
            ack(
                response_action="errors",
                errors={
                    ids.BlockId.BULK_PASTE: "Paste a list or pick a CSV file (one of the two)."
                },
            )
            return
        if meta.action not in BULK_ACTIONS:
            raise ValidationError("This form is out of date; run the command again.")
        spec = catalog.action_for(meta.action, BULK_ACTIONS[meta.action])
        ack(
            response_action="update",
            view=modals.loading_view(
                f"Bulk {spec.label.lower()}", "Reading the list and looking up every row…"
            ),
        )
        if svc.roles.role_of(user) < Role.OPERATOR:
            refuse(svc, user, f"bulk {meta.action}")
        view_id = view["id"]
        try:
            if files:
                try:
                    _, data = svc.out.download(str(files[0]["id"]), max_bytes=MAX_FILE_BYTES)
                except (ValueError, OSError, SlackApiError) as exc:
                    raise ValidationError(
                        f"The CSV file could not be read from Slack ({esc(exc)})."
                    ) from None
                rows = read_csv(data, meta.action)
            else:
                rows = read_pasted(pasted)
                if meta.action == "annotate":
                    raise ValidationError(
                        "Bulk annotate takes a CSV file with a `device` column and the annotation"
                        " columns (" + ", ".join(ANNOTATION_COLUMNS) + ")."
                    )
            if not rows:
                raise ValidationError("The list names no device.")
            if len(rows) > MAX_ROWS:
                raise ValidationError(
                    f"At most {MAX_ROWS} rows per bulk action; this list has {len(rows)}."
                )
            verdicts = judge(svc, meta.action, rows)
            plan = Plan(meta.action, spec.platform, tuple(verdicts), meta.channel, time.monotonic())
            key = plans.put(plan)
            update(
                view_id,
                preview_view(
                    plan,
                    key,
                    cap=svc.settings.bulk_cap(meta.action),
                    needs_approval=svc.settings.needs_approval(meta.action)
                    or _above(svc, meta.action, len(plan.devices)),
                ),
            )
        except DeviceBotError as exc:
            update(view_id, modals.error_view(f"Bulk {spec.label.lower()}", exc.message))

    def confirm_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        """The preview was confirmed: one request for the batch, the full list in its threads."""
        user = body["user"]["id"]
        meta = Metadata.from_json(view.get("private_metadata", ""))
        if meta.action not in BULK_ACTIONS:
            raise ValidationError("This form is out of date; run the command again.")
        spec = catalog.action_for(meta.action, BULK_ACTIONS[meta.action])
        values = modals.submitted_values((view.get("state") or {}).get("values") or {})
        try:
            modals.check_count(values.get(ids.BlockId.CONFIRM_COUNT), meta.count)
            params = spec.parse(values) if spec.kind != "patch" else {}
        except ValidationError as exc:
            target = exc.field if exc.field in values else ids.BlockId.CONFIRM_COUNT
            ack(response_action="errors", errors={target: exc.message})
            return
        ack()
        if svc.roles.role_of(user) < Role.OPERATOR:
            refuse(svc, user, f"submit bulk {spec.name}")
        first = svc.store.first_delivery("submission:" + modals.submission_key(view))
        plan = plans.take(meta.draft) if first else None
        if plan is None:
            raise Conflict(
                "This bulk form was already submitted or has expired; nothing was submitted twice."
                " Run the command again if needed."
            )
        devices = plan.devices
        if len(devices) != meta.count:
            raise ValidationError("This form no longer matches its list; run the command again.")
        reason = str(params.pop("reason", "") or "")
        verdicts = plan.verdicts
        params["bulk"] = {
            "rows": len(verdicts),
            "skipped": sum(not v.ok for v in verdicts),
            "cap": svc.settings.bulk_cap(spec.name),
        }
        if spec.kind == "patch":
            params["rows"] = {v.device.id: v.changes for v in verdicts if v.ok and v.device}
        request_id = approvals.submit(
            svc,
            approvals.NewRequest(
                action=spec.name,
                platform=spec.platform,
                devices=tuple(devices),
                params=params,
                requester=user,
                reason=reason,
                channel=plan.channel,
            ),
        )
        request = approvals.load(svc, request_id)
        if request.approval_channel and request.approval_ts:
            try:
                svc.out.upload(
                    request.approval_channel,
                    f"bulk-{spec.name}-{request_id}-list.csv",
                    list_csv(verdicts),
                    title=f"Bulk {spec.name} {request_id}: the full list",
                    comment=f"The full list: {len(devices)} devices to act on,"
                    f" {len(verdicts) - len(devices)} rows left out (with the reason).",
                    thread_ts=request.approval_ts,
                )
            except Exception:
                log.exception("could not upload the list of %s", request_id)
        log.info("request %s: bulk %s on %d device(s)", request_id, spec.name, len(devices))

    def approve_above_cap(ack: Ack, body: dict[str, Any]) -> None:
        """“Approve all N (above the cap)”: the approver's explicit raise."""
        ack()
        approvals.approve(svc, body["actions"][0]["value"], body["user"]["id"], raise_cap=True)

    commands.add(
        Subcommand(
            "bulk",
            bulk_command,
            USAGE,
            "Act on many devices from a pasted list or a CSV file ("
            + ", ".join(BULK_ACTIONS)
            + ")",
            "/device bulk disable",
        )
    )
    app.view(ids.CallbackId.BULK_LIST)(list_submitted)
    app.view(ids.CallbackId.BULK_CONFIRM)(confirm_submitted)
    app.action(ids.ActionId.APPROVE_ABOVE_CAP)(approve_above_cap)


def _above(svc: Services, action: str, count: int) -> bool:
    cap = svc.settings.bulk_cap(action)
    return cap is not None and count > cap
