"""End-to-end harness: the real bot over HTTP, the sandbox Google, the Slack emulator.

`bot` starts a BotServer in-process on an ephemeral port with a fresh SQLite file; Slack
requests reach it signed, through the emulator, exactly as Slack sends them; its Web API
calls go to the emulator through SLACK_API_URL; Google calls go to the sandbox over
loopback through googleapiclient. The sandbox is shared by the session: tests `claim`
devices so that no two tests touch the same one, whatever the order.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.sandbox import Sandbox
from bot.sandbox.testing import wait_for

SIGNING_SECRET = "e2e-signing-secret"
BOT_TOKEN = "xoxb-e2e-token"
OPERATOR = "U0OPERATOR"
APPROVER1 = "U0APPROVER1"
APPROVER2 = "U0APPROVER2"
OUTSIDER = "U0OUTSIDER"
HELPDESK = "C0HELPDESK"
APPROVALS = "C0APPROVALS"
LOST = "C0LOSTDEVICES"


def base_env(db_path: str, api_url: str, **overrides: str) -> dict[str, str]:
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": api_url,
        "DATABASE_PATH": db_path,
        "GOOGLE_BACKEND": "sandbox",
        "DEVICE_OPERATORS": OPERATOR,
        "DEVICE_APPROVERS": f"{APPROVER1},S0APPROVERS",
        "APPROVAL_CHANNEL": APPROVALS,
        "LOST_DEVICE_CHANNEL": LOST,
        "POLL_INTERVAL": "0.1",
        "LOST_WATCH_INTERVAL": "0.3",
        "INDEX_SYNC_INTERVAL": "3600",
        "LEASE_SECONDS": "2",
        "GOOGLE_TIMEOUT": "10",
        "BOT_SECRET_KEY": "e2e-secret-key-0123456789",
        "HOST": "127.0.0.1",
        "PORT": "0",
    }
    if _database["url"]:  # the test runs on PostgreSQL (see `backend`)
        env["DATABASE_URL"] = _database["url"]
    env.update(overrides)
    return env


# ---- the two stores ---------------------------------------------------------------------
# A test module with `BOTH_STORES = True`, or a test marked `both_stores`, runs on SQLite
# and on PostgreSQL (a throwaway cluster, one database per test). Without
# PostgreSQL those runs skip saying why; under CI (CI=true) they fail instead.
# TEST_BOTH_STORES=1 runs every test module so (slower: for a change to the store itself),
# but for tests marked `sqlite_only("why")`: they reach past the store into the SQLite file,
# or their bot is module-wide (started before a test's store is chosen). A module-wide bot can
# instead keep one per store, as the browser tests' playgrounds do
# (test_playground_browser.per_store). The session's sandbox is shared by both runs of a
# test: what a test counts in its log or changes on its devices must be its own run's.

_database: dict[str, str | None] = {"url": None}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # a test's own `both_stores` mark wins over its module's `sqlite_only`
    own = {m.name for m in metafunc.definition.own_markers}
    both = (
        getattr(metafunc.module, "BOTH_STORES", False)
        or metafunc.definition.get_closest_marker("both_stores") is not None
        or os.environ.get("TEST_BOTH_STORES") == "1"
    ) and (metafunc.definition.get_closest_marker("sqlite_only") is None or "both_stores" in own)
    if "backend" in metafunc.fixturenames and both:
        metafunc.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    from bot.pgtemp import ClusterUnavailable, TempCluster

    cluster = TempCluster()
    try:
        cluster.start()
    except ClusterUnavailable as exc:
        cluster.stop()
        yield exc
        return
    yield cluster
    cluster.stop()


def postgres_url(request: pytest.FixtureRequest) -> str:
    """A fresh PostgreSQL database for this test; skips (fails under CI) without PostgreSQL."""
    cluster = request.getfixturevalue("pg_cluster")
    if isinstance(cluster, Exception):
        reason = f"PostgreSQL unavailable: {cluster}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI must run the PostgreSQL tests)")
        pytest.skip(reason)
    return str(cluster.new_database())


@pytest.fixture(autouse=True)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The store this test runs on: "sqlite", or "postgresql" in a BOTH_STORES module."""
    name = getattr(request, "param", "sqlite")
    if name == "postgresql":
        _database["url"] = postgres_url(request)
    try:
        yield name
    finally:
        if _database["url"]:
            request.getfixturevalue("pg_cluster").drop_database(_database["url"])
        _database["url"] = None


