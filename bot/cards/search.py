"""A page of search results with its buttons, the search modal, and the pickers offered
when a reference names several devices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot import ids
from bot.blocks import (
    MAX_MESSAGE_BLOCKS,
    Block,
    actions,
    button,
    context,
    esc,
    fit,
    plain,
    plural,
    section,
)
from bot.cards.device import device_row
from bot.devices import Device, platform_name
from bot.directory import SearchPage
from bot.search_query import SORT_LABELS, Sort

#: devices per platform on one search page: 2 × 20 result sections stay well under 50 blocks
PAGE_SIZE = 20
PICKER_LIMIT = 40
#: room kept below 50 for the header, count line, notes, Next and the sandbox mark
_LIST_ROOM = MAX_MESSAGE_BLOCKS - 6


@dataclass(frozen=True)
class Paging:
    """The buttons of a result page: a value each (None: no such button)."""

    previous: str | None = None
    next: str | None = None
    export: str | None = None
    sort: str | None = None  # the session: the sort menu's option values start with it


def results_count(query: str, page: SearchPage, start: int) -> str:
    """The count line of a result page: which results, of how many, per platform, in what order."""
    shown = len(page.devices)
    subject = f"`{esc(query)}`" if query else "all devices"
    totals = []
    for platform, total in (("chrome", page.chrome_total), ("android", page.android_total)):
        if platform in page.platforms:
            name = platform_name(platform)
            totals.append(f"{name} *{total:,}*" if total is not None else f"{name} (count unknown)")
    known = [t for t in (page.chrome_total, page.android_total) if t is not None]
    all_known = len(known) == len(page.platforms)
    order = f" · {page.sort.describe()}" if page.sort is not None else ""
    if shown == 0:
        head = f"No device matches {subject}." if start == 0 else f"No more results for {subject}."
        return head + order
    if start == 0 and page.next_cursor is None:  # everything is on this page
        plural = "device matches" if shown == 1 else "devices match"
        head = f"*{shown}* {plural} {subject}"
    else:
        of = f" of *{sum(known):,}*" if all_known else ""
        head = f"Results *{start + 1}–{start + shown}*{of} for {subject}"
    return " · ".join([head, *totals]) + order + "."


def sort_menu(session: str, current: Sort | None) -> dict[str, Any]:
    """A menu on the result page that shows the same search in another order."""
    options = []
    for order_by, label in SORT_LABELS.items():
        for descending in (False, True):
            words = f"{label.capitalize()}, {'descending' if descending else 'ascending'}"
            options.append(
                {
                    "text": plain(words, 75),
                    "value": f"{session}|{order_by}|{'d' if descending else 'a'}",
                }
            )
    menu: dict[str, Any] = {
        "type": "static_select",
        "action_id": ids.ActionId.FIND_SORT,
        "placeholder": plain("Sort…", 150),
        "options": options,
    }
    if current is not None:
        chosen = f"{session}|{current.order_by}|{'d' if current.descending else 'a'}"
        menu["initial_option"] = next(o for o in options if o["value"] == chosen)
    return menu


def results_page(
    query: str, page: SearchPage, *, start: int = 0, paging: Paging = Paging()
) -> list[Block]:
    """A page of `find` results: count line per platform, a row per device, then *Previous*,
    *Next*, *Export CSV* and a sort menu; notes say when a filter left a platform out."""
    out: list[Block] = [section(results_count(query, page, start))]
    rows = [device_row(d, block_id=f"{ids.BlockId.RESULT}-{i}") for i, d in enumerate(page.devices)]
    out += rows[:_LIST_ROOM]
    notes = list(page.notes)
    if len(rows) > _LIST_ROOM:
        notes.append(f"{len(rows) - _LIST_ROOM} more on this page not shown; narrow the search.")
    elements: list[dict[str, Any]] = []
    if paging.previous is not None:
        elements.append(button("Previous", ids.ActionId.FIND_PREVIOUS, paging.previous))
    if paging.next is not None and page.next_cursor:
        elements.append(button("Next", ids.ActionId.FIND_NEXT, paging.next, style="primary"))
    if paging.export is not None and page.devices:
        elements.append(button("Export CSV", ids.ActionId.FIND_EXPORT, paging.export))
    if paging.sort is not None and page.devices:
        elements.append(sort_menu(paging.sort, page.sort))
    if elements:
        out.append(actions(elements, block_id="results_nav"))
    if notes:
        out.append(context(" ".join(esc(n) for n in notes)))
    return fit(out)


def search_text(query: str, page: SearchPage, start: int = 0) -> str:
    """Notification text of a search page (the query is the user's: escaped)."""
    subject = esc(query) if query else "all devices"
    return f"{plural(len(page.devices), 'device')} for {subject} (from result {start + 1})"


def search_modal(private_metadata: str = "") -> dict[str, Any]:
    """`/device` alone: a modal with a search box (Directory query syntax welcome)."""
    return {
        "type": "modal",
        "callback_id": ids.CallbackId.SEARCH,
        "title": plain("Find a device", 24),
        "submit": plain("Search", 24),
        "close": plain("Cancel", 24),
        "private_metadata": private_metadata[:3000],
        "blocks": [
            {
                "type": "input",
                "block_id": ids.BlockId.SEARCH,
                "label": plain("Serial, user, asset id or query"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": ids.ActionId.SEARCH_INPUT,
                    "placeholder": plain("5CD1234XYZ  ·  user:ada@example.com  ·  status:DISABLED"),
                    "max_length": 200,
                },
                "hint": plain(
                    "Both platforms are searched unless you add platform:chrome or platform:android;"
                    " status: works on both. Chrome OS takes the Directory query syntax (user:, id:,"
                    " location:, asset_id:, …); a Chrome-only filter leaves Android out, and the"
                    " results say so.",
                    2000,
                ),
            },
            {
                "type": "input",
                "block_id": ids.BlockId.SEARCH_SORT,
                "optional": True,
                "label": plain("Sort by"),
                "element": {
                    "type": "static_select",
                    "action_id": ids.ActionId.SEARCH_SORT,
                    "placeholder": plain("Default order"),
                    "options": [
                        {"text": plain(label.capitalize(), 75), "value": value}
                        for value, label in SORT_LABELS.items()
                    ],
                },
            },
            {
                "type": "input",
                "block_id": ids.BlockId.SEARCH_ORDER,
                "optional": True,
                "label": plain("Order"),
                "element": {
                    "type": "radio_buttons",
                    "action_id": ids.ActionId.SEARCH_ORDER,
                    "initial_option": _ASCENDING,
                    "options": [_ASCENDING, _DESCENDING],
                },
            },
            context("Results arrive as a message only you can see."),
        ],
    }


_ASCENDING = {"text": plain("Ascending", 75), "value": "ASCENDING"}
_DESCENDING = {"text": plain("Descending", 75), "value": "DESCENDING"}


def picker(ref: str, candidates: Sequence[Device]) -> list[Block]:
    """A reference that matches several devices: a button per candidate, never all of them."""
    out: list[Block] = [
        section(f"`{esc(ref)}` matches *{len(candidates)}* devices. Pick one:"),
    ]
    out += [device_row(d, "This one") for d in candidates[:PICKER_LIMIT]]
    if len(candidates) > PICKER_LIMIT:
        out.append(
            context(
                f"{len(candidates) - PICKER_LIMIT} more not shown: use the full serial or device id."
            )
        )
    return fit(out)


def closest_picker(ref: str, candidates: Sequence[Device], *, more: bool = False) -> list[Block]:
    """No device is exactly `ref` (an email, part of a serial): offer what the search found."""
    count = f"{len(candidates)}{'+' if more else ''}"
    noun = "device" if len(candidates) == 1 and not more else "devices"
    out: list[Block] = [
        section(
            f"No device is exactly `{esc(ref)}`, but *{count}* {noun} match it"
            " (serial, assigned or last signed-in user). Pick one:"
        ),
    ]
    out += [device_row(d, "This one") for d in candidates[:PICKER_LIMIT]]
    if more or len(candidates) > PICKER_LIMIT:
        out.append(context(f"More match: `/device find {esc(ref)}` lists them all."))
    return fit(out)
