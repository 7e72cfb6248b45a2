"""What every benchmark shares: the harness (sandbox Google, Slack emulator, the real bot over
HTTP), statistics (median, p99) and the table printer.

The bot runs in-process exactly as the end-to-end tests start it (`BotServer` on an
ephemeral port, Slack requests signed by the emulator, Google calls through
googleapiclient to the sandbox over loopback). Nothing here sleeps to wait for work: it
waits on the emulator's change stream or polls with a deadline.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import datetime as dt
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.sandbox.testing import wait_for

SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench-token"
OPERATOR = "U0BENCHOP"
APPROVER = "U0BENCHAPPROVER"
CHANNEL = "C0HELPDESK"
APPROVALS = "C0APPROVALS"


# ---- statistics ------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100), nearest-rank: p99 of 100 samples is the 99th smallest."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Stats:
    """Median, p99 and max of a sample, in the sample's unit."""

    n: int
    median: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        """Summarise `values`."""
        if not values:
            return cls(0, math.nan, math.nan, math.nan)
        return cls(len(values), statistics.median(values), percentile(values, 99), max(values))


def ms(seconds: Sequence[float]) -> Stats:
    """Stats of durations given in seconds, in milliseconds."""
    return Stats.of([s * 1000 for s in seconds])


def ratio(a: float, b: float) -> float:
    """a / b (nan when b is 0)."""
    return a / b if b else math.nan


# ---- output ----------------------------------------------------------------------------------


def fmt(value: Any) -> str:
    """A cell: floats with 2 significant decimals, the rest as str."""
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (pastes into README as is), with a title line."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    lines = [f"### {title}", ""]
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    """A cell saying whether a target is met."""
    return "met" if ok else "**MISSED**"


def machine() -> str:
    """Date, CPU count, memory and Python: the line that goes above the tables."""
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{date} — {os.cpu_count()} CPU (nproc), {mem_kb / 1024 / 1024:.1f} GiB RAM, "
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}"
    )


# ---- waiting ---------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, message: str = "") -> Any:
    """Poll `predicate` until truthy or the deadline passes (no fixed sleeps)."""
    return wait_for(predicate, timeout, message, interval=0.005)


class Arrivals:
    """Timestamps (perf_counter) of every response_url POST the emulator receives.

    The emulator calls subscribers synchronously in its HTTP handler thread, so the time is
    taken when the bot's answer reaches Slack, not when a poller notices it.
    """

    def __init__(self, emu: Any) -> None:
        self._cond = threading.Condition()
        self.times: list[float] = []
        self._unsubscribe = emu.subscribe(self._on_event)

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("kind") == "response_url":
            now = time.perf_counter()
            with self._cond:
                self.times.append(now)
                self._cond.notify_all()

    def count(self) -> int:
        """How many answers arrived so far."""
        with self._cond:
            return len(self.times)

    def wait(self, n: int, timeout: float = 30.0) -> float:
        """Block until answer number `n` (1-based) arrived; returns its time."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.times) >= n, timeout):
                raise TimeoutError(f"answer {n} did not arrive within {timeout}s")
            return self.times[n - 1]

    def close(self) -> None:
        """Stop listening."""
        self._unsubscribe()


# ---- the harness -----------------------------------------------------------------------------


# ---- processes ------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """CPU time of a process so far, exited threads included, to the nanosecond: the
    process's CPU-time clock (clock_getcpuclockid; /proc/<pid>/stat counts in 10 ms
    ticks, its fallback here)."""
    clock = _process_clock(pid)
    if clock is not None:
        spec = _Timespec()
        if _LIBC.clock_gettime(clock, ctypes.byref(spec)) == 0:
            return spec.tv_sec + spec.tv_nsec / 1e9
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _process_clock(pid: int) -> int | None:
    clock = ctypes.c_int()
    try:
        failed = _LIBC.clock_getcpuclockid(pid, ctypes.byref(clock))
    except AttributeError:  # not a C library that has it
        return None
    return None if failed else clock.value


class PipedChild:
    """`python -m <module> <args…>` in a child process that takes a line on stdin and answers
    with one on stdout (the sandbox Google of bench/ack.py, its burst client)."""

    def __init__(self, *argv: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
        self.name = argv[0]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *argv],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def read(self) -> str:
        """The child's next line (RuntimeError once it has exited)."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} exited ({self.proc.poll()})")
        return line.strip()

    def ask(self, line: str) -> str:
        """Send one line; the child's answer."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.read()

    def stop(self, timeout: float = 20.0) -> None:
        """Close its stdin (its cue to end); kill it if it has not ended within `timeout`."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def bot_env(db_path: str, slack_api_url: str, **overrides: str) -> dict[str, str]:
    """The bot's environment for a benchmark (jobs slowed down unless a benchmark needs them)."""
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_api_url,
        "DATABASE_PATH": db_path,
        "GOOGLE_BACKEND": "sandbox",
        "DEVICE_OPERATORS": OPERATOR,
        "DEVICE_APPROVERS": APPROVER,
        "APPROVAL_CHANNEL": APPROVALS,
        "POLL_INTERVAL": "3600",
        "LOST_WATCH_INTERVAL": "3600",
        "INDEX_SYNC_INTERVAL": "3600",
        "GOOGLE_TIMEOUT": "60",
        "BOT_SECRET_KEY": "bench-secret-key-0123456789",
        "HOST": "127.0.0.1",
        "PORT": "0",
        "LOG_LEVEL": "WARNING",
    }
    env.update(overrides)
    return env


