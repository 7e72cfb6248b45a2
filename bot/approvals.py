"""Requests and approvals: the one state machine of SPEC §4, and what Approve does.

    pending ─approve─▶ approved ─▶ executing ─▶ succeeded | failed | expired
       ├─deny──▶ denied
       ├─cancel─▶ cancelled
       └─ttl───▶ expired

Every transition is a conditional write (`UPDATE … WHERE state = <from>`) inside a
write-locked transaction together with its audit event; the row count decides who won,
so two approvers clicking at once, a re-delivered click or a second process can never
run a request twice. The Google call happens only after `approved → executing` was won,
and an answer that was lost (timeout, 5xx) is reconciled by reading Google back — never
by sending again. What happens when someone clicks Approve: `approve()` below.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from slack_bolt import Ack, App

from bot import audit, catalog, ids, request_views
from bot.blocks import esc, plural, sentence
from bot.commands import Commands, Invocation, Subcommand
from bot.devices import Device
from bot.errors import (
    Conflict,
    DeviceBotError,
    GoogleError,
    NotFound,
    OutcomeUnknown,
    PermissionDenied,
    ValidationError,
)
from bot.google.android import google_duration
from bot.google.chrome import STATUS_AFTER, StatusAction
from bot.google.client import DeviceResult
from bot.jobs import JobSpec, process_alive
from bot.roles import MembershipUnknown, Role
from bot.services import Services

log = logging.getLogger(__name__)

PENDING, APPROVED, EXECUTING = "pending", "approved", "executing"
SUCCEEDED, FAILED, EXPIRED, DENIED, CANCELLED = (
    "succeeded",
    "failed",
    "expired",
    "denied",
    "cancelled",
)
FINAL = frozenset({SUCCEEDED, FAILED, EXPIRED, DENIED, CANCELLED})
BOT = "device-bot"

#: runs and reconciles bulk requests (params["bulk"]): `perform(svc, request)` and
#: `reconcile(svc, request)`, set by bot/bulk.py when it registers
bulk_runner: Any = None


def above_cap(request: Request | NewRequest, count: int) -> int | None:
    """The bulk cap this many devices exceed (an approver must raise it explicitly), else None."""
    cap = (request.params.get("bulk") or {}).get("cap")
    return int(cap) if cap is not None and count > int(cap) else None


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
    state: str
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
        state=r["state"],
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
    from_states: tuple[str, ...],
    to_state: str,
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


# ---- submit ----------------------------------------------------------------------------


ID_ATTEMPTS = 5


def new_request_id() -> str:
    """48 random bits ("R" + 12 hex digits): a collision is rare, and retried when it happens."""
    return "R" + secrets.token_hex(6).upper()


def submit(svc: Services, new: NewRequest) -> str:
    """Record the request; post it for approval, or run it now when no approval is needed.

    Tells the requester where it went (a message in their channel that becomes the thread
    they follow). Returns the request id.
    """
    spec = catalog.action_for(new.action, new.platform)
    if not new.devices:
        raise ValidationError("No device to act on.")
    if len(new.devices) > 1 and spec.kind != "move" and not new.params.get("bulk"):
        raise ValidationError(f"`{spec.name}` acts on one device at a time.")
    for name in spec.secret_fields():
        if name in new.params:
            raise ValidationError(
                "A secret was passed as a plain parameter."
            )  # programming error guard
    # above its bulk cap an action always waits for an approver's explicit raise
    needs = svc.settings.needs_approval(new.action) or above_cap(new, len(new.devices)) is not None
    device_ids = [d.id for d in new.devices]
    now = svc.clock()
    owner = svc.owner
    for attempt in range(ID_ATTEMPTS):
        request_id = new_request_id()
        with svc.store.transaction() as db:
            try:
                db.execute(
                    "INSERT INTO requests(id, action, platform, device_ids, devices, params, fingerprint,"
                    " reason, requester, state, needs_approval, created_at, updated_at, expires_at,"
                    " requester_channel, approval_channel, executor) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [
                        request_id,
                        new.action,
                        new.platform,
                        json.dumps(device_ids),
                        json.dumps([d.summary() for d in new.devices]),
                        json.dumps(new.params, sort_keys=True),
                        fingerprint(new.action, new.platform, device_ids, new.params),
                        new.reason,
                        new.requester,
                        PENDING if needs else APPROVED,
                        int(needs),
                        now,
                        now,
                        now + svc.settings.approval_ttl if needs else None,
                        new.channel,
                        svc.settings.approval_channel if needs else None,
                        None if needs else owner,
                    ],
                )
            except sqlite3.IntegrityError:  # the id is taken: nothing written, draw another
                log.warning(
                    "request id %s is taken (attempt %d); drawing another", request_id, attempt + 1
                )
                continue
            try:
                if new.secret:  # only now that the row is ours: never onto another request
                    sealed = svc.secrets.seal(request_id, new.secret)
                    db.execute(
                        "UPDATE requests SET secret = ?, secret_holder = ? WHERE id = ?",
                        [sealed, owner if sealed is None else None, request_id],
                    )
                audit.record(
                    svc.store,
                    actor=new.requester,
                    event="requested",
                    request_id=request_id,
                    platform=new.platform,
                    device_id=device_ids[0] if len(device_ids) == 1 else None,
                    to_state=PENDING if needs else APPROVED,
                    detail={
                        "action": new.action,
                        "params": new.params,
                        "reason": new.reason,
                        "needs_approval": needs,
                        **({"devices": device_ids} if len(device_ids) > 1 else {}),
                    },
                    anchor=spec.destructive,
                )
            except BaseException:
                svc.secrets.forget(request_id)  # the row is rolled back: so is the secret
                raise
        break
    else:
        raise Conflict("Could not give the request an id; try again.")
    request = load(svc, request_id)
    svc.notify("request", request_id=request_id, state=request.state)
    _post_requester_message(svc, request)
    if needs:
        _post_approval_message(svc, request)
    else:
        execute(svc, request_id, actor=new.requester)
    return request_id


def _post_requester_message(svc: Services, request: Request) -> None:
    """The requester's own thread: where they follow the request (channel, else a DM)."""
    text, blocks = request_views.requester_message(request)
    for channel in (request.requester_channel, request.requester):
        if not channel:
            continue
        try:
            ts = svc.out.post(channel, text, blocks)
        except Exception:
            log.info("cannot post request %s to %s; trying a DM", request.id, channel)
            continue
        _set(svc, request.id, requester_channel=channel, requester_ts=ts)
        return


