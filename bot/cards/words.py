"""Actions in words, as a person says them ("Olivia asked to put it in lost mode"), from
each action's catalog entry (`asks`, `past`)."""

from __future__ import annotations

from typing import Any

from bot import catalog
from bot.catalog import FieldSpec, option_label


def asks(action: str, label: str, count: int = 1) -> str:
    """What a request asks for, as the end of "… asked to …"."""
    if count > 1:
        return f"{label.lower()} {count} devices"
    same = catalog.specs_named(action)
    return same[0].asks if same and same[0].asks else f"{label.lower()} it"


def past(action: str) -> str:
    """A request that succeeded, as its history says it ("disabled")."""
    same = catalog.specs_named(action)
    return same[0].past if same and same[0].past else "done"


def option_words(spec: FieldSpec, value: Any) -> str:
    """A parameter's value as its label reads ("Lost or stolen"; flags by label)."""
    if isinstance(value, list):
        return ", ".join(option_label(str(v)) for v in value) or "none"
    if spec.options and isinstance(value, str):
        return option_label(value)
    return str(value)
