"""What the emulator records (calls, deliveries, response_url posts, refusals) and the error a
Web API method raises to answer ``{"ok": false}``.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass(frozen=True)
class Call:
    """One Web API call the bot made, and what the emulator answered."""

    method: str
    args: JSON
    ts: float
    ok: bool
    error: str | None = None
    response: JSON = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """The bot's HTTP answer to something the emulator delivered."""

    status: int
    body: str
    json: JSON | None
    elapsed: float
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Prepared:
    """A delivery built and signed but not sent (`SlackEmulator.preparing`): for a load
    generator that sends many at the same instant from outside this process."""

    kind: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Delivery:
    """One request the emulator sent to the bot, with the reply."""

    kind: (
        str  # "slash_command" | "block_actions" | "view_submission" | "view_closed" | "events_api"
    )
    payload: JSON
    reply: Reply
    via: str = "http"  # "http" (signed POST) | "socket" (Socket Mode envelope)


@dataclass(frozen=True)
class ResponsePost:
    """One POST the bot made to a response_url."""

    token: str
    body: JSON
    status: int
    context: JSON


@dataclass(frozen=True)
class Refusal:
    """A payload the emulator refused as real Slack would (invalid Block Kit)."""

    where: str  # the Web API method, "response_url", or the delivery whose answer held it
    error: str
    errors: list[str]
    payload: Any


class RefusalLog:
    """Every refusal by any emulator in this process, so a test harness can fail a test during
    which one refused Block Kit (whichever emulator, even one the test made and dropped)."""

    def __init__(self, keep: int = 1000) -> None:
        self._lock = threading.Lock()
        self._kept: collections.deque[Refusal] = collections.deque(maxlen=keep)
        self.total = 0

    def add(self, refusal: Refusal) -> None:
        with self._lock:
            self._kept.append(refusal)
            self.total += 1

    def since(self, total: int) -> list[Refusal]:
        """The refusals recorded after ``total`` was read (the most recent ``keep`` at most)."""
        with self._lock:
            return list(self._kept)[max(0, len(self._kept) - (self.total - total)) :]


REFUSALS = RefusalLog()


class SlackApiError(Exception):
    """Raised inside a Web API method to answer ``{"ok": false, "error": ...}``."""

    def __init__(
        self,
        error: str,
        messages: list[str] | None = None,
        status: int = 200,
        *,
        block_kit: bool = False,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []
        self.status = status
        self.block_kit = block_kit  # refused for its Block Kit: recorded in ``refusals``
