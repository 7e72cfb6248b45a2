"""What look-ups show: device card, search page, picker, history, requests, search modal.

Pure builder functions from domain objects to Block Kit dicts. Every user- or
device-supplied string goes through `esc()`; lists are paged or cut with a note so a
message stays within Slack's limits (50 blocks, 3000 characters a section).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot import capabilities, catalog, ids
from bot.blocks import (
    MAX_MESSAGE_BLOCKS,
    Block,
    actions,
    button,
    clip,
    context,
    divider,
    esc,
    fit,
    header,
    plain,
    plural,
    section,
    sections_of,
)
from bot.catalog import ActionSpec, FieldSpec, action_for, option_label
from bot.devices import SORT_LABELS, Device, SearchPage, Sort
from bot.errors import ValidationError

#: devices per platform on one search page: 2 × 20 result sections stay well under 50 blocks
PAGE_SIZE = 20
HISTORY_LIMIT = 30
REQUESTS_LIMIT = 30
PICKER_LIMIT = 40
MAX_BUTTON_VALUE = 2000
#: room kept below 50 for the header, count line, notes, Next and the sandbox mark
_LIST_ROOM = MAX_MESSAGE_BLOCKS - 6
_SECTION_BUDGET = 2800

_STATUS_EMOJI = {
    "ACTIVE": ":large_green_circle:",
    "DISABLED": ":no_entry:",
    "DEPROVISIONED": ":wastebasket:",
    "LOST": ":mag:",
    "PROVISIONED": ":white_circle:",
    "PROVISIONING": ":hourglass_flowing_sand:",
    "DELETED": ":wastebasket:",
}
_PLATFORM_NAME = {"chrome": "Chrome OS", "android": "Android"}
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


#: what a request asks, as a person says it ("Olivia asked to put it in lost mode")
ASK_WORDS = {
    "lost": "put it in lost mode",
    "found": "mark it found",
    "reenable": "re-enable it",
    "wipe-users": "wipe its users",
    "support-packet": "fetch a support packet",
    "logs": "capture its logs",
    "screenshot": "take a screenshot",
    "volume": "set its volume",
    "reset-password": "reset its password",
    "clear-app-data": "clear app data",
    "add-esim": "add an eSIM",
    "remove-esim": "remove an eSIM",
    "device-info": "ask for its device info",
    "annotate": "change its annotations",
    "move": "move it",
}

#: a request that succeeded, in words ("disabled 14:02")
DONE_WORDS = {
    "disable": "disabled",
    "reenable": "re-enabled",
    "deprovision": "deprovisioned",
    "reboot": "rebooted",
    "powerwash": "powerwashed",
    "wipe-users": "users wiped",
    "lock": "locked",
    "wipe": "wiped",
    "relinquish": "relinquished",
    "lost": "in lost mode",
    "found": "marked found",
    "move": "moved",
    "annotate": "annotations changed",
    "reset-password": "password reset",
}

#: events outside a request, in words
EVENT_WORDS = {
    "lost_reported": "reported it lost",
    "lost_reported_again": "reported it lost again",
    "lost_resolved": "closed its lost case",
    "lost_checkin": "it checked in",
}
#: bookkeeping events left out of the readable history (they stay in the raw detail)
QUIET_EVENTS = frozenset({"refused", "reminded", "executing", "reconciled", "outcome_unknown"})


def asks(action: str, label: str, count: int = 1) -> str:
    """What a request asks for, as the end of "… asked to …"."""
    if count > 1:
        return f"{label.lower()} {count} devices"
    return ASK_WORDS.get(action, f"{label.lower()} it")


def option_words(spec: FieldSpec, value: Any) -> str:
    """A parameter's value as its label reads ("Lost or stolen"; flags by label)."""
    if isinstance(value, list):
        return ", ".join(option_label(str(v)) for v in value) or "none"
    if spec.options and isinstance(value, str):
        return option_label(value)
    return str(value)


# ---- small helpers ----------------------------------------------------------------------


