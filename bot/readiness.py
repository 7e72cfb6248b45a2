"""`/readyz`: ready only when the store takes writes, Google answers, and Slack knows the token.

`/healthz` says the process is alive; `/readyz` says it can do its work, and names the
part that cannot. The Google and Slack checks are real calls (a one-device list, auth.test),
so their answers are kept for `ttl` seconds: a probe every few seconds costs one call a
minute at most.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from bot.errors import DeviceBotError
from bot.services import Services
from bot.ttl import TtlCache

log = logging.getLogger(__name__)

READY_TTL = 60.0


class Readiness:
    def __init__(self, svc: Services, ttl: float = READY_TTL) -> None:
        self.svc = svc
        self.ttl = ttl
        self._checks: TtlCache[str, str | None] = TtlCache()

    def check(self) -> tuple[bool, str]:
        """(ready, the body): each part `ok` or what is wrong with it."""
        parts = {
            "store": self._store,  # never cached: a full disk must show at once
            "google": lambda: self._cached_check("google", self._google),
            "slack": lambda: self._cached_check("slack", self._slack),
        }
        lines, ready = [], True
        for name, check in parts.items():
            problem = _run(check)
            ready = ready and problem is None
            lines.append(f"{name}: {problem or 'ok'}")
        return ready, ("ready\n" if ready else "not ready\n") + "\n".join(lines)

    def _cached_check(self, name: str, check: Callable[[], str | None]) -> str | None:
        return self._checks.get(name, self.ttl, lambda: _run(check))

    def _store(self) -> str | None:
        with self.svc.store.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('readyz', ?)", [str(time.time())]
            )
        return None

    def _google(self) -> str | None:
        google = self.svc.google
        problems = []
        if google.chrome is not None:
            problem = _run(lambda: google.chrome.list_devices(max_results=1, projection="BASIC"))  # type: ignore[union-attr]
            if problem:
                problems.append(f"Directory API: {problem}")
        if google.android is not None:
            problem = _run(lambda: google.android.list_devices(page_size=1))  # type: ignore[union-attr]
            if problem:
                problems.append(f"Android Management API: {problem}")
        if google.chrome is None and google.android is None:
            problems.append("neither Google API is configured")
        return "; ".join(problems) or None

    def _slack(self) -> str | None:
        answer = self.svc.out.client.auth_test()
        return None if answer.get("ok") else str(answer.get("error") or "auth.test failed")


def _run(check: Callable[[], object]) -> str | None:
    """None when `check` passes (returns None or any value), else what went wrong, briefly."""
    try:
        result = check()
    except DeviceBotError as exc:
        return exc.message
    except Exception as exc:
        log.warning("readiness check failed: %s", exc)
        response: Any = getattr(exc, "response", None)
        error = response.get("error") if hasattr(response, "get") else None
        return str(error or f"{type(exc).__name__}: {exc}")
    return result if isinstance(result, str) else None
