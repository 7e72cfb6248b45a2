"""Who may do what: operators and approvers, by user id or user group.

A user group's members come from `usergroups.users.list` and are cached. For the
operator role a stale list is used while Slack cannot answer (looking devices up keeps
working). For the approver role it is not: once an approver group's list is older than
APPROVER_GROUP_CACHE and Slack cannot list it again, membership is *unknown* and nobody
approves through that group (fail closed) — a user just removed from the group must not
keep approving because Slack's API is down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import IntEnum

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import PermissionDenied
from bot.ttl import TtlCache

log = logging.getLogger(__name__)

GROUP_CACHE_SECONDS = 300.0
APPROVER_GROUP_CACHE_SECONDS = 60.0


class Role(IntEnum):
    NONE = 0
    OPERATOR = 1
    APPROVER = 2


class MembershipUnknown(PermissionDenied):
    """Slack could not list an approver group and the cached list is past its lifetime."""

    code = "membership_unknown"

    def __init__(
        self, groups: tuple[str, ...], errors: tuple[str, ...], what: str = "approving"
    ) -> None:
        names = ", ".join(f"<!subteam^{g}>" for g in groups)
        super().__init__(
            f"Slack did not answer whether you are in the approver group {names} and the bot's "
            f"last answer is too old to trust, so {what} is refused for now (nothing was done). "
            "Try again in a minute; if it persists, tell the bot's operator."
        )
        self.groups = groups
        self.errors = errors


class Roles:
    """Resolves a Slack user to a Role; user-group members are cached for a few minutes."""

    def __init__(
        self,
        operators: tuple[str, ...],
        approvers: tuple[str, ...],
        client: WebClient,
        *,
        cache_seconds: float = GROUP_CACHE_SECONDS,
        approver_cache_seconds: float = APPROVER_GROUP_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.operators = operators
        self.approvers = approvers
        self.client = client
        self.cache_seconds = cache_seconds
        self.approver_cache_seconds = approver_cache_seconds
        self.clock = clock
        self._groups: TtlCache[str, frozenset[str]] = TtlCache(lambda: self.clock())

    def role_of(self, user_id: str) -> Role:
        """The user's role; an approver group that cannot be checked grants nothing."""
        try:
            if self.is_approver(user_id):
                return Role.APPROVER
        except MembershipUnknown:
            pass
        if self._operator(user_id):
            return Role.OPERATOR
        return Role.NONE

    def is_approver(self, user_id: str) -> bool:
        """Whether the user may approve; MembershipUnknown when that cannot be known now."""
        if user_id in self.approvers:
            return True
        unknown: list[str] = []
        errors: list[str] = []
        for group in (g for g in self.approvers if g.startswith("S")):
            members, error = self._group(group, self.approver_cache_seconds, stale_ok=False)
            if members is None:
                unknown.append(group)
                errors.append(error)
            elif user_id in members:
                return True
        if unknown:
            raise MembershipUnknown(tuple(unknown), tuple(errors))
        return False

    def _operator(self, user_id: str) -> bool:
        if user_id in self.operators:
            return True
        for group in (g for g in self.operators if g.startswith("S")):
            members, _ = self._group(group, self.cache_seconds, stale_ok=True)
            if members and user_id in members:
                return True
        return False

    def _group(
        self, group_id: str, lifetime: float, *, stale_ok: bool
    ) -> tuple[frozenset[str] | None, str]:
        """The group's members (None if unknown) and, when listing failed, Slack's error."""
        try:
            users = self._groups.get(
                group_id,
                lifetime,
                lambda: frozenset(
                    self.client.usergroups_users_list(usergroup=group_id)["users"] or []
                ),
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "error")
            log.warning("usergroups.users.list %s failed: %s", group_id, error)
            return self._stale(group_id, stale_ok), error
        except Exception as exc:  # network: Slack unreachable
            log.warning("usergroups.users.list %s failed: %s", group_id, type(exc).__name__)
            return self._stale(group_id, stale_ok), type(exc).__name__
        return users, ""

    def _stale(self, group_id: str, stale_ok: bool) -> frozenset[str] | None:
        """What a failed listing stands on: the last members known (none if never listed)
        when a stale answer will do, else None (unknown)."""
        if not stale_ok:
            return None
        return self._groups.last(group_id) or frozenset()
