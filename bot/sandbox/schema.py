"""Request validation against Google's discovery documents (the ones googleapiclient ships).

Every request the sandbox serves is matched to its discovery method (HTTP method + path
template); its query parameters and JSON body are then checked the way Google's
proto-JSON front end checks them, before any handler runs:

- a body field the schema does not name → `Invalid JSON payload received. Unknown name
  "x" at 'command': Cannot find field.`;
- a value of the wrong JSON type → `Invalid value at 'command.start_lost_mode_params.
  lost_email_address' (TYPE_STRING), Starting an object on a scalar field` (snake_case
  path, as Google writes it);
- an enum value that is not a member of the enum (body and query, both APIs);
- int64 / uint64 as a decimal string (or number), int32, double, bool, bytes (base64),
  google-duration (`"600s"`, `"1.5s"`; never `"1e+06s"`), google-datetime (RFC 3339);
- arrays, maps (`additionalProperties`), `$ref`, `any`;
- a query parameter the method does not take → `Cannot bind query parameter`.

Every problem found is reported, one per line, in a single 400 INVALID_ARGUMENT whose
`details` carry a `google.rpc.BadRequest` with one field violation each. Where this
wording or strictness is our reading rather than Google's documented behaviour, it is
listed in `bot/sandbox/ASSUMPTIONS.md`.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from bot.google.discovery import AMAPI, DIRECTORY, REPORTS, Doc, document, methods
from bot.sandbox.api import ApiError

_DURATION = re.compile(r"^-?\d+(\.\d{1,9})?s$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_INT = re.compile(r"^-?\d+$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")

#: discovery (type, format) → the proto type name Google writes in "Invalid value" messages
_SCALAR_NAMES: dict[tuple[Any, Any], str] = {
    ("string", None): "TYPE_STRING",
    ("string", "int64"): "TYPE_INT64",
    ("string", "uint64"): "TYPE_UINT64",
    ("string", "byte"): "TYPE_BYTES",
    ("string", "google-duration"): "type.googleapis.com/google.protobuf.Duration",
    ("string", "google-datetime"): "type.googleapis.com/google.protobuf.Timestamp",
    ("string", "google-fieldmask"): "type.googleapis.com/google.protobuf.FieldMask",
    ("string", "date-time"): "TYPE_STRING",
    ("integer", "int32"): "TYPE_INT32",
    ("integer", "uint32"): "TYPE_UINT32",
    ("integer", None): "TYPE_INT32",
    ("number", "double"): "TYPE_DOUBLE",
    ("number", "float"): "TYPE_FLOAT",
    ("number", None): "TYPE_DOUBLE",
    ("boolean", None): "TYPE_BOOL",
}


def snake(name: str) -> str:
    """`startLostModeParams` → `start_lost_mode_params` (the proto field name)."""
    return _CAMEL.sub("_", name).lower()


@dataclass(frozen=True)
class Violation:
    """One problem with a request: where (snake_case path) and Google's words for it."""

    field: str
    message: str


@dataclass(frozen=True)
class Route:
    """One discovery method the sandbox may be asked for."""

    api: tuple[str, str]
    name: str  # dotted, e.g. enterprises.devices.issueCommand
    http_method: str
    pattern: re.Pattern[str]
    literal: int  # characters of fixed text in the template (more = more specific)
    spec: Doc

    @property
    def body_root(self) -> str:
        """The proto field the body binds to ('' when the body is the request message)."""
        ref = (self.spec.get("request") or {}).get("$ref", "")
        return "" if not ref or ref.endswith("Request") else snake(ref)


def _template_regex(spec: Doc) -> tuple[re.Pattern[str], int]:
    params = spec.get("parameters", {})
    out: list[str] = []
    literal = 0
    pos = 0
    path: str = spec["path"]
    for m in re.finditer(r"\{(\+?)([^}]+)\}", path):
        fixed = path[pos : m.start()]
        out.append(re.escape(fixed))
        literal += len(fixed)
        plus, name = m.group(1), m.group(2)
        pat = params.get(name, {}).get("pattern")
        if plus and pat:
            inner = pat.removeprefix("^").removesuffix("$")
            literal += len(re.sub(r"\[\^/\]\+", "", inner))
        else:
            inner = "[^/]+"
        out.append(f"(?P<{name}>{inner})")
        pos = m.end()
    out.append(re.escape(path[pos:]))
    literal += len(path) - pos
    return re.compile("^" + "".join(out) + "$"), literal


