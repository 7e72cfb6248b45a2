"""The Block Kit limits the emulator holds the bot to, each with the page of Slack's reference that
states it.

An entry marked ``our_reading`` is a rule the pages do not state outright (or state only as
"should"); it is kept because real Slack behaves so as far as we know, and says so here rather than
passing for a fact. ``RULES`` lists the checks that have no number.
"""

from __future__ import annotations

from dataclasses import dataclass

_REF = "https://docs.slack.dev/reference"


@dataclass(frozen=True)
class Limit:
    """One documented Block Kit limit and where it is written."""

    value: int
    what: str
    source: str
    our_reading: bool = False


# fmt: off
LIMITS: dict[str, Limit] = {
    # surfaces
    "message_blocks": Limit(50, "blocks in one message", f"{_REF}/block-kit/blocks"),
    "view_blocks": Limit(100, "blocks in a modal or Home tab", f"{_REF}/views/modal-views"),
    "message_text": Limit(40_000, "characters of a message's top-level text (msg_too_long)",
                          f"{_REF}/methods/chat.postMessage"),
    "modal_title": Limit(24, "characters of a modal's title", f"{_REF}/views/modal-views"),
    "modal_submit": Limit(24, "characters of a modal's submit text", f"{_REF}/views/modal-views"),
    "modal_close": Limit(24, "characters of a modal's close text", f"{_REF}/views/modal-views"),
    "private_metadata": Limit(3000, "characters of private_metadata", f"{_REF}/views/modal-views"),
    "callback_id": Limit(255, "characters of a view's callback_id", f"{_REF}/views/modal-views"),
    "external_id": Limit(255, "characters of a view's external_id", f"{_REF}/views/modal-views",
                         our_reading=True),  # the page gives no length; 255 like the other ids
    # composition objects
    "text": Limit(3000, "characters of any text object (minimum 1)",
                  f"{_REF}/block-kit/composition-objects/text-object"),
    "option_text": Limit(75, "characters of an option's text",
                         f"{_REF}/block-kit/composition-objects/option-object"),
    "option_value": Limit(150, "characters of an option's value",
                          f"{_REF}/block-kit/composition-objects/option-object"),
    "option_description": Limit(75, "characters of an option's description",
                                f"{_REF}/block-kit/composition-objects/option-object"),
    "option_url": Limit(3000, "characters of an (overflow) option's url",
                        f"{_REF}/block-kit/composition-objects/option-object"),
    "option_groups": Limit(100, "option groups in a select menu",
                           f"{_REF}/block-kit/composition-objects/option-group-object"),
    "option_group_label": Limit(75, "characters of an option group's label",
                                f"{_REF}/block-kit/composition-objects/option-group-object"),
    "option_group_options": Limit(100, "options in one option group",
                                  f"{_REF}/block-kit/composition-objects/option-group-object"),
    "confirm_title": Limit(100, "characters of a confirm dialog's title",
                           f"{_REF}/block-kit/composition-objects/confirmation-dialog-object"),
    "confirm_text": Limit(300, "characters of a confirm dialog's text",
                          f"{_REF}/block-kit/composition-objects/confirmation-dialog-object"),
    "confirm_button": Limit(30, "characters of a confirm dialog's confirm/deny text",
                            f"{_REF}/block-kit/composition-objects/confirmation-dialog-object"),
    # blocks
    "block_id": Limit(255, "characters of a block_id", f"{_REF}/block-kit/blocks/section-block"),
    "section_text": Limit(3000, "characters of a section's text",
                          f"{_REF}/block-kit/blocks/section-block"),
    "section_fields": Limit(10, "fields in a section", f"{_REF}/block-kit/blocks/section-block"),
    "section_field_text": Limit(2000, "characters of one section field",
                                f"{_REF}/block-kit/blocks/section-block"),
    "header_text": Limit(150, "characters of a header", f"{_REF}/block-kit/blocks/header-block"),
    "context_elements": Limit(10, "elements in a context block",
                              f"{_REF}/block-kit/blocks/context-block"),
    "actions_elements": Limit(25, "elements in an actions block",
                              f"{_REF}/block-kit/blocks/actions-block"),
    "input_label": Limit(2000, "characters of an input block's label",
                         f"{_REF}/block-kit/blocks/input-block"),
    "input_hint": Limit(2000, "characters of an input block's hint",
                        f"{_REF}/block-kit/blocks/input-block"),
    "image_alt_text": Limit(2000, "characters of an image's alt_text",
                            f"{_REF}/block-kit/blocks/image-block"),
    "image_url": Limit(3000, "characters of an image_url", f"{_REF}/block-kit/blocks/image-block"),
    "image_title": Limit(2000, "characters of an image block's title",
                         f"{_REF}/block-kit/blocks/image-block"),
    # elements
    "action_id": Limit(255, "characters of an action_id",
                       f"{_REF}/block-kit/block-elements/plain-text-input-element"),
    "button_text": Limit(75, "characters of a button's text",
                         f"{_REF}/block-kit/block-elements/button-element"),
    "button_value": Limit(2000, "characters of a button's value",
                          f"{_REF}/block-kit/block-elements/button-element"),
    "button_url": Limit(3000, "characters of a button's url",
                        f"{_REF}/block-kit/block-elements/button-element"),
    "accessibility_label": Limit(75, "characters of a button's accessibility_label",
                                 f"{_REF}/block-kit/block-elements/button-element"),
    "placeholder": Limit(150, "characters of a placeholder",
                         f"{_REF}/block-kit/block-elements/select-menu-element"),
    "select_options": Limit(100, "options in a static select (single or multi)",
                            f"{_REF}/block-kit/block-elements/select-menu-element"),
    "overflow_options": Limit(5, "options in an overflow menu",
                              f"{_REF}/block-kit/block-elements/overflow-menu-element"),
    "checkboxes_options": Limit(10, "options in a checkbox group",
                                f"{_REF}/block-kit/block-elements/checkboxes-element"),
    "radio_options": Limit(10, "options in a radio button group",
                           f"{_REF}/block-kit/block-elements/radio-button-group-element",
                           our_reading=True),  # as for checkboxes; the page was not at hand
    "input_min_length": Limit(3000, "plain_text_input min_length (0 to 3000)",
                              f"{_REF}/block-kit/block-elements/plain-text-input-element"),
    "input_max_length": Limit(3000, "plain_text_input max_length (1 to 3000)",
                              f"{_REF}/block-kit/block-elements/plain-text-input-element"),
    "input_initial_value": Limit(3000, "characters of a plain_text_input initial_value, and within "
                                 "its own min_length/max_length",
                                 f"{_REF}/block-kit/block-elements/plain-text-input-element",
                                 our_reading=True),  # the page states no bound on initial_value
}
# fmt: on

