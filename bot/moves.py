"""Moving Chrome devices between organisational units: the OU picker and the move's plan.

The OU is chosen from Google's list (an `external_select` fed by orgunits.list, cached by
the Google layer), and a typed one is checked against that list before anything is asked:
a path that does not exist gets "did you mean …?". A move lists every problem with its
devices at once (not found, ambiguous, not a Chrome device) and moves the ones that
resolve when the requester agrees.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.blocks import clip, esc, plain
from bot.devices import CHROME, Device
from bot.errors import Ambiguous, DeviceBotError, NotFound, ValidationError
from bot.roles import Role
from bot.services import Services

log = logging.getLogger(__name__)

#: the move modal's OU input: block_id and action_id (a catalog field name)
OU_FIELD = "ou"
#: Slack shows at most 100 options; an option's value holds at most 150 characters
MAX_OPTIONS = 100
MAX_VALUE = 150
_CANDIDATES_SHOWN = 3


@dataclass(frozen=True)
class MovePlan:
    """The devices a move would touch, and why each other reference is left out."""

    devices: tuple[Device, ...]
    problems: tuple[str, ...]


def plan(svc: Services, refs: Sequence[str]) -> MovePlan:
    """Resolve every reference exactly; collect every problem instead of stopping at one."""
    devices: dict[str, Device] = {}
    problems: list[str] = []
    for ref, found in svc.devices.resolve_each(refs).items():
        name = f"`{esc(ref)}`"
        if isinstance(found, Ambiguous):
            candidates = [d for d in found.candidates if isinstance(d, Device)]
            shown = ", ".join(f"{esc(d.serial or d.short_id)} (`{esc(d.id)}`)" for d in candidates)
            problems.append(
                f"{name} matches {len(candidates)} devices: {clip(shown, 600)}. A move never"
                " guesses: use the device id of the one you mean."
            )
        elif isinstance(found, NotFound):
            problems.append(f"{name}: no device has this serial, device id or asset id.")
        elif isinstance(found, DeviceBotError):
            problems.append(f"{name}: {found.message}")
        elif found.platform != CHROME:
            problems.append(
                f"{name} is an Android device; only Chrome OS devices have an organisational unit."
            )
        else:
            devices.setdefault(found.id, found)
    return MovePlan(tuple(devices.values()), tuple(problems))


def _org_units(svc: Services) -> Any:
    return getattr(svc.google, "org_units", None)


def typed_ou(svc: Services, typed: str) -> tuple[str | None, str | None]:
    """A typed OU as Google spells it, or None with a "did you mean" for the requester."""
    org_units = _org_units(svc)
    if org_units is None:
        return typed, None
    try:
        found = org_units.find(typed)
        if found is not None:
            return found, None
        return None, not_an_ou(typed, org_units.suggest(typed))
    except DeviceBotError as exc:  # the list is unavailable: Google checks the path itself
        log.warning("organisational units unavailable: %s", exc.message)
        return typed, None


def not_an_ou(typed: str, suggestions: Sequence[str]) -> str:
    """The words for a path that is no organisational unit, with the closest ones."""
    text = f"`{esc(typed)}` is not an organisational unit."
    if suggestions:
        text += " Did you mean " + " or ".join(f"*{esc(s)}*" for s in suggestions) + "?"
    return text + " Pick one from the list."


def check_ou(svc: Services, typed: str) -> str:
    """The chosen OU as Google spells it; ValidationError on the OU field if it is none."""
    path, problem = typed_ou(svc, typed)
    if path is None:
        raise ValidationError(problem or "Pick an organisational unit.", field=OU_FIELD)
    return path


def option(path: str) -> dict[str, Any]:
    """One OU as a select option (the path is both label and value)."""
    return {"text": plain(clip(path, 75), 75), "value": path}


def options(svc: Services, user: str, typed: str) -> list[dict[str, Any]]:
    """The OU picker's options for what was typed: containing it, else the closest paths."""
    org_units = _org_units(svc)
    if org_units is None or svc.roles.role_of(user) < Role.OPERATOR:
        return []
    try:
        paths = org_units.search(typed) or org_units.suggest(typed)
    except DeviceBotError as exc:
        log.warning("organisational units unavailable: %s", exc.message)
        return []
    return [option(p) for p in paths if len(p) <= MAX_VALUE][:MAX_OPTIONS]
