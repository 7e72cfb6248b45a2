"""Every action the bot can take on a device: what it is called, what it asks, what it sends.

One ActionSpec per action and platform, keyed by (name, platform): `reboot` and `found`
exist on both. The `/device` sub-commands and `/device help`, the settings' action names
and default approvals, the modals, the device-card buttons (through each spec's capability
rules), the approval message, the execution, the outcome words and the lost cases all read
from this table, so an action is described exactly once. Each spec's Google value is
checked against the discovery documents when this module loads.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bot.catalog.android import ANDROID
from bot.catalog.chrome import CHROME
from bot.catalog.specs import ActionSpec, CommandStatus, FieldSpec, option_label, validate_ou
from bot.errors import ValidationError
from bot.google.android import COMMAND_TYPES as ANDROID_COMMAND_TYPES
from bot.google.chrome import COMMAND_TYPES as CHROME_COMMAND_TYPES
from bot.google.chrome import STATUS_ACTIONS

if TYPE_CHECKING:
    from bot.devices import Device

__all__ = [
    "CATALOG",
    "ActionSpec",
    "FieldSpec",
    "action_for",
    "all_specs",
    "names",
    "option_label",
    "validate_ou",
]


#: every action by (name, platform), Chrome first, each platform in the order its device
#: card offers them
CATALOG: dict[tuple[str, str], ActionSpec] = {(s.name, s.platform): s for s in (*CHROME, *ANDROID)}

#: the values Google accepts for each kind of action that calls it (discovery documents)
GOOGLE_VALUES: dict[str, frozenset[str]] = {
    "status": frozenset(STATUS_ACTIONS),
    "chrome_command": CHROME_COMMAND_TYPES,
    "android_command": ANDROID_COMMAND_TYPES,
}


def check_table(specs: list[ActionSpec]) -> None:
    """Refuse a table Google or the sub-commands could not follow (raised at import)."""
    for spec in specs:
        allowed = GOOGLE_VALUES.get(spec.kind)
        if allowed is not None and spec.google not in allowed:
            raise ValueError(
                f"{spec.name} ({spec.platform}): {spec.google!r} is not a Google value"
            )
        if allowed is None and spec.google:
            raise ValueError(f"{spec.name} ({spec.platform}) makes no Google call: google is ''")
    for name in names_of(specs):
        same = [s for s in specs if s.name == name]
        if len({(s.args, s.approval) for s in same}) > 1:
            raise ValueError(f"`{name}` on two platforms: usage and approval must agree")


def names_of(specs: list[ActionSpec]) -> list[str]:
    """The sub-command names of `specs`, once each, in order."""
    return list(dict.fromkeys(s.name for s in specs))


def action_for(name: str, platform: str) -> ActionSpec:
    """The spec of `name` on `platform`; ValidationError if that platform lacks it."""
    spec = CATALOG.get((name, platform))
    if spec is None:
        kind = "a Chrome OS" if platform == "chrome" else "an Android"
        raise ValidationError(f"`{name}` is not something {kind} device can do.")
    return spec


def all_specs() -> list[ActionSpec]:
    """Every action on every platform (`reboot` on both, `found` on both)."""
    return list(CATALOG.values())


def names() -> list[str]:
    """Every action sub-command name, once, in table order."""
    return names_of(all_specs())


def specs_named(name: str) -> list[ActionSpec]:
    """The specs of one sub-command (two for `reboot` and `found`); [] if unknown."""
    return [s for s in CATALOG.values() if s.name == name]


def usage(name: str) -> str:
    """The usage line of an action sub-command."""
    same = specs_named(name)
    return same[0].usage if same else f"/device {name} <device>"


def summary(name: str) -> str:
    """The help line of an action sub-command (both platforms' when it has two)."""
    return "; ".join(dict.fromkeys(s.summary for s in specs_named(name)))


def label(name: str) -> str:
    """An action's label, by name alone (a modal's title before the device is known)."""
    same = specs_named(name)
    return same[0].label if same else name.capitalize()


def approval_required() -> frozenset[str]:
    """The actions a second person approves unless APPROVAL_REQUIRED says otherwise."""
    return frozenset(s.name for s in CATALOG.values() if s.approval)


def fields_for(spec: ActionSpec, device: Device | None) -> tuple[FieldSpec, ...]:
    """The inputs `spec` asks for on `device`: only the flags and fields that apply there."""
    if spec.fit.fields is None or device is None:
        return spec.fields
    return spec.fit.fields(spec.fields, device)


def consequence(spec: ActionSpec, device: Device) -> str | None:
    """What `spec` does to this very device, in words (mrkdwn), or None if nothing to add."""
    return spec.fit.consequence(device) if spec.fit.consequence else None


def device_initial(spec: ActionSpec, ownership: str | None) -> dict[str, Any]:
    """Field values preset from the target device (add-esim: its activation state)."""
    return spec.fit.initial(ownership) if spec.fit.initial else {}


def check_device(
    spec: ActionSpec, params: dict[str, Any], ownership: str | None, device: Device | None = None
) -> None:
    """Refuse parameters Google rejects, or that do nothing, on this device (naming the field)."""
    if spec.fit.check:
        spec.fit.check(params, ownership, device)


def command_body(
    spec: ActionSpec, params: dict[str, Any], secrets: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON sent to Google for this action (secrets merged in only here, at the last moment)."""
    merged = {**params, **(secrets or {})}
    body = spec.build(merged)
    if spec.kind == "android_command":
        return {"type": spec.google, **body}
    if spec.kind == "chrome_command":
        return {"commandType": spec.google, **({"payload": json.dumps(body)} if body else {})}
    return body


def android_command(command_type: str) -> ActionSpec | None:
    """The Android action that sends `command_type` (LOCK, WIPE, …), if the bot has one."""
    return next(
        (s for s in CATALOG.values() if s.kind == "android_command" and s.google == command_type),
        None,
    )


def command_statuses() -> list[CommandStatus]:
    """Every command-specific status the catalog reads, once each, in table order."""
    found = {s.status.key: s.status for s in CATALOG.values() if s.status is not None}
    return list(found.values())


def status_fields() -> tuple[str, ...]:
    """The Command fields with a single command-specific status (cleared apps have per-app results)."""
    return tuple(s.key for s in command_statuses() if s.read is None)


check_table(all_specs())
