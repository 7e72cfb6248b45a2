"""The lost-device cases as stored: what the card, the capability model and the lost
watch all read. (bot/lost.py announces, watches and resolves them.)"""

from __future__ import annotations

from typing import Any

from bot.services import Services

OPEN, RESOLVED = "open", "resolved"


def open_case_for(svc: Services, platform: str, device_id: str) -> dict[str, Any] | None:
    """The open lost case of a device (for the banner on its card), or None."""
    rows = list(
        svc.store.db().query(
            "SELECT * FROM lost_devices WHERE platform = ? AND device_id = ? AND state = ?",
            [platform, device_id, OPEN],
        )
    )
    return rows[0] if rows else None
