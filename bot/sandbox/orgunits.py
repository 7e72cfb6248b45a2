"""Admin SDK Directory API: orgunits.list (`admin/directory/v1/customer/{c}/orgunits`)."""

from __future__ import annotations

from bot.sandbox.api import ApiError, Request, Response
from bot.sandbox.devices import Json
from bot.sandbox.fleet import Fleet


def _org_unit_json(fleet: Fleet, path: str) -> Json:
    """An OrgUnit as orgunits.list answers it."""
    parent = path.rsplit("/", 1)[0] or "/"
    out: Json = {
        "kind": "admin#directory#orgUnit",
        "etag": f'"{fleet.org_units[path][3:]}"',
        "name": path.rsplit("/", 1)[-1] or "/",
        "description": "",
        "orgUnitPath": path,
        "orgUnitId": fleet.org_units[path],
    }
    if path != "/":
        out["parentOrgUnitPath"] = parent
        out["parentOrgUnitId"] = fleet.org_units[parent]
    return out


def list_org_units(fleet: Fleet, req: Request) -> Response:
    """orgunits.list: `type` all / children (the default) / allIncludingParent, under
    `orgUnitPath` (a path or `id:…`, the root by default)."""
    raw = req.param("orgUnitPath") or "/"
    base = fleet.resolve_org_unit(raw)
    if base is None:
        raise ApiError(400, "Invalid Input: Inconsistent Orgunit id and path")
    kind = (req.param("type") or "children").lower()
    prefix = "/" if base == "/" else base + "/"
    below = [p for p in fleet.org_units if p != base and p.startswith(prefix)]
    if kind == "children":
        below = [p for p in below if "/" not in p[len(prefix) :]]
    elif kind == "allincludingparent":
        below = [base, *below]
    units = [_org_unit_json(fleet, p) for p in sorted(below)]
    return Response(
        200, {"kind": "admin#directory#orgUnits", "etag": '"ous"', "organizationUnits": units}
    )
