"""Running an approved request: executing is won once, the device is read again, the one
Google call is made, and a lost answer is reconciled by reading Google back — never by
sending again. `recover` does the same for requests a dead process left behind.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from bot import (
    annotation,
    catalog,
    lost_cases,
    outcome_words,
    outcomes,
    requests,
    threads,
)
from bot.blocks import esc, plural, sentence
from bot.catalog.specs import Kind
from bot.errors import (
    DeviceBotError,
    GoogleError,
    OutcomeUnknown,
    ValidationError,
)
from bot.google.android import google_duration
from bot.google.chrome import STATUS_AFTER, StatusAction
from bot.google.results import DeviceResult
from bot.jobs import process_alive
from bot.requests import RequestState
from bot.services import Services

log = logging.getLogger(__name__)

#: runs and reconciles bulk requests (params["bulk"]): `perform(svc, request)` and
#: `reconcile(svc, request)`, set by bot/bulk.py when it registers
bulk_runner: Any = None


def elsewhere(svc: Services, request: requests.Request) -> str | None:
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
    held = requests.held_here(svc, owner, svc.clock() - 1)
    for request_id in held:
        execute(svc, request_id, actor=requests.BOT)
    return len(held)


def execute(svc: Services, request_id: str, actor: str) -> None:
    """approved → executing (won once), re-check the device, then the one Google call."""
    if not begin(svc, request_id, actor):
        return  # another thread or process runs it
    request = requests.load(svc, request_id)
    threads.refresh_messages(svc, request)
    run(svc, request)


def begin(svc: Services, request_id: str, actor: str) -> bool:
    """approved → executing, once: False when another thread or process won it."""
    return requests.transition(
        svc,
        request_id,
        (RequestState.APPROVED,),
        RequestState.EXECUTING,
        actor,
        set_={"executor": svc.owner, "executing_at": svc.clock()},
    )


def run(svc: Services, request: requests.Request) -> None:
    """An executing request (`begin` won): re-check the device, then the one Google call;
    what went wrong ends the request (or sends it to be reconciled), never the caller."""
    request_id = request.id
    try:
        _preflight(svc, request)
        _perform(svc, request)
    except OutcomeUnknown as exc:
        requests.set_columns(svc, request_id, reconcile=1)
        threads.note(
            svc,
            request,
            "outcome_unknown",
            {"error": exc.message},
            "Google's answer was lost (no answer in time, or an error after sending). The bot is"
            " checking the device instead of sending again.",
        )
    except DeviceBotError as exc:
        threads.finish(
            svc,
            request_id,
            RequestState.FAILED,
            f"Failed: {sentence(exc.message)}",
            {"error": exc.code, "detail": exc.detail},
        )
    except Exception as exc:
        log.exception("request %s failed unexpectedly", request_id)
        threads.finish(
            svc,
            request_id,
            RequestState.FAILED,
            "Failed: an unexpected error in the bot (see its log).",
            {"error": type(exc).__name__},
        )


def _preflight(svc: Services, request: requests.Request) -> None:
    """Re-read the target and re-check: the action is still legal, the command is what was approved."""
    if (
        requests.fingerprint(request.action, request.platform, request.device_ids, request.params)
        != request.fingerprint
    ):
        raise ValidationError(
            "The stored request no longer matches what was approved; not running it."
        )
    spec = request.spec
    if not KINDS[spec.kind].preflight or request.params.get("bulk"):
        return  # per-device results say what happened (a bulk run re-checks each device)
    device = svc.devices.get(request.platform, request.device_ids[0])
    if spec.states and device.status not in spec.states:
        raise ValidationError(
            f"The device is now {esc(device.status)}, so `{spec.name}` is no longer possible."
            " Nothing was sent to Google."
        )
    catalog.check_device(spec, request.params, device.ownership, device)


def secret(svc: Services, request: requests.Request) -> dict[str, Any] | None:
    if not request.spec.secret_fields() or request.params.get("clear_password"):
        return None  # clearing the password is a parameter the approver saw, not a secret
    sealed = requests.sealed_secret(svc, request.id)
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


def _perform(svc: Services, request: requests.Request) -> None:
    """The Google call of this request, and what its answer means."""
    if request.params.get("bulk"):
        bulk_runner.perform(svc, request)
        return
    KINDS[request.spec.kind].perform(svc, request)


def _perform_status(svc: Services, request: requests.Request) -> None:
    """Disable, re-enable or deprovision: Google answers at once, per device."""
    status_action = cast(StatusAction, request.spec.google)
    results = svc.google.require_chrome().change_status(
        request.device_ids, status_action, request.params.get("deprovision_reason")
    )
    _raise_if_unknown(results)  # the reconcile path reads the device back
    failed = [r for r in results if not r.ok]
    if failed:
        error = failed[0].error
        message = error.message if error else "unknown error"
        threads.finish(
            svc,
            request.id,
            RequestState.FAILED,
            f"Failed: {message}",
            {"error": getattr(error, "code", "error")},
        )
        return
    threads.finish(svc, request.id, RequestState.SUCCEEDED, outcome_words.done_words(request), {})


def _perform_patch(svc: Services, request: requests.Request) -> None:
    """Annotate: one patch with only the changed fields."""
    spec, params = request.spec, request.params
    svc.google.require_chrome().patch(request.device_ids[0], catalog.command_body(spec, params))
    labels = {f.name: f.label for f in spec.fields}
    changed = "; ".join(esc(line) for line in annotation.change_lines(params, labels))
    text = f"Done: annotations of {esc(request.target)} updated ({changed})."
    threads.finish(
        svc, request.id, RequestState.SUCCEEDED, text, {"changes": annotation.audit_detail(params)}
    )


def _close_lost_case(svc: Services, request: requests.Request) -> None:
    """`found` on Chrome: no Google call; the finished hook closes the case (bot/lost.py)."""
    if lost_cases.open_case_for(svc, request.platform, request.device_ids[0]) is None:
        raise ValidationError("This device has no open lost case.")
    threads.finish(svc, request.id, RequestState.SUCCEEDED, outcome_words.done_words(request), {})


def _perform_move(svc: Services, request: requests.Request) -> None:
    """Move to an OU, 50 devices per call; a lost answer keeps what is known."""
    results = svc.google.require_chrome().move(request.device_ids, request.params["ou"])
    if any(r.outcome_unknown for r in results):
        # keep what is known; the reconcile path reads the others' OU back
        known = {r.device_id: _known(r) for r in results if not r.outcome_unknown}
        requests.set_columns(svc, request.id, result=json.dumps({"known": known}))
        _raise_if_unknown(results)
    _finish_move(svc, request, results)


def _send_chrome_command(svc: Services, request: requests.Request) -> None:
    """A Chrome remote command: sent, then followed by the poll job (bot/outcomes.py)."""
    body = catalog.command_body(request.spec, request.params, secret(svc, request))
    payload = json.loads(body["payload"]) if "payload" in body else None
    command_id = svc.google.require_chrome().issue_command(
        request.device_ids[0], request.spec.google, payload
    )
    outcomes.track(svc, request, command_id)


def _send_android_command(svc: Services, request: requests.Request) -> None:
    """An Android command: sent with its time limit, then followed by the poll job."""
    body = catalog.command_body(request.spec, request.params, secret(svc, request))
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


def _finish_move(svc: Services, request: requests.Request, results: list[DeviceResult]) -> None:
    """End a move with the true count (messages quoted here are escaped where they were built)."""
    ok = [r for r in results if r.ok]
    bad = [r for r in results if not r.ok]
    text = f"Moved {len(ok)} of {plural(len(results), 'device')} to `{esc(request.params['ou'])}`."
    if bad:
        first = bad[0].error.message if bad[0].error else "unknown error"
        text += f" {len(bad)} failed (first: {first})."
    threads.finish(
        svc,
        request.id,
        RequestState.FAILED if bad else RequestState.SUCCEEDED,
        text,
        {"moved": len(ok), "failed": [r.device_id for r in bad][:100]},
    )


def recover(svc: Services) -> int:
    """Requests a dead process left `approved` or `executing`, or whose answer was lost.

    `approved` was never sent (the Google call comes only after `executing`), so it runs.
    `executing` without a tracked command is reconciled against Google — never resent.
    """
    now = svc.clock()
    handled = 0
    owner = svc.owner
    for request_id, state, executor, reconcile, google_ref in requests.unfinished(svc):
        orphan = executor != owner and not process_alive(svc.store, executor, now)
        if state == RequestState.APPROVED and orphan:
            requests.set_columns(svc, request_id, executor=owner)
            execute(svc, request_id, actor=requests.BOT)
            handled += 1
        elif state == RequestState.EXECUTING and google_ref is None and (orphan or reconcile):
            request = requests.load(svc, request_id)
            # a call still in flight can land until its own timeout: read back only after that
            if now < (request.executing_at or 0) + svc.settings.google_timeout + 1:
                continue
            reconcile_request(svc, request)
            handled += 1
    return handled


def reconcile_request(svc: Services, request: requests.Request) -> None:
    """Find out from Google what happened to a request whose answer was lost."""
    try:
        if request.params.get("bulk"):
            bulk_runner.reconcile(svc, request)
            return
        KINDS[request.spec.kind].reconcile(svc, request)
    except DeviceBotError as exc:
        log.warning("reconciling %s failed: %s", request.id, exc.message)


def _reconcile_status(svc: Services, request: requests.Request) -> None:
    """A status change whose answer was lost: the device's status read back."""
    spec = request.spec
    lost_answer = OutcomeUnknown("Google's answer to the status change was lost.")
    [result] = svc.google.require_chrome().confirm_status(
        [DeviceResult(request.device_ids[0], False, lost_answer)],
        cast(StatusAction, spec.google),
    )
    if result.outcome_unknown:
        raise lost_answer  # the device could not be read: the next run tries again
    if result.ok:
        threads.finish(
            svc,
            request.id,
            RequestState.SUCCEEDED,
            f"Done: the device is {STATUS_AFTER[spec.google]} (confirmed by reading it back).",
            {"reconciled": True},
        )
    else:
        threads.finish(
            svc,
            request.id,
            RequestState.FAILED,
            f"Not done: {sentence(result.error.message if result.error else 'unknown')} Nothing"
            " was resent. Request it again if still needed.",
            {"reconciled": True},
        )


