"""Bulk execution: one request with many devices, run as the APIs allow.

batchChangeStatus and moveDevicesToOu take 50 devices a call; Android commands and
annotations run ANDROID_CONCURRENCY at a time. One progress message per thread is edited in
place; the outcomes known so far are stored as they come, so after a restart only the
others are settled, by reading the devices back (never by sending again). The run ends with
a per-device results CSV in the threads, then the request's final state (`threads.finish`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, cast

from bot import catalog, outcome_words, requests, threads
from bot.blocks import esc, section
from bot.errors import DeviceBotError, NotFound, OutcomeUnknown
from bot.google.android import google_duration
from bot.google.chrome import CHUNK, StatusAction
from bot.google.results import DeviceResult
from bot.requests import RequestState
from bot.services import Services

log = logging.getLogger(__name__)

ANDROID_CONCURRENCY = 8  # Android commands (and annotations) in flight at once
PROGRESS_EVERY = 0.5  # seconds between two edits of the progress message


EXPIRY_GRACE = 30.0  # past a command's time limit, it is called expired even if Google has not
SENT = "sent"  # an Android command sent, the device has not answered yet (detail: the operation)


@dataclass
class Outcome:
    state: str  # done, sent, failed, expired, cancelled, unknown
    detail: str = ""


def _threads_of(request: requests.Request) -> list[tuple[str, str]]:
    """The (channel, thread ts) of the request's threads that exist: the requester's, the approval."""
    pairs = (
        (request.requester_channel, request.requester_ts),
        (request.approval_channel, request.approval_ts),
    )
    return [(channel, ts) for channel, ts in pairs if channel and ts]


class Progress:
    """One message per thread of the request, edited in place: "120 of 400 done, 2 failed"."""

    def __init__(
        self, svc: Services, request: requests.Request, posted: list[list[str]] | None = None
    ) -> None:
        self.svc = svc
        self.request = request
        self.total = len(request.device_ids)
        self.posted: list[tuple[str, str]] = [(c, t) for c, t in posted or []]
        self.last = 0.0
        self._lock = threading.Lock()
        if posted is not None:
            return  # the messages of an earlier run (a command followed by the poll job)
        text = self._text({})
        for channel, ts in _threads_of(request):
            try:
                self.posted.append(
                    (channel, svc.out.post(channel, text, [section(text)], thread_ts=ts))
                )
            except Exception:
                log.exception("could not post the progress of %s", request.id)

    def _text(self, outcomes: dict[str, Outcome]) -> str:
        label = self.request.spec.label.lower()
        states = [o.state for o in outcomes.values()]
        waiting = states.count(SENT)
        failed = len(states) - waiting - states.count("done")
        text = f":gear: Bulk {label}: {len(states) - waiting} of {self.total} done, {failed} failed"
        if waiting:
            text += f", {waiting} sent and waiting for the device"
        return text + "."

    def show(self, outcomes: dict[str, Outcome], *, final: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not final and now - self.last < PROGRESS_EVERY:
                return
            self.last = now
            text = self._text(outcomes)
            if final:
                text = text.replace(":gear:", ":checkered_flag:")
            for channel, ts in self.posted:
                try:
                    self.svc.out.update(channel, ts, text, [section(text)])
                except Exception:
                    log.exception("could not update the progress of %s", self.request.id)


def perform(svc: Services, request: requests.Request) -> None:
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
            _keep(svc, request, outcomes, progress)  # a restart reads back only the others
            progress.show(outcomes)
        if any(r.outcome_unknown for r in results):
            results = _read_back(svc, request, results)
            outcomes = {r.device_id: _outcome(r) for r in results}
            if any(r.outcome_unknown for r in results):
                _keep(svc, request, outcomes, progress)
                progress.show(outcomes, final=True)
                raise OutcomeUnknown("Google's answer was lost for some devices of the batch.")
    else:
        _in_parallel(svc, request, outcomes, progress)
        if any(o.state == SENT for o in outcomes.values()):
            _keep(svc, request, outcomes, progress, waiting=True)
            progress.show(outcomes, final=False)
            progress.last = 0.0
            return  # the poll job follows each device's command (`follow`)
    progress.show(outcomes, final=True)
    _end(svc, request, outcomes)


def _keep(
    svc: Services,
    request: requests.Request,
    outcomes: dict[str, Outcome],
    progress: Progress | None = None,
    *,
    waiting: bool = False,
) -> None:
    """Store the outcomes known so far: after a restart only the others are settled; with
    `waiting`, the poll job follows the commands sent (`follow`)."""
    known = {d: [o.state, o.detail] for d, o in list(outcomes.items()) if o.state != "unknown"}
    result: dict[str, Any] = {"known": known, "waiting": waiting}
    if progress is not None:
        result["progress"] = [list(p) for p in progress.posted]
    requests.set_columns(svc, request.id, result=json.dumps(result))


def outcomes_words(operation: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """A finished operation in the words single commands use (outcome_words.describe_android)."""
    state, words, detail = outcome_words.describe_android(operation)
    return ("done" if state == RequestState.SUCCEEDED else state), words, detail


def _outcome(result: DeviceResult) -> Outcome:
    if result.ok:
        return Outcome("done")
    message = result.error.message if result.error else "unknown error"
    return Outcome("unknown" if result.outcome_unknown else "failed", message)


def _read_back(
    svc: Services, request: requests.Request, results: list[DeviceResult]
) -> list[DeviceResult]:
    """Lost answers settled by reading each such device back (never by sending again)."""
    chrome = svc.google.require_chrome()
    if request.spec.kind == "status":
        return chrome.confirm_status(results, cast(StatusAction, request.spec.google))
    return chrome.confirm_moved(results, request.params["ou"])


def _in_parallel(
    svc: Services, request: requests.Request, outcomes: dict[str, Outcome], progress: Progress
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
            if operation.get("done"):  # answered at once (e.g. refused by the device's policy)
                state, words, _ = outcomes_words(operation)
                return Outcome(state, words)
            return Outcome(SENT, str(operation.get("name") or ""))
        except OutcomeUnknown as exc:
            return Outcome("unknown", f"{exc.message} It was not resent; look at the device.")
        except DeviceBotError as exc:
            return Outcome("failed", exc.message)

    with ThreadPoolExecutor(ANDROID_CONCURRENCY, thread_name_prefix="bulk") as pool:
        futures = {pool.submit(one, d): d for d in request.device_ids}
        kept = time.monotonic()
        for future in as_completed(futures):
            outcomes[futures[future]] = future.result()
            progress.show(outcomes)
            if time.monotonic() - kept > PROGRESS_EVERY:
                kept = time.monotonic()
                _keep(svc, request, outcomes, progress)


def _action_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in ("bulk", "rows")}


def follow(svc: Services) -> int:
    """The poll job: each bulk Android request waiting on its devices, its operations read in
    batches; a device's outcome in the words of a single command; the end when none waits."""
    rows = requests.bulk_waiting(svc)
    for request_id in rows:
        request = requests.load(svc, request_id)
        if request.params.get("bulk") and request.result.get("waiting"):
            _follow_one(svc, request)
    return len(rows)