def device_value(device: Device) -> str:
    """The value a device button carries: `<platform>|<device id>`."""
    return f"{device.platform}|{device.id}"


def parse_device_value(value: str) -> tuple[str, str]:
    """Inverse of device_value; ValueError when it is not one."""
    platform, sep, device_id = (value or "").partition("|")
    if not sep or platform not in _PLATFORM_NAME or not device_id:
        raise ValueError(f"not a device button value: {value[:60]!r}")
    return platform, device_id


def next_value(shown: int, cursor: str) -> str:
    """The value of a *Next* button: how many results came before, and the cursor."""
    return f"{shown}|{cursor}"


def parse_next_value(value: str) -> tuple[int, str]:
    """Inverse of next_value; ValueError when it is not one."""
    shown, sep, cursor = (value or "").partition("|")
    if not sep or not shown.isdigit() or not cursor:
        raise ValueError("not a Next button value")
    return int(shown), cursor


def when(value: str | float | None) -> str:
    """An ISO-8601 time or epoch as a Slack date token (shown in the reader's time zone)."""
    if value is None or value == "":
        return "—"
    try:
        if isinstance(value, (int, float)):
            epoch = float(value)
        else:
            epoch = datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return esc(value)
    fallback = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(epoch)}^{{date_short_pretty}} {{time}}|{fallback}>"


def _epoch_of(value: str | float | None) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def ago_words(seconds: float) -> str:
    """`just now`, `12 min ago`, `3 h ago`, `2 days ago`."""
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


def ago(value: str | float | None, now: float) -> str:
    """A time as Slack's relative date token (`{ago}`), with words as the fallback."""
    epoch = _epoch_of(value)
    if epoch is None:
        return "never" if not value else esc(value)
    return f"<!date^{int(epoch)}^{{ago}}|{ago_words(max(0.0, now - epoch))}>"


def platform_name(platform: str) -> str:
    """`Chrome OS`, `Android`."""
    return _PLATFORM_NAME.get(platform, platform)


def who(actor: str | None) -> str:
    """A Slack user id as a mention; anything else (a job, "system") as escaped text."""
    if actor and _SLACK_USER.match(actor):
        return f"<@{actor}>"
    return esc(actor)


def status_text(status: str) -> str:
    """A device state with its emoji, e.g. `:no_entry: *DISABLED*`."""
    emoji = _STATUS_EMOJI.get(status, ":white_circle:")
    return f"{emoji} *{esc(status)}*"


def _grouped(lines: Iterable[str], budget: int = _SECTION_BUDGET) -> list[str]:
    """Join lines into texts of at most `budget` characters (one section each)."""
    texts: list[str] = []
    chunk: list[str] = []
    size = 0
    for line in lines:
        line = clip(line, budget)
        if chunk and size + len(line) + 1 > budget:
            texts.append("\n".join(chunk))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        texts.append("\n".join(chunk))
    return texts


# ---- a device ---------------------------------------------------------------------------


def device_title(device: Device) -> str:
    """Plain-text name of a device: platform and serial (or short id)."""
    return (
        f"{_PLATFORM_NAME.get(device.platform, device.platform)} {device.serial or device.short_id}"
    )


def device_line(device: Device) -> str:
    """One device in a list: serial, platform, model, state; user, OU, last seen."""
    first = " · ".join(
        [
            f"*{esc(device.serial or device.short_id)}*",
            _PLATFORM_NAME.get(device.platform, device.platform),
            esc(device.model),
            status_text(device.status),
        ]
    )
    second = " · ".join(
        [esc(device.user), esc(device.org_unit), f"last seen {when(device.last_seen)}"]
    )
    return f"{first}\n{second}"


_MODES = {"DEVICE_OWNER": "Fully managed", "PROFILE_OWNER": "Work profile"}
_OWNERSHIP = {"COMPANY_OWNED": "Company-owned", "PERSONALLY_OWNED": "Personally owned"}


def _words(table: dict[str, str], value: str | None) -> str:
    """An API value in words (an unknown one as it is, escaped)."""
    return table.get(value or "", esc(value))


