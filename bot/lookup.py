"""Looking devices up: the sub-commands help, find, info, history and requests, and
`/device` alone (the search modal). Their buttons are in `lookup_buttons`.

A sub-command runs after its ack in Bolt's listener thread and answers through the
response_url (ephemeral), so a slow Google never costs Slack's 3-second window.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from bot import blocks, capabilities, lookup_buttons, reports, results
from bot import requests as request_table  # `requests` here is the sub-command
from bot.cards.device import (
    device_title,
)
from bot.cards.help import device_help, help_overview
from bot.cards.history import history_text
from bot.cards.pending import REQUESTS_LIMIT, requests_list
from bot.cards.search import PICKER_LIMIT, closest_picker, picker, search_modal
from bot.commands import Commands, Invocation, Subcommand
from bot.device_history import chrome_serial, history_blocks, remembered_device
from bot.devices import ANDROID, Device
from bot.errors import Ambiguous, NotFound, ValidationError
from bot.lookup_buttons import card_for
from bot.roles import Role
from bot.search_query import MAX_QUERY, parse_sort
from bot.services import Services

if TYPE_CHECKING:
    from bot.listeners import GuardedApp


log = logging.getLogger(__name__)


# ---- sub-commands -------------------------------------------------------------------------


def find(inv: Invocation) -> None:
    """`/device find <query>`: one page of results on both platforms, with *Next*."""
    text = inv.args.strip()
    if not text or len(text) > MAX_QUERY:
        usage(inv, FIND, "a search query of 1 to 200 characters")
        return
    try:
        query, sort = parse_sort(text)
        if not query and sort is None:
            raise ValidationError("a search query of 1 to 200 characters")
        text, blocks_ = results.first_page(inv.svc, query, sort)
    except ValidationError as exc:
        usage(inv, FIND, exc.message)
        return
    inv.reply(text, blocks_)


def info(inv: Invocation) -> None:
    """`/device info <device>`: the device card, or a picker when the reference is ambiguous.

    A reference that names no device exactly (a person's email, part of a serial) is
    searched for instead: its matches are offered to pick from.
    """
    try:
        device = _resolve(inv, INFO)
    except NotFound:
        ref = inv.words[0]
        page = inv.svc.devices.search(ref, page_size=PICKER_LIMIT)
        if not page.devices:
            raise
        inv.reply(
            f"{blocks.esc(ref)} matches {len(page.devices)} devices",
            closest_picker(ref, page.devices, more=page.next_cursor is not None),
        )
        return
    if device is not None:
        inv.reply(*card_for(inv.svc, device))


def history(inv: Invocation) -> None:
    """`/device history <device>`: what was done to the device, one line per action, newest first."""
    if len(inv.words) != 1:
        usage(inv, HISTORY, "exactly one device")
        return
    try:
        device = _resolve(inv, HISTORY)
    except NotFound:
        # the device may be gone from Google (deleted, wiped): its past is still in the log
        ref = inv.words[0]
        found = remembered_device(inv.svc, ref)
        if found is None:
            if not reports.count_for(inv.svc.store, ref, ref):
                raise
            found = (ref, ref, "")
        title, device_id, platform = found
        serial = None if platform == ANDROID else ref  # outside events: Chrome only
        inv.reply(history_text(title), history_blocks(inv.svc, title, device_id, serial=serial))
        return
    if device is not None:
        title = device_title(device)
        inv.reply(
            history_text(title),
            history_blocks(inv.svc, title, device.id, serial=chrome_serial(device)),
        )


def requests(inv: Invocation) -> None:
    """`/device requests`: pending requests (an approver sees all, an operator their own)."""
    if inv.args:
        usage(inv, REQUESTS, "no arguments")
        return
    everyone = inv.role >= Role.APPROVER
    rows, total = request_table.pending(inv.svc, None if everyone else inv.user_id, REQUESTS_LIMIT)
    text = f"{total} pending request{'s' if total != 1 else ''}"
    inv.reply(text, requests_list(rows, everyone=everyone, total=total))


def open_search(inv: Invocation) -> None:
    """`/device` alone: the search modal, opened at once (a trigger_id lives 3 seconds)."""
    meta = json.dumps({"response_url": inv.response_url, "channel": inv.channel_id})
    inv.svc.out.open_view(inv.trigger_id, search_modal(meta))


FIND = Subcommand(
    "find",
    find,
    "/device find <query>",
    "Search both platforms (`platform:chrome|android`; `status:` on both; Chrome OS also takes"
    " the Directory query syntax: user:, id:, asset_id:, …);"
    " `sort:lastsync|serial|status|user|location|notes` and `order:asc|desc` order the results",
    "/device find user:ada@example.com",
)
INFO = Subcommand(
    "info",
    info,
    "/device info <device>",
    "A device card: status, user, OU, OS, last sync, network, and the actions that fit it",
    "/device info 5CD1234XYZ",
)
HISTORY = Subcommand(
    "history",
    history,
    "/device history <device>",
    "The audit trail of a device, newest first",
    "/device history 5CD1234XYZ",
)
REQUESTS = Subcommand(
    "requests",
    requests,
    "/device requests",
    "Pending requests (approvers see everyone's, operators their own)",
    "/device requests",
)


HELP = Subcommand(
    "help",
    lambda inv: None,
    "/device help [device]",
    "List every sub-command; with a device, what can be done on it and why not the rest",
    "/device help 5CD1234XYZ",
    Role.NONE,
)


def usage(inv: Invocation, sub: Subcommand, problem: str) -> None:
    """Answer a malformed argument with the sub-command's usage line."""
    problem = problem.rstrip(".")  # domain messages escape what they quote (mrkdwn-safe)
    inv.reply(f":warning: {problem}. Usage: `{sub.usage}` — e.g. `{sub.example}`")


def _resolve(inv: Invocation, sub: Subcommand) -> Device | None:
    """The one device inv.args names; None when the user got a usage line or a picker instead."""
    if len(inv.words) != 1:
        usage(inv, sub, "give exactly one device (serial, device id or asset id)")
        return None
    ref = inv.words[0]
    try:
        return inv.svc.devices.resolve(ref)
    except Ambiguous as exc:
        candidates = [d for d in exc.candidates if isinstance(d, Device)]
        inv.reply(f"{blocks.esc(ref)} matches {len(candidates)} devices", picker(ref, candidates))
        return None
    except ValidationError as exc:
        usage(inv, sub, exc.message)
        return None


# ---- wiring -------------------------------------------------------------------------------


def register(app: GuardedApp, svc: Services, commands: Commands) -> None:
    """Add the look-up sub-commands, `/device` alone, and their buttons and modal."""

    def help_command(inv: Invocation) -> None:
        """Every sub-command with an example; with a device, what fits that device and why."""
        if not inv.words:
            inv.reply(
                "device-bot help",
                help_overview(commands.all(), needs_approval=inv.svc.settings.needs_approval),
            )
            return
        device = _resolve(inv, HELP)
        if device is not None:
            facts = capabilities.facts_for(inv.svc, device)
            inv.reply(
                f"What you can do on {device.serial or device.short_id}",
                device_help(
                    device,
                    capabilities.available(facts),
                    capabilities.unavailable(facts),
                    needs_approval=inv.svc.settings.needs_approval,
                ),
            )

    commands.add(
        Subcommand(HELP.name, help_command, HELP.usage, HELP.summary, HELP.example, HELP.min_role)
    )
    for sub in (FIND, INFO, HISTORY, REQUESTS):
        commands.add(sub)
    commands.default = open_search

    lookup_buttons.register(app, svc)
