"""A device's history: one line in words per request or event, newest first, and the raw
audit events behind it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot import catalog, ids
from bot.blocks import (
    MAX_BUTTON_VALUE,
    Block,
    actions,
    button,
    clip,
    context,
    esc,
    fit,
    header,
    packed,
    plural,
    section,
    sections_of,
    who,
)
from bot.cards.words import asks, option_words, past
from bot.catalog import action_for
from bot.dates import clock, epoch_of, when
from bot.errors import ValidationError
from bot.request_model import FINAL, RequestState

HISTORY_LIMIT = 30


#: events outside a request, in words
EVENT_WORDS = {
    "lost_reported": "reported it lost",
    "lost_reported_again": "reported it lost again",
    "lost_resolved": "closed its lost case",
    "lost_checkin": "it checked in",
}
#: bookkeeping events left out of the readable history (they stay in the raw detail)
QUIET_EVENTS = frozenset({"refused", "reminded", "executing", "reconciled", "outcome_unknown"})


def history_text(title: str) -> str:
    """Notification text of a device's history (`title` is the device's plain-text name)."""
    return f"History of {esc(title)}"


def event_line(event: dict[str, Any]) -> str:
    """One audit event: when, what, who, state change, request, details.

    An event with `outside: True` was done outside the bot (the Admin console's audit log,
    `bot.reports.outside_events_for`) and says so."""
    what = f"*{esc(event.get('event'))}*"
    if event.get("outside"):
        what += " _outside the bot_"
    parts = [when(event.get("at")), what, f"by {who(event.get('actor'))}"]
    if event.get("from_state") or event.get("to_state"):
        parts.append(f"{esc(event.get('from_state'))} → {esc(event.get('to_state'))}")
    if event.get("request_id"):
        parts.append(f"request `{esc(event['request_id'])}`")
    detail = event.get("detail") or {}
    if isinstance(detail, dict) and detail:
        shown = ", ".join(
            f"{esc(k)}: {esc(clip(_unescaped(_short(v)), 120))}"
            for k, v in list(detail.items())[:6]
        )
        parts.append(clip(shown, 600))
    return " · ".join(parts)


def _unescaped(text: str) -> str:
    """Undo Slack's three escapes: audit details hold raw text (a device's network, a
    note) next to outcome words that were escaped when built; unescaping first makes
    every value come out escaped exactly once."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _short(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)


def change_words(changes: Any) -> str:
    """An audit `changes` detail ({field: "old → new"}, [old, new] or {old, new}) in words."""
    if not isinstance(changes, dict):
        return esc(_unescaped(_short(changes)))
    labels = {f.name: f.label for f in catalog.action_for("annotate", "chrome").fields}
    parts = []
    for name, value in changes.items():
        old: Any
        new: Any
        if isinstance(value, dict) and ("old" in value or "new" in value):
            old, new = value.get("old"), value.get("new")
        elif isinstance(value, list) and len(value) == 2:
            old, new = value
        elif isinstance(value, str) and " → " in value:
            old, new = value.split(" → ", 1)
        else:
            old, new = None, value
        label = esc(labels.get(name, name))
        old_words = esc(_unescaped(str(old))) if old not in (None, "") else "—"
        if new in (None, "", "(cleared)"):
            parts.append(f"{label}: cleared (was: {old_words})")
        else:
            parts.append(f"{label}: {old_words} → {esc(_unescaped(str(new)))}")
    return "; ".join(parts)


def _request_details(request: dict[str, Any], final: dict[str, Any] | None, device_id: str) -> str:
    """What a request carried, in words: changes, the target OU, parameters by label."""
    detail = (final or {}).get("detail") or {}
    if isinstance(detail, dict) and detail.get("changes"):
        return change_words(detail["changes"])
    params = dict(request.get("params") or {})
    previous = params.pop("previous", None)
    if request["action"] == "annotate" and isinstance(previous, dict):
        return change_words({k: [previous.get(k), v] for k, v in params.items()})
    if request["action"] == "move":
        others = len(request.get("device_ids") or []) - 1
        return f"to `{esc(params.get('ou'))}`" + (
            f" with {plural(others, 'other device')}" if others > 0 else ""
        )
    try:
        fields = {f.name: f for f in action_for(request["action"], request["platform"]).fields}
    except ValidationError:  # an action no longer in the catalog: its raw names
        fields = {}
    words = []
    for name, value in params.items():
        field = fields.get(name)
        label = field.label if field else name
        shown = option_words(field, value) if field else _short(value)
        words.append(f"{esc(label)}: {esc(clip(shown, 120))}")
    return ", ".join(words)


def _final_words(
    request: dict[str, Any], final: dict[str, Any], device_id: str, started: float
) -> str:
    """How a request ended, as a person says it ("disabled 14:02", "Sam denied it")."""
    state = final.get("event")
    at = epoch_of(final.get("at")) or started
    detail = final.get("detail") or {}
    if state == RequestState.SUCCEEDED:
        if request["action"] == "move" and device_id in (detail.get("failed") or []):
            return f"not moved {clock(at, started)}"
        return f"{past(request['action'])} {clock(at, started)}"
    if state == RequestState.FAILED:
        if request["action"] == "move" and device_id not in (detail.get("failed") or []):
            return f"moved {clock(at, started)} (others failed)"
        outcome = _unescaped(str(detail.get("outcome") or "failed"))
        return f"{esc(clip(outcome, 200))} {clock(at, started)}"
    if state == RequestState.DENIED:
        note = detail.get("note")
        return f"{who(final.get('actor'))} denied it" + (
            f" ({esc(clip(str(note), 120))})" if note else ""
        )
    if state == RequestState.CANCELLED:
        return f"{who(final.get('actor'))} cancelled it"
    if state == RequestState.EXPIRED:
        return (
            "expired before anyone approved it"
            if not request.get("decided_by")
            else "expired on the device"
        )
    return esc(state)


