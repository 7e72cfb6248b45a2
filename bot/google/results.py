"""What the Google layer answers for both platforms: a page of a list, and one device's outcome
of a multi-device call, with the way a lost outcome is settled: by reading the device back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.errors import DeviceBotError, DeviceNotFound, GoogleError, OutcomeUnknown


@dataclass(frozen=True)
class Page:
    """One page of a list call: its items and the token of the next page (None at the end)."""

    items: list[dict[str, Any]]
    next_page_token: str | None


@dataclass(frozen=True)
class DeviceResult:
    """The outcome for one device of a multi-device call (status change, move)."""

    device_id: str
    ok: bool
    error: DeviceBotError | None = None

    @property
    def outcome_unknown(self) -> bool:
        """Google's answer was lost (timeout, 5xx): the device must be read back, not resent."""
        return not self.ok and isinstance(self.error, OutcomeUnknown)


def read_back(
    results: Sequence[DeviceResult],
    read: Callable[[str], dict[str, Any]],
    took_effect: Callable[[dict[str, Any]], bool],
    not_done: Callable[[dict[str, Any]], str],
) -> list[DeviceResult]:
    """Known results as they are; each unknown one decided by a fresh `read` of its device:
    done when `took_effect`, else failed with the words of `not_done`.

    A device that cannot be read stays unknown (the caller tries again later).
    """
    out: list[DeviceResult] = []
    for result in results:
        if not result.outcome_unknown:
            out.append(result)
            continue
        try:
            raw = read(result.device_id)
        except DeviceNotFound as exc:
            out.append(DeviceResult(result.device_id, False, exc))
            continue
        except DeviceBotError:
            out.append(result)
            continue
        if took_effect(raw):
            out.append(DeviceResult(result.device_id, True, None))
        else:
            error = GoogleError(not_done(raw), detail="read back")
            out.append(DeviceResult(result.device_id, False, error))
    return out
