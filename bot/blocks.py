"""Block Kit builders: small pure functions from domain objects to blocks.

Every user- or device-supplied string goes through `esc()` before it lands in mrkdwn,
so a device note reading `<!channel>` cannot ping anyone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_MODAL_TITLE = 24
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000

_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")

Block = dict[str, Any]


def esc(text: object) -> str:
    """Escape &, <, > for mrkdwn (Slack's own rule); None becomes an em dash."""
    if text is None or text == "":
        return "—"
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plural(count: int, word: str, words: str | None = None) -> str:
    """`1 device`, `2 devices` (the count with the word in the right number)."""
    return f"{count} {word if count == 1 else (words or word + 's')}"


def sentence(text: str) -> str:
    """`text` ending in punctuation, so that another sentence can follow it."""
    text = text.rstrip()
    return text if not text or text[-1] in ".!?…" else text + "."


def mention(slack_id: str) -> str:
    """A Slack user (U…/W…) or user group (S…) as a mention."""
    if slack_id.startswith("S"):
        return f"<!subteam^{slack_id}>"
    return f"<@{slack_id}>"


def who(actor: str | None) -> str:
    """A Slack user id as a mention; anything else (a job, "system") as escaped text."""
    if actor and _SLACK_USER.match(actor):
        return f"<@{actor}>"
    return esc(actor)


def clip(text: str, limit: int, note: str = "…") -> str:
    return text if len(text) <= limit else text[: limit - len(note)] + note


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip(text, MAX_SECTION_TEXT)}


def plain(text: str, limit: int = 150) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def section(
    text: str,
    *,
    fields: Iterable[str] = (),
    accessory: Block | None = None,
    block_id: str | None = None,
) -> Block:
    """A section of mrkdwn text (clipped to Slack's 3000 characters)."""
    block: Block = {"type": "section", "text": mrkdwn(text)}
    field_list = [mrkdwn(clip(f, MAX_FIELD_TEXT)) for f in fields][:10]
    if field_list:
        block["fields"] = field_list
    if accessory:
        block["accessory"] = accessory
    if block_id:
        block["block_id"] = block_id
    return block


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, 150)}


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(clip(t, MAX_FIELD_TEXT)) for t in texts][:10]}


def divider() -> Block:
    return {"type": "divider"}


def button(
    text: str,
    action_id: str,
    value: str | None = None,
    *,
    style: str | None = None,
    confirm: dict[str, Any] | None = None,
) -> Block:
    """A button; style is 'primary', 'danger' or None."""
    element: Block = {
        "type": "button",
        "text": plain(text, MAX_BUTTON_TEXT),
        "action_id": action_id,
    }
    if value is not None:
        element["value"] = value[:MAX_BUTTON_VALUE]
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def confirm_dialog(
    title: str, text: str, yes: str, no: str = "Cancel", *, danger: bool = False
) -> dict[str, Any]:
    dialog: dict[str, Any] = {
        "title": plain(title, 100),
        "text": mrkdwn(clip(text, 300)),
        "confirm": plain(yes, 30),
        "deny": plain(no, 30),
    }
    if danger:
        dialog["style"] = "danger"
    return dialog


def actions(elements: list[Block], block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": elements[:25]}
    if block_id:
        block["block_id"] = block_id
    return block


def fit(
    blocks: list[Block], limit: int = MAX_MESSAGE_BLOCKS, note: str = "…more not shown"
) -> list[Block]:
    """Keep a message within Slack's block limit, saying so when something is cut."""
    if len(blocks) <= limit:
        return blocks
    return [*blocks[: limit - 1], context(note)]


def packed(lines: Iterable[str], limit: int = 2900) -> list[str]:
    """Lines joined into as few texts of at most `limit` characters as they fit in (a line
    longer than that is clipped): one section's text each."""
    texts: list[str] = []
    chunk: list[str] = []
    size = 0
    for line in lines:
        line = clip(line, limit)
        if chunk and size + len(line) + 1 > limit:
            texts.append("\n".join(chunk))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        texts.append("\n".join(chunk))
    return texts


def sections_of(lines: Iterable[str], limit: int = 2900) -> list[Block]:
    """Lines packed into as few sections as Slack's 3000-character limit allows."""
    return [section(text) for text in packed(lines, limit)]
