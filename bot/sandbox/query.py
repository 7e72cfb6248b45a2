"""The Directory API's Chrome device search language, evaluated against the fleet's indexes.

Supported (https://support.google.com/chrome/a/answer/1698333, "List query operators"):
`id:` (serial; ≥ 3 characters match as a prefix, shorter ones exactly), `user:`
(annotated user, prefix), `recent_user:`, `asset_id:` (prefix), `location:`, `note:`
(substring), `status:`, `wifi_mac:` / `ethernet_mac:`, `sync:` / `register:` date
ranges (`2024-01-01..2024-02-01`, `..2024-02-01`, `2024-01-01..`, or one date), and
bare words matching serial, annotated user, asset id, location, notes or model.
Values may be quoted (`location:"London HQ"`). Terms are ANDed. `id:`, `user:` and
`asset_id:` are answered from sorted indexes (bisect) without scanning the fleet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from bot.sandbox.api import ApiError
from bot.sandbox.devices import Json
from bot.sandbox.fleet import Fleet

_TOKEN = re.compile(r"""(?:([A-Za-z_]+):)?("[^"]*"|'[^']*'|\S+)""")
_INDEXED = ("id", "user", "asset_id")
Pred = Callable[[Json], bool]


def parse(query: str) -> list[tuple[str, str]]:
    """`user:x "a b" id:5CD` → [("user", "x"), ("", "a b"), ("id", "5CD")]."""
    out: list[tuple[str, str]] = []
    for m in _TOKEN.finditer(query or ""):
        op, value = (m.group(1) or "").lower(), m.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out.append((op, value))
    return out


def _contains(field: str, value: str) -> Pred:
    v = value.lower()
    return lambda d: v in str(d.get(field, "")).lower()


def _date_range(field: str, value: str) -> Pred:
    lo, sep, hi = value.partition("..")
    if not sep:
        hi = lo
    for b in (lo, hi):
        if b and not re.fullmatch(r"\d{4}-\d{2}-\d{2}(T[\d:.]+Z?)?", b):
            raise ApiError(400, f"Invalid Input: {field} date range {value!r}")

    def pred(d: Json) -> bool:
        t = d.get(field)
        if not t:
            return False
        if lo and t[: len(lo)] < lo:
            return False
        return not (hi and t[: len(hi)] > hi)

    return pred


def _mac(field: str, value: str) -> Pred:
    v = value.lower().replace(":", "").replace("-", "")
    return lambda d: str(d.get(field, "")).lower() == v


def _bare(value: str) -> Pred:
    v = value.lower()
    fields = (
        "serialNumber",
        "annotatedUser",
        "annotatedAssetId",
        "annotatedLocation",
        "notes",
        "model",
    )

    def pred(d: Json) -> bool:
        return any(v in str(d.get(f, "")).lower() for f in fields)

    return pred


def _recent_user(value: str) -> Pred:
    v = value.lower()
    return lambda d: any(v in str(u.get("email", "")).lower() for u in d.get("recentUsers", ()))


def _predicate(op: str, value: str) -> Pred:
    if op == "status":
        v = value.upper()
        return lambda d: d.get("status") == v
    if op == "location":
        return _contains("annotatedLocation", value)
    if op == "note":
        return _contains("notes", value)
    if op == "sync":
        return _date_range("lastSync", value)
    if op == "register":
        return _date_range("lastEnrollmentTime", value)
    if op == "recent_user":
        return _recent_user(value)
    if op == "wifi_mac":
        return _mac("macAddress", value)
    if op == "ethernet_mac":
        return _mac("ethernetMacAddress", value)
    if op == "model":
        return _contains("model", value)
    if op == "os":
        return _contains("osVersion", value)
    return _bare(f"{op}:{value}" if op else value)


def _indexed(fleet: Fleet, op: str, value: str) -> list[str]:
    if op == "id":
        if len(value) < 3:
            d = fleet.chrome_by_serial(value)
            return [d["deviceId"]] if d else []
        return fleet.chrome_serial_prefix(value)
    if op == "user":
        return fleet.chrome_user_prefix(value)
    return fleet.chrome_asset_prefix(value)


def search(
    fleet: Fleet,
    query: str | None,
    *,
    org_unit: str | None = None,
    include_children: bool = False,
) -> list[Json]:
    """Chrome devices matching `query` (and org unit), in the fleet's natural order."""
    terms = parse(query or "")
    preds: list[Pred] = []
    candidates: set[str] | None = None
    for op, value in terms:
        if op in _INDEXED and value:
            ids = set(_indexed(fleet, op, value))
            candidates = ids if candidates is None else candidates & ids
        else:
            preds.append(_predicate(op, value))
    if org_unit is not None:
        if include_children and org_unit != "/":
            prefix = org_unit + "/"
            preds.append(
                lambda d: d["orgUnitPath"] == org_unit or d["orgUnitPath"].startswith(prefix)
            )
        elif not include_children:
            preds.append(lambda d: d["orgUnitPath"] == org_unit)
    source: Iterable[Json]
    if candidates is not None:
        chrome = fleet.chrome
        source = sorted((chrome[i] for i in candidates), key=_natural_key(fleet))
    else:
        source = fleet.iter_chrome()
    if not preds:
        return list(source)
    return [d for d in source if all(p(d) for p in preds)]


def _natural_key(fleet: Fleet) -> Callable[[Json], Any]:
    """Sort key that puts index hits back in generation order (cheap for small sets)."""
    order = fleet.chrome_position
    return lambda d: order(d["deviceId"])
