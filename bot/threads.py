"""What is told about a request, and where: its approval message, the requester's message,
and both threads; `finish` ends a request once and tells it, then runs the finished hooks
(lost cases, workflow steps, …) that capabilities registered at start-up.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from bot import audit, request_views, requests
from bot.changes import RequestFinished
from bot.requests import RequestState
from bot.services import Services

log = logging.getLogger(__name__)


def post_requester_message(svc: Services, request: requests.Request) -> requests.Request:
    """The requester's own thread: where they follow the request (channel, else a DM).
    Returns the request with the message's place."""
    text, blocks = request_views.requester_message(request)
    for channel in (request.requester_channel, request.requester):
        if not channel:
            continue
        try:
            ts = svc.out.post(channel, text, blocks)
        except Exception:
            log.info("cannot post request %s to %s; trying a DM", request.id, channel)
            continue
        requests.set_columns(svc, request.id, requester_channel=channel, requester_ts=ts)
        return replace(request, requester_channel=channel, requester_ts=ts)
    return request


def post_approval_message(svc: Services, request: requests.Request) -> None:
    """The approval message, and a note of where it waits in the requester's thread
    (`request` as `post_requester_message` returned it)."""
    channel = svc.settings.approval_channel
    assert channel
    text, blocks = approval_view(svc, request)
    ts = svc.out.post(channel, text, blocks)
    requests.set_columns(svc, request.id, approval_ts=ts)
    link = svc.out.permalink(channel, ts)
    note = f"Request `{request.id}` needs a second person's approval; it is waiting in <#{channel}>"
    note += f" (<{link}|view>)." if link else "."
    tell_threads(svc, replace(request, approval_ts=ts), note, approval=False)


def approval_view(svc: Services, request: requests.Request) -> tuple[str, list[dict[str, Any]]]:
    """The approval message of `request` now, linking to the requester's thread."""
    link = None
    if request.requester_channel and request.requester_ts:
        link = svc.out.permalink(request.requester_channel, request.requester_ts)
    return request_views.approval_message(request, now=svc.clock(), requester_link=link)


def note(
    svc: Services,
    request: requests.Request,
    event: str,
    detail: dict[str, Any],
    text: str,
    actor: str = "",
) -> None:
    """An event in the audit log that is also said in the request's threads."""
    audit.record(
        svc.store, actor=actor or requests.BOT, event=event, request_id=request.id, detail=detail
    )
    tell_threads(svc, request, text)


def finish(
    svc: Services,
    request_id: str,
    state: RequestState,
    text: str,
    detail: dict[str, Any],
    *,
    approval_text: str | None = None,
) -> bool:
    """executing → a final state, once; the outcome goes into both threads (`approval_text`,
    when given, is what the approval thread reads instead of `text`)."""
    won = requests.transition(
        svc,
        request_id,
        (RequestState.EXECUTING,),
        state,
        requests.BOT,
        detail={"outcome": text, **detail},
        set_={"result": json.dumps({"text": text, **detail})},
    )
    if not won:
        return False
    request = requests.load(svc, request_id)
    announce(svc, request, text, reissue=state == RequestState.EXPIRED, approval_text=approval_text)
    svc.changed(RequestFinished(request))
    return True


def tell_threads(
    svc: Services,
    request: requests.Request,
    text: str,
    *,
    approval: bool = True,
    both: bool = True,
    reissue: bool = False,
    approval_text: str | None = None,
) -> None:
    """Say something in the request's threads (the requester's, and the approval one, which
    reads `approval_text` instead when it is given)."""
    targets = [(request.requester_channel, request.requester_ts, text)]
    if approval and both:
        targets.append((request.approval_channel, request.approval_ts, approval_text or text))
    for channel, ts, words in targets:
        if channel and ts:
            blocks = request_views.thread_note(request, words, reissue=reissue)
            try:
                svc.out.post(channel, words, blocks, thread_ts=ts)
            except Exception:
                log.exception("could not post to the thread of %s", request.id)


def announce(
    svc: Services,
    request: requests.Request,
    text: str,
    *,
    reissue: bool = False,
    approval_text: str | None = None,
) -> None:
    """A change of state, told once: both messages edited to show `request` as it now is,
    and `text` in both threads. Changes made by one click are told together: load the
    request after the last of them."""
    refresh_messages(svc, request)
    tell_threads(svc, request, text, reissue=reissue, approval_text=approval_text)


def refresh_messages(svc: Services, request: requests.Request) -> None:
    """Edit the approval message and the requester's message to show `request`'s state."""
    request_id = request.id
    if request.approval_channel and request.approval_ts:
        text, blocks = approval_view(svc, request)
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
