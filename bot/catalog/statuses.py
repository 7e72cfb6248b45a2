"""Each Android command's own status, in words: what the Command Google returns says about
lost mode, an eSIM, the device info or each cleared app.

The catalog (bot/catalog.py) gives each command its `CommandStatus`; bot/outcomes.py reads
whichever status field a finished command carries through it. Everything the device
reported is escaped here, where the words are built.
"""

from __future__ import annotations

from typing import Any

from bot.blocks import esc
from bot.catalog.specs import CommandStatus

#: PerAppResult.clearingResult
CLEARING_RESULTS = {
    "SUCCESS": "cleared",
    "APP_NOT_FOUND": "not installed",
    "APP_PROTECTED": "protected, not cleared",
    "API_LEVEL": "needs a newer Android version",
}


def _cleared_apps(status: dict[str, Any]) -> tuple[bool, list[str], dict[str, Any]]:
    """CLEAR_APP_DATA: one line per app; it worked when every app was cleared."""
    results = status.get("results") or {}
    lines: list[str] = []
    ok = True
    for package, result in sorted(results.items()):
        outcome = (result or {}).get("clearingResult", "UNKNOWN")
        lines.append(f"• `{esc(package)}`: {CLEARING_RESULTS.get(outcome) or esc(outcome)}")
        ok = ok and outcome == "SUCCESS"
    return (
        ok,
        lines,
        {"clearAppsData": {k: (v or {}).get("clearingResult") for k, v in results.items()}},
    )


def _esim_details(status: dict[str, Any]) -> list[str]:
    internal = status.get("internalErrorDetails") or {}
    if not internal:
        return []
    parts = [f"{esc(k)}={esc(v)}" for k, v in sorted(internal.items())]
    return ["Internal error details: " + ", ".join(parts)]


def _eids(status: dict[str, Any]) -> list[str]:
    eids = [e.get("eid") for e in ((status.get("eidInfo") or {}).get("eids") or []) if e.get("eid")]
    return ["EID: " + ", ".join(f"`{esc(e)}`" for e in eids)] if eids else []


CLEAR_APPS_DATA = CommandStatus("clearAppsDataStatus", read=_cleared_apps)
LOST_START = CommandStatus(
    "startLostModeStatus",
    {
        "SUCCESS": "The device is in lost mode.",
        "RESET_PASSWORD_RECENTLY": "Not in lost mode: the password was reset recently (Android"
        " waits 12 h).",
        "USER_EXIT_LOST_MODE_RECENTLY": "Not in lost mode: the user left lost mode recently.",
        "ALREADY_IN_LOST_MODE": "The device was already in lost mode.",
    },
    ok=("SUCCESS", "ALREADY_IN_LOST_MODE"),
    detail="lostMode",
    other="Lost mode",
)
LOST_STOP = CommandStatus(
    "stopLostModeStatus",
    {
        "SUCCESS": "The device is out of lost mode.",
        "NOT_IN_LOST_MODE": "The device was not in lost mode.",
    },
    # NOT_IN_LOST_MODE: what was wanted (a device out of lost mode) holds already
    ok=("SUCCESS", "NOT_IN_LOST_MODE"),
    detail="lostMode",
    other="Lost mode",
)
ESIM = CommandStatus(
    "esimStatus",
    {
        "SUCCESS": "eSIM operation succeeded.",
        "ERROR_SETUP_IN_PROGRESS": "eSIM failed: the device's setup is still in progress.",
        "ERROR_USER_DENIED": "eSIM failed: the user declined.",
        "INTERNAL_ERROR": "eSIM failed with an internal error.",
        "ERROR_ICC_ID_NOT_FOUND": "eSIM failed: no eSIM with that ICC ID on the device.",
        "ERROR_MULTIPLE_ACTIVE_ESIMS_NO_AVAILABLE_SLOT": "eSIM failed: no free slot for another"
        " active eSIM.",
    },
    detail="esim",
    other="eSIM",
    waiting="confirm the eSIM operation",
    more=_esim_details,
)
DEVICE_INFO = CommandStatus(
    "requestDeviceInfoStatus",
    {
        "SUCCEEDED": "Device info received.",
        "USER_DECLINED": "The user declined to share the device info.",
        "UNSUPPORTED": "The device cannot report this information.",
    },
    ok=("SUCCEEDED",),
    detail="deviceInfo",
    other="Device info",
    waiting="allow sharing the device info",
    more=_eids,
)