def _post_approval_message(svc: Services, request: Request) -> None:
    channel = svc.settings.approval_channel
    assert channel
    request = load(svc, request.id)  # with the requester's message, posted just before
    text, blocks = _approval_view(svc, request)
    ts = svc.out.post(channel, text, blocks)
    _set(svc, request.id, approval_ts=ts)
    link = svc.out.permalink(channel, ts)
    note = f"Request `{request.id}` needs a second person's approval; it is waiting in <#{channel}>"
    note += f" (<{link}|view>)." if link else "."
    tell_threads(svc, load(svc, request.id), note, approval=False)


def _approval_view(svc: Services, request: Request) -> tuple[str, list[dict[str, Any]]]:
    """The approval message of `request` now, linking to the requester's thread."""
    link = None
    if request.requester_channel and request.requester_ts:
        link = svc.out.permalink(request.requester_channel, request.requester_ts)
    return request_views.approval_message(request, now=svc.clock(), requester_link=link)


def _set(svc: Services, request_id: str, **columns: Any) -> None:
    """Store Slack bookkeeping (message ts, refs) — not a state change, so no audit event."""
    assignments = ", ".join(f"{c} = ?" for c in columns)
    with svc.store.transaction() as db:
        db.execute(
            f"UPDATE requests SET {assignments} WHERE id = ?", [*columns.values(), request_id]
        )


def _refused(
    svc: Services, user: str, request_id: str, attempt: str, message: str
) -> PermissionDenied:
    """Audit a refused attempt on a request; the caller raises what this returns."""
    audit.record(
        svc.store, actor=user, event="refused", request_id=request_id, detail={"attempt": attempt}
    )
    return PermissionDenied(message)


def _approver(svc: Services, user: str, request_id: str, attempt: str) -> bool:
    """Whether `user` may approve. When Slack cannot say (an approver group could not be
    listed and the cached list is too old), the attempt is audited and refused with why."""
    try:
        return svc.roles.is_approver(user)
    except MembershipUnknown as exc:
        audit.record(
            svc.store,
            actor=user,
            event="membership_unknown",
            request_id=request_id,
            detail={"attempt": attempt, "groups": list(exc.groups), "errors": list(exc.errors)},
        )
        raise


def _note(
    svc: Services, request: Request, event: str, detail: dict[str, Any], text: str, actor: str = ""
) -> None:
    """An event in the audit log that is also said in the request's threads."""
    audit.record(svc.store, actor=actor or BOT, event=event, request_id=request.id, detail=detail)
    tell_threads(svc, request, text)


# ---- the decisions -----------------------------------------------------------------------