def store_url() -> str | None:
    """The PostgreSQL URL of the running test (None on SQLite): `Store(path, url=store_url())`."""
    return _database["url"]


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, message: str = "") -> Any:
    """Poll `predicate` until truthy or the deadline passes (no fixed sleeps)."""
    return wait_for(predicate, timeout, message)


class Claims:
    """Hands each test devices no other test has touched."""

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox
        self.taken: set[str] = set()
        self.lock = threading.Lock()

    def _pick(
        self, devices: Iterator[dict[str, Any]], key: str, where: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        with self.lock:
            for device in devices:
                if device[key] not in self.taken and where(device):
                    self.taken.add(device[key])
                    return device
        raise LookupError("no unclaimed sandbox device matches")

    def chrome(
        self, status: str = "ACTIVE", where: Callable[[dict[str, Any]], bool] = lambda d: True
    ) -> dict[str, Any]:
        fleet = self.sandbox.fleet
        devices = (fleet.chrome[k] for k in list(fleet.chrome_order))
        return self._pick(devices, "deviceId", lambda d: d.get("status") == status and where(d))

    def android(self, where: Callable[[dict[str, Any]], bool] = lambda d: True) -> dict[str, Any]:
        fleet = self.sandbox.fleet
        devices = (fleet.android[k] for k in list(fleet.android_order))
        return self._pick(devices, "name", lambda d: d.get("state") == "ACTIVE" and where(d))

    def chrome_kiosk(self) -> dict[str, Any]:
        """An active Chrome device running a kiosk session (a Kiosk Upgrade licence)."""
        device = self.chrome()
        device["deviceLicenseType"] = "kioskUpgrade"
        return device

    def fitting(self, name: str, platform: str, status: str = "ACTIVE") -> dict[str, Any]:
        """A device on which action `name` fits, as the capability model decides."""
        from bot import capabilities, catalog
        from bot.devices import android_device, chrome_device

        spec = catalog.action_for(name, platform)
        if platform == "chrome":
            user_device = self.chrome_template(status)
            kiosk = {**user_device, "deviceLicenseType": "kioskUpgrade"}
            if capabilities.refusal(spec, capabilities.facts(chrome_device(user_device))) and (
                capabilities.refusal(spec, capabilities.facts(chrome_device(kiosk))) is None
            ):
                return self.chrome_kiosk()
            return self.chrome(status)

        def fits(d: dict[str, Any]) -> bool:
            lost = {**d, "state": "LOST"} if name == "found" else d
            return capabilities.refusal(spec, capabilities.facts(android_device(lost))) is None

        device = self.android(fits)
        if name == "found":  # in lost mode already, as START_LOST_MODE leaves it
            device["state"] = "LOST"
        return device

    def chrome_template(self, status: str) -> dict[str, Any]:
        """A user's Chrome device of that status, unclaimed and untouched (to test a rule on)."""
        fleet = self.sandbox.fleet
        return next(
            d
            for k in fleet.chrome_order
            if (d := fleet.chrome[k]).get("status") == status
            and d.get("deviceLicenseType") != "kioskUpgrade"
        )


@pytest.fixture(autouse=True)
def _slack_accepts_our_block_kit(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail any test during which an emulator refused Block Kit as real Slack would.

    The emulator answers the bot ``invalid_blocks`` as Slack does, which the bot may well log and
    survive; this makes it a test failure. A test that sends bad Block Kit on purpose says so
    with ``@pytest.mark.invalid_blocks_expected``.
    """
    from bot.playground.slack_emulator import REFUSALS

    start = REFUSALS.total
    yield
    if request.node.get_closest_marker("invalid_blocks_expected"):
        return
    refused = REFUSALS.since(start)
    if refused:
        lines = [f"{r.where}: {r.error}: {r.errors[:5]}" for r in refused[:10]]
        pytest.fail("Slack would refuse Block Kit the bot sent:\n" + "\n".join(lines))


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Any]:
    # room for both stores' runs; TEST_BOTH_STORES=1 runs every test twice: twice the devices
    size = 880 if os.environ.get("TEST_BOTH_STORES") == "1" else 440
    sb = Sandbox(devices=size, seed=7, command_delay=0.1).start()
    yield sb
    sb.stop()


#: Debian's headless browser and its driver (the browser tests skip without them)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium for every browser test module (each opens its own pages); only
    test_playground_browser's `driver` asks for it, after its module's skip rules."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,800",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a browser
        browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    # make the page itself (not the window around it) 1280×800, for the screenshot
    browser.set_window_size(1280, 800)
    inner = browser.execute_script("return [window.innerWidth, window.innerHeight]")
    browser.set_window_size(1280 + 1280 - inner[0], 800 + 800 - inner[1])
    yield browser
    browser.quit()


@pytest.fixture(scope="session")
def claims(sandbox: Any) -> Claims:
    return Claims(sandbox)


@pytest.fixture
def emu() -> Iterator[Any]:
    from bot.playground.slack_emulator import SlackEmulator

    emulator = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN).start()
    emulator.add_usergroup("S0APPROVERS", [APPROVER2])
    yield emulator
    emulator.stop()


@dataclass
class Bot:
    """A running bot with its Slack emulator and sandbox Google."""

    server: Any
    emu: Any
    sandbox: Any
    env: dict[str, str]
    url: str
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def svc(self) -> Any:
        return self.server.svc

    @property
    def store(self) -> Any:
        return self.server.svc.store

    def settle(self) -> None:
        """Let the start-up jobs finish, then pause the scheduler: the test drives the jobs."""
        jobs = self.server.jobs
        wait_until(
            lambda: jobs.runs.get("android-index-sync", 0) >= 1, 10, "the start-up index sync"
        )
        jobs.scheduler.pause()

    def slash(self, text: str, user: str = OPERATOR, **kw: Any) -> Any:
        reply = self.emu.slash_command(user, text, **kw)
        assert reply.status == 200, reply
        return reply

    def ephemeral_texts(self, user: str = OPERATOR) -> list[str]:
        return [_flatten(m) for m in self.emu.ephemerals(user)]

    def wait_ephemeral(self, needle: str, user: str = OPERATOR, timeout: float = 10.0) -> str:
        return wait_until(
            lambda: next((t for t in self.ephemeral_texts(user) if needle in t), None),
            timeout,
            f"an ephemeral to {user} containing {needle!r}; got {self.ephemeral_texts(user)[-3:]}",
        )

    def messages_in(self, channel: str) -> list[dict[str, Any]]:
        return list(self.emu.messages(channel))


def _flatten(message: Any) -> str:
    """All the text of a message or response: text plus every text in its blocks."""
    if isinstance(message, str):
        return message
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    parts.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message)
    return "\n".join(parts)


flatten = _flatten
_counter = itertools.count()


def start_bot(tmp_path: Any, sandbox: Any, emu: Any, **overrides: str) -> Bot:
    from bot.server import BotServer
    from bot.settings import load_settings

    env = base_env(str(tmp_path / f"bot{next(_counter)}.db"), emu.api_url, **overrides)
    server = BotServer(load_settings(env), sandbox=sandbox)
    url = server.start(port=0)
    emu.bot_url = url + "/slack/events"
    return Bot(server=server, emu=emu, sandbox=sandbox, env=env, url=url)


@pytest.fixture
def bot(tmp_path: Any, sandbox: Any, emu: Any) -> Iterator[Bot]:
    running = start_bot(tmp_path, sandbox, emu)
    yield running
    running.server.stop()


@pytest.fixture
def direct(tmp_path: Any, sandbox: Any, emu: Any) -> Iterator[Bot]:
    """A bot where nothing needs approval: commands run as soon as they are asked for."""
    running = start_bot(tmp_path, sandbox, emu, APPROVAL_REQUIRED="none")
    yield running
    running.server.stop()


@pytest.fixture
def fleet_bot(tmp_path: Any, emu: Any) -> Iterator[Bot]:
    """A bot over a sandbox of its own (650 Chromebooks, 60 phones), its start-up jobs done
    and its scheduler paused: every Google call from here on is the test's."""
    sandbox = Sandbox(chrome=650, android=60, seed=11, command_delay=0.3).start()
    running = start_bot(tmp_path, sandbox, emu)
    running.settle()
    yield running
    running.server.stop()
    sandbox.stop()


# ---- helpers the end-to-end tests share ---------------------------------------------------


def serial(device: dict[str, Any]) -> str:
    """The serial of a sandbox device (Chrome or Android JSON)."""
    return str(device.get("serialNumber") or device["hardwareInfo"]["serialNumber"])


def request_row(bot: Bot, request_id: str) -> dict[str, Any]:
    """The request's row in the store, column by column."""
    return dict(next(bot.store.db().query("SELECT * FROM requests WHERE id = ?", [request_id])))


def request_rows(bot: Bot, action: str) -> list[dict[str, Any]]:
    """Every stored request for `action`."""
    return [
        dict(r) for r in bot.store.db().query("SELECT * FROM requests WHERE action = ?", [action])
    ]


def wait_state(bot: Bot, request_id: str, *states: str, timeout: float = 20) -> dict[str, Any]:
    """The request's row once its state is one of `states`."""
    row: dict[str, Any] = wait_until(
        lambda: (r := request_row(bot, request_id))["state"] in states and r,
        timeout,
        f"request {request_id} to reach {states}",
    )
    return row


def approval_message(bot: Bot, request_id: str) -> dict[str, Any]:
    """The request's message in the approval channel (waits for it)."""
    found: dict[str, Any] = wait_until(
        lambda: next((m for m in bot.emu.messages(APPROVALS) if request_id in flatten(m)), None),
        10,
        f"approval message of {request_id}",
    )
    return found


def thread_message(bot: Bot, request_id: str, needle: str, what: str = "") -> dict[str, Any]:
    """The first message in the requester's thread of the request that contains `needle`
    (in its text or its blocks' JSON, e.g. an action id); waits for it."""
    row = request_row(bot, request_id)

    def find() -> dict[str, Any] | None:
        messages = bot.emu.messages(row["requester_channel"], thread_ts=row["requester_ts"])
        return next((m for m in messages if needle in json.dumps(m)), None)

    found: dict[str, Any] = wait_until(find, 10, what or f"{needle!r} in the thread")
    return found


def settled(bot: Bot, user: str, view_id: str) -> dict[str, Any] | None:
    """The user's modal `view_id` once it no longer shows the loading state."""
    view = bot.emu.open_view(user)
    if not view or view["id"] != view_id or ":hourglass" in flatten(view):
        return None
    return dict(view)


def open_modal(bot: Bot, text: str, user: str = OPERATOR) -> dict[str, Any]:
    """Type `/device <text>`; the modal must open at once, then settle with its real content."""
    mark = bot.emu.mark()
    bot.slash(text, user=user)
    opened = bot.emu.wait_for_call("views.open", since=mark)
    assert opened.ok, opened
    view_id = opened.response["view"]["id"]
    view: dict[str, Any] = wait_until(
        lambda: settled(bot, user, view_id), 15, f"the modal of {text!r}"
    )
    return view
