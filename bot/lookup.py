"""Looking devices up: help, find, info, history, requests, and the search modal.

Every listener acks first; the Google work then runs in Bolt's listener thread and the
answer goes back through the response_url (ephemeral), so a slow Google never costs
Slack's 3-second window.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack

from bot import blocks, capabilities, cards, ids, lost_cases, reports, results
from bot.commands import Commands, Invocation, Subcommand, refuse
from bot.devices import SORT_WORDS, Device, Sort, parse_sort
from bot.errors import Ambiguous, DeviceBotError, NotFound, ValidationError
from bot.roles import Role
from bot.services import Services

if TYPE_CHECKING:
    from bot.listeners import GuardedApp

log = logging.getLogger(__name__)

MAX_QUERY = 200


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
        page = inv.svc.devices.search(ref, page_size=cards.PICKER_LIMIT)
        if not page.devices:
            raise
        inv.reply(
            f"{blocks.esc(ref)} matches {len(page.devices)} devices",
            cards.closest_picker(ref, page.devices, more=page.next_cursor is not None),
        )
        return
    if device is not None:
        inv.reply(
            cards.device_card_text(device),
            cards.device_card(
                device,
                lost_case=_lost(inv.svc, device),
                kiosk_org_units=inv.svc.settings.kiosk_org_units,
            ),
        )


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
            found = (ref, ref)
        title, device_id = found
        serial = None if title.startswith("Android") else ref  # outside events: Chrome only
        inv.reply(
            cards.history_text(title), _history_blocks(inv.svc, title, device_id, serial=serial)
        )
        return
    if device is not None:
        title = cards.device_title(device)
        inv.reply(
            cards.history_text(title),
            _history_blocks(inv.svc, title, device.id, serial=_chrome_serial(device)),
        )


def requests(inv: Invocation) -> None:
    """`/device requests`: pending requests (an approver sees all, an operator their own)."""
    if inv.args:
        usage(inv, REQUESTS, "no arguments")
        return
    everyone = inv.role >= Role.APPROVER
    where, args = "state = 'pending'", []
    if not everyone:
        where += " AND requester = ?"
        args.append(inv.user_id)
    db = inv.svc.store.db()
    total = db.execute(f"SELECT count(*) FROM requests WHERE {where}", args).fetchone()[0]
    rows = list(
        db.query(
            f"SELECT * FROM requests WHERE {where} ORDER BY created_at LIMIT {cards.REQUESTS_LIMIT}",
            args,
        )
    )
    text = f"{total} pending request{'s' if total != 1 else ''}"
    inv.reply(text, cards.requests_list(rows, everyone=everyone, total=total))


def open_search(inv: Invocation) -> None:
    """`/device` alone: the search modal, opened at once (a trigger_id lives 3 seconds)."""
    meta = json.dumps({"response_url": inv.response_url, "channel": inv.channel_id})
    inv.svc.out.open_view(inv.trigger_id, cards.search_modal(meta))


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
        inv.reply(
            f"{blocks.esc(ref)} matches {len(candidates)} devices", cards.picker(ref, candidates)
        )
        return None
    except ValidationError as exc:
        usage(inv, sub, exc.message)
        return None


def remembered_device(svc: Services, ref: str) -> tuple[str, str] | None:
    """A device Google no longer returns (wiped, deleted), found by serial or id in what the
    bot kept: requests' device summaries, lost cases, the audit log. (title, device id) or None."""
    db = svc.store.db()
    row = db.execute(
        "SELECT json_extract(j.value, '$.id'), json_extract(j.value, '$.serial'), r.platform"
        " FROM requests r, json_each(r.devices) j"
        " WHERE upper(json_extract(j.value, '$.serial')) = upper(?)"
        " OR json_extract(j.value, '$.id') = ? OR json_extract(j.value, '$.id') LIKE ?"
        " ORDER BY r.created_at DESC LIMIT 1",
        [ref, ref, "%/" + ref],
    ).fetchone()
    if row is None:
        row = db.execute(
            "SELECT device_id, serial, platform FROM lost_devices"
            " WHERE upper(serial) = upper(?) OR device_id = ? OR device_id LIKE ?"
            " ORDER BY reported_at DESC LIMIT 1",
            [ref, ref, "%/" + ref],
        ).fetchone()
    if row is None:
        row = db.execute(
            "SELECT device_id, NULL, platform FROM audit_events"
            " WHERE device_id = ? OR device_id LIKE ? ORDER BY seq DESC LIMIT 1",
            [ref, "%/" + ref],
        ).fetchone()
    if row is None or not row[0]:
        return None
    device_id, serial, platform = str(row[0]), row[1], row[2]
    name = serial or device_id.rsplit("/", 1)[-1]
    return f"{cards.platform_name(platform or '')} {name} (no longer at Google)".strip(), device_id


def _chrome_serial(device: Device) -> str | None:
    """The serial that outside events (the Admin console's Chrome device log) are filed by."""
    return device.serial if device.platform == "chrome" else None


