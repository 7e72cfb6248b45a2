"""Search results you can work with: totals per platform, *Previous* / *Next*, sort, *Export CSV*.

A search shown in Slack is a *session*: each page's starting point is kept in the
`search_pages` table (Google's page tokens only go forward, and a button's value cannot
carry the way back), so *Previous* shows the page before exactly as it was asked for.
A session is kept for a day. *Export CSV* runs `/device export` on the session's query.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from typing import Any

from bot.cards.search import PAGE_SIZE, Paging, results_page, search_text
from bot.directory import SearchPage
from bot.errors import ValidationError
from bot.search_query import SORT_WORDS, Sort, parse_sort
from bot.services import Services

log = logging.getLogger(__name__)

#: how long the pages of a search shown in Slack can be turned
SESSION_SECONDS = 86400.0
_EXPIRED = "That result page has expired; run the search again."


def _keep(
    svc: Services,
    session: str,
    query: str,
    sort: Sort | None,
    pages: Sequence[tuple[int, int, str | None]],
    *,
    prune: bool = False,
) -> None:
    """Remember where pages of a session start: (page number, results before it, cursor)."""
    sort_json = json.dumps([sort.order_by, sort.descending]) if sort else None
    now = svc.clock()
    with svc.store.transaction() as db:
        if prune:  # sessions older than a day go as new ones come
            db.execute("DELETE FROM search_pages WHERE created_at < ?", [now - SESSION_SECONDS])
        db.conn.executemany(
            "INSERT OR REPLACE INTO search_pages(session, page, start, query, sort, cursor,"
            " created_at) VALUES (?,?,?,?,?,?,?)",
            [(session, n, start, query, sort_json, cursor, now) for n, start, cursor in pages],
        )


def _page_row(svc: Services, session: str, page_no: int) -> dict[str, Any]:
    rows = list(
        svc.store.db().query(
            "SELECT * FROM search_pages WHERE session = ? AND page = ? AND created_at > ?",
            [session, page_no, svc.clock() - SESSION_SECONDS],
        )
    )
    if not rows:
        raise ValidationError(_EXPIRED)
    return rows[0]


def _sort_of(row: dict[str, Any]) -> Sort | None:
    if not row.get("sort"):
        return None
    order_by, descending = json.loads(row["sort"])
    return Sort(str(order_by), bool(descending))


def first_page(
    svc: Services, query: str, sort: Sort | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """A new search: its first page (text and blocks), remembered for its buttons."""
    session = secrets.token_urlsafe(9)
    page = svc.devices.search(query, page_size=PAGE_SIZE, sort=sort)
    pages: list[tuple[int, int, str | None]] = [(0, 0, None)]
    if page.next_cursor:
        pages.append((1, len(page.devices), page.next_cursor))
    _keep(svc, session, query, sort, pages, prune=True)
    return _render(session, 0, 0, query, page)


def _show(svc: Services, session: str, page_no: int) -> tuple[str, list[dict[str, Any]]]:
    """Page `page_no` of a remembered search, read again from where it starts."""
    row = _page_row(svc, session, page_no)
    sort = _sort_of(row)
    if row["cursor"] is None:
        page = svc.devices.search(row["query"], page_size=PAGE_SIZE, sort=sort)
    else:
        page = svc.devices.search(row["query"], cursor=row["cursor"], page_size=PAGE_SIZE)
    start = int(row["start"])
    if page.next_cursor:
        pages = [(page_no + 1, start + len(page.devices), page.next_cursor)]
        _keep(svc, session, row["query"], sort, pages)
    return _render(session, page_no, start, row["query"], page)


def _render(
    session: str, page_no: int, start: int, query: str, page: SearchPage
) -> tuple[str, list[dict[str, Any]]]:
    paging = Paging(
        previous=f"{session}|{page_no - 1}" if page_no > 0 else None,
        next=f"{session}|{page_no + 1}",
        export=session,
        sort=session,
    )
    return (
        search_text(query, page, start),
        results_page(query, page, start=start, paging=paging),
    )


def _parse(value: str) -> tuple[str, int]:
    session, _, page_no = (value or "").partition("|")
    if not session or not page_no.isdigit():
        raise ValidationError(_EXPIRED)
    return session, int(page_no)


def turn(svc: Services, value: str) -> tuple[str, list[dict[str, Any]]]:
    """*Previous* or *Next*: the page the button names, replacing the one shown."""
    session, page_no = _parse(value)
    return _show(svc, session, page_no)


def resort(svc: Services, value: str) -> tuple[str, list[dict[str, Any]]]:
    """The sort menu: the same search from its first page, in the order chosen."""
    session, order_by, direction = ((value or "").split("|") + ["", "", ""])[:3]
    if order_by not in SORT_WORDS.values() or direction not in ("a", "d"):
        raise ValidationError(_EXPIRED)
    query = _page_row(svc, session, 0)["query"]
    return first_page(svc, query, Sort(order_by, direction == "d"))


def export_query(svc: Services, session: str) -> str:
    """What *Export CSV* exports: the session's query, with its sort words left out."""
    query = str(_page_row(svc, session, 0)["query"])
    return parse_sort(query)[0]