def device_fields(device: Device) -> list[str]:
    """The card's label/value fields for `device` (platform-specific ones from the 7th on)."""
    seen_label = "Last sync" if device.platform == "chrome" else "Last status report"
    # a Device built without the split (older callers) names its one user as assigned
    split = device.assigned_user is not None or device.last_user is not None
    people = [f"*Assigned user*\n{esc(device.assigned_user if split else device.user)}"]
    if device.platform == "chrome":
        people.append(f"*Last signed-in user*\n{esc(device.last_user)}")
    fields = [
        *people,
        f"*{'Org unit' if device.platform == 'chrome' else 'Policy'}*\n{esc(device.org_unit)}",
        f"*Model*\n{esc(device.model)}",
        f"*OS*\n{esc(device.os_version)}",
        f"*{seen_label}*\n{when(device.last_seen)}",
        f"*Network*\n{esc(device.network)}",
    ]
    if device.platform == "chrome":
        fields += [
            f"*Asset id*\n{esc(device.asset_id)}",
            f"*Location*\n{esc(device.location)}",
            f"*Notes*\n{esc(device.notes)}",
        ]
    else:
        fields += [
            f"*API level*\n{esc(device.api_level)}",
            f"*Management mode*\n{_words(_MODES, device.management_mode)}",
            f"*Ownership*\n{_words(_OWNERSHIP, device.ownership)}",
        ]
    return fields


def _main_field_count(device: Device) -> int:
    """How many of device_fields go in the card's first section (the rest under details)."""
    return 7 if device.platform == "chrome" else 6


def lost_banner(case: dict[str, Any]) -> Block:
    """The banner on the card of a device with an open lost case."""
    seen = f" · last check-in {when(case['last_checkin'])}" if case.get("last_checkin") else ""
    return section(
        f":rotating_light: *Reported lost* by <@{case['reported_by']}> {when(case['reported_at'])}{seen}"
    )


def device_card(
    device: Device,
    *,
    lost_case: dict[str, Any] | None = None,
    kiosk_org_units: Sequence[str] = (),
) -> list[Block]:
    """A device card: state, who/where/what, and the actions that fit this device."""
    fields = device_fields(device)
    out: list[Block] = [header(device_title(device))]
    if lost_case is not None:
        out.append(lost_banner(lost_case))
    out.append(
        section(
            f"{status_text(device.status)}  ·  serial *{esc(device.serial)}*",
            fields=fields[: _main_field_count(device)],
        )
    )
    if fields[_main_field_count(device) :]:
        out.append(
            section(
                f"*{_PLATFORM_NAME.get(device.platform, device.platform)} details*",
                fields=fields[_main_field_count(device) :],
            )
        )
    out.append(context(f"Device id `{esc(device.id)}`"))
    value = device_value(device)
    specs = capabilities.available(
        capabilities.facts(device, lost_open=lost_case is not None, kiosk_org_units=kiosk_org_units)
    )
    specs.sort(key=lambda s: s.destructive)  # the harmless ones first
    buttons = [
        button(
            s.label, ids.device_action_id(s.name), value, style="danger" if s.destructive else None
        )
        for s in specs
    ]
    for start in range(0, len(buttons), 25):
        out.append(actions(buttons[start : start + 25]))
    if not buttons:
        out.append(context(f"No action fits this device while it is {esc(device.status).lower()}."))
    out.append(
        actions(
            [
                button("History", ids.ActionId.SHOW_HISTORY, value),
                button("Refresh", ids.ActionId.SHOW_DEVICE, value),
            ]
        )
    )
    return fit(out)


