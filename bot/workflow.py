"""The Workflow Builder step "Request a device action" (a Slack custom step, manifest.yml
`functions.request_device_action`).

Inputs: device (a serial, device id or asset id), action (a catalog name: disable, lock, …),
reason, and requested_by (the person running the workflow). The step creates the request
through the same path as the action modal — the device resolved exactly, the capability
check, `approvals.submit` with the catalog's spec — so it is approved, run exactly once,
followed and audited like any other.

The step ends when the request does:
- it ran (succeeded, failed, or a command that expired on the device): `functions.completeSuccess`
  with the outputs request_id, final_state and outcome;
- it never ran (refused before approval, denied, cancelled, expired unapproved):
  `functions.completeError` with the reason, which Slack shows the workflow's user.

The execution id is stored with the request (table workflow_steps), so a step started before
a restart is completed by whichever process sees its request end; a conditional write claims
the completion, so it is sent once. A job completes steps whose request ended while no
process could (e.g. it stopped between the two writes).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Fail
from slack_sdk.errors import SlackApiError

from bot import approvals, capabilities, catalog, ids, requests
from bot.changes import Change, RequestChanged
from bot.commands import Commands
from bot.errors import Ambiguous, DeviceBotError, PermissionDenied, ValidationError
from bot.jobs import JobSpec
from bot.requests import RequestState
from bot.roles import Role
from bot.services import Services

log = logging.getLogger(__name__)

OPEN, COMPLETING, COMPLETED, FAILED = "open", "completing", "completed", "failed"
#: Slack's answers that mean the step cannot be completed any more: never retried
GONE = frozenset({"function_execution_not_found", "execution_not_in_running_state"})
MAX_REASON = 500
#: the step's parameters (manifest.yml declares the same; tests/test_manifest.py checks)
INPUTS = ("device", "action", "reason", "requested_by")
OUTPUTS = ("request_id", "final_state", "outcome")


def start(svc: Services, execution_id: str, inputs: dict[str, Any]) -> str | None:
    """Create the request of a step; returns its id (None when this execution was seen before:
    Slack re-delivered the event). Raises a DeviceBotError when the step cannot start."""
    now = svc.clock()
    cursor = svc.store.db().execute(
        "INSERT OR IGNORE INTO workflow_steps(execution_id, state, created_at, updated_at)"
        " VALUES (?, ?, ?, ?)",
        [execution_id, OPEN, now, now],
    )
    if cursor.rowcount != 1:
        log.info("workflow step %s was delivered again; ignored", execution_id)
        return None
    try:
        new = _new_request(svc, inputs)
        request_id = approvals.submit(svc, new)
    except DeviceBotError as exc:
        _close(svc, execution_id, FAILED, exc.message)
        raise
    except Exception:
        _close(svc, execution_id, FAILED, "unexpected error")
        raise
    svc.store.db().execute(
        "UPDATE workflow_steps SET request_id = ?, updated_at = ? WHERE execution_id = ?",
        [request_id, svc.clock(), execution_id],
    )
    log.info("workflow step %s: request %s", execution_id, request_id)
    finish_step(svc, request_id)  # a request that needed no approval may have ended already
    return request_id


def _new_request(svc: Services, inputs: dict[str, Any]) -> requests.NewRequest:
    """The step's inputs, checked as the modal checks them."""
    ref = str(inputs.get("device") or "").strip()
    name = str(inputs.get("action") or "").strip().lower()
    reason = str(inputs.get("reason") or "").strip()
    user = str(inputs.get("requested_by") or "").strip()
    if not ref or not name:
        raise ValidationError("The step needs a device and an action.")
    if len(reason) > MAX_REASON:
        raise ValidationError(f"The reason is longer than {MAX_REASON} characters.")
    if not user:
        raise ValidationError("The step needs requested_by: the person running the workflow.")
    if svc.roles.role_of(user) < Role.OPERATOR:
        raise PermissionDenied(
            f"<@{user}> is not a device operator, so the workflow cannot ask for `{name}`"
            " on their behalf."
        )
    if name not in catalog.names():
        raise ValidationError(
            f"`{name}` is not a device action. Known: {', '.join(catalog.names())}."
        )
    try:
        device = svc.devices.resolve(ref)
    except Ambiguous as exc:
        raise ValidationError(
            f"{exc.message} A workflow never guesses: give the device id or the full serial."
        ) from None
    spec = catalog.action_for(name, device.platform)
    if spec.kind == "move" or spec.secret_fields():
        raise ValidationError(
            f"`{name}` needs more than a device and a reason; use `/device {name}`."
        )
    refusal = capabilities.refusal(spec, capabilities.facts_for(svc, device))
    if refusal:
        raise ValidationError(refusal)
    values: dict[str, Any] = {f.name: f.initial for f in spec.fields if f.initial is not None}
    values.update(catalog.device_initial(spec, device.ownership))
    values["reason"] = reason
    params = spec.parse(values)
    catalog.check_device(spec, params, device.ownership)
    params.pop("reason", None)
    return requests.NewRequest(
        action=spec.name,
        platform=spec.platform,
        devices=(device,),
        params=params,
        requester=user,
        reason=reason,
    )


