"""The App Home tab: a person's own open requests, the requests waiting for them, open lost
cases, a search button and a small fleet summary.

Published (`views.publish`) when the person opens the tab, and again whenever something on
it changes — a request submitted, decided or finished, a lost case opened, checked in or
resolved — never on a timer. Changes arrive through `Services.notify`; a single worker thread
republishes each affected person's tab from the database, so the last publish always shows
the newest state and a burst of changes costs one publish per person.

The buttons are the ones of the approval and requester messages (same action ids, same
handlers in bot/approvals.py): the two-person rule and exactly-once hold whatever surface
was clicked.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from typing import Any

from slack_bolt import Ack

from bot import catalog, ids, request_views, requests
from bot.blocks import (
    Block,
    actions,
    button,
    confirm_dialog,
    context,
    divider,
    esc,
    header,
    section,
)
from bot.cards.search import search_modal
from bot.changes import Change, LostCaseChanged, RequestFinished
from bot.commands import Commands
from bot.requests import RequestState
from bot.roles import MembershipUnknown, Role
from bot.services import Services

log = logging.getLogger(__name__)

#: the publisher's thread ends after this long without work (the next change starts another)
IDLE_SECONDS = 5.0
#: rows shown per list; the rest is counted ("…and 4 more")
LIST_LIMIT = 10
#: request states whose arrival or departure changes what approvers see (the pending list)
PENDING_CHANGES = frozenset(
    {
        RequestState.PENDING,
        RequestState.APPROVED,
        RequestState.DENIED,
        RequestState.CANCELLED,
        RequestState.EXPIRED,
    }
)


# ---- Block Kit -------------------------------------------------------------------------------


def _request_line(row: dict[str, Any]) -> str:
    """One request in words: action, devices, who, state."""
    try:
        label = catalog.action_for(row["action"], row["platform"]).label
    except Exception:  # an action renamed since: the raw name still says what it was
        label = row["action"]
    devices = json.loads(row["devices"])
    names = [str(d.get("serial") or d["id"].rsplit("/", 1)[-1]) for d in devices[:3]]
    target = ", ".join(esc(n) for n in names) + (
        f" and {len(devices) - 3} more" if len(devices) > 3 else ""
    )
    state = request_views.STATE_WORDS.get(row["state"], esc(row["state"]))
    reason = f"\n_{esc(row['reason'][:200])}_" if row.get("reason") else ""
    return f"*{esc(label)}* on {target} · `{row['id']}`\n{state}{reason}"


def _more(total: int, shown: int, where: str) -> list[Block]:
    return [context(f"…and {total - shown} more — {where}")] if total > shown else []


def home_view(
    user: str,
    role: Role,
    mine: list[dict[str, Any]],
    mine_total: int,
    waiting: list[dict[str, Any]] | None,
    waiting_total: int,
    lost_cases: list[dict[str, Any]],
    lost_total: int,
    fleet: dict[str, Any],
) -> dict[str, Any]:
    """The Home tab of `user` (waiting is None for someone who is not an approver)."""
    blocks: list[Block] = [header("device-bot")]
    if role is Role.NONE:
        blocks.append(
            section(
                "You are not a device operator or approver, so there is nothing to show here."
                " Ask your Google Workspace admins to add you to DEVICE_OPERATORS."
            )
        )
        return {"type": "home", "blocks": blocks}
    blocks.append(
        actions(
            [
                button("Search devices", ids.ActionId.HOME_SEARCH, "search", style="primary"),
                button("Refresh", ids.ActionId.HOME_REFRESH, "refresh"),
            ],
            block_id="home-tools",
        )
    )
    blocks.append(context(_fleet_line(fleet)))
    if waiting is not None:
        blocks += [divider(), header(f"Waiting for your approval ({waiting_total})")]
        if not waiting:
            blocks.append(context("Nothing is waiting for you."))
        for row in waiting:
            blocks.append(
                section(
                    _request_line(row) + f"\nRequested by <@{row['requester']}>",
                    block_id=f"waiting-{row['id']}",
                )
            )
            blocks.append(
                actions(
                    [
                        button(
                            "Approve",
                            ids.ActionId.APPROVE,
                            row["id"],
                            style="primary",
                            confirm=confirm_dialog(
                                "Approve?",
                                f"Request `{row['id']}` for <@{row['requester']}>.",
                                "Approve",
                                danger=bool(row.get("destructive")),
                            ),
                        ),
                        button("Deny", ids.ActionId.DENY, row["id"], style="danger"),
                    ],
                    block_id=f"decide-{row['id']}",
                )
            )
        blocks += _more(waiting_total, len(waiting), "`/device requests` lists them all")
    blocks += [divider(), header(f"Your open requests ({mine_total})")]
    if not mine:
        blocks.append(context("You have no open requests."))
    for row in mine:
        cancellable = row["state"] == RequestState.PENDING or (
            row["state"] == RequestState.EXECUTING
            and row["platform"] == "android"
            and row["google_ref"]
        )
        accessory = (
            button("Cancel", ids.ActionId.CANCEL_REQUEST, row["id"]) if cancellable else None
        )
        blocks.append(
            section(_request_line(row), accessory=accessory, block_id=f"mine-{row['id']}")
        )
    blocks += _more(mine_total, len(mine), "`/device requests` lists your pending ones")
    blocks += [divider(), header(f"Open lost cases ({lost_total})")]
    if not lost_cases:
        blocks.append(context("No device is reported lost."))
    for case in lost_cases:
        d = json.loads(case["summary"] or "{}")
        blocks.append(
            section(
                f"*{esc(d.get('serial') or case['device_id'])}* ({esc(case['platform'])},"
                f" {esc(d.get('model'))}) — user {esc(d.get('user'))}\n"
                f"Last check-in: {esc(case['last_checkin'] or d.get('last_seen'))}"
                f" · reported by <@{case['reported_by']}>",
                accessory=button(
                    "Show device",
                    ids.ActionId.SHOW_DEVICE,
                    f"{case['platform']}|{case['device_id']}",
                ),
                block_id=f"lost-{case['id']}",
            )
        )
    blocks += _more(lost_total, len(lost_cases), "the lost-devices channel has them all")
    return {"type": "home", "blocks": blocks[:100]}


def _fleet_line(fleet: dict[str, Any]) -> str:
    android = fleet.get("android") or {}
    parts = [
        f":iphone: Android: *{sum(android.values())}*"
        + (
            " (" + ", ".join(f"{esc(k.lower())} {v}" for k, v in sorted(android.items())) + ")"
            if android
            else ""
        )
    ]
    chrome = fleet.get("chrome")
    if chrome:
        parts.append(
            f":computer: Chrome OS: *{sum(chrome.values())}* ("
            + ", ".join(f"{esc(k.lower())} {v}" for k, v in sorted(chrome.items()))
            + ", as of the last `/device stats`)"
        )
    parts.append(f":inbox_tray: open requests: *{fleet.get('open', 0)}*")
    parts.append(f":mag: lost: *{fleet.get('lost', 0)}*")
    return "   ".join(parts)


# ---- reading the store -----------------------------------------------------------------------


def render(svc: Services, user: str) -> dict[str, Any]:
    """`user`'s Home tab from what the store knows now (no Google call)."""
    role = svc.roles.role_of(user)  # an approver group Slack cannot list now grants nothing
    db = svc.store.db()
    mine, mine_total = requests.open_of(svc, user, LIST_LIMIT)
    waiting: list[dict[str, Any]] | None = None
    waiting_total = 0
    if role >= Role.APPROVER:
        waiting, waiting_total = requests.waiting_for(svc, user, LIST_LIMIT)
        for row in waiting:
            try:
                row["destructive"] = catalog.action_for(row["action"], row["platform"]).destructive
            except Exception:
                row["destructive"] = True
    lost_cases = list(
        db.query(
            f"SELECT * FROM lost_devices WHERE state = 'open' ORDER BY reported_at DESC"
            f" LIMIT {LIST_LIMIT}"
        )
    )
    lost_total = db.execute("SELECT count(*) FROM lost_devices WHERE state = 'open'").fetchone()[0]
    return home_view(
        user,
        role,
        mine,
        mine_total,
        waiting,
        waiting_total,
        lost_cases,
        lost_total,
        fleet_summary(svc),
    )


