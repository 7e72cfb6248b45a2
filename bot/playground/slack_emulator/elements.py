"""Interactive elements in Block Kit, and the ``state.values`` entry Slack builds for each.

A click or a submission carries the state of every input; ``element_state`` builds it from
an element and the value a person picked, as Slack does.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from bot.playground.slack_emulator.blockkit import all_options
from bot.playground.slack_emulator.records import JSON


def iter_elements(blocks: Any) -> Iterator[tuple[JSON, JSON]]:
    """Yield (block, element) for every interactive element in ``blocks``."""
    for block in blocks or []:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("accessory"), dict):
            yield block, block["accessory"]
        for el in block.get("elements") or []:
            if isinstance(el, dict) and "action_id" in el:
                yield block, el
        if isinstance(block.get("element"), dict):
            yield block, block["element"]


def _find_option(element: JSON, wanted: Any) -> JSON:
    """Resolve ``wanted`` (a value, a label, or an option dict) against the element's options."""
    if isinstance(wanted, dict):
        return wanted
    options = all_options(element)
    for opt in options:
        if opt.get("value") == wanted:
            return copy.deepcopy(opt)
    for opt in options:
        if (opt.get("text") or {}).get("text") == wanted:
            return copy.deepcopy(opt)
    if element.get("type") in ("external_select", "multi_external_select"):
        return {"text": {"type": "plain_text", "text": str(wanted)}, "value": str(wanted)}
    raise AssertionError(
        f"option {wanted!r} not in {element.get('action_id')!r}: "
        f"{[o.get('value') for o in options]}"
    )


def element_state(element: JSON, value: Any = None, *, touched: bool = True) -> JSON:
    """Slack's ``state.values`` entry for ``element`` holding ``value`` (or its initial value)."""
    kind = element.get("type", "")
    if isinstance(value, dict) and "type" in value:
        return value
    state: JSON = {"type": kind}
    if kind in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
        if touched:
            state["value"] = None if value is None or value == "" else str(value)
        else:
            state["value"] = element.get("initial_value")
    elif kind in ("static_select", "external_select", "radio_buttons", "overflow"):
        if touched:
            state["selected_option"] = None if value is None else _find_option(element, value)
        else:
            state["selected_option"] = copy.deepcopy(element.get("initial_option"))
    elif kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        if touched:
            values = value if isinstance(value, (list, tuple)) else [value]
            state["selected_options"] = [_find_option(element, v) for v in values if v is not None]
        else:
            state["selected_options"] = copy.deepcopy(element.get("initial_options") or [])
    elif kind == "users_select":
        state["selected_user"] = value if touched else element.get("initial_user")
    elif kind == "multi_users_select":
        state["selected_users"] = list(value or []) if touched else element.get("initial_users", [])
    elif kind == "conversations_select":
        state["selected_conversation"] = value if touched else element.get("initial_conversation")
    elif kind == "multi_conversations_select":
        state["selected_conversations"] = (
            list(value or []) if touched else element.get("initial_conversations", [])
        )
    elif kind == "channels_select":
        state["selected_channel"] = value if touched else element.get("initial_channel")
    elif kind == "multi_channels_select":
        state["selected_channels"] = (
            list(value or []) if touched else element.get("initial_channels", [])
        )
    elif kind == "file_input":  # the files picked: objects from uploads.user_upload
        state["files"] = list(value or []) if touched else []
    elif kind == "datepicker":
        state["selected_date"] = value if touched else element.get("initial_date")
    elif kind == "timepicker":
        state["selected_time"] = value if touched else element.get("initial_time")
    elif kind == "datetimepicker":
        state["selected_date_time"] = value if touched else element.get("initial_date_time")
    else:
        state["value"] = value
    return state
