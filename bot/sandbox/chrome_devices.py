"""Directory API ChromeOS devices read and written: get, list, count, patch, moveDevicesToOu.

`list` pages through a cached result list (paging does not re-run the query); the query
language itself is `bot.sandbox.query`.
"""

from __future__ import annotations

import base64
import hashlib
import json

from bot.google import discovery
from bot.sandbox import reports
from bot.sandbox.api import ApiError, Request, Response
from bot.sandbox.devices import Json
from bot.sandbox.fleet import Fleet
from bot.sandbox.query import search

MAX_RESULTS = 300
MAX_IDS = 50
PATCHABLE = ("annotatedUser", "annotatedLocation", "annotatedAssetId", "notes", "orgUnitPath")
ORDER_BY = discovery.enum(discovery.DIRECTORY, "chromeosdevices.list?orderBy")
FULL_ONLY = frozenset(
    {
        "recentUsers",
        "activeTimeRanges",
        "cpuStatusReports",
        "cpuInfo",
        "diskVolumeReports",
        "systemRamFreeReports",
        "lastKnownNetwork",
        "deviceFiles",
        "screenshotFiles",
        "tpmVersionInfo",
        "osUpdateStatus",
        "backlightInfo",
        "fanInfo",
        "bluetoothAdapterInfo",
        "diskSpaceUsage",
    }
)


def device(fleet: Fleet, device_id: str) -> Json:
    d = fleet.chrome_get(device_id)
    if d is None:
        raise ApiError(404, "Resource Not Found: deviceId", reason="notFound")
    return d


def view(d: Json, projection: str | None) -> Json:
    p = (projection or "FULL").upper()
    if p not in ("BASIC", "FULL"):
        raise ApiError(400, f"Invalid value for projection: {projection}")
    if p == "FULL":
        return d
    return {k: v for k, v in d.items() if k not in FULL_ONLY}


def _org_unit_param(fleet: Fleet, req: Request) -> tuple[str | None, bool]:
    """(the OU path that `orgUnitPath` names or None, whether `includeChildOrgunits`)."""
    ou_param = req.param("orgUnitPath")
    include_children = req.bool_param("includeChildOrgunits")
    org_unit: str | None = None
    if ou_param:
        org_unit = fleet.resolve_org_unit(ou_param)
        if org_unit is None:
            raise ApiError(400, "Invalid Input: Inconsistent Orgunit id and path")
    elif include_children:
        raise ApiError(400, "Invalid Input: includeChildOrgunits requires orgUnitPath")
    return org_unit, include_children


def list_devices(fleet: Fleet, req: Request) -> Response:
    max_results = req.int_param("maxResults", 100, 1, MAX_RESULTS)
    projection = req.param("projection")
    view({}, projection)  # validates
    order_by = req.param("orderBy")
    if order_by is not None and order_by not in ORDER_BY:
        lowered = {o.lower(): o for o in ORDER_BY}
        if order_by.lower() not in lowered:
            raise ApiError(400, f"Invalid value for orderBy: {order_by}")
        order_by = lowered[order_by.lower()]
    sort_order = (req.param("sortOrder") or "ASCENDING").upper()
    if sort_order not in ("ASCENDING", "DESCENDING"):
        raise ApiError(400, f"Invalid value for sortOrder: {req.param('sortOrder')}")
    org_unit, include_children = _org_unit_param(fleet, req)
    query = req.param("query") or ""

    key_src = json.dumps([query, org_unit, include_children, order_by, sort_order])
    key = hashlib.sha1(key_src.encode()).hexdigest()[:12]
    offset = 0
    token = req.param("pageToken")
    if token:
        try:
            tkey, _, off = base64.urlsafe_b64decode(token.encode() + b"==").decode().partition(":")
            offset = int(off)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "Invalid page token") from None
        if tkey != key or offset < 0:
            raise ApiError(400, "Invalid page token")

    cache = fleet.list_cache  # result lists of recent queries: paging does not re-run them
    hit = cache.get(key)
    if hit is not None and hit[0] == fleet.version:
        ids = hit[1]
    else:
        found = search(fleet, query, org_unit=org_unit, include_children=include_children)
        if order_by:
            found.sort(
                key=lambda d: str(d.get(order_by, "")).lower(),
                reverse=sort_order == "DESCENDING",
            )
        ids = [d["deviceId"] for d in found]
        if len(cache) > 64:
            cache.clear()
        cache[key] = (fleet.version, ids)

    page = ids[offset : offset + max_results]
    body: Json = {
        "kind": "admin#directory#chromeosdevices",
        "etag": f'"{key}/{fleet.version}"',
    }
    if page:
        chrome = fleet.chrome
        body["chromeosdevices"] = [view(chrome[i], projection) for i in page if i in chrome]
    if offset + max_results < len(ids):
        nxt = f"{key}:{offset + max_results}"
        body["nextPageToken"] = base64.urlsafe_b64encode(nxt.encode()).decode().rstrip("=")
    return Response(200, body)