def approve(svc: Services, request_id: str, approver: str, *, raise_cap: bool = False) -> None:
    """What happens when someone clicks Approve.

    1. Only an approver may, and never on their own request (refusals are audited); a bulk
       request above its cap only with the explicit raise (`raise_cap`).
    2. pending → approved is a conditional write: of 20 simultaneous clicks one wins,
       the others hear who decided first.
    3. The approval message shows who approved; the request runs (`execute`).
    """
    request = load(svc, request_id)
    if not _approver(svc, approver, request_id, "approve"):
        raise _refused(
            svc, approver, request_id, "approve", "Only device approvers can approve requests."
        )
    if approver == request.requester:
        raise _refused(
            svc,
            approver,
            request_id,
            "self-approve",
            "You cannot approve your own request: a second person must.",
        )
    if request.expires_at is not None and svc.clock() > request.expires_at:
        expire_request(svc, request_id)
        raise Conflict(f"Request `{request_id}` expired before it was approved.")
    cap = above_cap(request, len(request.device_ids))
    if cap is not None and not raise_cap:
        raise _refused(
            svc,
            approver,
            request_id,
            "approve-above-cap",
            f"This batch of {len(request.device_ids)} is above the cap of {cap} for"
            f" `{request.action}`: approve it with “Approve all {len(request.device_ids)}”"
            " to raise the cap for this request. Nothing was done.",
        )
    holder = _elsewhere(svc, request)
    won = transition(
        svc,
        request_id,
        (PENDING,),
        APPROVED,
        approver,
        detail={
            **({"runs_in": holder} if holder else {}),
            **({"raised_cap": cap} if cap is not None else {}),
        }
        or None,
        set_={
            "decided_by": approver,
            "decided_at": svc.clock(),
            "executor": holder or svc.owner,
        },
    )
    if not won:
        raise Conflict(_already(load(svc, request_id)))
    if svc.metrics is not None:
        svc.metrics.approval_wait.observe(max(0.0, svc.clock() - request.created_at))
    _refresh_messages(svc, request_id)
    tell_threads(svc, load(svc, request_id), f"Approved by <@{approver}>. Running it now.")
    if holder is None:
        execute(svc, request_id, actor=approver)
    # else the bot process that holds the new password in memory runs it (`run_held`)


def _elsewhere(svc: Services, request: Request) -> str | None:
    """The live process whose memory holds this request's secret, when it is not this one
    (no BOT_SECRET_KEY and two processes on one database): the request runs there."""
    holder = request.secret_holder
    if holder is None or holder == svc.owner:
        return None
    return holder if process_alive(svc.store, holder) else None  # heartbeats: real time


def erase_pending(svc: Services) -> bool:
    """The job that finishes an erasure readers kept from completing (see `transition`)."""
    if svc.store.meta("erase_pending") is None or not svc.store.erase_freed():
        return False
    svc.store.db().execute("DELETE FROM meta WHERE key = 'erase_pending'")
    return True


def run_held(svc: Services) -> int:
    """Every process's job: run the requests approved elsewhere whose secret this process
    holds in memory."""
    owner = svc.owner
    if owner is None or not svc.secrets.memory_only:
        return 0
    rows = (
        svc.store.db()
        .execute(
            "SELECT id FROM requests WHERE state = ? AND secret_holder = ? AND executor = ?"
            " AND decided_at < ?",  # one approved here runs at once; leave it to that thread
            [APPROVED, owner, owner, svc.clock() - 1],
        )
        .fetchall()
    )
    for (request_id,) in rows:
        execute(svc, request_id, actor=BOT)
    return len(rows)


def deny(svc: Services, request_id: str, approver: str, note: str = "") -> None:
    """An approver turns the request down (optionally saying why)."""
    request = load(svc, request_id)
    if not _approver(svc, approver, request_id, "deny"):
        raise _refused(
            svc, approver, request_id, "deny", "Only device approvers can deny requests."
        )
    if approver == request.requester:
        raise PermissionDenied(
            "To withdraw your own request use `/device cancel " + request_id + "`."
        )
    won = transition(
        svc,
        request_id,
        (PENDING,),
        DENIED,
        approver,
        detail={"note": note} if note else None,
        set_={"decided_by": approver, "decided_at": svc.clock(), "decision_note": note or None},
    )
    if not won:
        raise Conflict(_already(load(svc, request_id)))
    _refresh_messages(svc, request_id)
    why = f" Their reason: {esc(sentence(note))}" if note else ""
    tell_threads(
        svc,
        load(svc, request_id),
        f"<@{request.requester}>, your request was denied by <@{approver}>.{why}"
        " Nothing was done to the device.",
    )


def cancel(svc: Services, request_id: str, user: str) -> str:
    """Withdraw a pending request, or cancel a command the device has not run yet."""
    request = load(svc, request_id)
    if user != request.requester and not _approver(svc, user, request_id, "cancel"):
        raise _refused(
            svc,
            user,
            request_id,
            "cancel",
            "Only the requester or an approver can cancel a request.",
        )
    if request.state == PENDING:
        if not transition(svc, request_id, (PENDING,), CANCELLED, user, set_={"decided_by": user}):
            raise Conflict(_already(load(svc, request_id)))
        _refresh_messages(svc, request_id)
        tell_threads(
            svc, load(svc, request_id), f"Cancelled by <@{user}> before anyone approved it."
        )
        return f"Request `{request_id}` is cancelled."
    if request.state == EXECUTING and request.google_ref and request.platform == "android":
        svc.google.require_android().cancel_operation(request.google_ref)
        _note(
            svc,
            request,
            "cancel_requested",
            {"operation": request.google_ref},
            f"<@{user}> asked Google to cancel the command; waiting for the device's answer.",
            actor=user,
        )
        return f"Asked Google to cancel the command of `{request_id}`; the thread will say how it ends."
    if request.state == EXECUTING and request.platform == "chrome":
        raise Conflict(
            "A Chrome command that was sent cannot be cancelled through the API; it expires if not run."
        )
    raise Conflict(_already(request))