def device_help(
    device: Device,
    offered: Sequence[ActionSpec],
    refused: Sequence[tuple[ActionSpec, str]],
    *,
    needs_approval: Callable[[str], bool],
) -> list[Block]:
    """`/device help <device>`: the actions that fit this device, and why the others do not."""

    def line(spec: ActionSpec) -> str:
        approval = " _(needs approval)_" if needs_approval(spec.name) else ""
        return f"*{spec.label}* — `{spec.usage}`{approval}"

    out: list[Block] = [header(f"What fits {device_title(device)}")]
    out.append(section(device_line(device)))
    if offered:
        out.extend(sections_of([line(s) for s in offered]))
    else:
        out.append(section("No action fits this device now."))
    if refused:
        out.append(section("*Not for this device*"))
        out.extend(sections_of([f"*{s.label}*: {reason}" for s, reason in refused]))
    return fit(out)


def help_overview(
    subcommands: Sequence[Any], *, needs_approval: Callable[[str], bool]
) -> list[Block]:
    """`/device help`: look-ups first, then the actions grouped by platform, marking those
    a second person must approve."""
    by_name = {s.name: s for s in subcommands}
    specs = catalog.all_specs()
    action_names = {s.name for s in specs}
    general = [
        f"`{s.usage}` — {s.summary}\n        e.g. `{s.example}`"
        for s in subcommands
        if s.name not in action_names
    ]
    out: list[Block] = [header("device-bot: /device sub-commands")]
    out.append(section("*Look up and follow*"))
    out.extend(sections_of(general))
    for platform in ("chrome", "android"):
        lines = [
            f"`{by_name[spec.name].usage}` — {spec.summary}"
            + (" · :lock: _needs approval_" if needs_approval(spec.name) else "")
            for spec in specs
            if spec.platform == platform and spec.name in by_name
        ]
        if lines:
            out.append(section(f"*{_PLATFORM_NAME[platform]} actions*"))
            out.extend(sections_of(lines))
    out.append(
        context(
            "A *device* is a serial number, a Chrome device id, an Android device name or id, or an"
            " asset id. :lock: marks actions a second person approves before they run."
            " `/device help <device>` lists what fits one device."
        )
    )
    return fit(out)


def lost_post(case: dict[str, Any], summary: dict[str, Any], now: float) -> list[Block]:
    """The lost-devices channel post of a case: why, who reported it, where it was last seen,
    and buttons to act (Found, Wipe… on Android, Open card); edited as check-ins arrive."""
    platform = str(case["platform"])
    name = str(summary.get("serial") or str(summary["id"]).rsplit("/", 1)[-1])
    resolved = case["state"] == "resolved"
    out: list[Block] = [header(("Resolved: " if resolved else "Lost device: ") + name[:100])]
    why = summary.get("reason") or "—"
    out.append(
        section(
            f"*Why:* {esc(why)}\n*Reported by* <@{case['reported_by']}> {when(case['reported_at'])}"
            + (
                f" · <{summary['request_link']}|request thread>"
                if summary.get("request_link")
                else ""
            )
        )
    )
    checkin = case.get("last_checkin") or summary.get("last_seen")
    fields = [
        f"*Serial*\n{esc(summary.get('serial'))}",
        f"*Platform*\n{platform_name(platform)}",
        f"*Model*\n{esc(summary.get('model'))}",
        f"*User*\n{esc(summary.get('user'))}",
        f"*{'Org unit' if platform == 'chrome' else 'Policy'}*\n{esc(summary.get('org_unit'))}",
        f"*Last check-in*\n{ago(checkin, now)}"
        + (f" ({when(checkin)})" if _epoch_of(checkin) is not None else ""),
        f"*Network*\n{esc(summary.get('network'))}",
    ]
    out.append(section("*The device*", fields=fields))
    value = f"{platform}|{summary['id']}"
    if resolved:
        out.append(
            section(
                f":white_check_mark: *Resolved* by <@{case['resolved_by']}> {when(case['resolved_at'])}"
                + (f" — {esc(case['resolution'])}" if case.get("resolution") else "")
            )
        )
        out.append(actions([button("Open card", ids.ActionId.SHOW_DEVICE, value)]))
        return fit(out)
    buttons = [button("Found", ids.device_action_id("found"), value, style="primary")]
    if platform == "android":
        buttons.append(button("Wipe…", ids.device_action_id("wipe"), value, style="danger"))
    buttons.append(button("Open card", ids.ActionId.SHOW_DEVICE, value))
    out.append(actions(buttons, block_id="lost_actions"))
    out.append(
        context("Watching for check-ins: each one is posted in this thread and updates this post.")
    )
    return fit(out)