def _reconcile_android(svc: Services, request: requests.Request) -> None:
    """An Android command whose answer was lost: found among the device's operations, or not."""
    operation = outcomes.find_operation(svc, request)
    if operation is not None:
        threads.note(
            svc,
            request,
            "reconciled",
            {"operation": operation["name"]},
            "After a restart the bot found the command at Google and follows it (it was not sent again).",
        )
        outcomes.track(svc, request, operation["name"], operation)
        return
    threads.finish(
        svc,
        request.id,
        RequestState.FAILED,
        "Not done: Google has no such command for the device. The bot stopped before sending it;"
        " nothing was resent. Request it again if still needed.",
        {"reconciled": True},
    )


def _reconcile_unlisted(svc: Services, request: requests.Request) -> None:
    """Google keeps no list to check (Chrome commands, patches): said, never resent."""
    threads.finish(
        svc,
        request.id,
        RequestState.FAILED,
        "Outcome unknown: the bot stopped while sending this command and Google keeps no list of"
        " Chrome commands to check. It was not resent; look at the device before asking again.",
        {"reconciled": True},
    )


def _reconcile_move(svc: Services, request: requests.Request) -> None:
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


@dataclass(frozen=True)
class KindBehaviour:
    """What one kind of action does at Google, and how its lost answer is found out."""

    perform: Callable[[Services, requests.Request], None]
    reconcile: Callable[[Services, requests.Request], None]
    #: re-read the one device before the call (a move and a lost case report per device)
    preflight: bool = True
    #: a success is told in the spec's `done` words (a patch lists the changed fields and a
    #: move counts the devices moved instead)
    done_words: bool = True


#: every Kind of the catalog (bot/catalog/specs.py) with its behaviour
KINDS: dict[Kind, KindBehaviour] = {
    "status": KindBehaviour(_perform_status, _reconcile_status),
    "patch": KindBehaviour(_perform_patch, _reconcile_unlisted, done_words=False),
    "move": KindBehaviour(_perform_move, _reconcile_move, preflight=False, done_words=False),
    "lost_case": KindBehaviour(_close_lost_case, _reconcile_unlisted, preflight=False),
    "chrome_command": KindBehaviour(_send_chrome_command, _reconcile_unlisted),
    "android_command": KindBehaviour(_send_android_command, _reconcile_android),
}
