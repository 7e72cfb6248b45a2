"""Block Kit as Slack checks it: every ``blocks`` array and ``view`` the bot sends is parsed with
``slack_sdk.models`` and validated, then held to the documented limits slack_sdk does not check.

The answer is a list of Slack-style error strings (``[ERROR] <what> [json-pointer:<where>]``), empty
when Slack would accept the payload; the emulator answers ``invalid_blocks`` with them.

The numbers come from ``limits.LIMITS``, the one table of them, each with the page that states it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.playground.slack_emulator.limits import LIMITS

JSON = dict[str, Any]


def _max(name: str) -> int:
    return LIMITS[name].value


_BLOCK_TYPES = {
    "section",
    "divider",
    "image",
    "actions",
    "context",
    "input",
    "header",
    "rich_text",
    "file",
    "video",
    "markdown",
}
INPUT_TYPES = {
    "plain_text_input",
    "email_text_input",
    "url_text_input",
    "number_input",
    "static_select",
    "multi_static_select",
    "external_select",
    "multi_external_select",
    "users_select",
    "multi_users_select",
    "conversations_select",
    "multi_conversations_select",
    "channels_select",
    "multi_channels_select",
    "checkboxes",
    "radio_buttons",
    "datepicker",
    "timepicker",
    "datetimepicker",
    "rich_text_input",
    "file_input",
}
_ELEMENT_TYPES = INPUT_TYPES | {"button", "overflow", "image", "workflow_button"}
_OPTION_LIMITS = {
    "overflow": "overflow_options",
    "radio_buttons": "radio_options",
    "checkboxes": "checkboxes_options",
}
_STATIC_MENUS = ("static_select", "multi_static_select", "overflow", "radio_buttons", "checkboxes")


def error_at(msg: str, pointer: str) -> str:
    return f"[ERROR] {msg} [json-pointer:{pointer}]"


def _check_text(obj: Any, pointer: str, max_len: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict):
        return [error_at("must be an object", pointer)]
    errors: list[str] = []
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if obj.get("type") not in kinds:
        errors.append(error_at("must be a valid enum value", pointer + "/type"))
    text = obj.get("text")
    if not isinstance(text, str):
        errors.append(error_at("must be a string", pointer + "/text"))
    elif not text:
        errors.append(error_at("must be more than 0 characters", pointer + "/text"))
    elif len(text) > min(max_len, _max("text")):
        limit = min(max_len, _max("text"))
        errors.append(error_at(f"must be less than {limit + 1} characters", pointer + "/text"))
    return errors


def _check_len(value: Any, pointer: str, max_len: int) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, str):
        return [error_at("must be a string", pointer)]
    if len(value) > max_len:
        return [error_at(f"must be less than {max_len + 1} characters", pointer)]
    return []


def _check_int(value: Any, pointer: str, low: int, high: int) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool):
        return [error_at("must be an integer", pointer)]
    if not low <= value <= high:
        return [error_at(f"must be between {low} and {high}", pointer)]
    return []


def _check_options(options: Any, pointer: str, max_items: int) -> list[str]:
    if not isinstance(options, list):
        return [error_at("must be an array", pointer)]
    errors: list[str] = []
    if len(options) > max_items:
        errors.append(error_at(f"must be less than {max_items + 1} items", pointer))
    for i, opt in enumerate(options):
        p = f"{pointer}/{i}"
        if not isinstance(opt, dict):
            errors.append(error_at("must be an object", p))
            continue
        errors += _check_text(opt.get("text"), p + "/text", _max("option_text"))
        errors += _check_len(opt.get("value"), p + "/value", _max("option_value"))
        errors += _check_len(opt.get("url"), p + "/url", _max("option_url"))
        if "description" in opt:
            errors += _check_text(
                opt["description"], p + "/description", _max("option_description")
            )
    return errors


def _check_image(obj: dict[str, Any], pointer: str) -> list[str]:
    """An image element's or block's alt_text and image_url lengths."""
    return _check_len(
        obj.get("alt_text"), pointer + "/alt_text", _max("image_alt_text")
    ) + _check_len(obj.get("image_url"), pointer + "/image_url", _max("image_url"))


def _check_confirm(obj: Any, pointer: str) -> list[str]:
    if not isinstance(obj, dict):
        return [error_at("must be an object", pointer)]
    errors = _check_text(
        obj.get("title"), pointer + "/title", _max("confirm_title"), plain_only=True
    )
    errors += _check_text(obj.get("text"), pointer + "/text", _max("confirm_text"))
    for key in ("confirm", "deny"):
        errors += _check_text(
            obj.get(key), f"{pointer}/{key}", _max("confirm_button"), plain_only=True
        )
    return errors


def all_options(element: JSON) -> list[Any]:
    """Every option of a select, flattening option groups."""
    if "option_groups" in element:
        groups = element.get("option_groups") or []
        return [o for g in groups if isinstance(g, dict) for o in g.get("options") or []]
    return list(element.get("options") or [])


def _check_menu(el: JSON, kind: str, pointer: str) -> list[str]:
    errors: list[str] = []
    if "option_groups" in el:
        groups = el["option_groups"]
        if not isinstance(groups, list):
            return [error_at("must be an array", pointer + "/option_groups")]
        if len(groups) > _max("option_groups"):
            limit = _max("option_groups")
            errors.append(
                error_at(f"must be less than {limit + 1} items", pointer + "/option_groups")
            )
        for g, group in enumerate(groups):
            gp = f"{pointer}/option_groups/{g}"
            if not isinstance(group, dict):
                errors.append(error_at("must be an object", gp))
                continue
            errors += _check_text(
                group.get("label"), gp + "/label", _max("option_group_label"), plain_only=True
            )
            errors += _check_options(
                group.get("options"), gp + "/options", _max("option_group_options")
            )
    else:
        limit = _max(_OPTION_LIMITS.get(kind, "select_options"))
        errors += _check_options(el.get("options"), pointer + "/options", limit)
    # initial_option(s) "exactly match" one of the options (select menu / checkboxes pages)
    offered = [o for o in all_options(el) if isinstance(o, dict)]
    chosen = []
    if "initial_option" in el:
        chosen.append(("initial_option", el["initial_option"]))
    for i, opt in enumerate(el.get("initial_options") or []):
        chosen.append((f"initial_options/{i}", opt))
    for where, opt in chosen:
        if opt not in offered:
            errors.append(error_at("must exactly match one of the options", f"{pointer}/{where}"))
    return errors


def _check_text_input(el: JSON, pointer: str) -> list[str]:
    low, high = el.get("min_length"), el.get("max_length")
    errors = _check_int(low, pointer + "/min_length", 0, _max("input_min_length"))
    errors += _check_int(high, pointer + "/max_length", 1, _max("input_max_length"))
    bounds_ok = not errors
    if bounds_ok and low is not None and high is not None and low > high:
        errors.append(error_at("must not be greater than max_length", pointer + "/min_length"))
        bounds_ok = False
    initial = el.get("initial_value")
    errors += _check_len(initial, pointer + "/initial_value", _max("input_initial_value"))
    if bounds_ok and isinstance(initial, str):
        if high is not None and len(initial) > high:
            errors.append(
                error_at(f"must be at most max_length ({high})", pointer + "/initial_value")
            )
        if low is not None and initial and len(initial) < low:
            errors.append(
                error_at(f"must be at least min_length ({low})", pointer + "/initial_value")
            )
    return errors


def _check_element(el: Any, pointer: str) -> list[str]:
    if not isinstance(el, dict):
        return [error_at("must be an object", pointer)]
    kind = el.get("type")
    if kind not in _ELEMENT_TYPES:
        return [error_at("must be a valid enum value", pointer + "/type")]
    errors = _check_len(el.get("action_id"), pointer + "/action_id", _max("action_id"))
    if kind == "button":
        errors += _check_text(
            el.get("text"), pointer + "/text", _max("button_text"), plain_only=True
        )
        errors += _check_len(el.get("value"), pointer + "/value", _max("button_value"))
        errors += _check_len(el.get("url"), pointer + "/url", _max("button_url"))
        errors += _check_len(
            el.get("accessibility_label"),
            pointer + "/accessibility_label",
            _max("accessibility_label"),
        )
        if el.get("style") not in (None, "primary", "danger"):
            errors.append(error_at("must be a valid enum value", pointer + "/style"))
    if kind == "image":
        errors += _check_image(el, pointer)
    if "placeholder" in el:
        errors += _check_text(
            el["placeholder"], pointer + "/placeholder", _max("placeholder"), plain_only=True
        )
    if "confirm" in el:
        errors += _check_confirm(el["confirm"], pointer + "/confirm")
    if kind in _STATIC_MENUS:
        errors += _check_menu(el, kind, pointer)
    if kind == "plain_text_input":
        errors += _check_text_input(el, pointer)
    if kind == "file_input":  # https://api.slack.com/reference/block-kit/block-elements#file_input
        errors += _check_int(el.get("max_files"), pointer + "/max_files", 1, 10)
        filetypes = el.get("filetypes")
        if filetypes is not None and (
            not isinstance(filetypes, list) or not all(isinstance(t, str) for t in filetypes)
        ):
            errors.append(error_at("must be an array of strings", pointer + "/filetypes"))
    return errors


def _elements(block: JSON, p: str, limit: int) -> tuple[list[Any], list[str]]:
    """A context or actions block's elements, or none and the error when they are not an
    array of 1 to `limit` items."""
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= limit:
        return [], [error_at(f"must be an array of 1 to {limit} items", p + "/elements")]
    return elements, []


def _check_block(block: JSON, p: str, surface: str) -> list[str]:
    kind = block["type"]
    errors: list[str] = []
    if kind == "section":
        if "text" not in block and "fields" not in block:
            errors.append(error_at("must provide either text or fields", p))
        if "text" in block:
            errors += _check_text(block["text"], p + "/text", _max("section_text"))
        fields = block.get("fields")
        if fields is not None:
            if not isinstance(fields, list) or len(fields) > _max("section_fields"):
                limit = _max("section_fields")
                errors.append(error_at(f"must be an array of at most {limit} items", p + "/fields"))
            else:
                for f, fld in enumerate(fields):
                    errors += _check_text(fld, f"{p}/fields/{f}", _max("section_field_text"))
        if "accessory" in block:
            errors += _check_element(block["accessory"], p + "/accessory")
    elif kind == "header":
        errors += _check_text(block.get("text"), p + "/text", _max("header_text"), plain_only=True)
    elif kind == "context":
        elements, problems = _elements(block, p, _max("context_elements"))
        errors += problems
        for e, el in enumerate(elements):
            ep = f"{p}/elements/{e}"
            if isinstance(el, dict) and el.get("type") == "image":
                errors += _check_element(el, ep)
            else:
                errors += _check_text(el, ep, _max("text"))
    elif kind == "actions":
        elements, problems = _elements(block, p, _max("actions_elements"))
        errors += problems
        seen_actions: set[str] = set()
        for e, el in enumerate(elements):
            errors += _check_element(el, f"{p}/elements/{e}")
            action_id = el.get("action_id") if isinstance(el, dict) else None
            if isinstance(action_id, str):
                if action_id in seen_actions:
                    errors.append(
                        error_at(f"duplicate action_id {action_id!r}", f"{p}/elements/{e}")
                    )
                seen_actions.add(action_id)
    elif kind == "input":
        errors += _check_text(
            block.get("label"), p + "/label", _max("input_label"), plain_only=True
        )
        if "hint" in block:
            errors += _check_text(block["hint"], p + "/hint", _max("input_hint"), plain_only=True)
        element = block.get("element")
        if element is None:
            errors.append(error_at("must provide an element", p + "/element"))
        else:
            errors += _check_element(element, p + "/element")
    elif kind == "image":
        errors += _check_image(block, p)
        if "title" in block:
            errors += _check_text(
                block["title"], p + "/title", _max("image_title"), plain_only=True
            )
    return errors


# --------------------------------------------------------------------------- slack_sdk.models


def _dropped(sent: Any, kept: Any, pointer: str) -> list[str]:
    """Pointers to keys of ``sent`` that the slack_sdk round trip ``kept`` no longer has."""
    if isinstance(sent, dict) and isinstance(kept, dict):
        out: list[str] = []
        for key, value in sent.items():
            if key not in kept:
                if value not in (None, "", [], {}):  # slack_sdk leaves out empty values
                    out.append(f"{pointer}/{key}")
            else:
                out += _dropped(value, kept[key], f"{pointer}/{key}")
        return out
    if isinstance(sent, list) and isinstance(kept, list) and len(sent) == len(kept):
        return [
            x
            for i, (a, b) in enumerate(zip(sent, kept, strict=True))
            for x in _dropped(a, b, f"{pointer}/{i}")
        ]
    return []


_SDK_LOGGERS = ("slack_sdk.models", "slack_sdk.models.blocks", "slack_sdk.models.views")


def _sdk_check(payload: JSON, parse: Callable[[JSON], Any], pointer: str) -> list[str]:
    """Parse ``payload`` with slack_sdk.models and validate it (``to_dict`` validates the tree)."""
    try:
        model = parse(payload)
        if model is None:
            return [error_at("unsupported block type", pointer + "/type")]
        kept = model.to_dict()
    except Exception as exc:  # SlackObjectFormationError, or a shape the constructors refuse
        return [error_at(f"slack_sdk: {exc}", pointer)]
    return [error_at("unknown field", p) for p in _dropped(payload, kept, pointer)]


def _parse_block(block: JSON) -> Any:
    return Block.parse(block)


def _parse_view(view: JSON) -> Any:
    return View(**view)


for _name in _SDK_LOGGERS:  # unknown blocks are reported here, not logged by slack_sdk
    logging.getLogger(_name).setLevel(logging.ERROR)


# --------------------------------------------------------------------------- the checks


def validate_blocks(
    blocks: Any, *, surface: str = "message", pointer: str = "/blocks"
) -> list[str]:
    """Return Slack-style error strings for ``blocks`` ([] when Slack would accept them)."""
    if not isinstance(blocks, list):
        return [error_at("must be an array", pointer)]
    limit = _max("message_blocks") if surface == "message" else _max("view_blocks")
    errors: list[str] = []
    if len(blocks) > limit:
        errors.append(error_at(f"must be less than {limit + 1} items", pointer))
    seen_blocks: set[str] = set()
    for i, block in enumerate(blocks):
        p = f"{pointer}/{i}"
        if not isinstance(block, dict):
            errors.append(error_at("must be an object", p))
            continue
        if block.get("type") not in _BLOCK_TYPES:
            errors.append(error_at("must be a valid enum value", p + "/type"))
            continue
        block_id = block.get("block_id")
        errors += _check_len(block_id, p + "/block_id", _max("block_id"))
        if isinstance(block_id, str):
            if block_id in seen_blocks:
                errors.append(error_at(f"duplicate block_id {block_id!r}", p + "/block_id"))
            seen_blocks.add(block_id)
        errors += _check_block(block, p, surface)
        errors += _sdk_check(block, _parse_block, p)
    return errors


def validate_view(view: Any, pointer: str = "/view") -> list[str]:
    """Return Slack-style error strings for a modal or home ``view``."""
    if not isinstance(view, dict):
        return [error_at("must be an object", pointer)]
    kind = view.get("type")
    if kind not in ("modal", "home"):
        return [error_at("must be a valid enum value", pointer + "/type")]
    errors: list[str] = []
    if kind == "modal":
        errors += _check_text(
            view.get("title"), pointer + "/title", _max("modal_title"), plain_only=True
        )
        for key in ("submit", "close"):
            if key in view and view[key] is not None:
                limit = _max(f"modal_{key}")
                errors += _check_text(view[key], f"{pointer}/{key}", limit, plain_only=True)
    errors += _check_len(
        view.get("private_metadata"), pointer + "/private_metadata", _max("private_metadata")
    )
    errors += _check_len(view.get("callback_id"), pointer + "/callback_id", _max("callback_id"))
    errors += _check_len(view.get("external_id"), pointer + "/external_id", _max("external_id"))
    blocks = view.get("blocks")
    errors += validate_blocks(blocks, surface=kind, pointer=pointer + "/blocks")
    has_input = isinstance(blocks, list) and any(
        isinstance(b, dict) and b.get("type") == "input" for b in blocks
    )
    if kind == "modal" and has_input and not view.get("submit"):
        errors.append(error_at("must provide a submit property when using input blocks", pointer))
    if not errors:  # the blocks were each checked by slack_sdk above; now the view around them
        shell = {k: v for k, v in view.items() if k != "blocks"}
        errors += [
            e
            for e in _sdk_check({**shell, "blocks": blocks}, _parse_view, pointer)
            if "/blocks/" not in e
        ]
    return errors
