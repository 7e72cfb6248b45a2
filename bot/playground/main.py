"""`python -m bot playground`: the real bot on the sandbox fleet, a local Slack, and a web page.

Starts the sandbox Google, the Slack emulator and a `BotServer` whose HTTP server also serves
the playground page (`bot.playground.web`), all on loopback, with settings that make the
two-person approval flow playable: one operator, two approvers and an outsider.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from bot.logs import configure_logging
from bot.playground.page import Page, Person
from bot.playground.slack_emulator import SlackEmulator
from bot.playground.web import Playground
from bot.settings import SettingsError, load_settings

log = logging.getLogger(__name__)

OPERATOR = "U0OPERATOR"
APPROVER1 = "U0APPROVER1"
APPROVER2 = "U0APPROVER2"
OUTSIDER = "U0OUTSIDER"
HELPDESK = "C0HELPDESK"
APPROVALS = "C0APPROVALS"
LOST = "C0LOSTDEVICES"

PEOPLE = (
    Person(OPERATOR, "Olivia Operator", "operator"),
    Person(APPROVER1, "Alex Approver", "approver"),
    Person(APPROVER2, "Sam Approver", "approver"),
    Person(OUTSIDER, "Oscar Outsider", "not allowed"),
)
TOPICS = {
    HELPDESK: "Where the IT team asks device-bot about devices. Type /device help.",
    APPROVALS: "APPROVAL_CHANNEL: requests wait here for a second person's Approve.",
    LOST: "LOST_DEVICE_CHANNEL: lost devices and their check-ins.",
}


def playground_env(
    *,
    api_url: str,
    database: Path,
    port: int,
    signing_secret: str,
    bot_token: str,
    secret_key: str,
    database_url: str | None = None,
    audit_key: str | None = None,
) -> dict[str, str]:
    """The settings the playground runs the bot with (as environment variables); with
    `database_url` the bot keeps its state in that PostgreSQL database instead of `database`
    (the audit key then comes from `audit_key`, or a key file beside `database`)."""
    env = {
        "SLACK_BOT_TOKEN": bot_token,
        "SLACK_SIGNING_SECRET": signing_secret,
        "SLACK_API_URL": api_url,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_PATH": str(database),
        "GOOGLE_BACKEND": "sandbox",
        "DEVICE_OPERATORS": OPERATOR,
        "DEVICE_APPROVERS": f"{APPROVER1},{APPROVER2}",
        "APPROVAL_CHANNEL": APPROVALS,
        "LOST_DEVICE_CHANNEL": LOST,
        "POLL_INTERVAL": "2",
        "LOST_WATCH_INTERVAL": "10",
        "KIOSK_ORG_UNITS": "/Kiosks",  # the sandbox's kiosk OU: a device moved there is a kiosk
        "BOT_SECRET_KEY": secret_key,
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    if audit_key:
        env["AUDIT_KEY"] = audit_key
    return env


def example_commands(sandbox: Any) -> list[str]:
    """A few `/device …` lines that work on this fleet, for the page's hints."""
    hints = ["/device help"]
    fleet: Any = getattr(sandbox, "fleet", None)
    try:
        chrome = next(
            d for d in fleet.iter_chrome() if d.get("status") == "ACTIVE" and d.get("serialNumber")
        )
        hints.append(f"/device info {chrome['serialNumber']}")
        if chrome.get("annotatedUser"):
            hints.append(f"/device find user:{chrome['annotatedUser']}")
    except (AttributeError, StopIteration, TypeError):
        pass
    try:
        android = next(d for d in fleet.iter_android() if d.get("state") == "ACTIVE")
        serial = (android.get("hardwareInfo") or {}).get("serialNumber")
        if serial:
            hints.append(f"/device info {serial}")
    except (AttributeError, StopIteration, TypeError):
        pass
    return hints


@dataclass
class RunningPlayground:
    """A started playground: stop() takes everything down in order."""

    url: str
    server: Any
    emulator: SlackEmulator
    web: Playground
    sandbox: Any
    workdir: Path | None = None
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        """End the page's streams, then the bot (which stops the sandbox), then the emulator."""
        if self._stopped:
            return
        self._stopped = True
        self.web.close()
        try:
            self.server.stop()
        finally:
            self.emulator.stop()
            if self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)


