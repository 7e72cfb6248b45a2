"""Partial responses: the `fields` system parameter every Google API takes.

Grammar (https://developers.google.com/workspace/admin/directory/v1/guides/performance#partial-response):
a comma-separated list of field names; `a/b` selects `b` inside `a`; `a(b,c)` selects
`b` and `c` inside `a` (each element, when `a` is a list); `*` selects everything at
its level. The Directory guide exports MEIDs with
`fields=nextPageToken,chromeosdevices(meid)`. A malformed selector is a 400, as Google
answers; a name that the resource simply lacks selects nothing.
"""

from __future__ import annotations

from typing import Any

from bot.sandbox.api import ApiError

#: a parsed selector: name → nested selector (None: the whole value)
Selector = dict[str, "Selector | None"]


def parse(text: str) -> Selector:
    """`nextPageToken,chromeosdevices(meid,serialNumber)` → a nested dict; ApiError 400 if malformed."""
    compact = text.replace(" ", "")
    selector, end = _parse_list(compact, 0, text)
    if end != len(compact):
        raise _invalid(text)
    return selector


def _invalid(text: str) -> ApiError:
    return ApiError(400, f"Invalid field selection {text}", reason="invalidParameter")


def _parse_list(text: str, pos: int, original: str) -> tuple[Selector, int]:
    out: Selector = {}
    while True:
        start = pos
        while pos < len(text) and text[pos] not in ",()":
            pos += 1
        path = text[start:pos]
        if not path or any(not part for part in path.split("/")):
            raise _invalid(original)
        inner: Selector | None = None
        if pos < len(text) and text[pos] == "(":
            inner, pos = _parse_list(text, pos + 1, original)
            if pos >= len(text) or text[pos] != ")":
                raise _invalid(original)
            pos += 1
        _merge(out, path.split("/"), inner)
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        return out, pos


def _merge(out: Selector, names: list[str], inner: Selector | None) -> None:
    head, *tail = names
    if not tail:
        if head in out and out[head] is None:
            return  # already selected whole
        if inner is None:
            out[head] = None
        else:
            existing = out.get(head)
            out[head] = {**(existing or {}), **inner}
        return
    existing = out.get(head, {})
    if existing is None:
        return
    out[head] = existing
    _merge(existing, tail, inner)


def select(value: Any, selector: Selector | None) -> Any:
    """The parts of `value` that `selector` names (lists: applied to each element)."""
    if selector is None:
        return value
    if isinstance(value, list):
        return [select(item, selector) for item in value]
    if not isinstance(value, dict):
        return value
    if "*" in selector:
        return value
    out: dict[str, Any] = {}
    for name, inner in selector.items():
        if name in value:
            out[name] = select(value[name], inner)
    return out


def apply(body: Any, fields: str | None) -> Any:
    """The response body trimmed to `fields` (unchanged when no selector was sent)."""
    if not fields or body is None:
        return body
    return select(body, parse(fields))