def _already(request: Request) -> str:
    who = f" by <@{request.decided_by}>" if request.decided_by else ""
    return f"Request `{request.id}` was already decided{who}: it is {request.state}."


# ---- execution -------------------------------------------------------------------------------


def execute(svc: Services, request_id: str, actor: str) -> None:
    """approved → executing (won once), re-check the device, then the one Google call."""
    owner = svc.owner
    if not transition(
        svc,
        request_id,
        (APPROVED,),
        EXECUTING,
        actor,
        set_={"executor": owner, "executing_at": svc.clock()},
    ):
        return  # another thread or process runs it
    request = load(svc, request_id)
    _refresh_messages(svc, request_id)
    try:
        _preflight(svc, request)
        _perform(svc, request)
    except OutcomeUnknown as exc:
        _set(svc, request_id, reconcile=1)
        _note(
            svc,
            request,
            "outcome_unknown",
            {"error": exc.message},
            "Google's answer was lost (no answer in time, or an error after sending). The bot is"
            " checking the device instead of sending again.",
        )
    except DeviceBotError as exc:
        finish(
            svc,
            request_id,
            FAILED,
            f"Failed: {sentence(exc.message)}",
            {"error": exc.code, "detail": exc.detail},
        )
    except Exception as exc:
        log.exception("request %s failed unexpectedly", request_id)
        finish(
            svc,
            request_id,
            FAILED,
            "Failed: an unexpected error in the bot (see its log).",
            {"error": type(exc).__name__},
        )


def _preflight(svc: Services, request: Request) -> None:
    """Re-read the target and re-check: the action is still legal, the command is what was approved."""
    if (
        fingerprint(request.action, request.platform, request.device_ids, request.params)
        != request.fingerprint
    ):
        raise ValidationError(
            "The stored request no longer matches what was approved; not running it."
        )
    spec = request.spec
    if spec.kind in ("move", "lost_case") or request.params.get("bulk"):
        return  # per-device results say what happened (a bulk run re-checks each device)
    device = svc.devices.get(request.platform, request.device_ids[0])
    if spec.states and device.status not in spec.states:
        raise ValidationError(
            f"The device is now {esc(device.status)}, so `{spec.name}` is no longer possible."
            " Nothing was sent to Google."
        )
    catalog.check_device(spec, request.params, device.ownership, device)


def _secret(svc: Services, request: Request) -> dict[str, Any] | None:
    if not request.spec.secret_fields() or request.params.get("clear_password"):
        return None  # clearing the password is a parameter the approver saw, not a secret
    row = (
        svc.store.db().execute("SELECT secret FROM requests WHERE id = ?", [request.id]).fetchone()
    )
    sealed = row[0] if row else None
    opened = svc.secrets.open(request.id, sealed)
    if opened is None and sealed is not None:
        raise ValidationError(
            "The new password is no longer held: it was sealed with a BOT_SECRET_KEY this bot process"
            " does not have (every process on the database needs the same key); ask again."
        )
    if opened is None:
        raise ValidationError(
            "The new password is no longer held (the bot restarted without BOT_SECRET_KEY); ask again."
        )
    return opened


