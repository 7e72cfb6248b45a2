"""A device's past: the audit events and requests that name it, and a device Google no
longer returns, found in what the bot kept."""

from __future__ import annotations

import json
from typing import Any

from bot import blocks, reports
from bot import requests as request_table  # `requests` here are the rows that name the device
from bot.cards.history import HISTORY_LIMIT, history_lines, history_page
from bot.devices import Device, platform_name
from bot.services import Services


def remembered_device(svc: Services, ref: str) -> tuple[str, str, str] | None:
    """A device Google no longer returns (wiped, deleted), found by serial or id in what the
    bot kept: requests' device summaries, lost cases, the audit log.

    (title, device id, platform: "chrome", "android" or "" when not kept) or None."""
    # newest first in each place; the first place that knows the device answers
    places = (
        (
            "SELECT device_id, serial, platform FROM lost_devices"
            " WHERE upper(serial) = upper(?) OR device_id = ? OR device_id LIKE ?"
            " ORDER BY reported_at DESC LIMIT 1",
            [ref, ref, "%/" + ref],
        ),
        (
            "SELECT device_id, NULL, platform FROM audit_events"
            " WHERE device_id = ? OR device_id LIKE ? ORDER BY seq DESC LIMIT 1",
            [ref, "%/" + ref],
        ),
    )
    db = svc.store.db()
    row = request_table.remembered_device(svc, ref) or next(
        filter(None, (db.execute(sql, args).fetchone() for sql, args in places)), None
    )
    if row is None or not row[0]:
        return None
    device_id, serial, platform = str(row[0]), row[1], str(row[2] or "")
    name = serial or device_id.rsplit("/", 1)[-1]
    return f"{platform_name(platform)} {name} (no longer at Google)".strip(), device_id, platform


def chrome_serial(device: Device) -> str | None:
    """The serial that outside events (the Admin console's Chrome device log) are filed by."""
    return device.serial if device.platform == "chrome" else None


def device_events(svc: Services, device_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every audit event about a device, newest first — its own, and those of every request
    that named it (a bulk move records its device ids with the request) — and those requests."""
    db = svc.store.db()
    requests: dict[str, dict[str, Any]] = {}
    for row in request_table.naming_device(svc, device_id):
        for column in ("device_ids", "devices", "params"):
            row[column] = json.loads(row[column] or "null")
        row.pop("secret", None)
        requests[row["id"]] = row
    ids_ = list(requests)
    marks = ",".join("?" * len(ids_))
    where = "device_id = ?" + (f" OR request_id IN ({marks})" if ids_ else "")
    events = list(
        db.query(f"SELECT * FROM audit_events WHERE {where} ORDER BY seq DESC", [device_id, *ids_])
    )
    for event in events:
        event["detail"] = json.loads(event["detail"] or "{}")
    return events, requests


def history_blocks(
    svc: Services, title: str, device_id: str, *, serial: str | None = None
) -> list[blocks.Block]:
    """A device's history in words: the bot's requests and events, merged with the changes
    made outside the bot (read from the Admin console's audit log), newest first."""
    events, requests = device_events(svc, device_id)
    outside = reports.outside_events_for(svc.store, device_id, serial, limit=HISTORY_LIMIT)
    lines = history_lines([*events, *outside], requests, device_id)
    return history_page(title, lines, raw_value=device_id if events else None)
