"""What an action is: its form's fields, how typed values are parsed, what it sends, who
must approve it, which devices it fits, and the words of its outcome.

`ActionSpec` and `FieldSpec` describe one `/device` action; the table of every action is
`bot/catalog.py`, the checks of particular fields `bot/params.py`, the capability rules
`bot/rules.py`. What each *kind* of action does at Google (a status change, a command, a
move…) is `bot/execution.py`'s table, keyed by `Kind`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from bot.blocks import esc
from bot.errors import ValidationError

if TYPE_CHECKING:
    from bot.catalog.rules import Rule
    from bot.devices import Device

Kind = Literal["status", "chrome_command", "android_command", "patch", "move", "lost_case"]
FieldKind = Literal[
    "text", "multiline", "select", "checkboxes", "radio", "password", "number", "org_unit"
]

_OU = re.compile(r"^/[^\n]{0,500}$")


@dataclass(frozen=True)
class FieldSpec:
    """One input of an action's modal."""

    name: str
    label: str
    kind: FieldKind = "text"
    optional: bool = False
    options: tuple[str, ...] = ()
    hint: str | None = None
    placeholder: str | None = None
    max_length: int | None = None
    secret: bool = False
    initial: str | None = None


Params = dict[str, Any]


@dataclass(frozen=True)
class LostCase:
    """What a succeeded action means for the device's lost case (bot/lost.py)."""

    #: True: the device is reported lost (a case opens); False: its open case closes
    opens: bool
    #: how a closed case reads in the lost-devices thread ("lost mode stopped")
    closes: str = ""
    #: only when the parameters say so (a disable opens a case only for lost_or_stolen)
    when: Callable[[Params], bool] | None = None

    def applies(self, params: Params) -> bool:
        return self.when is None or self.when(params)


@dataclass(frozen=True, eq=False)  # compared and hashed as itself: its words are a dict
class CommandStatus:
    """An Android command's own status field in the Command Google returns, in words.

    `words` gives each status its line; a status in `ok` means the command did what was
    asked (its first one is what the action's own done words already say). `more` adds
    lines read from the status object (EIDs, internal error details); `read` replaces the
    whole reading for a status with per-item results (CLEAR_APP_DATA's per-app outcome).
    """

    key: str  # the Command field, e.g. "esimStatus"
    words: dict[str, str] = field(default_factory=dict)
    ok: tuple[str, ...] = ("SUCCESS",)
    detail: str = ""  # the key of the request's detail that keeps the status ("lostMode")
    other: str = ""  # how another status reads: "eSIM" → "eSIM: ERROR_X."
    #: what the person on the device is asked while the status is PENDING_USER_ACTION
    waiting: str = ""
    more: Callable[[dict[str, Any]], list[str]] | None = None
    #: (worked, lines, detail) from the status object, instead of the single-status reading
    read: Callable[[dict[str, Any]], tuple[bool, list[str], dict[str, Any]]] | None = None

    @property
    def said(self) -> str | None:
        """The status line the action's done words already say."""
        return self.words.get(self.ok[0]) if self.ok else None


@dataclass(frozen=True)
class Fit:
    """How an action adapts to one device (bot/fitting.py has the functions)."""

    #: the inputs asked on this device (only the flags and fields that apply there)
    fields: Callable[[tuple[FieldSpec, ...], Device], tuple[FieldSpec, ...]] | None = None
    #: what the action does to this very device, in words (mrkdwn), or None
    consequence: Callable[[Device], str | None] | None = None
    #: field values preset from the device's ownership
    initial: Callable[[str | None], Params] | None = None
    #: refuse parameters Google rejects, or that do nothing, on this device
    check: Callable[[Params, str | None, Device | None], None] | None = None


@dataclass(frozen=True)
class ActionSpec:
    """An action on a device."""

    name: str  # the /device sub-command
    platform: Literal["chrome", "android"]
    kind: Kind
    #: Directory status action, Chrome commandType or Android Command type, checked against
    #: the discovery documents (bot/catalog.py); "" for an action without a Google call
    google: str
    label: str
    summary: str
    example: str
    fields: tuple[FieldSpec, ...] = ()
    states: tuple[str, ...] = ()  # device states in which the action is legal (empty: any)
    destructive: bool = False
    #: offered by `/device bulk` (a list or CSV, one approval for the batch)
    bulk: bool = False
    #: devices one plain approval of a bulk run covers (BULK_CAPS overrides); None: no cap
    bulk_cap: int | None = None
    validate: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: builds the body Google wants from validated params (command body or status params)
    build: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda p: {})
    #: what follows the sub-command in its usage line
    args: str = "<device>"
    #: a second person approves it unless APPROVAL_REQUIRED says otherwise (per name: an
    #: action on both platforms says the same on both)
    approval: bool = False
    #: why it cannot run on a device, beyond `states` (bot/catalog/rules.py): every action
    #: says so, `()` when it fits every device in its states (None: not said yet, which
    #: tests/test_catalog.py refuses)
    rules: tuple[Rule, ...] | None = None
    fit: Fit = Fit()
    #: what a succeeded request did, "{target} is locked." ({target}: the device(s) in
    #: words; {<param>}: a parameter, escaped)
    done: str = ""
    #: other done words for some parameters or devices (`done` when it answers None);
    #: gets the params and the stored summary of the (first) device
    done_as: Callable[[Params, dict[str, Any]], str | None] | None = None
    #: a request, as the end of "… asked to …" ("lock it"); "" reads "<label> it"
    asks: str = ""
    #: a succeeded request in a device's history ("locked")
    past: str = ""
    #: the command's result is files on the device, fetched and shared (screenshot, logs)
    files: bool = False
    #: the command's own status field in words (Android)
    status: CommandStatus | None = None
    lost: LostCase | None = None

    @property
    def usage(self) -> str:
        return f"/device {self.name} {self.args}"

    def parse(self, values: dict[str, Any]) -> dict[str, Any]:
        """Check the modal's values; raises ValidationError(field=...) naming the field."""
        params: dict[str, Any] = {}
        for spec in self.fields:
            value = values.get(spec.name)
            if isinstance(value, str):
                value = value.strip()
            if value in (None, "", []):
                if not spec.optional:
                    raise ValidationError(f"{spec.label} is required.", field=spec.name)
                continue
            if spec.max_length and isinstance(value, str) and len(value) > spec.max_length:
                raise ValidationError(
                    f"{spec.label} must be at most {spec.max_length} characters ({len(value)} given).",
                    field=spec.name,
                )
            if spec.kind in ("select", "radio") and value not in spec.options:
                raise ValidationError(
                    f"Choose one of the listed {spec.label.lower()} values.", field=spec.name
                )
            if spec.kind == "checkboxes":
                value = [v for v in value if v in spec.options]
            params[spec.name] = value
        return self.validate(params) if self.validate else params

    def secret_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.secret)


def validate_ou(path: str) -> str:
    """An organisational unit path such as /Sales/EMEA."""
    path = path.strip()
    if not _OU.match(path) or "//" in path:
        raise ValidationError(
            f"`{esc(path)}` is not an organisational unit path like /Sales/EMEA.", field="ou"
        )
    return path.rstrip("/") or "/"


def option_label(value: str) -> str:
    """How an option value reads in a modal and on an approval card: `lost_or_stolen` → `Lost or stolen`."""
    return value.replace("_", " ").capitalize()