@functools.cache
def routes() -> tuple[Route, ...]:
    """Every method of the discovery documents served, most specific template first."""
    found: list[Route] = []
    for api in (AMAPI, DIRECTORY, REPORTS):
        for name, spec in methods(api).items():
            pattern, literal = _template_regex(spec)
            found.append(Route(api, name, spec["httpMethod"], pattern, literal, spec))
    found.sort(key=lambda r: -r.literal)
    return tuple(found)


@functools.cache
def _routes_for(http_method: str) -> tuple[Route, ...]:
    return tuple(r for r in routes() if r.http_method == http_method)


def match(http_method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The discovery method serving `http_method path` (path without the leading '/')."""
    for route in _routes_for(http_method):
        m = route.pattern.match(path)
        if m:
            return route, {k: unquote(v) for k, v in m.groupdict().items()}
    return None


# ------------------------------------------------------------------------------ values


def _render(value: Any) -> str:
    if isinstance(value, dict):
        return "Starting an object on a scalar field"
    return json.dumps(value)


def _type_name(prop: Doc) -> str:
    if "enum" in prop:
        return "TYPE_ENUM"
    return _SCALAR_NAMES.get((prop.get("type"), prop.get("format")), "TYPE_STRING")


#: proto packages, for the type URL Google names a message by in its errors
_PACKAGES = {AMAPI: "google.android.devicemanagement.v1"}


class _Checker:
    """Walks one JSON value against one discovery document's schemas."""

    def __init__(self, api: tuple[str, str]) -> None:
        self.doc = document(api)
        self.package = _PACKAGES.get(api)
        self.errors: list[Violation] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append(Violation(path, message))

    def invalid(self, path: str, prop: Doc, value: Any, key: str = "") -> None:
        tail = _render(value)
        fmt = prop.get("format")
        if isinstance(value, str) and fmt == "google-duration":
            tail = f"Field '{key}', " + (
                "Invalid duration format, failed to parse seconds"
                if value.endswith("s")
                else "Illegal duration format; duration must end with 's'"
            )
        elif isinstance(value, str) and fmt == "google-datetime":
            tail = (
                f"Field '{key}', Illegal timestamp format; timestamps must end with 'Z' "
                "or have a valid timezone offset."
            )
        self.add(path, f"Invalid value at '{path}' ({_type_name(prop)}), {tail}")

    def value(self, prop: Doc, value: Any, path: str, key: str = "") -> None:
        if value is None:  # proto JSON: null means "the default"
            return
        if "$ref" in prop:
            self.message(prop["$ref"], self.doc["schemas"][prop["$ref"]], value, path)
            return
        kind = prop.get("type")
        if kind == "any":
            return
        if kind == "object":
            self.object(prop, value, path, prop.get("id", ""))
            return
        if kind == "array":
            items = prop.get("items", {})
            if not isinstance(value, list):
                self.invalid(path, items, value, key)
                return
            for i, item in enumerate(value):
                if item is None:
                    self.invalid(f"{path}[{i}]", items, item, key)
                else:
                    self.value(items, item, f"{path}[{i}]", key)
            return
        self.scalar(prop, value, path, key)

    def message(self, name: str, schema: Doc, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            kind = f"type.googleapis.com/{self.package}.{name}" if self.package else "TYPE_MESSAGE"
            self.add(path, f"Invalid value at '{path}' ({kind}), {json.dumps(value)}")
            return
        self.object(schema, value, path, name)

    def object(self, schema: Doc, value: Any, path: str, name: str) -> None:
        if not isinstance(value, dict):
            self.add(path, f"Invalid value at '{path}' (TYPE_MESSAGE), {json.dumps(value)}")
            return
        props: dict[str, Doc] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        if not props and extra is None:
            return  # a free-form object (google.protobuf.Struct)
        where = f" at '{path}'" if path else ""
        for key, item in value.items():
            prop = props.get(key, extra)
            if prop is None:
                self.add(
                    path,
                    f'Invalid JSON payload received. Unknown name "{key}"{where}: '
                    "Cannot find field.",
                )
            elif isinstance(item, list) and prop.get("type") not in ("array", "any"):
                self.add(
                    path,
                    f'Invalid JSON payload received. Unknown name "{key}"{where}: '
                    "Proto field is not repeating, cannot start list.",
                )
            elif key in props:
                self.value(prop, item, f"{path}.{snake(key)}" if path else snake(key), key)
            else:
                self.value(prop, item, f"{path}[{json.dumps(key)}]", key)

    def scalar(self, prop: Doc, value: Any, path: str, key: str) -> None:
        kind, fmt = prop.get("type"), prop.get("format")
        ok: bool
        if kind == "boolean":
            ok = isinstance(value, bool)
        elif kind == "integer":
            ok = (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, float) and value.is_integer()
            )
            ok = ok or (isinstance(value, str) and bool(_INT.match(value)))
        elif kind == "number":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if isinstance(value, str):
                try:
                    float(value)
                    ok = True
                except ValueError:
                    ok = False
        elif fmt in ("int64", "uint64"):
            ok = (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, str) and bool(_INT.match(value))
            )
            if ok and fmt == "uint64" and int(value) < 0:
                ok = False
        elif not isinstance(value, str):
            ok = False
        elif "enum" in prop:
            ok = value in prop["enum"]
        elif fmt == "google-duration":
            ok = bool(_DURATION.match(value))
        elif fmt == "google-datetime":
            ok = bool(_DATETIME.match(value))
        elif fmt == "byte":
            ok = bool(_BASE64.match(value))
        else:
            ok = True
        if not ok:
            self.invalid(path, prop, value, key)