def device_card_text(device: Device) -> str:
    """Notification text of a card (mrkdwn: the device's words escaped)."""
    return f"{esc(device_title(device))}: {esc(device.status)}"


def history_text(title: str) -> str:
    """Notification text of a device's history (`title` is the device's plain-text name)."""
    return f"History of {esc(title)}"


def device_row(device: Device, label: str = "Show", *, block_id: str | None = None) -> Block:
    """A list row: the device's line with a button that shows its card."""
    accessory = button(label, ids.ActionId.SHOW_DEVICE, device_value(device))
    return section(device_line(device), accessory=accessory, block_id=block_id)


# ---- search -----------------------------------------------------------------------------


def search_count(query: str, page: SearchPage, start: int) -> str:
    """The result count line of a search page."""
    shown = len(page.devices)
    subject = f"`{esc(query)}`" if query else "all devices"
    if page.sort is not None:
        subject += f" ({page.sort.describe()})"
    if shown == 0:
        return f"No device matches {subject}." if start == 0 else f"No more results for {subject}."
    first, last = start + 1, start + shown
    if page.next_cursor is None:
        if start == 0:
            return f"*{last}* {'device matches' if last == 1 else 'devices match'} {subject}."
        return f"Results *{first}–{last}* of *{last}* for {subject}."
    parts = [f"Results *{first}–{last}* for {subject}"]
    if page.android_total:
        parts.append(f"Android: *{page.android_total}* in all")
    if page.chrome_total:
        parts.append(f"Chrome OS: *{page.chrome_total}* in all")
    elif page.chrome_more:
        parts.append("Chrome OS: more on the next pages")
    return " · ".join(parts) + "."


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
            name = _PLATFORM_NAME[platform]
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


def search_page(query: str, page: SearchPage, *, start: int = 0) -> list[Block]:
    """One page of `find` results: count line, a row per device, *Next* with the cursor."""
    out: list[Block] = [section(search_count(query, page, start))]
    rows = [device_row(d, block_id=f"{ids.BlockId.RESULT}-{i}") for i, d in enumerate(page.devices)]
    out += rows[:_LIST_ROOM]
    notes = list(page.notes)
    if len(rows) > _LIST_ROOM:
        notes.append(f"{len(rows) - _LIST_ROOM} more on this page not shown; narrow the search.")
    if page.next_cursor:
        value = next_value(start + len(page.devices), page.next_cursor)
        if len(value) <= MAX_BUTTON_VALUE:
            out.append(actions([button("Next", ids.ActionId.FIND_NEXT, value, style="primary")]))
        else:
            notes.append("More results exist; narrow the search to see them.")
    if notes:
        out.append(context(" ".join(esc(n) for n in notes)))
    return fit(out)


def search_text(query: str, page: SearchPage, start: int = 0) -> str:
    """Notification text of a search page (the query is the user's: escaped)."""
    subject = esc(query) if query else "all devices"
    return f"{plural(len(page.devices), 'device')} for {subject} (from result {start + 1})"


def search_modal(private_metadata: str = "", *, error: str | None = None) -> dict[str, Any]:
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


# ---- ambiguity --------------------------------------------------------------------------


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


# ---- history ----------------------------------------------------------------------------


