"""The buttons of look-ups (Next, Previous, sort, Export CSV, a device, History, Raw
detail) and the search modal's submission.

Every listener acks first; the work then runs in Bolt's listener thread and the answer
goes back through the response_url (ephemeral), so a slow Google never costs Slack's
3-second window.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack

from bot import blocks, export, ids, lost_cases, results
from bot.cards.device import (
    device_card,
    device_card_text,
    device_title,
    parse_device_value,
)
from bot.cards.history import history_text, raw_history
from bot.commands import refuse
from bot.device_history import chrome_serial, device_events, history_blocks
from bot.devices import Device
from bot.errors import DeviceBotError, NotFound, ValidationError
from bot.roles import Role
from bot.search_query import MAX_QUERY, SORT_WORDS, Sort, parse_sort
from bot.services import Services
from bot.slack_out import tell_user

if TYPE_CHECKING:
    from bot.listeners import GuardedApp


def _user(body: dict[str, Any]) -> str:
    return str((body.get("user") or {}).get("id") or body.get("user_id") or "")


def _check(svc: Services, body: dict[str, Any], what: str) -> None:
    """Refuse (audited) anyone who is not an operator or approver."""
    user = _user(body)
    if svc.roles.role_of(user) is Role.NONE:
        refuse(svc, user, what)


def _button_value(body: dict[str, Any]) -> tuple[str, str]:
    action = (body.get("actions") or [{}])[0]
    return action.get("block_id") or "", action.get("value") or ""


def next_page(svc: Services, body: dict[str, Any]) -> None:
    """*Next* or *Previous* on a search page: that page replaces it."""
    _check(svc, body, "find: another page")
    text, blocks_ = results.turn(svc, _button_value(body)[1])
    tell_user(svc.out, body, text, blocks_, replace=True)


def resort_results(svc: Services, body: dict[str, Any]) -> None:
    """The sort menu of a search page: the first page in that order replaces it."""
    _check(svc, body, "find: sort")
    action = (body.get("actions") or [{}])[0]
    value = str((action.get("selected_option") or {}).get("value") or "")
    text, blocks_ = results.resort(svc, value)
    tell_user(svc.out, body, text, blocks_, replace=True)


def export_results(svc: Services, body: dict[str, Any]) -> None:
    """*Export CSV* on a search page: the export of the same query, to the person's DMs."""
    _check(svc, body, "find: export")
    query = results.export_query(svc, _button_value(body)[1])
    user = _user(body)

    def tell(text: str) -> None:
        tell_user(svc.out, body, text, [blocks.section(text)])

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
    tell_user(svc.out, body, *card_for(svc, device), replace=replace)


def show_history(svc: Services, body: dict[str, Any]) -> None:
    """*History* on a device card: what was done to that device."""
    _check(svc, body, "history (button)")
    platform, device_id = _parse_value(_button_value(body)[1])
    serial = None
    try:
        device = svc.devices.get(platform, device_id)
        title, serial = device_title(device), chrome_serial(device)
    except NotFound:
        title = device_id.rsplit("/", 1)[-1]
    tell_user(
        svc.out, body, history_text(title), history_blocks(svc, title, device_id, serial=serial)
    )


def show_raw_history(svc: Services, body: dict[str, Any]) -> None:
    """*Raw detail* under a history: the audit events behind it, as logged."""
    _check(svc, body, "history raw detail (button)")
    device_id = _button_value(body)[1]
    if not device_id:
        raise ValidationError("That button no longer points at a device; look it up again.")
    events, _ = device_events(svc, device_id)
    title = device_id.rsplit("/", 1)[-1]
    tell_user(svc.out, body, f"Audit log of {blocks.esc(title)}", raw_history(title, events))


def _parse_value(value: str) -> tuple[str, str]:
    try:
        return parse_device_value(value)
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
        tell_user(
            svc.out,
            target,
            f":warning: {exc.message}",
            [blocks.section(f":warning: {exc.message}")],
        )
        return
    tell_user(svc.out, target, text, blocks_)


def _modal_sort(values: dict[str, Any]) -> Sort | None:
    """The search modal's *Sort by* and *Order* choices (None: Google's default order)."""
    chosen = (values.get(ids.BlockId.SEARCH_SORT) or {}).get(ids.ActionId.SEARCH_SORT) or {}
    order_by = (chosen.get("selected_option") or {}).get("value")
    if order_by not in SORT_WORDS.values():
        return None
    direction = (values.get(ids.BlockId.SEARCH_ORDER) or {}).get(ids.ActionId.SEARCH_ORDER) or {}
    descending = (direction.get("selected_option") or {}).get("value") == "DESCENDING"
    return Sort(str(order_by), descending)


def register(app: GuardedApp, svc: Services) -> None:
    """Add the look-up buttons and the search modal's submission."""

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


def card_for(svc: Services, device: Device) -> tuple[str, list[blocks.Block]]:
    """A device's card as a message (text, blocks), with its open lost case's banner and
    the actions that fit it."""
    card = device_card(
        device,
        lost_case=lost_cases.open_case_for(svc, device.platform, device.id),
        kiosk_org_units=svc.settings.kiosk_org_units,
    )
    return device_card_text(device), card