def fleet_summary(svc: Services) -> dict[str, Any]:
    """Counts the bot already has: Android devices by state (the local index), open requests
    and lost cases, and Chrome OS devices by status when `/device stats` made its pass
    recently (kept in its cache). Never a Google call: the Directory API lists, it does not
    count, so opening the tab must not start a pass over the fleet."""
    db = svc.store.db()
    cache = svc.extras.get("stats_cache")
    overview = cache.fresh() if cache is not None else None
    chrome = dict(overview.stats.chrome_status) if overview is not None else None
    android = {
        str(state or "UNKNOWN"): int(n)
        for state, n in db.execute("SELECT state, count(*) FROM android_index GROUP BY state")
    }
    open_requests = requests.count_open(svc)
    lost = db.execute("SELECT count(*) FROM lost_devices WHERE state = 'open'").fetchone()[0]
    return {"android": android, "chrome": chrome, "open": open_requests, "lost": lost}


# ---- publishing ------------------------------------------------------------------------------


class HomePublisher:
    """Republishes the Home tabs of the people a change concerns, on one worker thread."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self._dirty: set[str] = set()
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self.published = 0

    def opened(self, user: str) -> None:
        """`user` opened the tab: remember them (their tab follows changes) and publish."""
        self.svc.store.db().execute(
            "INSERT INTO home_tabs(user, opened_at) VALUES (?, ?)"
            " ON CONFLICT(user) DO UPDATE SET opened_at = excluded.opened_at",
            [user, self.svc.clock()],
        )
        self.mark([user])

    def on_change(self, svc: Services, change: Change) -> None:
        """The hook: whose tab the change touches."""
        if isinstance(change, RequestFinished):
            return  # told already as it happened (RequestChanged)
        users = self._home_users()
        if not users:
            return
        if isinstance(change, LostCaseChanged):
            self.mark(users)
            return
        touched = {u for u in requests.people(self.svc, change.request_id) if u}
        if change.state in PENDING_CHANGES:
            touched |= {u for u in users if self._approver(u)}
        self.mark([u for u in touched if u in users])

    def mark(self, users: Iterable[str]) -> None:
        users = set(users)
        if not users:
            return
        with self._lock:
            self._dirty.update(users)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="home-publisher", daemon=True
                )
                self._thread.start()
            self._lock.notify()

    def _home_users(self) -> set[str]:
        return {u for (u,) in self.svc.store.db().execute("SELECT user FROM home_tabs")}

    def _approver(self, user: str) -> bool:
        try:
            return self.svc.roles.is_approver(user)
        except MembershipUnknown:
            return False

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._lock.wait_for(lambda: bool(self._dirty), timeout=IDLE_SECONDS):
                    self._thread = None
                    return
                user = self._dirty.pop()
            try:
                self.publish(user)
            except Exception:
                log.exception("could not publish the Home tab of %s", user)

    def publish(self, user: str) -> None:
        """Render `user`'s tab from the store and publish it."""
        self.svc.out.publish_home(user, render(self.svc, user))
        self.published += 1


# ---- Slack wiring ----------------------------------------------------------------------------


def register(app: Any, svc: Services, commands: Commands) -> None:
    """The app_home_opened listener, the Home tab's own buttons, and the change listener."""
    publisher = HomePublisher(svc)
    svc.extras["home"] = publisher
    svc.hooks.append(publisher.on_change)

    def on_home_opened(event: dict[str, Any]) -> None:
        """Someone opened the bot's Home tab (the Messages tab sends this event too)."""
        if event.get("tab", "home") == "home" and event.get("user"):
            publisher.opened(str(event["user"]))

    def on_search(ack: Ack, body: dict[str, Any]) -> None:
        """*Search devices* on the Home tab: the search modal; results come as a DM."""
        ack()
        svc.out.open_view(body["trigger_id"], search_modal("{}"))

    def on_refresh(ack: Ack, body: dict[str, Any]) -> None:
        """*Refresh* on the Home tab."""
        ack()
        publisher.mark([body["user"]["id"]])

    app.event("app_home_opened")(on_home_opened)
    app.action(ids.ActionId.HOME_SEARCH)(on_search)
    app.action(ids.ActionId.HOME_REFRESH)(on_refresh)
