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

import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot import approvals, bulk_run, catalog, execution, ids, modals, requests
from bot.blocks import esc
from bot.bulk_list import (
    ANNOTATION_COLUMNS,
    BULK_ACTIONS,
    KIND_WORDS,
    MAX_ROWS,
    Plan,
    Row,
    judge,
    list_csv,
    list_view,
    preview_view,
    read_csv,
    read_pasted,
)
from bot.commands import Commands, Invocation, Subcommand, refuse
from bot.errors import Conflict, DeviceBotError, ValidationError
from bot.jobs import JobSpec
from bot.modals import Metadata
from bot.roles import Role
from bot.services import Services

log = logging.getLogger(__name__)

USAGE = "/device bulk <action>"
MAX_FILE_BYTES = 2 * 1024 * 1024
PLAN_TTL = 3600.0


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
    execution.bulk_runner = bulk_run.Runner
    plans = Plans()

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
        problem = None
        if bool(pasted.strip()) == bool(files):
            problem = "Paste a list or pick a CSV file (one of the two)."
        elif meta.action == "annotate" and not files:
            problem = (
                "Bulk annotate takes a CSV file: a `device` column and any of "
                + ", ".join(ANNOTATION_COLUMNS)
                + "."
            )
        if problem:
            ack(response_action="errors", errors={ids.BlockId.BULK_PASTE: problem})
            return
        if meta.action not in BULK_ACTIONS:
            raise ValidationError("This form is out of date; run the command again.")
        spec = catalog.action_for(meta.action, BULK_ACTIONS[meta.action])
        # the loading view is named, so the preview replaces it and never the other way round
        external_id = "bulk-" + secrets.token_hex(8)
        loading = modals.loading_view(
            f"Bulk {spec.label.lower()}", "Reading the list and looking up every row…"
        )
        ack(response_action="update", view={**loading, "external_id": external_id})
        if svc.roles.role_of(user) < Role.OPERATOR:
            refuse(svc, user, f"bulk {meta.action}")

        def show(shown: dict[str, Any]) -> None:
            try:
                svc.out.update_view_external(external_id, shown)
            except SlackApiError as exc:  # the user closed the modal meanwhile
                log.info("views.update %s failed: %s", external_id, exc.response.get("error"))

        try:
            rows = _rows(svc, meta.action, pasted, str(files[0]["id"]) if files else None)
            verdicts = judge(svc, meta.action, rows)
            plan = Plan(meta.action, spec.platform, tuple(verdicts), meta.channel, time.monotonic())
            key = plans.put(plan)
            show(
                preview_view(
                    plan,
                    key,
                    cap=svc.settings.bulk_cap(meta.action),
                    needs_approval=svc.settings.needs_approval(meta.action)
                    or _above(svc, meta.action, len(plan.devices)),
                ),
            )
        except DeviceBotError as exc:
            show(modals.error_view(f"Bulk {spec.label.lower()}", exc.message))

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
            "left_out": dict(
                Counter(KIND_WORDS.get(v.kind, v.kind) for v in verdicts if not v.ok).most_common()
            ),
            "cap": svc.settings.bulk_cap(spec.name),
        }
        if _above(svc, spec.name, len(devices)) and not svc.settings.approval_channel:
            raise ValidationError(
                f"{len(devices)} devices is above the cap of {svc.settings.bulk_cap(spec.name)} for"
                f" bulk {spec.name}, and only an approver can raise it: no APPROVAL_CHANNEL is"
                " configured. Nothing was submitted."
            )
        if spec.kind == "patch":
            params["rows"] = {v.device.id: v.changes for v in verdicts if v.ok and v.device}
        request_id = approvals.submit(
            svc,
            requests.NewRequest(
                action=spec.name,
                platform=spec.platform,
                devices=tuple(devices),
                params=params,
                requester=user,
                reason=reason,
                channel=plan.channel,
            ),
        )
        request = requests.load(svc, request_id)
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


def _rows(svc: Services, action: str, pasted: str, file_id: str | None) -> list[Row]:
    """The rows of the pasted list, or of the CSV file (downloaded with the bot token)."""
    if file_id:
        try:
            _, data = svc.out.download(file_id, max_bytes=MAX_FILE_BYTES)
        except (ValueError, OSError, SlackApiError) as exc:
            raise ValidationError(
                f"The CSV file could not be read from Slack ({esc(exc)})."
            ) from None
        rows = read_csv(data, action)
    else:
        rows = read_pasted(pasted)
    if not rows:
        raise ValidationError("The list names no device.")
    if len(rows) > MAX_ROWS:
        raise ValidationError(
            f"At most {MAX_ROWS} rows per bulk action; this list has {len(rows)}."
        )
    return rows


def jobs(svc: Services) -> list[JobSpec]:
    """Follow the Android commands of bulk requests, device by device."""
    return [JobSpec("bulk-commands", bulk_run.follow, max(0.2, svc.settings.poll_interval))]


def _above(svc: Services, action: str, count: int) -> bool:
    cap = svc.settings.bulk_cap(action)
    return cap is not None and count > cap