def _follow_one(svc: Services, request: requests.Request) -> None:
    known = {d: Outcome(*v) for d, v in (request.result.get("known") or {}).items()}
    sent = {d: o.detail for d, o in known.items() if o.state == SENT}
    answers = svc.google.require_android().get_operations(list(sent.values()))
    late = svc.clock() > (request.executing_at or 0) + svc.settings.command_duration + EXPIRY_GRACE
    for device_id, name in sent.items():
        answer = answers.get(name)
        if isinstance(answer, dict) and answer.get("done"):
            state, words, _ = outcomes_words(answer)
            known[device_id] = Outcome(state, words)
        elif isinstance(answer, dict) and late:
            known[device_id] = Outcome("expired", "The device did not run it in time.")
        elif isinstance(answer, NotFound):
            known[device_id] = Outcome("unknown", "Google no longer knows this command.")
    progress = Progress(svc, request, request.result.get("progress"))
    if any(o.state == SENT for o in known.values()):
        _keep(svc, request, known, progress, waiting=True)
        progress.show(known)
        return
    progress.show(known, final=True)
    _end(svc, request, known)


def reconcile(svc: Services, request: requests.Request) -> None:
    """A bulk run whose answers were lost for some devices: read those back, then end it."""
    if request.result.get("waiting"):
        return  # commands sent and followed by the poll job (`follow`), nothing lost
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
    if request.spec.kind not in ("status", "move"):  # Google keeps no list to read back
        stopped = "The bot stopped while sending it; it was not resent. Look at the device."
        outcomes = {
            d: Outcome(*known[d]) if d in known else Outcome("unknown", stopped)
            for d in request.device_ids
        }
        progress = Progress(svc, request, request.result.get("progress"))
        if any(o.state == SENT for o in outcomes.values()):
            _keep(svc, request, outcomes, progress, waiting=True)  # `follow` takes it from here
            return
        progress.show(outcomes, final=True)
        _end(svc, request, outcomes)
        return
    results = _read_back(svc, request, results)
    if any(r.outcome_unknown for r in results):
        raise unknown  # a device could not be read: the next recovery run tries again
    _end(svc, request, {r.device_id: _outcome(r) for r in results})


def results_csv(request: requests.Request, outcomes: dict[str, Outcome]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["device_id", "serial", "user", "result", "detail"])
    for d in request.devices:
        o = outcomes.get(d["id"], Outcome("unknown", "no answer recorded"))
        writer.writerow([d["id"], d.get("serial") or "", d.get("user") or "", o.state, o.detail])
    return out.getvalue().encode()


def _end(svc: Services, request: requests.Request, outcomes: dict[str, Outcome]) -> None:
    """The per-device results CSV in the threads, then the request's final state."""
    spec = request.spec
    total = len(request.device_ids)
    bad = [d for d, o in outcomes.items() if o.state != "done"]
    data = results_csv(request, outcomes)
    for channel, ts in _threads_of(request):
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
    threads.finish(
        svc,
        request.id,
        RequestState.FAILED if bad else RequestState.SUCCEEDED,
        text,
        {"done": total - len(bad), "failed": bad[:100]},
    )


class Runner:
    """What approvals calls for a bulk request (see `execution.bulk_runner`)."""

    perform = staticmethod(perform)
    reconcile = staticmethod(reconcile)