def device_events(svc: Services, device_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every audit event about a device, newest first — its own, and those of every request
    that named it (a bulk move records its device ids with the request) — and those requests."""
    db = svc.store.db()
    requests: dict[str, dict[str, Any]] = {}
    for row in db.query(
        # instr() first: a cheap text test that spares json_each on almost every row
        "SELECT r.* FROM requests r WHERE instr(r.device_ids, ?) > 0 AND EXISTS"
        " (SELECT 1 FROM json_each(r.device_ids) j WHERE j.value = ?)",
        [json.dumps(device_id), device_id],
    ):
        for column in ("device_ids", "devices", "params"):
            row[column] = json.loads(row[column] or "null")
        row.pop("secret", None)
        requests[row["id"]] = row
    ids_ = list(requests)
    marks = ",".join("?" * len(ids_))
    where = "device_id = ?" + (f" OR request_id IN ({marks})" if ids_ else "")
    events = list(
        db.query(f"SELECT * FROM audit_events WHERE {where} ORDER BY seq DESC", [device_id, *ids_])
    )
    for event in events:
        event["detail"] = json.loads(event["detail"] or "{}")
    return events, requests


def _history_blocks(
    svc: Services, title: str, device_id: str, *, serial: str | None = None
) -> list[blocks.Block]:
    """A device's history in words: the bot's requests and events, merged with the changes
    made outside the bot (read from the Admin console's audit log), newest first."""
    events, requests = device_events(svc, device_id)
    outside = reports.outside_events_for(svc.store, device_id, serial, limit=cards.HISTORY_LIMIT)
    lines = cards.history_lines([*events, *outside], requests, device_id)
    return cards.history_page(title, lines, raw_value=device_id if events else None)


# ---- buttons and the modal -----------------------------------------------------------------


def _user(body: dict[str, Any]) -> str:
    return str((body.get("user") or {}).get("id") or body.get("user_id") or "")


def _check(svc: Services, body: dict[str, Any], what: str) -> None:
    """Refuse (audited) anyone who is not an operator or approver."""
    user = _user(body)
    if svc.roles.role_of(user) is Role.NONE:
        refuse(svc, user, what)


def answer(
    svc: Services,
    body: dict[str, Any],
    text: str,
    blocks_: list[blocks.Block],
    *,
    replace: bool = False,
) -> None:
    """Answer the person behind an interaction privately (response_url, else ephemeral, else DM)."""
    url = body.get("response_url")
    if url:
        svc.out.respond(url, text, blocks_, replace_original=replace)
        return
    channel = (body.get("channel") or {}).get("id")
    if channel:
        svc.out.ephemeral(channel, _user(body), text, blocks_)
    else:
        svc.out.post(_user(body), text, blocks_)


def _button_value(body: dict[str, Any]) -> tuple[str, str]:
    action = (body.get("actions") or [{}])[0]
    return action.get("block_id") or "", action.get("value") or ""


def next_page(svc: Services, body: dict[str, Any]) -> None:
    """*Next* or *Previous* on a search page: that page replaces it."""
    _check(svc, body, "find: another page")
    text, blocks_ = results.turn(svc, _button_value(body)[1])
    answer(svc, body, text, blocks_, replace=True)


def resort_results(svc: Services, body: dict[str, Any]) -> None:
    """The sort menu of a search page: the first page in that order replaces it."""
    _check(svc, body, "find: sort")
    action = (body.get("actions") or [{}])[0]
    value = str((action.get("selected_option") or {}).get("value") or "")
    text, blocks_ = results.resort(svc, value)
    answer(svc, body, text, blocks_, replace=True)


def export_results(svc: Services, body: dict[str, Any]) -> None:
    """*Export CSV* on a search page: the export of the same query, to the person's DMs."""
    _check(svc, body, "find: export")
    from bot import export

    query = results.export_query(svc, _button_value(body)[1])
    user = _user(body)

    def tell(text: str) -> None:
        answer(svc, body, text, [blocks.section(text)])

    exports: export.Exports = svc.extras["exports"]
    exports.start(user, query, tell)
    subject = f"`{blocks.esc(query)}`" if query else "all devices"
    tell(f"Exporting {subject} to CSV. Progress and the file arrive in your direct messages.")


def show_device(svc: Services, body: dict[str, Any]) -> None:
    """A device button (picker, result row, Refresh): that device's card."""
    _check(svc, body, "info (button)")
    block_id, value = _button_value(body)
    device = _device_from(svc, value)
    # a result row adds the card below the list; the picker and Refresh are replaced by it;
    # a button on a channel message (a lost-device post) never replaces that message
    ephemeral = bool((body.get("container") or {}).get("is_ephemeral", True))
    replace = ephemeral and not block_id.startswith(f"{ids.BlockId.RESULT}-")
    answer(
        svc,
        body,
        cards.device_card_text(device),
        cards.device_card(
            device,
            lost_case=_lost(svc, device),
            kiosk_org_units=svc.settings.kiosk_org_units,
        ),
        replace=replace,
    )


def show_history(svc: Services, body: dict[str, Any]) -> None:
    """*History* on a device card: what was done to that device."""
    _check(svc, body, "history (button)")
    platform, device_id = _parse_value(_button_value(body)[1])
    serial = None
    try:
        device = svc.devices.get(platform, device_id)
        title, serial = cards.device_title(device), _chrome_serial(device)
    except NotFound:
        title = device_id.rsplit("/", 1)[-1]
    answer(
        svc, body, cards.history_text(title), _history_blocks(svc, title, device_id, serial=serial)
    )


def show_raw_history(svc: Services, body: dict[str, Any]) -> None:
    """*Raw detail* under a history: the audit events behind it, as logged."""
    _check(svc, body, "history raw detail (button)")
    device_id = _button_value(body)[1]
    if not device_id:
        raise ValidationError("That button no longer points at a device; look it up again.")
    events, _ = device_events(svc, device_id)
    title = device_id.rsplit("/", 1)[-1]
    answer(svc, body, f"Audit log of {blocks.esc(title)}", cards.raw_history(title, events))


def _parse_value(value: str) -> tuple[str, str]:
    try:
        return cards.parse_device_value(value)
    except ValueError:
        raise ValidationError(
            "That button no longer points at a device; look it up again."
        ) from None


def _device_from(svc: Services, value: str) -> Device:
    platform, device_id = _parse_value(value)
    return svc.devices.get(platform, device_id)


def search_submitted(svc: Services, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
    """The search modal's Search: close it at once, then answer where `/device` was typed."""
    values = (view.get("state") or {}).get("values") or {}
    query = str(
        (values.get(ids.BlockId.SEARCH) or {}).get(ids.ActionId.SEARCH_INPUT, {}).get("value") or ""
    ).strip()
    if not query or len(query) > MAX_QUERY:
        ack(response_action="errors", errors={ids.BlockId.SEARCH: "Type 1 to 200 characters."})
        return
    try:
        query, sort = parse_sort(query)
        sort = _modal_sort(values) or sort
    except ValidationError as exc:
        ack(response_action="errors", errors={ids.BlockId.SEARCH: exc.message})
        return
    ack()
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        meta = {}
    target = {
        "user": body.get("user") or {},
        "response_url": meta.get("response_url"),
        "channel": {"id": meta.get("channel")} if meta.get("channel") else None,
    }
    try:
        _check(svc, body, f"find {query}"[:200])
        text, blocks_ = results.first_page(svc, query, sort)
    except DeviceBotError as exc:
        answer(
            svc,
            target,
            f":warning: {exc.message}",
            [blocks.section(f":warning: {exc.message}")],
        )
        return
    answer(svc, target, text, blocks_)


def _modal_sort(values: dict[str, Any]) -> Sort | None:
    """The search modal's *Sort by* and *Order* choices (None: Google's default order)."""
    chosen = (values.get(ids.BlockId.SEARCH_SORT) or {}).get(ids.ActionId.SEARCH_SORT) or {}
    order_by = (chosen.get("selected_option") or {}).get("value")
    if order_by not in SORT_WORDS.values():
        return None
    direction = (values.get(ids.BlockId.SEARCH_ORDER) or {}).get(ids.ActionId.SEARCH_ORDER) or {}
    descending = (direction.get("selected_option") or {}).get("value") == "DESCENDING"
    return Sort(str(order_by), descending)


# ---- wiring -------------------------------------------------------------------------------


def register(app: GuardedApp, svc: Services, commands: Commands) -> None:
    """Add the look-up sub-commands, `/device` alone, and their buttons and modal."""

    def help_command(inv: Invocation) -> None:
        """Every sub-command with an example; with a device, what fits that device and why."""
        if not inv.words:
            inv.reply(
                "device-bot help",
                cards.help_overview(commands.all(), needs_approval=inv.svc.settings.needs_approval),
            )
            return
        device = _resolve(inv, HELP)
        if device is not None:
            facts = capabilities.facts_for(inv.svc, device)
            inv.reply(
                f"What you can do on {device.serial or device.short_id}",
                cards.device_help(
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

    def acked(work: Callable[[Services, dict[str, Any]], None]) -> Callable[..., None]:
        """A button listener: ack at once, then `work` answers through the response_url."""

        def listener(ack: Ack, body: dict[str, Any]) -> None:
            ack()
            work(svc, body)

        listener.__name__ = f"on_{work.__name__}"
        return listener

    def on_search(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        """The search modal was submitted."""
        search_submitted(svc, ack, body, view)

    for action_id, work in (
        (ids.ActionId.FIND_NEXT, next_page),  # *Next* and *Previous* on a search page
        (ids.ActionId.FIND_PREVIOUS, next_page),
        (ids.ActionId.FIND_SORT, resort_results),
        (ids.ActionId.FIND_EXPORT, export_results),
        (ids.ActionId.SHOW_DEVICE, show_device),  # a picker, result row or Refresh
        (ids.ActionId.SHOW_HISTORY, show_history),
        (ids.ActionId.HISTORY_RAW, show_raw_history),
    ):
        app.action(action_id)(acked(work))
    app.view(ids.CallbackId.SEARCH)(on_search)


def _lost(svc: Services, device: Device) -> dict[str, Any] | None:
    """The device's open lost case, for the banner on its card."""
    return lost_cases.open_case_for(svc, device.platform, device.id)
