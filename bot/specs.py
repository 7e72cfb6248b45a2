"""What an action is: its form's fields, how typed values are parsed, what it sends.

`ActionSpec` and `FieldSpec` describe one `/device` action; the table of every action is
`bot/catalog.py`, the checks of particular fields `bot/params.py`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.blocks import esc
from bot.errors import ValidationError

Kind = Literal["status", "chrome_command", "android_command", "patch", "move", "lost_case"]
FieldKind = Literal[
    "text", "multiline", "select", "checkboxes", "radio", "password", "number", "org_unit"
]

_OU = re.compile(r"^/[^\n]{0,500}$")


@dataclass(frozen=True)
class FieldSpec:
    """One input of an action's modal."""

    name: str
    label: str
    kind: FieldKind = "text"
    optional: bool = False
    options: tuple[str, ...] = ()
    hint: str | None = None
    placeholder: str | None = None
    max_length: int | None = None
    secret: bool = False
    initial: str | None = None


@dataclass(frozen=True)
class ActionSpec:
    """An action on a device."""

    name: str  # the /device sub-command
    platform: Literal["chrome", "android"]
    kind: Kind
    google: str  # Directory status action, Chrome commandType or Android Command type
    label: str
    summary: str
    example: str
    fields: tuple[FieldSpec, ...] = ()
    states: tuple[str, ...] = ()  # device states in which the action is legal (empty: any)
    destructive: bool = False
    #: offered by `/device bulk` (a list or CSV, one approval for the batch)
    bulk: bool = False
    #: devices one plain approval of a bulk run covers (BULK_CAPS overrides); None: no cap
    bulk_cap: int | None = None
    validate: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: builds the body Google wants from validated params (command body or status params)
    build: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda p: {})

    @property
    def usage(self) -> str:
        return f"/device {self.name} <device>"

    def parse(self, values: dict[str, Any]) -> dict[str, Any]:
        """Check the modal's values; raises ValidationError(field=...) naming the field."""
        params: dict[str, Any] = {}
        for spec in self.fields:
            value = values.get(spec.name)
            if isinstance(value, str):
                value = value.strip()
            if value in (None, "", []):
                if not spec.optional:
                    raise ValidationError(f"{spec.label} is required.", field=spec.name)
                continue
            if spec.max_length and isinstance(value, str) and len(value) > spec.max_length:
                raise ValidationError(
                    f"{spec.label} must be at most {spec.max_length} characters ({len(value)} given).",
                    field=spec.name,
                )
            if spec.kind in ("select", "radio") and value not in spec.options:
                raise ValidationError(
                    f"Choose one of the listed {spec.label.lower()} values.", field=spec.name
                )
            if spec.kind == "checkboxes":
                value = [v for v in value if v in spec.options]
            params[spec.name] = value
        return self.validate(params) if self.validate else params

    def secret_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.secret)


def validate_ou(path: str) -> str:
    """An organisational unit path such as /Sales/EMEA."""
    path = path.strip()
    if not _OU.match(path) or "//" in path:
        raise ValidationError(
            f"`{esc(path)}` is not an organisational unit path like /Sales/EMEA.", field="ou"
        )
    return path.rstrip("/") or "/"


def option_label(value: str) -> str:
    """How an option value reads in a modal and on an approval card: `lost_or_stolen` → `Lost or stolen`."""
    return value.replace("_", " ").capitalize()
