"""Admin SDK Reports API: the Admin console's audit log of Chrome device changes.

`GET admin/reports/v1/activity/users/{userKey}/applications/{applicationName}` with
`startTime`, `endTime`, `eventName`, `maxResults` (≤ 1000) and `pageToken`, answering
Google's `admin#reports#activities` shape: `items[]` (newest first) with
`id{time, uniqueQualifier, applicationName, customerId}`, `actor{email, profileId,
callerType}`, `events[]{type, name, parameters[]{name, value}}`, and `nextPageToken`.

Every Chrome device change the sandbox applies through the Directory API is recorded with
the sandbox's admin as actor (`Fleet.admin_email`, the admin the Directory API acts as):
status changes, moves, annotations, commands. Changes made "in the Admin console" by
someone else come through the control interface: `Sandbox.outside_change(ref, kind,
actor, …)` (bot/sandbox/console.py) or `POST sandbox/outside-change` (see `outside_change`), which apply the change to
the device and record it with that actor.

Events and parameters: `CHANGE_DEVICE_STATE` (DEVICE_NEW_STATE, DEVICE_PREVIOUS_STATE,
DEVICE_SERIAL_NUMBER, DEVICE_TYPE; type CHROME_OS_SETTINGS) is documented. The
parameters of `CHANGE_CHROME_OS_DEVICE_ANNOTATION`, `MOVE_DEVICE_TO_ORG_UNIT_DETAILED` and
`SEND_CHROME_OS_DEVICE_COMMAND`, the state names, and the window semantics are our reading
(`bot/sandbox/ASSUMPTIONS.md`).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from urllib.parse import unquote

from bot.sandbox.api import ApiError, Request, Response, rfc3339
from bot.sandbox.devices import Json
from bot.sandbox.fleet import Fleet

PREFIX = "admin/reports/v1/activity/users/"
MAX_RESULTS = 1000
APPLICATION = "admin"
EVENT_TYPE = "CHROME_OS_SETTINGS"
DEVICE_TYPE = "CHROME_OS_DEVICE"

STATE = "CHANGE_DEVICE_STATE"
ANNOTATION = "CHANGE_CHROME_OS_DEVICE_ANNOTATION"
MOVE = "MOVE_DEVICE_TO_ORG_UNIT_DETAILED"
COMMAND = "SEND_CHROME_OS_DEVICE_COMMAND"

#: the Directory API's annotation fields (what the Admin console calls them is not ours)
ANNOTATION_FIELDS = ("annotatedUser", "annotatedLocation", "annotatedAssetId", "notes")


def _profile_id(email: str) -> str:
    digest = hashlib.sha256(email.lower().encode()).hexdigest()
    return str(100_000_000_000_000_000_000 + int(digest[:15], 16))


def record(
    fleet: Fleet,
    d: Json,
    name: str,
    params: dict[str, str | None],
    actor: str | None = None,
) -> Json:
    """Append one activity about Chrome device `d` to the audit log (actor: the admin)."""
    with fleet.lock:
        email = actor or fleet.admin_email
        ms = int(fleet.now() * 1000)  # milliseconds, truncated like the times the bot sends
        qualifier = str(7_000_000_000_000_000_000 + fleet.next_id() * 7919)
        parameters = [{"name": "DEVICE_SERIAL_NUMBER", "value": d.get("serialNumber", "")}]
        parameters += [{"name": k, "value": v} for k, v in params.items() if v not in (None, "")]
        activity: Json = {
            "kind": "admin#reports#activity",
            "id": {
                "time": rfc3339(ms / 1000),
                "uniqueQualifier": qualifier,
                "applicationName": APPLICATION,
                "customerId": fleet.customer_id,
            },
            "etag": f'"{hashlib.sha1(qualifier.encode()).hexdigest()[:27]}"',
            "actor": {"email": email, "profileId": _profile_id(email), "callerType": "USER"},
            "ipAddress": "203.0.113.7",
            "events": [{"type": EVENT_TYPE, "name": name, "parameters": parameters}],
        }
        fleet.activities.append((ms, activity))
        return activity


def record_state(fleet: Fleet, d: Json, previous: str, actor: str | None = None) -> None:
    record(
        fleet,
        d,
        STATE,
        {
            "DEVICE_PREVIOUS_STATE": previous,
            "DEVICE_NEW_STATE": d["status"],
            "DEVICE_TYPE": DEVICE_TYPE,
        },
        actor,
    )


def record_move(fleet: Fleet, d: Json, previous: str | None, actor: str | None = None) -> None:
    record(fleet, d, MOVE, {"OLD_VALUE": previous, "NEW_VALUE": d.get("orgUnitPath")}, actor)


def record_annotation(
    fleet: Fleet, d: Json, field: str, old: str | None, new: str | None, actor: str | None = None
) -> None:
    record(fleet, d, ANNOTATION, {"SETTING_NAME": field, "OLD_VALUE": old, "NEW_VALUE": new}, actor)


def record_command(fleet: Fleet, d: Json, command_type: str, actor: str | None = None) -> None:
    record(fleet, d, COMMAND, {"DEVICE_COMMAND_TYPE": command_type}, actor)


# ------------------------------------------------------------------------------ activities.list


def _time(req: Request, name: str, default_ms: int | None) -> int | None:
    raw = req.param(name)
    if raw is None or raw == "":
        return default_ms
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"Invalid value for {name}: {raw}") from None
    if parsed.tzinfo is None:
        raise ApiError(400, f"Invalid value for {name}: {raw}")
    return int(round(parsed.timestamp() * 1000))


def _token(offset: int, end: int, fingerprint: str) -> str:
    raw = f"{offset}:{end}:{fingerprint}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _from_token(token: str, fingerprint: str) -> tuple[int, int]:
    """(offset, end in ms) of a page token issued for the same query."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        offset, end, fp = raw.split(":")
        if fp != fingerprint:
            raise ValueError(fp)
        return int(offset), int(end)
    except ValueError:
        raise ApiError(400, "Invalid pageToken") from None