def event_line(event: dict[str, Any]) -> str:
    """One audit event: when, what, who, state change, request, details.

    An event with `outside: True` was done outside the bot (the Admin console's audit log,
    `bot.reports.outside_events_for`) and says so."""
    what = f"*{esc(event.get('event'))}*"
    if event.get("outside"):
        what += " _outside the bot_"
    parts = [when(event.get("at")), what, f"by {who(event.get('actor'))}"]
    if event.get("from_state") or event.get("to_state"):
        parts.append(f"{esc(event.get('from_state'))} → {esc(event.get('to_state'))}")
    if event.get("request_id"):
        parts.append(f"request `{esc(event['request_id'])}`")
    detail = event.get("detail") or {}
    if isinstance(detail, dict) and detail:
        shown = ", ".join(
            f"{esc(k)}: {esc(clip(_unescaped(_short(v)), 120))}"
            for k, v in list(detail.items())[:6]
        )
        parts.append(clip(shown, 600))
    return " · ".join(parts)


def _unescaped(text: str) -> str:
    """Undo Slack's three escapes: audit details hold raw text (a device's network, a
    note) next to outcome words that were escaped when built; unescaping first makes
    every value come out escaped exactly once."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _short(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)


# ---- requests ---------------------------------------------------------------------------


def _targets(devices_json: str | None) -> str:
    try:
        devices = json.loads(devices_json or "[]")
    except ValueError:
        devices = []
    labels = []
    for d in devices[:3]:
        if isinstance(d, dict):
            name = d.get("serial") or str(d.get("id", "?")).rsplit("/", 1)[-1]
            labels.append(f"*{esc(name)}*" + (f" ({esc(d['user'])})" if d.get("user") else ""))
    more = f" and {len(devices) - 3} more" if len(devices) > 3 else ""
    return (", ".join(labels) or "—") + more


def _action_label(row: dict[str, Any]) -> str:
    """A request's action by its label ("Reset password"), its name if the catalog lacks it."""
    try:
        return action_for(str(row.get("action")), str(row.get("platform"))).label
    except ValidationError:
        return str(row.get("action"))


def request_line(row: dict[str, Any]) -> str:
    """One pending request: id, action, targets, requester, age, expiry, reason."""
    parts = [
        f"`{esc(row.get('id'))}`",
        f"*{esc(_action_label(row))}* on {_targets(row.get('devices'))}",
        f"by {who(row.get('requester'))}",
        f"asked {when(row.get('created_at'))}",
    ]
    if row.get("expires_at"):
        parts.append(f"expires {when(row['expires_at'])}")
    line = " · ".join(parts)
    if row.get("reason"):
        line += "\n_Reason:_ " + esc(clip(str(row["reason"]), 300)).replace("\n", " ")
    return line


def requests_list(
    rows: Sequence[dict[str, Any]], *, everyone: bool, total: int | None = None
) -> list[Block]:
    """Pending requests: an approver sees everyone's, an operator their own."""
    total = len(rows) if total is None else total
    whose = "All pending requests" if everyone else "Your pending requests"
    out: list[Block] = [header(whose)]
    if not rows:
        out.append(
            section(
                "Nothing is waiting for approval." if everyone else "You have no pending request."
            )
        )
        return out
    shown = rows[:REQUESTS_LIMIT]
    out += [section(text) for text in _grouped(request_line(r) for r in shown)]
    if total > len(shown):
        out.append(context(f"Showing the oldest {len(shown)} of {total}."))
    if everyone:
        out.append(divider())
        out.append(context("Approve or deny from the request's message in the approvals channel."))
    return fit(out)


# ---- history in words -------------------------------------------------------------------