def _perform(svc: Services, request: Request) -> None:
    """The Google call of this request, and what its answer means."""
    from bot import outcomes

    spec = request.spec
    params = request.params
    if params.get("bulk"):
        bulk_runner.perform(svc, request)
        return
    if spec.kind == "status":
        chrome = svc.google.require_chrome()
        status_action = cast(Literal["DISABLE", "REENABLE", "DEPROVISION"], spec.google)
        results = chrome.change_status(
            request.device_ids, status_action, params.get("deprovision_reason")
        )
        _raise_if_unknown(results)  # the reconcile path reads the device back
        failed = [r for r in results if not r.ok]
        if failed:
            error = failed[0].error
            message = error.message if error else "unknown error"
            finish(
                svc,
                request.id,
                FAILED,
                f"Failed: {message}",
                {"error": getattr(error, "code", "error")},
            )
            return
        finish(svc, request.id, SUCCEEDED, outcomes.done_words(request), {})
        return
    if spec.kind == "patch":
        from bot import annotation

        svc.google.require_chrome().patch(request.device_ids[0], catalog.command_body(spec, params))
        labels = {f.name: f.label for f in spec.fields}
        changed = "; ".join(esc(line) for line in annotation.change_lines(params, labels))
        text = f"Done: annotations of {esc(request.target)} updated ({changed})."
        finish(svc, request.id, SUCCEEDED, text, {"changes": annotation.audit_detail(params)})
        return
    if spec.kind == "lost_case":
        from bot import lost

        if lost.open_case_for(svc, request.platform, request.device_ids[0]) is None:
            raise ValidationError("This device has no open lost case.")
        finish(
            svc,
            request.id,
            SUCCEEDED,
            "Lost case closed. The device stays disabled: `/device reenable` it when it is back.",
            {},
        )
        return
    if spec.kind == "move":
        results = svc.google.require_chrome().move(request.device_ids, params["ou"])
        if any(r.outcome_unknown for r in results):
            # keep what is known; the reconcile path reads the others' OU back
            known = {r.device_id: _known(r) for r in results if not r.outcome_unknown}
            _set(svc, request.id, result=json.dumps({"known": known}))
            _raise_if_unknown(results)
        _finish_move(svc, request, results)
        return
    body = catalog.command_body(spec, params, _secret(svc, request))
    if spec.kind == "chrome_command":
        payload = json.loads(body["payload"]) if "payload" in body else None
        command_id = svc.google.require_chrome().issue_command(
            request.device_ids[0], spec.google, payload
        )
        outcomes.track(svc, request, command_id)
        return
    body["duration"] = google_duration(svc.settings.command_duration)
    operation = svc.google.require_android().issue_command(request.device_ids[0], body)
    outcomes.track(svc, request, operation["name"], operation)


def _raise_if_unknown(results: list[DeviceResult]) -> None:
    """A lost answer for any device sends the request down the reconcile path."""
    for result in results:
        if result.outcome_unknown and isinstance(result.error, OutcomeUnknown):
            raise result.error


def _known(result: DeviceResult) -> str | None:
    """A known per-device outcome as stored while the others are reconciled: None if it worked."""
    return None if result.ok else (result.error.message if result.error else "unknown error")


def _finish_move(svc: Services, request: Request, results: list[DeviceResult]) -> None:
    """End a move with the true count (messages quoted here are escaped where they were built)."""
    ok = [r for r in results if r.ok]
    bad = [r for r in results if not r.ok]
    text = f"Moved {len(ok)} of {plural(len(results), 'device')} to `{esc(request.params['ou'])}`."
    if bad:
        first = bad[0].error.message if bad[0].error else "unknown error"
        text += f" {len(bad)} failed (first: {first})."
    finish(
        svc,
        request.id,
        FAILED if bad else SUCCEEDED,
        text,
        {"moved": len(ok), "failed": [r.device_id for r in bad][:100]},
    )


def finish(svc: Services, request_id: str, state: str, text: str, detail: dict[str, Any]) -> bool:
    """executing → a final state, once; the outcome goes into both threads."""
    won = transition(
        svc,
        request_id,
        (EXECUTING,),
        state,
        BOT,
        detail={"outcome": text, **detail},
        set_={"result": json.dumps({"text": text, **detail})},
    )
    if not won:
        return False
    request = load(svc, request_id)
    _refresh_messages(svc, request_id)
    tell_threads(svc, request, text, both=True, reissue=state == EXPIRED)
    from bot import lost

    lost.on_request_finished(svc, request, state)
    return True


def tell_threads(
    svc: Services,
    request: Request,
    text: str,
    *,
    approval: bool = True,
    both: bool = True,
    reissue: bool = False,
) -> None:
    """Say something in the request's threads (the requester's, and the approval one)."""
    blocks = request_views.thread_note(request, text, reissue=reissue)
    targets = [(request.requester_channel, request.requester_ts)]
    if approval and both:
        targets.append((request.approval_channel, request.approval_ts))
    for channel, ts in targets:
        if channel and ts:
            try:
                svc.out.post(channel, text, blocks, thread_ts=ts)
            except Exception:
                log.exception("could not post to the thread of %s", request.id)


def _refresh_messages(svc: Services, request_id: str) -> None:
    """Edit the approval message and the requester's message to show the current state."""
    request = load(svc, request_id)
    if request.approval_channel and request.approval_ts:
        text, blocks = _approval_view(svc, request)
        try:
            svc.out.update(request.approval_channel, request.approval_ts, text, blocks)
        except Exception:
            log.exception("could not update the approval message of %s", request_id)
    if request.requester_channel and request.requester_ts:
        text, blocks = request_views.requester_message(request)
        try:
            svc.out.update(request.requester_channel, request.requester_ts, text, blocks)
        except Exception:
            log.exception("could not update the requester message of %s", request_id)


# ---- jobs: TTL and recovery ----------------------------------------------------------------------