# Rules without a number, kept with the table for the report.
RULES: list[tuple[str, str, bool]] = [
    ("a modal with input blocks must have submit", f"{_REF}/views/modal-views", False),
    (
        "initial_option(s) must exactly match one of the options",
        f"{_REF}/block-kit/block-elements/select-menu-element",
        False,
    ),
    ("min_length must not exceed max_length", "plain-text-input-element", True),
    ("block_ids are unique within one message or view", f"{_REF}/block-kit/blocks", True),
    ("action_ids are unique within one block", "every element page says 'should be'", True),
    ("a view holds at least 1 block", "slack_sdk.models View (its validator)", True),
    (
        "a fault inside a view's blocks is invalid_blocks, one in the view's own fields "
        "invalid_arguments",
        "seen from views.update with a plain_text_input max_length over 3000",
        True,
    ),
    (
        "no field slack_sdk.models drops on a round trip (Slack's schemas allow no extra "
        "properties)",
        "slack_sdk.models",
        True,
    ),
]


def limits_table() -> str:
    """The limits as a plain text table (for the README and failure messages)."""
    rows = [
        f"{name:22} {lim.value:>6}  {lim.what}  [{lim.source}]"
        + ("  (our reading)" if lim.our_reading else "")
        for name, lim in LIMITS.items()
    ]
    rows += [
        f"{'rule':22} {'':>6}  {what}  [{src}]" + ("  (our reading)" if ours else "")
        for what, src, ours in RULES
    ]
    return "\n".join(rows)