def _clock(epoch: float, same_day_as: float | None = None) -> str:
    """A time of day as a Slack date token; with the date when it is another day."""
    fallback = datetime.fromtimestamp(epoch, UTC).strftime("%H:%M UTC")
    if same_day_as is not None and int(epoch // 86400) == int(same_day_as // 86400):
        return f"<!date^{int(epoch)}^{{time}}|{fallback}>"
    return when(epoch)


def change_words(changes: Any) -> str:
    """An audit `changes` detail ({field: "old → new"}, [old, new] or {old, new}) in words."""
    if not isinstance(changes, dict):
        return esc(_unescaped(_short(changes)))
    labels = {f.name: f.label for f in catalog.ACTIONS["annotate"].fields}
    parts = []
    for name, value in changes.items():
        old: Any
        new: Any
        if isinstance(value, dict) and ("old" in value or "new" in value):
            old, new = value.get("old"), value.get("new")
        elif isinstance(value, list) and len(value) == 2:
            old, new = value
        elif isinstance(value, str) and " → " in value:
            old, new = value.split(" → ", 1)
        else:
            old, new = None, value
        label = esc(labels.get(name, name))
        old_words = esc(_unescaped(str(old))) if old not in (None, "") else "—"
        if new in (None, "", "(cleared)"):
            parts.append(f"{label}: cleared (was: {old_words})")
        else:
            parts.append(f"{label}: {old_words} → {esc(_unescaped(str(new)))}")
    return "; ".join(parts)


def _request_details(request: dict[str, Any], final: dict[str, Any] | None, device_id: str) -> str:
    """What a request carried, in words: changes, the target OU, parameters by label."""
    detail = (final or {}).get("detail") or {}
    if isinstance(detail, dict) and detail.get("changes"):
        return change_words(detail["changes"])
    params = dict(request.get("params") or {})
    previous = params.pop("previous", None)
    if request["action"] == "annotate" and isinstance(previous, dict):
        return change_words({k: [previous.get(k), v] for k, v in params.items()})
    if request["action"] == "move":
        others = len(request.get("device_ids") or []) - 1
        return f"to `{esc(params.get('ou'))}`" + (
            f" with {plural(others, 'other device')}" if others > 0 else ""
        )
    try:
        fields = {f.name: f for f in action_for(request["action"], request["platform"]).fields}
    except ValidationError:  # an action no longer in the catalog: its raw names
        fields = {}
    words = []
    for name, value in params.items():
        field = fields.get(name)
        label = field.label if field else name
        shown = option_words(field, value) if field else _short(value)
        words.append(f"{esc(label)}: {esc(clip(shown, 120))}")
    return ", ".join(words)


def _final_words(
    request: dict[str, Any], final: dict[str, Any], device_id: str, started: float
) -> str:
    """How a request ended, as a person says it ("disabled 14:02", "Sam denied it")."""
    state = final.get("event")
    at = _epoch_of(final.get("at")) or started
    detail = final.get("detail") or {}
    if state == "succeeded":
        if request["action"] == "move" and device_id in (detail.get("failed") or []):
            return f"not moved {_clock(at, started)}"
        return f"{DONE_WORDS.get(request['action'], 'done')} {_clock(at, started)}"
    if state == "failed":
        if request["action"] == "move" and device_id not in (detail.get("failed") or []):
            return f"moved {_clock(at, started)} (others failed)"
        outcome = _unescaped(str(detail.get("outcome") or "failed"))
        return f"{esc(clip(outcome, 200))} {_clock(at, started)}"
    if state == "denied":
        note = detail.get("note")
        return f"{who(final.get('actor'))} denied it" + (
            f" ({esc(clip(str(note), 120))})" if note else ""
        )
    if state == "cancelled":
        return f"{who(final.get('actor'))} cancelled it"
    if state == "expired":
        return (
            "expired before anyone approved it"
            if not request.get("decided_by")
            else "expired on the device"
        )
    return esc(state)


def request_history_line(
    request: dict[str, Any], events: Sequence[dict[str, Any]], device_id: str
) -> str:
    """One request as one line: "Olivia asked to disable it (INC-4411) · Alex approved · disabled 14:02"."""
    started = float(request.get("created_at") or _epoch_of(events[0].get("at")) or 0.0)
    count = len(request.get("device_ids") or [])
    try:
        label = action_for(request["action"], request["platform"]).label
    except ValidationError:
        label = str(request["action"])
    ask = f"{who(request.get('requester'))} asked to {asks(request['action'], label, 1 if request['action'] == 'move' else count)}"
    finals = [
        e
        for e in events
        if e.get("event") in ("succeeded", "failed", "denied", "cancelled", "expired")
    ]
    final = finals[-1] if finals else None
    details = _request_details(request, final, device_id)
    if details and request["action"] == "move":
        ask += f" {details}"
        details = ""
    said = [esc(clip(str(request["reason"]), 200))] if request.get("reason") else []
    said += [details] if details else []
    if said:
        ask += f" ({'; '.join(said)})"
    parts = [when(started), ask]
    approved = next((e for e in events if e.get("event") == "approved"), None)
    if approved and approved.get("actor") != request.get("requester"):
        parts.append(f"{who(approved.get('actor'))} approved")
    if final is not None:
        parts.append(_final_words(request, final, device_id, started))
    elif request.get("state") == "pending":
        parts.append("waiting for approval")
    elif request.get("state") in ("approved", "executing"):
        parts.append("running")
    return " · ".join(parts)


def event_history_line(event: dict[str, Any]) -> str:
    """An event outside any request (a lost case, a check-in) in words; others as logged."""
    name = str(event.get("event") or "")
    if name not in EVENT_WORDS:
        return event_line(event)
    detail = event.get("detail") or {}
    if name == "lost_checkin":
        network = detail.get("network")
        return f"{when(event.get('at'))} · It checked in" + (
            f" ({esc(_unescaped(str(network)))})" if network else ""
        )
    line = f"{when(event.get('at'))} · {who(event.get('actor'))} {EVENT_WORDS[name]}"
    if name == "lost_resolved" and detail.get("how"):
        line += f": {esc(_unescaped(str(detail['how'])))}"
    return line


def history_lines(
    events: Sequence[dict[str, Any]], requests: dict[str, dict[str, Any]], device_id: str
) -> list[str]:
    """A device's history as lines in words, newest first: one per request, one per other event."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    entries: list[tuple[float, str]] = []
    for event in sorted(events, key=lambda e: e.get("seq") or 0):
        request_id = event.get("request_id")
        if request_id and request_id in requests:
            grouped.setdefault(request_id, []).append(event)
        elif event.get("event") not in QUIET_EVENTS:
            entries.append((_epoch_of(event.get("at")) or 0.0, event_history_line(event)))
    for request_id, request_events in grouped.items():
        request = requests[request_id]
        started = float(request.get("created_at") or 0.0)
        entries.append((started, request_history_line(request, request_events, device_id)))
    entries.sort(key=lambda e: e[0], reverse=True)
    return [line for _, line in entries]


def history_page(title: str, lines: Sequence[str], *, raw_value: str | None = None) -> list[Block]:
    """A device's history in words, newest first, with *Raw detail* behind a button."""
    out: list[Block] = [header(clip(f"History of {title}", 150))]
    if not lines:
        out.append(section("Nothing has been done to this device through device-bot yet."))
        return out
    shown = lines[:HISTORY_LIMIT]
    out += [section(text) for text in _grouped(shown)]
    if len(lines) > len(shown):
        out.append(
            context(
                f"Showing the latest {len(shown)} of {len(lines)} entries. "
                "The whole log: `python -m bot audit --since YYYY-MM-DD`."
            )
        )
    if raw_value and len(raw_value) <= MAX_BUTTON_VALUE:
        out.append(actions([button("Raw detail", ids.ActionId.HISTORY_RAW, raw_value)]))
    return fit(out)


def raw_history(title: str, events: Sequence[dict[str, Any]]) -> list[Block]:
    """The audit events behind a history, as logged (JSON, newest first), for the curious."""
    out: list[Block] = [header(clip(f"Audit log of {title}", 150))]
    keep = ("seq", "at", "actor", "event", "request_id", "from_state", "to_state", "detail")
    lines = [
        esc(
            json.dumps(
                {k: e.get(k) for k in keep if e.get(k) not in (None, {}, "")},
                sort_keys=True,
                default=str,
            )
        )
        for e in events[:HISTORY_LIMIT]
    ]
    out += [section(f"```{text}```") for text in _grouped(lines, _SECTION_BUDGET - 10)]
    if len(events) > HISTORY_LIMIT:
        out.append(context(f"Showing the latest {HISTORY_LIMIT} of {len(events)} events."))
    return fit(out)
