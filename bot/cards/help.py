"""`/device help`: every sub-command, and what fits one device and why not the rest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bot import catalog
from bot.blocks import Block, context, fit, header, section, sections_of
from bot.cards.device import device_line, device_title
from bot.catalog import ActionSpec
from bot.devices import Device, platform_name


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
            out.append(section(f"*{platform_name(platform)} actions*"))
            out.extend(sections_of(lines))
    out.append(
        context(
            "A *device* is a serial number, a Chrome device id, an Android device name or id, or an"
            " asset id. :lock: marks actions a second person approves before they run."
            " `/device help <device>` lists what fits one device."
        )
    )
    return fit(out)
