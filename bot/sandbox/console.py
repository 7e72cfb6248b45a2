"""The Admin console, as far as the sandbox plays it: changes made to Chrome devices outside
the bot, by someone else. Tests make them through `outside_change` (or `POST
sandbox/outside-change`); each is applied to the device and logged in the Reports API
under that actor, as Google logs a change made in the console.
"""

from __future__ import annotations

from typing import Any

from bot.sandbox import chrome_commands, chrome_status, reports
from bot.sandbox.api import ApiError, Request, Response
from bot.sandbox.devices import Json
from bot.sandbox.fleet import Fleet

OUTSIDE_KINDS = ("disable", "reenable", "deprovision", "move", "annotate", "command")


def outside_change(fleet: Fleet, ref: str, kind: str, actor: str, **kw: Any) -> Json:
    """Apply a change "made in the Admin console by `actor`" to a Chrome device and log it.

    kinds: `disable`, `reenable`, `deprovision` (`reason=`, default retiring_device),
    `move` (`org_unit=` path), `annotate` (`field=` one of reports.ANNOTATION_FIELDS, `value=`),
    `command` (`command_type=`, only logged). Raises ApiError as the console would refuse.
    Returns the recorded activity.
    """
    if kind not in OUTSIDE_KINDS:
        raise ApiError(400, f"kind must be one of {', '.join(OUTSIDE_KINDS)}; got {kind!r}")
    if not isinstance(actor, str) or "@" not in actor:
        raise ApiError(400, "actor must be an email address")
    with fleet.lock:
        d = fleet.chrome_get(ref) or fleet.chrome_by_serial(ref)
        if d is None:
            raise ApiError(404, f"No Chrome device {ref!r} in the sandbox.")
        if kind in ("disable", "reenable", "deprovision"):
            reason = kw.get("reason", "retiring_device") if kind == "deprovision" else None
            chrome_status.change_status(fleet, d, kind, reason, actor=actor)
        elif kind == "move":
            ou = fleet.resolve_org_unit(str(kw.get("org_unit") or ""))
            if ou is None:
                raise ApiError(400, f"No org unit {kw.get('org_unit')!r} in the sandbox.")
            if d["status"] == "DEPROVISIONED":
                raise ApiError(412, "Device is deprovisioned")
            previous = d.get("orgUnitPath")
            d["orgUnitPath"], d["orgUnitId"] = ou, fleet.org_units[ou]
            fleet.bump(d)
            reports.record_move(fleet, d, previous, actor)
        elif kind == "annotate":
            field, value = kw.get("field"), kw.get("value")
            if field not in reports.ANNOTATION_FIELDS:
                raise ApiError(400, f"field must be one of {', '.join(reports.ANNOTATION_FIELDS)}")
            if value is not None and not isinstance(value, str):
                raise ApiError(400, "value must be a string")
            field = str(field)
            old = d.get(field)
            fleet.set_fields(d["deviceId"], {field: value or None})
            fleet.bump(d)
            reports.record_annotation(fleet, d, field, old, value or None, actor)
        else:
            command_type = str(kw.get("command_type") or "")
            if command_type not in chrome_commands.COMMAND_TYPES:
                raise ApiError(400, f"Invalid value for commandType: {command_type}")
            reports.record_command(fleet, d, command_type, actor)
        return fleet.activities[-1][1]


def control(fleet: Fleet, req: Request) -> Response:
    """`POST sandbox/outside-change` {"device": id or serial, "kind", "actor", …}: see above."""
    if req.method != "POST":
        raise ApiError(404, "Method not found.")
    body = req.json()
    ref = body.get("device")
    if not isinstance(ref, str) or not ref:
        raise ApiError(400, 'Expected {"device": id or serial, "kind": …, "actor": email}.')
    extra = {
        k: body[k] for k in ("reason", "org_unit", "field", "value", "command_type") if k in body
    }
    actor = body.get("actor")
    activity = outside_change(
        fleet, ref, str(body.get("kind") or ""), actor if isinstance(actor, str) else "", **extra
    )
    return Response(200, activity)