def expire_request(svc: Services, request_id: str) -> bool:
    if not transition(svc, request_id, (PENDING,), EXPIRED, BOT, detail={"why": "approval TTL"}):
        return False
    _refresh_messages(svc, request_id)
    request = load(svc, request_id)
    tell_threads(
        svc,
        request,
        f"<@{request.requester}>, your request expired: nobody approved it in time."
        " Nothing was done to the device.",
        reissue=True,
    )
    return True


def remind_approvers(svc: Services) -> int:
    """At half the approval TTL, once per request: a nudge in the approval thread naming the approvers."""
    now = svc.clock()
    half = svc.settings.approval_ttl / 2
    rows = (
        svc.store.db()
        .execute(
            "SELECT id FROM requests WHERE state = ? AND approval_ts IS NOT NULL AND created_at <= ?"
            " AND id NOT IN (SELECT request_id FROM audit_events WHERE event = 'reminded'"
            " AND request_id IS NOT NULL)",
            [PENDING, now - half],
        )
        .fetchall()
    )
    sent = 0
    for (request_id,) in rows:
        with svc.store.transaction() as db:
            done = db.execute(
                "SELECT 1 FROM audit_events WHERE event = 'reminded' AND request_id = ?",
                [request_id],
            ).fetchone()
            if done:
                continue
            audit.record(svc.store, actor=BOT, event="reminded", request_id=request_id)
        request = load(svc, request_id)
        approvers = [a for a in svc.settings.device_approvers if a != request.requester]
        text = request_views.reminder_text(request, approvers, now)
        if request.approval_channel and request.approval_ts:
            try:
                svc.out.post(request.approval_channel, text, thread_ts=request.approval_ts)
            except Exception:
                log.exception("could not remind the approvers of %s", request_id)
        _refresh_messages(svc, request_id)
        sent += 1
    return sent


def expire_pending(svc: Services) -> int:
    """The TTL job: pending requests past APPROVAL_TTL end as expired."""
    rows = (
        svc.store.db()
        .execute(
            "SELECT id FROM requests WHERE state = ? AND expires_at < ?", [PENDING, svc.clock()]
        )
        .fetchall()
    )
    return sum(expire_request(svc, row[0]) for row in rows)


def recover(svc: Services) -> int:
    """Requests a dead process left `approved` or `executing`, or whose answer was lost.

    `approved` was never sent (the Google call comes only after `executing`), so it runs.
    `executing` without a tracked command is reconciled against Google — never resent.
    """
    now = svc.clock()
    rows = (
        svc.store.db()
        .execute(
            "SELECT id, state, executor, reconcile, google_ref FROM requests WHERE state IN (?, ?)",
            [APPROVED, EXECUTING],
        )
        .fetchall()
    )
    handled = 0
    owner = svc.owner
    for request_id, state, executor, reconcile, google_ref in rows:
        orphan = executor != owner and not process_alive(svc.store, executor, now)
        if state == APPROVED and orphan:
            _set(svc, request_id, executor=owner)
            execute(svc, request_id, actor=BOT)
            handled += 1
        elif state == EXECUTING and google_ref is None and (orphan or reconcile):
            request = load(svc, request_id)
            # a call still in flight can land until its own timeout: read back only after that
            if now < (request.executing_at or 0) + svc.settings.google_timeout + 1:
                continue
            reconcile_request(svc, request)
            handled += 1
    return handled


def reconcile_request(svc: Services, request: Request) -> None:
    """Find out from Google what happened to a request whose answer was lost."""
    from bot import outcomes

    spec = request.spec
    try:
        if request.params.get("bulk"):
            bulk_runner.reconcile(svc, request)
            return
        if spec.kind == "status":
            lost_answer = OutcomeUnknown("Google's answer to the status change was lost.")
            [result] = svc.google.require_chrome().confirm_status(
                [DeviceResult(request.device_ids[0], False, lost_answer)],
                cast(StatusAction, spec.google),
            )
            if result.outcome_unknown:
                raise lost_answer  # the device could not be read: the next run tries again
            if result.ok:
                finish(
                    svc,
                    request.id,
                    SUCCEEDED,
                    f"Done: the device is {STATUS_AFTER[spec.google]} (confirmed by reading it back).",
                    {"reconciled": True},
                )
            else:
                finish(
                    svc,
                    request.id,
                    FAILED,
                    f"Not done: {sentence(result.error.message if result.error else 'unknown')} Nothing"
                    " was resent. Request it again if still needed.",
                    {"reconciled": True},
                )
            return
        if spec.kind == "move":
            _reconcile_move(svc, request)
            return
        if spec.kind == "android_command":
            operation = outcomes.find_operation(svc, request)
            if operation is not None:
                _note(
                    svc,
                    request,
                    "reconciled",
                    {"operation": operation["name"]},
                    "After a restart the bot found the command at Google and follows it (it was not sent again).",
                )
                outcomes.track(svc, request, operation["name"], operation)
                return
            finish(
                svc,
                request.id,
                FAILED,
                "Not done: Google has no such command for the device. The bot stopped before sending it;"
                " nothing was resent. Request it again if still needed.",
                {"reconciled": True},
            )
            return
        finish(
            svc,
            request.id,
            FAILED,
            "Outcome unknown: the bot stopped while sending this command and Google keeps no list of"
            " Chrome commands to check. It was not resent; look at the device before asking again.",
            {"reconciled": True},
        )
    except DeviceBotError as exc:
        log.warning("reconciling %s failed: %s", request.id, exc.message)