def request_history_line(
    request: dict[str, Any], events: Sequence[dict[str, Any]], device_id: str
) -> str:
    """One request as one line: "Olivia asked to disable it (INC-4411) · Alex approved · disabled 14:02"."""
    started = float(request.get("created_at") or epoch_of(events[0].get("at")) or 0.0)
    count = len(request.get("device_ids") or [])
    try:
        label = action_for(request["action"], request["platform"]).label
    except ValidationError:
        label = str(request["action"])
    ask = f"{who(request.get('requester'))} asked to {asks(request['action'], label, 1 if request['action'] == 'move' else count)}"
    finals = [e for e in events if e.get("event") in FINAL]
    final = finals[-1] if finals else None
    details = _request_details(request, final, device_id)
    if details and request["action"] == "move":
        ask += f" {details}"
        details = ""
    said = [esc(clip(str(request["reason"]), 200))] if request.get("reason") else []
    said += [details] if details else []
    if said:
        ask += f" ({'; '.join(said)})"
    parts = [when(started), ask]
    approved = next((e for e in events if e.get("event") == RequestState.APPROVED), None)
    if approved and approved.get("actor") != request.get("requester"):
        parts.append(f"{who(approved.get('actor'))} approved")
    if final is not None:
        parts.append(_final_words(request, final, device_id, started))
    elif request.get("state") == RequestState.PENDING:
        parts.append("waiting for approval")
    elif request.get("state") in (RequestState.APPROVED, RequestState.EXECUTING):
        parts.append("running")
    return " · ".join(parts)


def event_history_line(event: dict[str, Any]) -> str:
    """An event outside any request (a lost case, a check-in) in words; others as logged."""
    name = str(event.get("event") or "")
    if name not in EVENT_WORDS:
        return event_line(event)
    detail = event.get("detail") or {}
    if name == "lost_checkin":
        network = detail.get("network")
        return f"{when(event.get('at'))} · It checked in" + (
            f" ({esc(_unescaped(str(network)))})" if network else ""
        )
    line = f"{when(event.get('at'))} · {who(event.get('actor'))} {EVENT_WORDS[name]}"
    if name == "lost_resolved" and detail.get("how"):
        line += f": {esc(_unescaped(str(detail['how'])))}"
    return line


def history_lines(
    events: Sequence[dict[str, Any]], requests: dict[str, dict[str, Any]], device_id: str
) -> list[str]:
    """A device's history as lines in words, newest first: one per request, one per other event."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    entries: list[tuple[float, str]] = []
    for event in sorted(events, key=lambda e: e.get("seq") or 0):
        request_id = event.get("request_id")
        if request_id and request_id in requests:
            grouped.setdefault(request_id, []).append(event)
        elif event.get("event") not in QUIET_EVENTS:
            entries.append((epoch_of(event.get("at")) or 0.0, event_history_line(event)))
    for request_id, request_events in grouped.items():
        request = requests[request_id]
        started = float(request.get("created_at") or 0.0)
        entries.append((started, request_history_line(request, request_events, device_id)))
    entries.sort(key=lambda e: e[0], reverse=True)
    return [line for _, line in entries]


def history_page(title: str, lines: Sequence[str], *, raw_value: str | None = None) -> list[Block]:
    """A device's history in words, newest first, with *Raw detail* behind a button."""
    out: list[Block] = [header(clip(f"History of {title}", 150))]
    if not lines:
        out.append(section("Nothing has been done to this device through device-bot yet."))
        return out
    shown = lines[:HISTORY_LIMIT]
    out += sections_of(shown)
    if len(lines) > len(shown):
        out.append(
            context(
                f"Showing the latest {len(shown)} of {len(lines)} entries. "
                "The whole log: `python -m bot audit --since YYYY-MM-DD`."
            )
        )
    if raw_value and len(raw_value) <= MAX_BUTTON_VALUE:
        out.append(actions([button("Raw detail", ids.ActionId.HISTORY_RAW, raw_value)]))
    return fit(out)


def raw_history(title: str, events: Sequence[dict[str, Any]]) -> list[Block]:
    """The audit events behind a history, as logged (JSON, newest first), for the curious."""
    out: list[Block] = [header(clip(f"Audit log of {title}", 150))]
    keep = ("seq", "at", "actor", "event", "request_id", "from_state", "to_state", "detail")
    lines = [
        esc(
            json.dumps(
                {k: e.get(k) for k in keep if e.get(k) not in (None, {}, "")},
                sort_keys=True,
                default=str,
            )
        )
        for e in events[:HISTORY_LIMIT]
    ]
    out += [section(f"```{text}```") for text in packed(lines, 2890)]
    if len(events) > HISTORY_LIMIT:
        out.append(context(f"Showing the latest {HISTORY_LIMIT} of {len(events)} events."))
    return fit(out)
