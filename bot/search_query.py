"""What a search asks: `sort:`/`order:`, `platform:`/`status:`, a person's queries, the
Android index's SQL for a Chrome-style query, and the cursor a *Next* button carries."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from bot.blocks import esc
from bot.devices import ANDROID, CHROME
from bot.errors import ValidationError
from bot.google import discovery

#: the longest search a person may type
MAX_QUERY = 200

#: the Directory API's chromeosdevices.list `orderBy` values, with the words people type
SORT_WORDS: dict[str, str] = {
    "lastsync": "lastSync",
    "last-sync": "lastSync",
    "sync": "lastSync",
    "serial": "serialNumber",
    "serialnumber": "serialNumber",
    "status": "status",
    "user": "annotatedUser",
    "annotateduser": "annotatedUser",
    "location": "annotatedLocation",
    "annotatedlocation": "annotatedLocation",
    "notes": "notes",
}
SORT_LABELS: dict[str, str] = {
    "lastSync": "last sync",
    "serialNumber": "serial",
    "status": "status",
    "annotatedUser": "user",
    "annotatedLocation": "location",
    "notes": "notes",
}


@dataclass(frozen=True)
class Sort:
    """A search's order: a Directory `orderBy` value and its direction."""

    order_by: str
    descending: bool = False

    @property
    def sort_order(self) -> str:
        return "DESCENDING" if self.descending else "ASCENDING"

    def describe(self) -> str:
        return f"sorted by {SORT_LABELS.get(self.order_by, self.order_by)}, " + (
            "descending" if self.descending else "ascending"
        )


def parse_sort(text: str) -> tuple[str, Sort | None]:
    """Split `sort:<field>` and `order:asc|desc` out of a search; returns (query, sort).

    `sort:lastsync`, `sort:serial`, `sort:status`, `sort:user`, `sort:location`,
    `sort:notes` (or the Directory API's own names, e.g. `sort:annotatedUser`).
    """
    words, order_by, direction = [], None, None
    for word in text.split():
        key, sep, value = word.partition(":")
        if sep and key.lower() == "sort":
            order_by = SORT_WORDS.get(value.lower())
            if order_by is None:
                raise ValidationError(
                    f"Cannot sort by `{esc(value[:40])}`; use one of: "
                    + ", ".join(
                        f"`sort:{w}`"
                        for w in ("lastsync", "serial", "status", "user", "location", "notes")
                    )
                )
        elif sep and key.lower() == "order":
            direction = value.lower()
            if direction not in ("asc", "desc", "ascending", "descending"):
                raise ValidationError("`order:` is `order:asc` or `order:desc`.")
        else:
            words.append(word)
    if direction and order_by is None:
        raise ValidationError(
            "`order:` goes with a `sort:<field>` (e.g. `sort:lastsync order:desc`)."
        )
    sort = Sort(order_by, (direction or "").startswith("desc")) if order_by else None
    return " ".join(words), sort


def _encode_cursor(
    query: str, chrome_token: str | None, android_offset: int | None, sort: Sort | None = None
) -> str:
    fields: dict[str, Any] = {"q": query, "c": chrome_token, "a": android_offset}
    if sort is not None:
        fields["o"] = sort.order_by
        fields["d"] = int(sort.descending)
    data = json.dumps(fields, separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode()).decode()


