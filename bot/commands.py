"""The `/device` slash command: sub-command table, parsing, permission check, dispatch.

Capabilities add their sub-commands with `commands.add(Subcommand(...))` from their
`register()`; the single `/device` listener acks first, then routes here.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slack_bolt import Ack

from bot import audit
from bot.blocks import esc
from bot.errors import PermissionDenied
from bot.roles import MembershipUnknown, Role
from bot.services import Services

log = logging.getLogger(__name__)


@dataclass
class Invocation:
    """One `/device …` call: who, where, what, and how to answer."""

    svc: Services
    user_id: str
    channel_id: str
    name: str  # the sub-command
    args: str  # everything after the sub-command, as typed
    response_url: str
    trigger_id: str
    role: Role = Role.NONE
    body: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def words(self) -> list[str]:
        return self.args.split()

    def reply(self, text: str, blocks: Any = None) -> None:
        """An ephemeral answer to the person who typed the command."""
        self.svc.out.respond(self.response_url, text, blocks)


Handler = Callable[[Invocation], None]


@dataclass(frozen=True)
class Subcommand:
    name: str
    handler: Handler
    usage: str
    summary: str
    example: str
    min_role: Role = Role.OPERATOR
    aliases: tuple[str, ...] = ()


class Commands:
    """The sub-command table of `/device`."""

    def __init__(self) -> None:
        self._table: dict[str, Subcommand] = {}
        self._order: list[Subcommand] = []
        self.default: Handler | None = None  # `/device` alone

    def add(self, sub: Subcommand) -> None:
        for name in (sub.name, *sub.aliases):
            if name in self._table:
                raise ValueError(f"/device {name} registered twice")
            self._table[name] = sub
        self._order.append(sub)

    def all(self) -> list[Subcommand]:
        return list(self._order)

    def get(self, name: str) -> Subcommand | None:
        return self._table.get(name)

    def closest(self, name: str) -> Subcommand | None:
        match = difflib.get_close_matches(name, list(self._table), n=1, cutoff=0.5)
        return self._table[match[0]] if match else None

    def listener(self, svc: Services) -> Callable[..., None]:
        """The Bolt listener for `/device`: ack at once, then check, route and run."""

        def device_command(ack: Ack, body: dict[str, Any]) -> None:
            """Entry point of every `/device …`."""
            ack()
            text = (body.get("text") or "").strip()
            # any whitespace separates the sub-command (a tab or no-break space as well)
            name, *more = text.split(None, 1) or [""]
            rest = more[0] if more else ""
            inv = Invocation(
                svc=svc,
                user_id=body["user_id"],
                channel_id=body.get("channel_id", ""),
                name=name.lower(),
                args=rest.strip(),
                response_url=body.get("response_url", ""),
                trigger_id=body.get("trigger_id", ""),
                body=body,
            )
            inv.role = svc.roles.role_of(inv.user_id)
            if inv.role is Role.NONE:
                refuse(svc, inv.user_id, f"/device {text}"[:200])
            if not name:
                if self.default is None:
                    inv.name = "help"
                    self._run(self._table["help"], inv)
                else:
                    self.default(inv)
                return
            sub = self._table.get(inv.name)
            if sub is None:
                guess = self.closest(inv.name)
                hint = f" Did you mean `{guess.usage}`?" if guess else ""
                inv.reply(
                    f"`/device {esc(inv.name[:40])}` is not a sub-command.{hint} `/device help` lists them all."
                )
                return
            self._run(sub, inv)

        return device_command

    def _run(self, sub: Subcommand, inv: Invocation) -> None:
        if inv.role < sub.min_role:
            refuse(inv.svc, inv.user_id, f"/device {sub.name}", needed=sub.min_role)
        log.info("/device %s", sub.name)  # the user is in the line's context (logs.bind)
        sub.handler(inv)


def refuse(svc: Services, user_id: str, attempt: str, *, needed: Role = Role.OPERATOR) -> None:
    """Audit the refused attempt and raise PermissionDenied for the error handler to voice."""
    try:  # refused only because Slack cannot list an approver group right now? Say so.
        svc.roles.is_approver(user_id)
    except MembershipUnknown as exc:
        audit.record(
            svc.store,
            actor=user_id,
            event="membership_unknown",
            detail={"attempt": attempt, "groups": list(exc.groups), "errors": list(exc.errors)},
        )
        what = "approving" if needed is Role.APPROVER else "using device-bot"
        raise MembershipUnknown(exc.groups, exc.errors, what=what) from None
    audit.record(
        svc.store,
        actor=user_id,
        event="refused",
        detail={"attempt": attempt, "needed": needed.name.lower()},
    )
    if needed is Role.APPROVER:
        raise PermissionDenied(
            "Only device approvers may do that. Ask one of them in the approvals channel."
        )
    raise PermissionDenied(
        "You are not allowed to use device-bot yet. Ask an IT admin to add you to the device"
        " operators (or the approvers)."
    )