def handle(fleet: Fleet, req: Request) -> Response:
    """activities.list (path starts with PREFIX)."""
    rest = req.path[len(PREFIX) :]
    user_key, sep, application = rest.partition("/applications/")
    if not sep or not user_key or not application or "/" in application:
        raise ApiError(404, "Method not found.")
    if req.method != "GET":
        raise ApiError(404, "Method not found.")
    user_key, application = unquote(user_key), unquote(application)
    now_ms = int(fleet.now() * 1000)
    start = _time(req, "startTime", None)
    end = _time(req, "endTime", now_ms)
    assert end is not None
    if start is not None and start > end:
        raise ApiError(400, "Start time must be less than or equal to the end time.")
    if start is not None and start > now_ms:
        raise ApiError(400, "Start time must be before the current time.")
    max_results = req.int_param("maxResults", MAX_RESULTS, 1, MAX_RESULTS)
    event_name = req.param("eventName") or None
    fingerprint = hashlib.sha1(
        f"{user_key}|{application}|{start}|{req.param('endTime')}|{event_name}".encode()
    ).hexdigest()[:12]
    offset = 0
    token = req.param("pageToken")
    if token:  # later pages keep the first page's end, so that paging sees one list
        offset, end = _from_token(token, fingerprint)
    matched: list[tuple[int, Json]] = []
    if application == APPLICATION:
        for ms, activity in fleet.activities:
            # "all activities from startTime until endTime": both ends included (our reading)
            if ms > end or (start is not None and ms < start):
                continue
            actor = activity["actor"]
            if user_key != "all" and user_key not in (actor["email"], actor["profileId"]):
                continue
            if event_name and not any(e["name"] == event_name for e in activity["events"]):
                continue
            matched.append((ms, activity))
    matched.sort(key=lambda pair: (pair[0], int(pair[1]["id"]["uniqueQualifier"])), reverse=True)
    page = [a for _, a in matched[offset : offset + max_results]]
    body: Json = {"kind": "admin#reports#activities", "etag": f'"{fingerprint}"', "items": page}
    if not page:
        body.pop("items")
    if offset + max_results < len(matched):
        body["nextPageToken"] = _token(offset + max_results, end, fingerprint)
    return Response(200, body)