def _cursor_data(cursor: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(data, dict) or not isinstance(data["q"], str):
            raise ValueError(cursor)
        return data
    except (ValueError, KeyError, TypeError):
        raise ValidationError("That result page has expired; run the search again.") from None


def decode_cursor(cursor: str) -> tuple[str, str | None, int | None]:
    """Inverse of the cursor carried by the *Next* button."""
    data = _cursor_data(cursor)
    return str(data["q"]), data.get("c"), data.get("a")


def decode_sort(cursor: str) -> Sort | None:
    """The order a *Next* cursor continues in (None: the default order)."""
    order_by = _cursor_data(cursor).get("o")
    if order_by not in SORT_LABELS:
        return None
    return Sort(str(order_by), bool(_cursor_data(cursor).get("d")))


_ANDROID_OPERATORS = {"user": "user", "recent_user": "user", "id": "serial", "status": "state"}
#: Chrome device statuses (ChromeOsDevice.status in the Directory API reference; the
#: discovery document gives no enum, so a status not listed here is still sent to Google)
CHROME_STATUSES = frozenset(
    {
        "ACTIVE",
        "DELINQUENT",
        "DEPROVISIONED",
        "DISABLED",
        "INACTIVE",
        "PRE_PROVISIONED",
        "PROVISIONED",
        "RETURN_ARRIVED",
        "RETURN_REQUESTED",
        "SHIPPED",
        "UNKNOWN",
    }
)
#: Android device states (Device.state in androidmanagement v1's discovery document)
ANDROID_STATES = frozenset(discovery.enum(discovery.AMAPI, "Device.state"))
_PLATFORM_WORDS = {"chrome": CHROME, "chromeos": CHROME, "android": ANDROID}


@dataclass(frozen=True)
class QueryPlan:
    """What a search asks of each platform: the Directory query, the index's SQL, or None
    when the platform is left out, and the notes that say why."""

    chrome: str | None
    android: tuple[str, list[Any]] | None
    notes: tuple[str, ...] = ()


def plan_query(query: str) -> QueryPlan:
    """Split a search into each platform's part.

    `platform:chrome` / `platform:android` keeps one platform; `status:` applies to both
    where the state exists on both (ACTIVE, DISABLED) and to the one that has it otherwise;
    a Chrome-only operator (`location:`, `asset_id:`, …) leaves Android out. Whenever a
    platform is left out by anything but `platform:`, a note says so.
    """
    terms = query.split()
    wanted = {CHROME, ANDROID}
    kept: list[str] = []
    notes: list[str] = []
    chrome_ok, android_ok = True, True
    for term in terms:
        op, sep, value = term.partition(":")
        op = op.lower()
        if sep and op == "platform":
            platform = _PLATFORM_WORDS.get(value.lower())
            if platform is None:
                raise ValidationError(
                    f"`{esc(term[:60])}`: the platform is `platform:chrome` or `platform:android`."
                )
            wanted &= {platform}
            continue
        if sep and op == "status" and value:
            state = value.upper()
            # Google knows its own statuses: a value that is no Android state goes to Chrome
            on_android = state in ANDROID_STATES
            on_chrome = state in CHROME_STATUSES or not on_android
            if not on_android:
                android_ok = False
                notes.append(
                    f"`status:{state}` "
                    + (
                        "exists on Chrome OS only"
                        if state in CHROME_STATUSES
                        else "is no Android state"
                    )
                    + ": Android devices were not searched."
                )
            if not on_chrome:
                chrome_ok = False
                notes.append(
                    f"`status:{state}` exists on Android only: Chrome OS devices were not searched."
                )
            kept.append(f"status:{state}")
            continue
        kept.append(term)
    rest = " ".join(kept)
    android = android_filter(rest) if android_ok and ANDROID in wanted else None
    if android is None and android_ok and ANDROID in wanted:
        ops = sorted(
            {
                t.partition(":")[0].lower()
                for t in kept
                if ":" in t and t.partition(":")[0].lower() not in _ANDROID_OPERATORS
            }
        )
        named = ", ".join(f"`{o}:`" for o in ops) or "This filter"
        notes.append(f"{named} exists on Chrome OS only: Android devices were not searched.")
    chrome = rest if chrome_ok and CHROME in wanted else None
    if chrome is None and android is None and not notes:
        notes.append("No platform is left to search.")
    return QueryPlan(chrome, android, tuple(dict.fromkeys(notes)))


_EMAIL = re.compile(r"^[^@\s:]+@[^@\s]+\.[^@\s]+$")
#: Chrome devices read per query of a person search (a person has a handful)
PERSON_CAP = 600


def person_queries(query: str) -> list[str] | None:
    """The Chrome queries whose union finds a person's devices, or None if `query` names none.

    `user:x` (or a bare email `x`) matches the annotated user only; `recent_user:x` the
    people who signed in (directory-chrome-devices-guide: "user:" filters on annotatedUser).
    Other terms of the query are kept in each.
    """
    terms = query.split()
    for i, term in enumerate(terms):
        op, sep, value = term.partition(":")
        if sep and op.lower() == "user" and value:
            variants = [f"user:{value}", f"recent_user:{value}"]
        elif _EMAIL.match(term):
            variants = [term, f"user:{term}", f"recent_user:{term}"]
        else:
            continue
        return [" ".join([*terms[:i], v, *terms[i + 1 :]]) for v in variants]
    return None


def android_filter(query: str) -> tuple[str, list[Any]] | None:
    """Translate the Chrome-style query into SQL on the Android index (None: no Android match)."""
    clauses: list[str] = []
    args: list[Any] = []
    for term in query.split():
        if ":" in term:
            op, _, value = term.partition(":")
            column = _ANDROID_OPERATORS.get(op.lower())
            if column is None or not value:
                return None  # an operator Android devices do not have (location:, asset_id:, ...)
            if column == "state":
                clauses.append("state = ?")
                args.append(value.upper())
                continue
            clauses.append(f"{column} LIKE ? ESCAPE '\\'")
            args.append(escape_like(value) + ("%" if column == "serial" else ""))
            if column == "user":
                args[-1] = "%" + escape_like(value) + "%"
        else:
            clauses.append(
                "(serial LIKE ? ESCAPE '\\' OR user LIKE ? ESCAPE '\\' OR model LIKE ? ESCAPE '\\')"
            )
            pattern = "%" + escape_like(term) + "%"
            args.extend([pattern, pattern, pattern])
    return (" AND ".join(clauses) or "1 = 1", args)


def escape_like(value: str) -> str:
    """`value` as a LIKE pattern that matches it literally (with `ESCAPE '\\'`)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