# ------------------------------------------------------------------------------ requests


def check(api: tuple[str, str], name: str, value: Any, root: str = "") -> list[Violation]:
    """Problems in `value` read as schema `name` of `api`, paths starting at `root`."""
    checker = _Checker(api)
    checker.message(name, checker.doc["schemas"][name], value, root)
    return checker.errors


def check_body(route: Route, body: Any) -> list[Violation]:
    """Problems in a parsed JSON request body for `route` (empty when it fits)."""
    ref = (route.spec.get("request") or {}).get("$ref")
    return check(route.api, ref, body, route.body_root) if ref else []


def _param_ok(prop: Doc, raw: str, *, case_insensitive: bool) -> bool:
    kind, fmt = prop.get("type"), prop.get("format")
    if "enum" in prop:
        if case_insensitive:
            return raw.upper() in (v.upper() for v in prop["enum"])
        return raw in prop["enum"]
    if kind == "integer" or fmt in ("int64", "uint64"):
        return bool(_INT.match(raw.strip()))
    if kind == "boolean":
        return raw.lower() in ("true", "false", "1", "0")
    return True


def check_params(
    route: Route, query: dict[str, list[str]], path_params: dict[str, str]
) -> list[Violation]:
    """Problems in the query (unknown name, wrong type, enum) and typed path parameters."""
    doc = document(route.api)
    spec_params: dict[str, Doc] = route.spec.get("parameters", {})
    system: dict[str, Doc] = doc.get("parameters", {})
    # the Directory guide writes `projection=full`: its query enums are case-insensitive
    loose = route.api == DIRECTORY
    errors: list[Violation] = []
    for name, values in query.items():
        prop = spec_params.get(name) or system.get(name)
        if prop is None or prop.get("location") != "query":
            errors.append(
                Violation(
                    name,
                    f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query '
                    f"parameter. Field '{name}' could not be found in request message.",
                )
            )
            continue
        for raw in values:
            if raw == "" and "enum" not in prop:
                continue
            if not _param_ok(prop, raw, case_insensitive=loose):
                errors.append(
                    Violation(
                        snake(name),
                        f"Invalid value at '{snake(name)}' ({_type_name(prop)}), {json.dumps(raw)}",
                    )
                )
    for name, raw in path_params.items():
        prop = spec_params.get(name, {})
        if not _param_ok(prop, raw, case_insensitive=False):
            errors.append(
                Violation(
                    snake(name),
                    f"Invalid value at '{snake(name)}' ({_type_name(prop)}), {json.dumps(raw)}",
                )
            )
    return errors


def parse_body(raw: bytes) -> Any:
    """The JSON body (None when empty); ApiError 400 with Google's words when it is not JSON."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"Invalid JSON payload received. {exc.msg}.") from None
    except ValueError:  # not UTF-8
        raise ApiError(400, "Invalid JSON payload received.") from None


def validate(http_method: str, path: str, query: dict[str, list[str]], body: bytes) -> Any:
    """Check one request against its discovery method; raise ApiError 400 listing every problem.

    Returns the parsed JSON body (None when empty or when the path is no discovery method,
    e.g. the sandbox's own `sandbox/…` routes, which the handlers answer or refuse).
    """
    found = match(http_method, path)
    if found is None:
        return None
    route, path_params = found
    errors = check_params(route, query, path_params)
    parsed = parse_body(body) if route.spec.get("request") else None
    if parsed is not None:
        errors += check_body(route, parsed)
    if errors:
        raise ApiError(
            400,
            "\n".join(e.message for e in errors),
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [
                        {"field": e.field, "description": e.message} for e in errors
                    ],
                }
            ],
        )
    return parsed
