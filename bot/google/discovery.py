"""Google's discovery documents, as bundled with googleapiclient: the one source of names.

Command types, enums and parameter names used by the bot (`bot.google`) and by the sandbox
(`bot.sandbox`) are read from here instead of being listed by hand::

    enum(AMAPI, "Command.type")                      # ('LOCK', 'RESET_PASSWORD', ...)
    enum(DIRECTORY, "chromeosdevices.list?orderBy")  # a method parameter's enum
    method(AMAPI, "enterprises.devices.issueCommand")

Values ending in `_UNSPECIFIED` (proto's zero value) are left out unless
`unspecified=True`.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from googleapiclient.discovery_cache import get_static_doc

AMAPI = ("androidmanagement", "v1")
DIRECTORY = ("admin", "directory_v1")
REPORTS = ("admin", "reports_v1")

Doc = dict[str, Any]


@functools.cache
def document(api: tuple[str, str]) -> Doc:
    """The discovery document bundled with googleapiclient for (name, version)."""
    text = get_static_doc(*api)
    if not text:
        raise LookupError(f"googleapiclient ships no discovery document for {api[0]} {api[1]}")
    doc: Doc = json.loads(text)
    return doc


def schema(api: tuple[str, str], name: str) -> Doc:
    """One schema (`Command`, `ChromeOsDevice`, ...) of the document."""
    schemas: dict[str, Doc] = document(api)["schemas"]
    return schemas[name]


def method(api: tuple[str, str], dotted: str) -> Doc:
    """A method by its dotted resource path, e.g. `enterprises.devices.issueCommand`."""
    node: Doc = document(api)
    *resources, name = dotted.split(".")
    for r in resources:
        node = node["resources"][r]
    found: Doc = node["methods"][name]
    return found


def methods(api: tuple[str, str]) -> dict[str, Doc]:
    """Every method of the document by dotted name (`customer.devices.chromeos.issueCommand`)."""
    out: dict[str, Doc] = {}

    def walk(node: Doc, prefix: str) -> None:
        for name, m in node.get("methods", {}).items():
            out[prefix + name] = m
        for name, child in node.get("resources", {}).items():
            walk(child, f"{prefix}{name}.")

    walk(document(api), "")
    return out


def _enum_holder(api: tuple[str, str], where: str) -> Doc:
    """The node holding the enum of `Schema.field` (array items included) or
    `resource.method?param`."""
    if "?" in where:
        dotted, param = where.split("?", 1)
        prop = method(api, dotted)["parameters"][param]
    else:
        name, field = where.split(".", 1)
        prop = schema(api, name)["properties"][field]
    return prop.get("items", prop)


def enum(api: tuple[str, str], where: str, *, unspecified: bool = False) -> tuple[str, ...]:
    """The enum values of `Schema.field` (array items included) or `resource.method?param`."""
    prop = _enum_holder(api, where)
    values: list[str] = prop["enum"]
    if unspecified:
        return tuple(values)
    return tuple(v for v in values if not v.endswith("_UNSPECIFIED"))


def described(api: tuple[str, str], where: str) -> dict[str, str]:
    """The enum values of `where` (as `enum`) with the document's description of each."""
    prop = _enum_holder(api, where)
    texts = dict(zip(prop["enum"], prop.get("enumDescriptions") or (), strict=False))
    return {v: texts.get(v, "") for v in enum(api, where)}


def fields(api: tuple[str, str], name: str) -> tuple[str, ...]:
    """The property names of a schema."""
    return tuple(schema(api, name)["properties"])


def command_params() -> dict[str, str]:
    """AMAPI Command's `…Params` fields → the command type each belongs to.

    Read from each field's description ("Parameters for the CLEAR_APP_DATA command …").
    """
    types = set(enum(AMAPI, "Command.type"))
    out: dict[str, str] = {}
    for name, prop in schema(AMAPI, "Command")["properties"].items():
        if not name.endswith("Params"):
            continue
        words = re.findall(r"[A-Z][A-Z_]+", prop.get("description", ""))
        owner = next((w for w in words if w in types), None)
        if owner is None:
            raise LookupError(f"Command.{name}: no command type in its description")
        out[name] = owner
    return out