@dataclass
class Harness:
    """A running bot, its Slack emulator, the sandbox Google and a Google call counter."""

    sandbox: Any
    emu: Any
    server: Any
    calls: Any  # bot.google.CallCounter: every round trip the bot made
    arrivals: Arrivals
    workdir: Path
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def svc(self) -> Any:
        return self.server.svc

    def google_calls(self, method: str | None = None) -> int:
        """Round trips the bot made to Google so far (optionally of one method id)."""
        return int(self.calls.count(method))


@contextmanager
def harness(
    *,
    chrome: int = 300,
    android: int = 200,
    seed: int = 11,
    command_delay: float = 3600.0,
    sandbox: Any = None,
    **env: str,
) -> Iterator[Harness]:
    """Start sandbox (unless given), emulator and bot; stop them all afterwards."""
    import logging

    from bot.google import CallCounter
    from bot.playground.slack_emulator import SlackEmulator
    from bot.sandbox import Sandbox
    from bot.server import BotServer
    from bot.settings import load_settings

    logging.basicConfig(level=logging.WARNING)
    own_sandbox = sandbox is None
    if own_sandbox:
        sandbox = Sandbox(
            chrome=chrome, android=android, seed=seed, command_delay=command_delay
        ).start()
    emu = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN).start()
    # Slack's limit is 3 s; the emulator must not give up before a slow answer is measured
    emu.delivery_timeout = 30.0
    with tempfile.TemporaryDirectory(prefix="device-bot-bench-") as tmp:
        server = BotServer(
            load_settings(bot_env(str(Path(tmp) / "bot.db"), emu.api_url, **env)), sandbox=sandbox
        )
        counter = CallCounter()
        server.svc.google.on_call = counter
        url = server.start(port=0)
        emu.bot_url = url + "/slack/events"
        arrivals = Arrivals(emu)
        h = Harness(sandbox, emu, server, counter, arrivals, Path(tmp))
        try:
            yield h
        finally:
            arrivals.close()
            server.stop()
            emu.stop()
            if own_sandbox:
                sandbox.stop()


