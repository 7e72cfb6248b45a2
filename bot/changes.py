"""What changed, told to the hooks that capabilities register at start-up.

The request and lost-case code says what changed and knows nothing of who follows: the
App Home, Workflow Builder steps and lost cases each add a hook to `Services.hooks` in
their `register`, and `Services.changed` calls every hook with every change, in order.
A hook picks the changes it cares about by their type.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.request_model import Request, RequestState


@dataclass(frozen=True)
class RequestChanged:
    """A request was made, or moved to `state` (told once its write committed)."""

    request_id: str
    state: RequestState


@dataclass(frozen=True)
class RequestFinished:
    """A request that ran has ended (executing → a final state), as stored, after both
    of its threads were told."""

    request: Request


@dataclass(frozen=True)
class LostCaseChanged:
    """A lost case of the device opened, closed, or saw the device check in."""

    platform: str
    device_id: str


Change = RequestChanged | RequestFinished | LostCaseChanged
