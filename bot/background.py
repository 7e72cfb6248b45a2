"""Work that runs after the ack, off the request path, and reports in the requester's DM.

`/device export` and `/device stats` both ack, start a thread, post one progress message in
the requester's direct messages with the bot and edit it in place (throttled) until the
result arrives there. The two pieces they share:

- `DMProgress`: that one message, posted at once and edited at most every `every` seconds
  (a final edit is forced); an edit that fails is logged, never fatal.
- `BackgroundRuns`: the runs of one kind in this process, one per person and at most
  `limit` at once, each on its own daemon thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from bot.blocks import context, section
from bot.errors import ValidationError
from bot.services import Services

log = logging.getLogger(__name__)


class DMProgress:
    """One message in `user`'s DM with the bot, edited in place (throttled)."""

    def __init__(
        self,
        svc: Services,
        user: str,
        text: str,
        *,
        every: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.svc = svc
        self.every = every
        self.clock = clock
        # a user id as channel: the requester's DM with the bot (no im:write needed)
        self.channel, self.ts = svc.out.post_where(
            user, text, self._blocks(f":hourglass_flowing_sand: {text}")
        )
        self._last = self.clock()

    @staticmethod
    def _blocks(text: str, note: str = "") -> list[dict[str, Any]]:
        return [section(text), *([context(note)] if note else [])]

    def show(
        self,
        text: str,
        note: str = "",
        *,
        force: bool = False,
        blocks: list[dict[str, Any]] | None = None,
    ) -> None:
        """Edit the message to `text` (or `blocks`, with `text` as the notification text)."""
        now = self.clock()
        if not force and now - self._last < self.every:
            return
        self._last = now
        try:
            self.svc.out.update(self.channel, self.ts, text, blocks or self._blocks(text, note))
        except Exception:  # progress is a courtesy: never stop the work for it
            log.warning("could not update the progress message", exc_info=True)


class BackgroundRuns:
    """Runs of one kind in this process: one per person, `limit` in all, each on a thread."""

    def __init__(self, kind: str, limit: int, *, busy: str, full: str) -> None:
        self.kind = kind
        self.limit = limit
        self.busy = busy  # told to a person whose previous run is still going
        self.full = full  # told when `limit` runs are going
        self._lock = threading.Lock()
        self.running: dict[str, threading.Thread] = {}

    def start(
        self,
        user: str,
        work: Callable[[], None],
        tell: Callable[[str], None],
        cannot_start: str,
    ) -> None:
        """Run `work` for `user` on a thread; ValidationError if they or all slots are busy.

        `tell` reaches the person with `cannot_start` if `work` raises (its own failures are
        reported in its progress message; what escapes is that it could not even post one).
        """
        with self._lock:
            self.running = {u: t for u, t in self.running.items() if t.is_alive()}
            if user in self.running:
                raise ValidationError(self.busy)
            if len(self.running) >= self.limit:
                raise ValidationError(self.full)
            thread = threading.Thread(
                target=self._run,
                args=(user, work, tell, cannot_start),
                name=f"{self.kind}-{user}",
                daemon=True,
            )
            self.running[user] = thread
        thread.start()

    def _run(
        self, user: str, work: Callable[[], None], tell: Callable[[str], None], cannot_start: str
    ) -> None:
        try:
            work()
        except Exception:
            log.exception("%s for %s could not start", self.kind, user)
            tell(cannot_start)