def _reconcile_move(svc: Services, request: Request) -> None:
    """A move whose answer was lost: the known results, and each other device's OU read back."""
    known: dict[str, str | None] = request.result.get("known") or {}
    unknown = OutcomeUnknown("Google's answer to the move was lost.")
    results = [
        DeviceResult(d, True, None)
        if d in known and known[d] is None
        else DeviceResult(d, False, GoogleError(str(known[d])) if d in known else unknown)
        for d in request.device_ids
    ]
    results = svc.google.require_chrome().confirm_moved(results, request.params["ou"])
    if any(r.outcome_unknown for r in results):
        raise unknown  # a device could not be read: the next recovery run tries again
    _finish_move(svc, request, results)


def jobs(svc: Services) -> list[JobSpec]:
    """The approval jobs: TTL expiry and recovery of interrupted requests."""
    return [
        JobSpec(
            "expire-requests", expire_pending, max(1.0, min(60.0, svc.settings.approval_ttl / 10))
        ),
        JobSpec(
            "remind-approvers",
            remind_approvers,
            max(0.5, min(60.0, svc.settings.approval_ttl / 20)),
        ),
        JobSpec("recover-executing", recover, max(0.5, svc.settings.lease_seconds), at_start=True),
        JobSpec(
            "run-held-secrets",
            run_held,
            max(0.2, min(1.0, svc.settings.poll_interval)),
            needs_lease=False,
        ),
    ]


# ---- Slack wiring ------------------------------------------------------------------------------------


def register(app: App, svc: Services, commands: Commands) -> None:
    """Approve / Deny / Cancel / Re-issue buttons, the deny modal, and `/device cancel`."""

    def on_approve(ack: Ack, body: dict[str, Any]) -> None:
        """Approve button in the approvals channel."""
        ack()
        approve(svc, body["actions"][0]["value"], body["user"]["id"])

    def on_deny(ack: Ack, body: dict[str, Any]) -> None:
        """Deny button: ask for an optional reason in a modal."""
        ack()
        request_id = body["actions"][0]["value"]
        user = body["user"]["id"]
        if not _approver(svc, user, request_id, "deny"):
            raise _refused(
                svc, user, request_id, "deny", "Only device approvers can deny requests."
            )
        svc.out.open_view(body["trigger_id"], request_views.deny_modal(load(svc, request_id)))

    def on_deny_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        """The deny modal's submission."""
        note = (
            view["state"]["values"]
            .get(ids.BlockId.DENY_REASON, {})
            .get(ids.BlockId.DENY_REASON, {})
            .get("value")
            or ""
        )
        if len(note) > 500:
            ack(
                response_action="errors",
                errors={ids.BlockId.DENY_REASON: "At most 500 characters."},
            )
            return
        ack()
        deny(svc, view["private_metadata"], body["user"]["id"], note.strip())

    def on_cancel_button(ack: Ack, body: dict[str, Any]) -> None:
        """Cancel button on a request message."""
        ack()
        message = cancel(svc, body["actions"][0]["value"], body["user"]["id"])
        svc.out.respond(body["response_url"], message) if body.get("response_url") else None

    def on_reissue(ack: Ack, body: dict[str, Any]) -> None:
        """Re-issue an expired command: a new request, approved again if the action needs it."""
        ack()
        new_id = reissue(svc, body["actions"][0]["value"], body["user"]["id"])
        if body.get("response_url"):
            svc.out.respond(body["response_url"], f"Asked again as request `{new_id}`.")

    def on_request_again(ack: Ack, body: dict[str, Any]) -> None:
        """*Request again* on a request that expired unapproved: a new request, approved anew."""
        ack()
        new_id = request_again(svc, body["actions"][0]["value"], body["user"]["id"])
        if body.get("response_url"):
            svc.out.respond(body["response_url"], f"Asked again as request `{new_id}`.")

    def cancel_command(inv: Invocation) -> None:
        """`/device cancel <request>`."""
        if not inv.words:
            inv.reply("Usage: `/device cancel <request id>` — `/device requests` lists yours.")
            return
        inv.reply(cancel(svc, inv.words[0].upper(), inv.user_id))

    app.action(ids.ActionId.APPROVE)(on_approve)
    app.action(ids.ActionId.DENY)(on_deny)
    app.view(ids.CallbackId.DENY)(on_deny_submit)
    app.action(ids.ActionId.CANCEL_REQUEST)(on_cancel_button)
    app.action(ids.ActionId.REISSUE)(on_reissue)
    app.action(ids.ActionId.REQUEST_AGAIN)(on_request_again)
    commands.add(
        Subcommand(
            "cancel",
            cancel_command,
            "/device cancel <request>",
            "Withdraw a pending request, or cancel a command the device has not run yet",
            "/device cancel R1A2B3C4D5E6F",
        )
    )


