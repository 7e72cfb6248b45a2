"""A device's card, its one-line form in lists, and the lost-devices channel post."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot import capabilities, ids
from bot.blocks import Block, actions, button, context, esc, fit, header, section
from bot.dates import ago, epoch_of, when
from bot.devices import PLATFORM_NAMES, Device, platform_name

_STATUS_EMOJI = {
    "ACTIVE": ":large_green_circle:",
    "DISABLED": ":no_entry:",
    "DEPROVISIONED": ":wastebasket:",
    "LOST": ":mag:",
    "PROVISIONED": ":white_circle:",
    "PROVISIONING": ":hourglass_flowing_sand:",
    "DELETED": ":wastebasket:",
}


def device_value(device: Device) -> str:
    """The value a device button carries: `<platform>|<device id>`."""
    return f"{device.platform}|{device.id}"


def parse_device_value(value: str) -> tuple[str, str]:
    """Inverse of device_value; ValueError when it is not one."""
    platform, sep, device_id = (value or "").partition("|")
    if not sep or platform not in PLATFORM_NAMES or not device_id:
        raise ValueError(f"not a device button value: {value[:60]!r}")
    return platform, device_id


def status_text(status: str) -> str:
    """A device state with its emoji, e.g. `:no_entry: *DISABLED*`."""
    emoji = _STATUS_EMOJI.get(status, ":white_circle:")
    return f"{emoji} *{esc(status)}*"


def device_title(device: Device) -> str:
    """Plain-text name of a device: platform and serial (or short id)."""
    return f"{platform_name(device.platform)} {device.serial or device.short_id}"


def device_line(device: Device) -> str:
    """One device in a list: serial, platform, model, state; user, OU, last seen."""
    first = " · ".join(
        [
            f"*{esc(device.serial or device.short_id)}*",
            platform_name(device.platform),
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
                f"*{platform_name(device.platform)} details*",
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
        + (f" ({when(checkin)})" if epoch_of(checkin) is not None else ""),
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


def device_row(
    device: Device,
    label: str = "Show",
    *,
    block_id: str | None = None,
    action_id: str = ids.ActionId.SHOW_DEVICE,
) -> Block:
    """A list row: the device's line with a button (by default one that shows its card)."""
    accessory = button(label, action_id, device_value(device))
    return section(device_line(device), accessory=accessory, block_id=block_id)
