"""Organisational units through the Admin SDK Directory API (orgunits.list), read only.

Moves pick an OU from this list instead of typing a path. The list changes rarely and is
asked for on every keystroke of the picker, so it is kept for a few minutes.
Reference: https://developers.google.com/workspace/admin/directory/reference/rest/v1/orgunits/list
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable

from bot.google.client import Executor
from bot.google.transport import ServiceFactory
from bot.ttl import TtlCache

#: how long the OU list is kept before Google is asked again
CACHE_SECONDS = 300.0
#: a path not in the cached list is looked up in a list at most this old
RECHECK_SECONDS = 10.0

ORGUNIT_FORBIDDEN_HINT = (
    "Check that the service account has domain-wide delegation for the scope "
    "https://www.googleapis.com/auth/admin.directory.orgunit.readonly and that "
    "GOOGLE_ADMIN_EMAIL is an admin allowed to read organisational units."
)


class OrgUnitsApi:
    """The customer's organisational unit paths, cached for CACHE_SECONDS."""

    def __init__(
        self,
        customer_id: str,
        services: ServiceFactory,
        executor: Executor,
        *,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.customer_id = customer_id
        self.services = services
        self.executor = executor
        self.ttl = ttl
        self.clock = clock
        self._paths: TtlCache[str, tuple[str, ...]] = TtlCache(lambda: self.clock())

    def paths(self, *, max_age: float | None = None) -> tuple[str, ...]:
        """Every OU path, the root `/` first then sorted; from the cache when fresh (younger
        than `max_age` seconds if given, else than the cache's time to live)."""
        limit = self.ttl if max_age is None else min(max_age, self.ttl)
        return self._paths.get("all", limit, self._list)

    def _list(self) -> tuple[str, ...]:
        request = self.services.resource("orgunits").list(customerId=self.customer_id, type="all")
        response = self.executor.execute(request, mutation=False, what="list organisational units")
        found = {
            str(ou["orgUnitPath"])
            for ou in response.get("organizationUnits") or []
            if ou.get("orgUnitPath")
        }
        found.discard("/")
        return ("/", *sorted(found, key=str.lower))

    def forget(self) -> None:
        """Drop the cached list (the next call asks Google)."""
        self._paths.forget()

    def find(self, path: str) -> str | None:
        """The OU path as Google spells it, matched without regard to case; None if unknown.

        A path missing from the cached list is looked for once more in a list at most
        RECHECK_SECONDS old: an OU created in the Admin console a minute ago is no typo.
        """
        wanted = _key(path)
        found = next((p for p in self.paths() if _key(p) == wanted), None)
        if found is None:
            fresh = self.paths(max_age=RECHECK_SECONDS)
            found = next((p for p in fresh if _key(p) == wanted), None)
        return found

    def suggest(self, path: str, limit: int = 3) -> list[str]:
        """The known OU paths closest to a mistyped one (difflib, case-insensitive)."""
        paths = self.paths()
        by_key = {_key(p): p for p in paths}
        close = difflib.get_close_matches(_key(path), list(by_key), n=limit, cutoff=0.6)
        if not close:  # a typed leaf name alone ("loaners") still finds /Loaners
            leaf = _key(path).rsplit("/", 1)[-1]
            close = [k for k in by_key if k.rsplit("/", 1)[-1] == leaf][:limit]
        return [by_key[k] for k in close]

    def search(self, text: str, limit: int = 100) -> list[str]:
        """The OU paths containing `text` (case-insensitive), for the picker; all if empty."""
        needle = text.strip().lower()
        return [p for p in self.paths() if needle in p.lower()][:limit]


def _key(path: str) -> str:
    path = path.strip()
    if not path.startswith("/"):
        path = "/" + path
    return path.rstrip("/").lower() or "/"