def reissue(svc: Services, request_id: str, user: str) -> str:
    """A new request with the same action, devices and parameters (approved again if needed).

    Only for a request whose command expired on the device (it was sent; the device never
    ran it), only by its requester or an approver, and only once: the click can be forged
    or repeated, so the button proves nothing.
    """
    old = load(svc, request_id)
    if svc.roles.role_of(user) is Role.NONE:
        raise _refused(svc, user, request_id, "reissue", "You are not allowed to use device-bot.")
    if user != old.requester and not _approver(svc, user, request_id, "reissue"):
        raise _refused(
            svc,
            user,
            request_id,
            "reissue",
            "Only the requester or an approver can re-issue a request.",
        )
    if old.state != EXPIRED or old.google_ref is None:
        raise Conflict(
            f"Only a command that expired on the device can be re-issued; request `{old.id}` is"
            f" {old.state}. Nothing was done."
        )
    if old.spec.secret_fields():
        raise ValidationError(
            "This action carries a secret; run it again with `/device " + old.action + "`."
        )
    with svc.store.transaction() as db:  # once: a second click hears where the first went
        row = db.execute(
            "SELECT sum(event = 'reissued') - sum(event = 'reissue_failed') FROM audit_events"
            " WHERE request_id = ?",
            [old.id],
        ).fetchone()
        if row[0]:
            raise Conflict(
                f"Request `{old.id}` was already re-issued; its thread says as which request."
            )
        audit.record(svc.store, actor=user, event="reissued", request_id=old.id)
    try:
        devices = tuple(svc.devices.get(old.platform, device_id) for device_id in old.device_ids)
        new_id = submit(
            svc,
            NewRequest(
                action=old.action,
                platform=old.platform,
                devices=devices,
                params=old.params,
                requester=user,
                reason=f"Re-issue of {old.id}" + (f": {old.reason}" if old.reason else ""),
                channel=old.requester_channel,
            ),
        )
    except Exception as exc:
        audit.record(
            svc.store,
            actor=user,
            event="reissue_failed",
            request_id=old.id,
            detail={"error": getattr(exc, "code", type(exc).__name__)},
        )
        raise
    tell_threads(svc, old, f"Re-issued by <@{user}> as request `{new_id}`.")
    return new_id


def request_again(svc: Services, request_id: str, user: str) -> str:
    """*Request again*: a request that expired before anyone approved it becomes a new request
    with the same action, devices, details and reason, which waits for approval again.

    Only such a request (never sent to Google), only by its requester or an approver, and only
    once: the click can be forged or repeated, so the button proves nothing.
    """
    old = load(svc, request_id)
    if svc.roles.role_of(user) is Role.NONE:
        raise _refused(svc, user, request_id, "ask again", "You are not allowed to use device-bot.")
    if user != old.requester and not _approver(svc, user, request_id, "ask again"):
        raise _refused(
            svc,
            user,
            request_id,
            "ask again",
            "Only the requester or an approver can ask for a request again.",
        )
    if old.state != EXPIRED or old.google_ref is not None or old.decided_by is not None:
        raise Conflict(
            f"Only a request that expired before anyone approved it can be asked again; request"
            f" `{old.id}` is {old.state}. Nothing was done."
        )
    if old.spec.secret_fields():
        raise ValidationError(
            "This action carries a secret; run it again with `/device " + old.action + "`."
        )
    with svc.store.transaction() as db:  # once: a second click hears where the first went
        row = db.execute(
            "SELECT sum(event = 'asked_again') - sum(event = 'ask_again_failed') FROM audit_events"
            " WHERE request_id = ?",
            [old.id],
        ).fetchone()
        if row[0]:
            raise Conflict(f"Request `{old.id}` was already asked again; its thread says as which.")
        audit.record(svc.store, actor=user, event="asked_again", request_id=old.id)
    try:
        devices = tuple(svc.devices.get(old.platform, device_id) for device_id in old.device_ids)
        new_id = submit(
            svc,
            NewRequest(
                action=old.action,
                platform=old.platform,
                devices=devices,
                params=old.params,
                requester=user,
                reason=old.reason or f"Asked again after {old.id} expired",
                channel=old.requester_channel,
            ),
        )
    except Exception as exc:
        audit.record(
            svc.store,
            actor=user,
            event="ask_again_failed",
            request_id=old.id,
            detail={"error": getattr(exc, "code", type(exc).__name__)},
        )
        raise
    tell_threads(svc, old, f"<@{user}> asked again: request `{new_id}`.")
    return new_id
