"""Who may do what (SPEC §2): operators and approvers, by user id or user group."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from enum import IntEnum

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

GROUP_CACHE_SECONDS = 300.0


class Role(IntEnum):
    NONE = 0
    OPERATOR = 1
    APPROVER = 2


class Roles:
    """Resolves a Slack user to a Role; user-group members are cached for a few minutes."""

    def __init__(
        self,
        operators: tuple[str, ...],
        approvers: tuple[str, ...],
        client: WebClient,
        *,
        cache_seconds: float = GROUP_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.operators = operators
        self.approvers = approvers
        self.client = client
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def role_of(self, user_id: str) -> Role:
        if self._member(user_id, self.approvers):
            return Role.APPROVER
        if self._member(user_id, self.operators):
            return Role.OPERATOR
        return Role.NONE

    def _member(self, user_id: str, ids: tuple[str, ...]) -> bool:
        if user_id in ids:
            return True
        return any(user_id in self._group(group) for group in ids if group.startswith("S"))

    def _group(self, group_id: str) -> frozenset[str]:
        now = self.clock()
        with self._lock:
            cached = self._cache.get(group_id)
        if cached and now - cached[0] < self.cache_seconds:
            return cached[1]
        try:
            users = frozenset(self.client.usergroups_users_list(usergroup=group_id)["users"] or [])
        except SlackApiError as exc:
            log.warning("usergroups.users.list %s failed: %s", group_id, exc.response.get("error"))
            return cached[1] if cached else frozenset()
        with self._lock:
            self._cache[group_id] = (now, users)
        return users