class BotProcess:
    """`python -m bot` in a process of its own, against a sandbox Google reached over HTTP.

    Closer to production than the in-process bot: the load generator, the Slack emulator
    and the sandbox do not share the bot's interpreter (and its GIL).
    """

    def __init__(
        self,
        sandbox_url: str,
        enterprise: str,
        customer: str,
        slack_api_url: str,
        workdir: Path,
        **env: str,
    ) -> None:
        import socket
        import subprocess
        import sys

        with (
            socket.socket() as s
        ):  # a free port for PORT (the bot does not report an ephemeral one)
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.db_path = workdir / "bot-process.db"
        settings = bot_env(str(self.db_path), slack_api_url, PORT=str(self.port), **env)
        settings.pop("GOOGLE_BACKEND")
        settings.update(
            GOOGLE_API_ENDPOINT=sandbox_url,
            ANDROID_ENTERPRISE=enterprise,
            GOOGLE_CUSTOMER_ID=customer,
        )
        full_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "GOOGLE_", "ANDROID_"))
        }
        full_env.update(settings)
        full_env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "bot-process.log"
        self._log = self.log_path.open("wb")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot"], env=full_env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.healthy_after = math.nan

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def wait_healthy(self, timeout: float = 60.0) -> float:
        """Block until GET /healthz answers 200; returns seconds since the process started."""
        import urllib.error
        import urllib.request

        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the bot exited ({self.proc.returncode}): {self.log_path.read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                    return bool(resp.status == 200)
            except (urllib.error.URLError, OSError):
                return False

        wait_until(healthy, timeout, "the bot's /healthz")
        self.healthy_after = time.perf_counter() - self.started
        return self.healthy_after

    def status(self) -> dict[str, int]:
        """VmRSS, VmHWM (peak) and Threads from /proc/<pid>/status (kB for memory)."""
        out: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
        return out

    def stop(self) -> None:
        """SIGTERM (graceful stop), then wait."""
        import subprocess

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@contextmanager
def separate_bot(sandbox: Any, emu: Any, workdir: Path, **env: str) -> Iterator[BotProcess]:
    """A healthy `python -m bot` process wired to `sandbox` and `emu`; stopped afterwards."""
    proc = BotProcess(
        sandbox.url, sandbox.enterprise, sandbox.customer_id, emu.api_url, workdir, **env
    )
    try:
        proc.wait_healthy()
        emu.bot_url = proc.url + "/slack/events"
        yield proc
    finally:
        proc.stop()


@contextmanager
def sandbox_and_emulator(
    *, chrome: int, android: int, seed: int = 11, command_delay: float = 3600.0
) -> Iterator[tuple[Any, Any, Arrivals, Path]]:
    """A sandbox Google and a Slack emulator in this process, plus a scratch directory."""
    from bot.playground.slack_emulator import SlackEmulator
    from bot.sandbox import Sandbox

    sandbox = Sandbox(
        chrome=chrome, android=android, seed=seed, command_delay=command_delay
    ).start()
    emu = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN).start()
    emu.delivery_timeout = 30.0
    arrivals = Arrivals(emu)
    try:
        with tempfile.TemporaryDirectory(prefix="device-bot-bench-") as tmp:
            yield sandbox, emu, arrivals, Path(tmp)
    finally:
        arrivals.close()
        emu.stop()
        sandbox.stop()


def chrome_serials(sandbox: Any, n: int, *, status: str = "ACTIVE") -> list[str]:
    """`n` serials of Chrome devices in `status`, spread over the fleet."""
    devices = [d for d in sandbox.fleet.chrome.values() if d.get("status") == status]
    step = max(1, len(devices) // max(1, n))
    return [d["serialNumber"] for d in devices[::step][:n]]


def android_serials(sandbox: Any, n: int) -> list[str]:
    """`n` serials of active Android devices, spread over the fleet."""
    devices = [d for d in sandbox.fleet.android.values() if d.get("state") == "ACTIVE"]
    step = max(1, len(devices) // max(1, n))
    return [d["hardwareInfo"]["serialNumber"] for d in devices[::step][:n]]


def unique_chrome_users(sandbox: Any, n: int) -> list[str]:
    """Annotated users that name exactly one Chrome device (a `find user:` with one result)."""
    seen: dict[str, int] = {}
    for d in sandbox.fleet.chrome.values():
        user = d.get("annotatedUser")
        if user:
            seen[user] = seen.get(user, 0) + 1
    return [u for u, c in seen.items() if c == 1][:n]


def big_sandbox(chrome: int, android: int) -> tuple[Any, float]:
    """A started sandbox of that size (devices acknowledge no command) and its build time."""
    from bot.sandbox import Sandbox

    started = time.perf_counter()
    sandbox = Sandbox(chrome=chrome, android=android, seed=3, command_delay=3600.0).start()
    return sandbox, time.perf_counter() - started


def report_checks(checks: dict[str, bool]) -> int:
    """Print each target's verdict; the exit status says whether all were met."""
    for what, ok in checks.items():
        print(f"target {what}: {verdict(ok)}")
    return 0 if all(checks.values()) else 1


def fleet_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The arguments of a benchmark over a large sandbox: `--chrome` and `--android` sizes."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}", description=(doc or "").splitlines()[0]
    )
    parser.add_argument("--chrome", type=int, default=100_000)
    parser.add_argument("--android", type=int, default=20_000)
    return parser