def start_playground(
    *,
    port: int = 8000,
    devices: int = 500,
    database: Path | None = None,
    seed: int = 1,
    sandbox: Any = None,
    database_url: str | None = None,
    audit_key: str | None = None,
    secret_key: str | None = None,
) -> RunningPlayground:
    """Start sandbox, emulator and bot; returns once the page answers. Raises OSError, SettingsError.
    The bot's state is in the SQLite file `database`, or in PostgreSQL at `database_url`; the
    audit key and the secret key are made anew unless given (AUDIT_KEY, BOT_SECRET_KEY)."""
    from bot.server import BotServer

    workdir = None
    if database is None:
        workdir = Path(tempfile.mkdtemp(prefix="device-bot-playground-"))
        database = workdir / "playground.db"
    bot_token = "xoxb-playground-" + secrets.token_hex(8)
    emulator = SlackEmulator(signing_secret=secrets.token_hex(16), bot_token=bot_token).start()
    emulator.add_user(APPROVER2, name="sam.approver", real_name="Sam Approver")
    started_sandbox = sandbox is None
    server = None
    try:
        if sandbox is None:
            from bot.sandbox import Sandbox

            sandbox = Sandbox(devices=devices, seed=seed).start()
        env = playground_env(
            api_url=emulator.api_url,
            database=database,
            port=port,
            signing_secret=emulator.signing_secret,
            bot_token=bot_token,
            secret_key=secret_key or secrets.token_urlsafe(24),
            database_url=database_url,
            audit_key=audit_key,
        )
        web = Playground(
            Page(
                emulator,
                PEOPLE,
                default_channel=HELPDESK,
                hints=example_commands(sandbox),
                topics=TOPICS,
            )
        )
        server = BotServer(load_settings(env), sandbox=sandbox, extra=web)
        url = server.start(port=port)
    except BaseException:
        if server is not None:
            server.stop()  # also stops the sandbox it was given
        elif started_sandbox and sandbox is not None:
            sandbox.stop()
        emulator.stop()
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    emulator.bot_url = url + "/slack/events"
    return RunningPlayground(url, server, emulator, web, sandbox, workdir)


def main(argv: Sequence[str]) -> int:
    """Run the playground until Ctrl-C (SIGINT) or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m bot playground",
        description="device-bot on a simulated Google fleet, with a local Slack in your browser.",
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="HTTP port on 127.0.0.1 (default 8000)"
    )
    parser.add_argument(
        "--devices", type=int, default=500, help="size of the simulated fleet (default 500)"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--database", type=Path, help="keep state in this SQLite file (default: a fresh temp file)"
    )
    where.add_argument(
        "--database-url",
        metavar="postgresql://…",
        help="keep state in this PostgreSQL database instead; to open it again in a later run, "
        "set AUDIT_KEY (and BOT_SECRET_KEY, for passwords asked before) the same both times",
    )
    parser.add_argument("--verbose", action="store_true", help="log what the bot does")
    args = parser.parse_args(list(argv))
    if not 1 <= args.devices <= 1_000_000:
        parser.error("--devices must be between 1 and 1000000")
    configure_logging(logging.INFO if args.verbose else logging.WARNING, floor=logging.WARNING)

    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(
            f"device-bot playground: starting the sandbox ({args.devices} simulated devices)…",
            flush=True,
        )
        try:
            running = start_playground(
                port=args.port,
                devices=args.devices,
                database=args.database,
                database_url=args.database_url,
                audit_key=os.environ.get("AUDIT_KEY"),
                secret_key=os.environ.get("BOT_SECRET_KEY"),
            )
        except SettingsError as exc:
            print(f"device-bot playground: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(
                f"device-bot playground: cannot listen on 127.0.0.1:{args.port} ({exc.strerror or exc}); "
                f"try --port {args.port + 1}",
                file=sys.stderr,
            )
            return 1
        print(
            f"\n  device-bot playground (SANDBOX: simulated devices, nothing real is touched)\n"
            f"  open {running.url}/ in your browser\n"
            f"  press Ctrl-C to stop\n",
            flush=True,
        )
        try:
            while not stopping.wait(0.2):  # timed: see `python -m bot` (bot/__main__.py)
                pass
        finally:
            print("device-bot playground: stopping…", flush=True)
            running.stop()
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
