"""Asking again: a new request made from an old one that expired, once, by its requester
or an approver — *Re-issue* when the command expired on the device (it was sent; the
device never ran it), *Request again* when nobody approved it in time. The new request
goes through `approvals.submit` like any other (approved again if its action needs it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App

from bot import approvals, audit, ids, requests, threads
from bot.commands import Commands
from bot.errors import Conflict, ValidationError
from bot.requests import RequestState
from bot.roles import Role
from bot.services import Services


def register(app: App, svc: Services, commands: Commands) -> None:
    """The *Re-issue* and *Request again* buttons of an expired request's thread."""

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

    app.action(ids.ActionId.REISSUE)(on_reissue)
    app.action(ids.ActionId.REQUEST_AGAIN)(on_request_again)


def reissue(svc: Services, request_id: str, user: str) -> str:
    """A new request with the same action, devices and parameters (approved again if needed).

    Only for a request whose command expired on the device (it was sent; the device never
    ran it), only by its requester or an approver, and only once: the click can be forged
    or repeated, so the button proves nothing.
    """
    return _resubmit(
        svc,
        request_id,
        user,
        attempt="reissue",
        who="Only the requester or an approver can re-issue a request.",
        fits=lambda old: old.state == RequestState.EXPIRED and old.google_ref is not None,
        unfit="Only a command that expired on the device can be re-issued",
        events=("reissued", "reissue_failed"),
        already="was already re-issued; its thread says as which request.",
        reason=lambda old: f"Re-issue of {old.id}" + (f": {old.reason}" if old.reason else ""),
        told="Re-issued by <@{user}> as request `{new_id}`.",
    )


def request_again(svc: Services, request_id: str, user: str) -> str:
    """*Request again*: a request that expired before anyone approved it becomes a new request
    with the same action, devices, details and reason, which waits for approval again.

    Only such a request (never sent to Google), only by its requester or an approver, and only
    once: the click can be forged or repeated, so the button proves nothing.
    """
    return _resubmit(
        svc,
        request_id,
        user,
        attempt="ask again",
        who="Only the requester or an approver can ask for a request again.",
        fits=lambda old: (
            old.state == RequestState.EXPIRED and old.google_ref is None and old.decided_by is None
        ),
        unfit="Only a request that expired before anyone approved it can be asked again",
        events=("asked_again", "ask_again_failed"),
        already="was already asked again; its thread says as which.",
        reason=lambda old: old.reason or f"Asked again after {old.id} expired",
        told="<@{user}> asked again: request `{new_id}`.",
    )


def _resubmit(
    svc: Services,
    request_id: str,
    user: str,
    *,
    attempt: str,
    who: str,
    fits: Callable[[requests.Request], bool],
    unfit: str,
    events: tuple[str, str],
    already: str,
    reason: Callable[[requests.Request], str],
    told: str,
) -> str:
    """A new request made from an old one, once, by its requester or an approver."""
    old = requests.load(svc, request_id)
    if svc.roles.role_of(user) is Role.NONE:
        raise approvals.refused(
            svc, user, request_id, attempt, "You are not allowed to use device-bot."
        )
    if user != old.requester and not approvals.is_approver(svc, user, request_id, attempt):
        raise approvals.refused(svc, user, request_id, attempt, who)
    if not fits(old):
        raise Conflict(f"{unfit}; request `{old.id}` is {old.state}. Nothing was done.")
    if old.spec.secret_fields():
        raise ValidationError(
            "This action carries a secret; run it again with `/device " + old.action + "`."
        )
    done, failed = events
    with svc.store.transaction() as db:  # once: a second click hears where the first went
        row = db.execute(
            "SELECT sum(CASE WHEN event = ? THEN 1 WHEN event = ? THEN -1 ELSE 0 END)"
            " FROM audit_events WHERE request_id = ?",
            [done, failed, old.id],
        ).fetchone()
        if row[0]:
            raise Conflict(f"Request `{old.id}` {already}")
        audit.record(svc.store, actor=user, event=done, request_id=old.id)
    try:
        devices = tuple(svc.devices.get(old.platform, device_id) for device_id in old.device_ids)
        new_id = approvals.submit(
            svc,
            requests.NewRequest(
                action=old.action,
                platform=old.platform,
                devices=devices,
                params=old.params,
                requester=user,
                reason=reason(old),
                channel=old.requester_channel,
            ),
        )
    except Exception as exc:
        audit.record(
            svc.store,
            actor=user,
            event=failed,
            request_id=old.id,
            detail={"error": getattr(exc, "code", type(exc).__name__)},
        )
        raise
    threads.tell_threads(svc, old, told.format(user=user, new_id=new_id))
    return new_id
