"""Android Management API devices read and written: devices.get, devices.list, devices.patch.

Paging (`page`, `token`) is shared with operations.list.
"""

from __future__ import annotations

import base64

from bot.sandbox.api import ApiError, Request, Response
from bot.sandbox.devices import Json
from bot.sandbox.fleet import Fleet

NOT_FOUND = "Requested entity was not found."


def device(fleet: Fleet, name: str) -> Json:
    d = fleet.android_get(name)
    if d is None:
        raise ApiError(404, NOT_FOUND)
    return d


def page(req: Request, default: int, maximum: int) -> tuple[int, int]:
    size = req.int_param("pageSize", default, 0, None) or default
    size = min(size, maximum)
    offset = 0
    token = req.param("pageToken")
    if token:
        try:
            offset = int(
                base64.urlsafe_b64decode(token.encode() + b"==").decode().removeprefix("o:")
            )
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "Invalid page token") from None
    return size, offset


def token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def list_devices(fleet: Fleet, req: Request) -> Response:
    size, offset = page(req, 10, 100)
    names = fleet.android_order[offset : offset + size]
    body: Json = {}
    if names:
        body["devices"] = [fleet.android[n] for n in names]
    if offset + size < len(fleet.android_order):
        body["nextPageToken"] = token(offset + size)
    return Response(200, body)


def patch(fleet: Fleet, req: Request, name: str) -> Response:
    d = device(fleet, name)
    body = req.json()
    mask = req.param("updateMask")
    fields = (
        [f.strip() for f in mask.split(",")] if mask else ["state", "policyName", "disabledReason"]
    )
    for f in fields:
        if f not in ("state", "policyName", "disabledReason"):
            raise ApiError(400, f"Invalid field in updateMask: {f}")
        if f not in body:
            continue
        if f == "state":
            if body["state"] not in ("ACTIVE", "DISABLED"):
                raise ApiError(400, "Only ACTIVE and DISABLED are allowed for state.")
            d["state"] = d["appliedState"] = body["state"]
        elif f == "policyName":
            p = str(body["policyName"])
            d["policyName"] = p if "/" in p else f"{fleet.enterprise}/policies/{p}"
        else:
            d["disabledReason"] = body["disabledReason"]
    fleet.touch()
    return Response(200, d)