def finish_step(svc: Services, request_id: str) -> bool:
    """Complete or fail the step waiting for `request_id` if the request has ended; once."""
    row = (
        svc.store.db()
        .execute(
            "SELECT execution_id FROM workflow_steps WHERE request_id = ? AND state = ?",
            [request_id, OPEN],
        )
        .fetchone()
    )
    if row is None:
        return False
    request = requests.load(svc, request_id)
    if request.state not in requests.FINAL:
        return False
    execution_id = row[0]
    with svc.store.transaction() as db:  # claim it: one process, one thread sends it
        claimed = db.execute(
            "UPDATE workflow_steps SET state = ?, updated_at = ? WHERE execution_id = ? AND state = ?",
            [COMPLETING, svc.clock(), execution_id, OPEN],
        ).rowcount
    if claimed != 1:
        return False
    outcome = str(request.result.get("text") or request_views_state(request))
    ran = request.executing_at is not None
    try:
        if ran:
            svc.out.complete_step(
                execution_id,
                {"request_id": request.id, "final_state": request.state, "outcome": outcome},
            )
        else:
            svc.out.fail_step(execution_id, never_ran(request))
    except SlackApiError as exc:
        error = str(exc.response.get("error"))
        if error not in GONE:  # a transient failure: the job tries again
            _set_state(svc, execution_id, OPEN)
            raise
        log.warning("workflow step %s could not be completed: %s", execution_id, error)
        _close(svc, execution_id, FAILED, error)
        return False
    except Exception:
        _set_state(svc, execution_id, OPEN)
        raise
    _close(svc, execution_id, COMPLETED if ran else FAILED, None if ran else never_ran(request))
    return True


def request_views_state(request: requests.Request) -> str:
    return f"Request {request.id} is {request.state}."


def never_ran(request: requests.Request) -> str:
    """Why a request ended without running, in words for the workflow's user."""
    if request.state == RequestState.DENIED:
        note = f" Reason: {request.decision_note}" if request.decision_note else ""
        return (
            f"Request {request.id} was denied by <@{request.decided_by}>.{note} Nothing was done."
        )
    if request.state == RequestState.CANCELLED:
        return f"Request {request.id} was cancelled by <@{request.decided_by}>. Nothing was done."
    if request.state == RequestState.EXPIRED:
        return f"Request {request.id} expired: nobody approved it in time. Nothing was done."
    return f"Request {request.id} ended {request.state} without running."


def _set_state(svc: Services, execution_id: str, state: str) -> None:
    svc.store.db().execute(
        "UPDATE workflow_steps SET state = ?, updated_at = ? WHERE execution_id = ?",
        [state, svc.clock(), execution_id],
    )


def _close(svc: Services, execution_id: str, state: str, error: str | None) -> None:
    svc.store.db().execute(
        "UPDATE workflow_steps SET state = ?, error = ?, updated_at = ? WHERE execution_id = ?",
        [state, (error or None) and str(error)[:500], svc.clock(), execution_id],
    )


def on_change(svc: Services, change: Change) -> None:
    """The hook: a request that reached a final state ends its step."""
    if isinstance(change, RequestChanged) and change.state in requests.FINAL:
        finish_step(svc, change.request_id)


#: a step still without its request this long after the event: its process stopped mid-way
UNLINKED_AFTER = 300.0


def finish_waiting(svc: Services) -> int:
    """The job: steps whose request ended while no process could complete them, and steps
    whose process stopped before their request was recorded (failed: nothing waits for them)."""
    stale = (
        svc.store.db()
        .execute(
            "SELECT execution_id FROM workflow_steps WHERE state = ? AND request_id IS NULL"
            " AND created_at < ?",
            [OPEN, svc.clock() - UNLINKED_AFTER],
        )
        .fetchall()
    )
    for (execution_id,) in stale:
        with svc.store.transaction() as db:
            claimed = db.execute(
                "UPDATE workflow_steps SET state = ?, updated_at = ? WHERE execution_id = ?"
                " AND state = ? AND request_id IS NULL",
                [COMPLETING, svc.clock(), execution_id, OPEN],
            ).rowcount
        if claimed != 1:
            continue
        error = (
            "device-bot stopped while recording this request; `/device requests` shows whether"
            " it was. Run the workflow again if it was not."
        )
        try:
            svc.out.fail_step(execution_id, error)
        except SlackApiError as exc:
            log.warning("workflow step %s: %s", execution_id, exc.response.get("error"))
        _close(svc, execution_id, FAILED, error)
    ended = requests.ended_with_open_step(svc, OPEN)
    return sum(finish_step(svc, request_id) for request_id in ended)


def jobs(svc: Services) -> list[JobSpec]:
    """Steps left waiting by a stopped process."""
    return [JobSpec("finish-workflow-steps", finish_waiting, 30.0, at_start=True)]


def register(app: Any, svc: Services, commands: Commands) -> None:
    """The custom step's listener and the listener that ends steps."""
    svc.hooks.append(on_change)

    def on_step(event: dict[str, Any], inputs: dict[str, Any], fail: Fail) -> None:
        """Workflow Builder ran "Request a device action": create the request (Bolt acked)."""
        try:
            start(svc, str(event["function_execution_id"]), inputs or {})
        except DeviceBotError as exc:
            fail(error=exc.message)
        except Exception:
            fail(error="Something went wrong in device-bot; nothing was done.")
            raise

    app.function(ids.STEP_REQUEST_ACTION)(on_step)