def count(fleet: Fleet, req: Request) -> Response:
    """customer.devices.chromeos.countChromeOsDevices: how many devices match `filter`
    (the list's query language) in `orgUnitPath` (and its children)."""
    org_unit, include_children = _org_unit_param(fleet, req)
    found = search(
        fleet, req.param("filter") or "", org_unit=org_unit, include_children=include_children
    )
    return Response(200, {"count": str(len(found))})  # int64: a decimal string


def patch(fleet: Fleet, req: Request, device_id: str) -> Response:
    d = device(fleet, device_id)
    body = req.json()
    if d["status"] == "DEPROVISIONED":
        raise ApiError(412, "Device is deprovisioned", reason="conditionNotMet")
    if "orgUnitPath" in body and body["orgUnitPath"] is not None:
        ou = fleet.resolve_org_unit(str(body["orgUnitPath"]))
        if ou is None:
            raise ApiError(400, "Invalid Input: Inconsistent Orgunit id and path")
        body["orgUnitPath"] = ou
    changed = False
    for key in PATCHABLE:
        if key not in body:
            continue
        value = body[key]
        if value is not None and not isinstance(value, str):
            raise ApiError(400, f"Invalid value for {key}")
        old = d.get(key)
        if key == "orgUnitPath":
            if value and value != old:
                d["orgUnitPath"] = value
                d["orgUnitId"] = fleet.org_units[value]
                reports.record_move(fleet, d, old)
                changed = True
            continue
        new = value or None
        if new == old:
            continue
        if new is None:
            d.pop(key, None)
        else:
            d[key] = new
        fleet.reindex_chrome(device_id, key, old, new)
        reports.record_annotation(fleet, d, key, old, new)
        changed = True
    if changed:
        fleet.bump(d)
    return Response(200, view(d, req.param("projection")))


def move(fleet: Fleet, req: Request) -> Response:
    raw_ou = req.param("orgUnitPath")
    if not raw_ou:
        raise ApiError(400, "Missing required field: orgUnitPath", reason="required")
    ou = fleet.resolve_org_unit(raw_ou)
    if ou is None:
        raise ApiError(400, "Invalid Input: Inconsistent Orgunit id and path")
    ids = req.json().get("deviceIds")
    if not isinstance(ids, list) or not ids:
        raise ApiError(400, "Missing required field: deviceIds", reason="required")
    if len(ids) > MAX_IDS:
        raise ApiError(
            400, f"Invalid Input: at most {MAX_IDS} devices may be moved at once ({len(ids)} given)"
        )
    devices = [device(fleet, str(i)) for i in ids]
    for d in devices:
        if d["status"] == "DEPROVISIONED":
            raise ApiError(412, "Device is deprovisioned", reason="conditionNotMet")
    for d in devices:
        if d["orgUnitPath"] != ou:
            previous = d["orgUnitPath"]
            d["orgUnitPath"] = ou
            d["orgUnitId"] = fleet.org_units[ou]
            fleet.bump(d)
            reports.record_move(fleet, d, previous)
    return Response(200)  # the guide: "A successful request returns an HTTP 200 status code"
