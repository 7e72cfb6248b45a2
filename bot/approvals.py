"""The decisions on a request: submit, approve, deny, cancel, the approval jobs (expiry,
reminders, recovery) and their listeners. Asking again after an expiry is bot/resubmit.py.

What happens when someone clicks Approve, top to bottom:

1. The server answers the click at once (`SlackIngress`, bot/ingress.py: 200, no body) and
   hands it to Bolt on the listener pool once the burst it came in is answered (the ack gate,
   bot/gate.py); the re-delivery check claims it (bot/listeners.py: `guard`), then
   `register.on_approve` (here) calls `approve()`.
2. `approve()` reads the request (`requests.load`), checks who clicks (an approver, never
   the requester; above a bulk cap only with the explicit raise; a refusal is audited), and
   wins `pending → approved` once: `requests.transition` is a conditional write that commits
   with its audit event, then tells the hooks (`Services.changed`, bot/changes.py).
3. `execution.begin()` wins `approved → executing` once (unless another live process holds
   the request's secret in memory: that one runs it, `execution.run_held`).
4. `threads.announce()` tells both changes at once: the approval message and the
   requester's message edited once each, one note in each thread (bot/request_views.py).
5. `execution.run()` re-reads the device and re-checks it (`_preflight`: the fingerprint
   of what was approved, the device's state), then makes the one Google call (`_perform`,
   through bot/google/). A lost answer is reconciled by reading Google back, never resent.
6. A command the device runs later is followed by `outcomes.track()` and the poll job
   (bot/outcomes.py; the words are bot/outcome_words.py).
7. `threads.finish()` ends the request once (executing → succeeded, failed, expired or
   cancelled), tells it the same way, then `Services.changed(RequestFinished(...))`.

The hooks registered at start-up follow the changes: the App Home (bot/home.py) and
Workflow Builder steps (bot/workflow.py) every `RequestChanged`, lost cases (bot/lost.py)
each `RequestFinished`.

The flow runs one way, approvals → execution → outcomes → threads → requests →
request_model; nothing below imports back up. The states are in bot/request_model.py,
the requests table and the transitions in bot/requests.py.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App

from bot import audit, catalog, execution, ids, request_views, requests, threads
from bot.blocks import esc, sentence
from bot.commands import Commands, Invocation, Subcommand
from bot.errors import (
    Conflict,
    PermissionDenied,
    ValidationError,
)
from bot.jobs import JobSpec
from bot.requests import RequestState
from bot.roles import MembershipUnknown
from bot.services import Services

log = logging.getLogger(__name__)


def above_cap(request: requests.Request | requests.NewRequest, count: int) -> int | None:
    """The bulk cap this many devices exceed (an approver must raise it explicitly), else None."""
    cap = (request.params.get("bulk") or {}).get("cap")
    return int(cap) if cap is not None and count > int(cap) else None


def submit(svc: Services, new: requests.NewRequest) -> str:
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
    request_id = requests.create(svc, new, needs_approval=needs)
    request = threads.post_requester_message(svc, requests.load(svc, request_id))
    if needs:
        threads.post_approval_message(svc, request)
    else:
        execution.execute(svc, request_id, actor=new.requester)
    return request_id


def refused(
    svc: Services, user: str, request_id: str, attempt: str, message: str
) -> PermissionDenied:
    """Audit a refused attempt on a request; the caller raises what this returns."""
    audit.record(
        svc.store, actor=user, event="refused", request_id=request_id, detail={"attempt": attempt}
    )
    return PermissionDenied(message)


def is_approver(svc: Services, user: str, request_id: str, attempt: str) -> bool:
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


def approve(svc: Services, request_id: str, approver: str, *, raise_cap: bool = False) -> None:
    """What happens when someone clicks Approve.

    1. Only an approver may, and never on their own request (refusals are audited); a bulk
       request above its cap only with the explicit raise (`raise_cap`).
    2. pending → approved is a conditional write: of 20 simultaneous clicks one wins,
       the others hear who decided first.
    3. The approval message shows who approved; the request runs (`execute`).
    """
    request = requests.load(svc, request_id)
    if not is_approver(svc, approver, request_id, "approve"):
        raise refused(
            svc, approver, request_id, "approve", "Only device approvers can approve requests."
        )
    if approver == request.requester:
        raise refused(
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
        raise refused(
            svc,
            approver,
            request_id,
            "approve-above-cap",
            f"This batch of {len(request.device_ids)} is above the cap of {cap} for"
            f" `{request.action}`: approve it with “Approve all {len(request.device_ids)}”"
            " to raise the cap for this request. Nothing was done.",
        )
    holder = execution.elsewhere(svc, request)
    won = requests.transition(
        svc,
        request_id,
        (RequestState.PENDING,),
        RequestState.APPROVED,
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
        raise Conflict(_already(requests.load(svc, request_id)))
    if svc.metrics is not None:
        svc.metrics.approval_wait.observe(max(0.0, svc.clock() - request.created_at))
    # approved and executing are told together, once, before the Google call
    running = holder is None and execution.begin(svc, request_id, approver)
    request = requests.load(svc, request_id)
    threads.announce(svc, request, f"Approved by <@{approver}>. Running it now.")
    if running:
        execution.run(svc, request)


def deny(svc: Services, request_id: str, approver: str, note: str = "") -> None:
    """An approver turns the request down (optionally saying why)."""
    request = requests.load(svc, request_id)
    if not is_approver(svc, approver, request_id, "deny"):
        raise refused(svc, approver, request_id, "deny", "Only device approvers can deny requests.")
    if approver == request.requester:
        raise PermissionDenied(
            "To withdraw your own request use `/device cancel " + request_id + "`."
        )
    won = requests.transition(
        svc,
        request_id,
        (RequestState.PENDING,),
        RequestState.DENIED,
        approver,
        detail={"note": note} if note else None,
        set_={"decided_by": approver, "decided_at": svc.clock(), "decision_note": note or None},
    )
    if not won:
        raise Conflict(_already(requests.load(svc, request_id)))
    why = f" Their reason: {esc(sentence(note))}" if note else ""
    threads.announce(
        svc,
        requests.load(svc, request_id),
        f"<@{request.requester}>, your request was denied by <@{approver}>.{why}"
        " Nothing was done to the device.",
    )


def cancel(svc: Services, request_id: str, user: str) -> str:
    """Withdraw a pending request, or cancel a command the device has not run yet."""
    request = requests.load(svc, request_id)
    if user != request.requester and not is_approver(svc, user, request_id, "cancel"):
        raise refused(
            svc,
            user,
            request_id,
            "cancel",
            "Only the requester or an approver can cancel a request.",
        )
    if request.state == RequestState.PENDING:
        if not requests.transition(
            svc,
            request_id,
            (RequestState.PENDING,),
            RequestState.CANCELLED,
            user,
            set_={"decided_by": user},
        ):
            raise Conflict(_already(requests.load(svc, request_id)))
        threads.announce(
            svc,
            requests.load(svc, request_id),
            f"Cancelled by <@{user}> before anyone approved it.",
        )
        return f"Request `{request_id}` is cancelled."
    if (
        request.state == RequestState.EXECUTING
        and request.google_ref
        and request.platform == "android"
    ):
        svc.google.require_android().cancel_operation(request.google_ref)
        threads.note(
            svc,
            request,
            "cancel_requested",
            {"operation": request.google_ref},
            f"<@{user}> asked Google to cancel the command; waiting for the device's answer.",
            actor=user,
        )
        return f"Asked Google to cancel the command of `{request_id}`; the thread will say how it ends."
    if request.state == RequestState.EXECUTING and request.platform == "chrome":
        raise Conflict(
            "A Chrome command that was sent cannot be cancelled through the API; it expires if not run."
        )
    raise Conflict(_already(request))


def _already(request: requests.Request) -> str:
    who = f" by <@{request.decided_by}>" if request.decided_by else ""
    return f"Request `{request.id}` was already decided{who}: it is {request.state}."


def expire_request(svc: Services, request_id: str) -> bool:
    if not requests.transition(
        svc,
        request_id,
        (RequestState.PENDING,),
        RequestState.EXPIRED,
        requests.BOT,
        detail={"why": "approval TTL"},
    ):
        return False
    request = requests.load(svc, request_id)
    threads.announce(
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
    sent = 0
    for request_id in requests.due_reminders(svc, now - half):
        with svc.store.transaction() as db:
            done = db.execute(
                "SELECT 1 FROM audit_events WHERE event = 'reminded' AND request_id = ?",
                [request_id],
            ).fetchone()
            if done:
                continue
            audit.record(svc.store, actor=requests.BOT, event="reminded", request_id=request_id)
        request = requests.load(svc, request_id)
        approvers = [a for a in svc.settings.device_approvers if a != request.requester]
        text = request_views.reminder_text(request, approvers, now)
        if request.approval_channel and request.approval_ts:
            try:
                svc.out.post(request.approval_channel, text, thread_ts=request.approval_ts)
            except Exception:
                log.exception("could not remind the approvers of %s", request_id)
        threads.refresh_messages(svc, request)
        sent += 1
    return sent


def expire_pending(svc: Services) -> int:
    """The TTL job: pending requests past APPROVAL_TTL end as expired."""
    return sum(
        expire_request(svc, request_id) for request_id in requests.past_ttl(svc, svc.clock())
    )


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
        JobSpec(
            "recover-executing",
            execution.recover,
            max(0.5, svc.settings.lease_seconds),
            at_start=True,
        ),
        JobSpec(
            "run-held-secrets",
            execution.run_held,
            max(0.2, min(1.0, svc.settings.poll_interval)),
            needs_lease=False,
        ),
    ]


def register(app: App, svc: Services, commands: Commands) -> None:
    """Approve / Deny / Cancel buttons, the deny modal, and `/device cancel`."""

    def on_approve(ack: Ack, body: dict[str, Any]) -> None:
        """Approve button in the approvals channel."""
        ack()
        approve(svc, body["actions"][0]["value"], body["user"]["id"])

    def on_deny(ack: Ack, body: dict[str, Any]) -> None:
        """Deny button: ask for an optional reason in a modal."""
        ack()
        request_id = body["actions"][0]["value"]
        user = body["user"]["id"]
        if not is_approver(svc, user, request_id, "deny"):
            raise refused(svc, user, request_id, "deny", "Only device approvers can deny requests.")
        svc.out.open_view(
            body["trigger_id"], request_views.deny_modal(requests.load(svc, request_id))
        )

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
    commands.add(
        Subcommand(
            "cancel",
            cancel_command,
            "/device cancel <request>",
            "Withdraw a pending request, or cancel a command the device has not run yet",
            "/device cancel R1A2B3C4D5E6F",
        )
    )
