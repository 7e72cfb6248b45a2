"""Actions in words, as a person says them ("Olivia asked to put it in lost mode")."""

from __future__ import annotations

from typing import Any

from bot.catalog import FieldSpec, option_label

#: what a request asks, as a person says it ("Olivia asked to put it in lost mode")
ASK_WORDS = {
    "lost": "put it in lost mode",
    "found": "mark it found",
    "reenable": "re-enable it",
    "wipe-users": "wipe its users",
    "support-packet": "fetch a support packet",
    "logs": "capture its logs",
    "screenshot": "take a screenshot",
    "volume": "set its volume",
    "reset-password": "reset its password",
    "clear-app-data": "clear app data",
    "add-esim": "add an eSIM",
    "remove-esim": "remove an eSIM",
    "device-info": "ask for its device info",
    "annotate": "change its annotations",
    "move": "move it",
}

#: a request that succeeded, in words ("disabled 14:02")
DONE_WORDS = {
    "disable": "disabled",
    "reenable": "re-enabled",
    "deprovision": "deprovisioned",
    "reboot": "rebooted",
    "powerwash": "powerwashed",
    "wipe-users": "users wiped",
    "lock": "locked",
    "wipe": "wiped",
    "relinquish": "relinquished",
    "lost": "in lost mode",
    "found": "marked found",
    "move": "moved",
    "annotate": "annotations changed",
    "reset-password": "password reset",
}


def asks(action: str, label: str, count: int = 1) -> str:
    """What a request asks for, as the end of "… asked to …"."""
    if count > 1:
        return f"{label.lower()} {count} devices"
    return ASK_WORDS.get(action, f"{label.lower()} it")


def option_words(spec: FieldSpec, value: Any) -> str:
    """A parameter's value as its label reads ("Lost or stolen"; flags by label)."""
    if isinstance(value, list):
        return ", ".join(option_label(str(v)) for v in value) or "none"
    if spec.options and isinstance(value, str):
        return option_label(value)
    return str(value)
