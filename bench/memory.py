"""Memory: the bot process's RSS with a 120 000-device sandbox running as a separate process.

    python -m bench.memory [--chrome 100000] [--android 20000]

The sandbox runs as `python -m bot.sandbox`, the bot as `python -m bot` with
GOOGLE_API_ENDPOINT and ANDROID_ENTERPRISE pointing at it; the Slack emulator runs here.
The first `/device find` builds the Android index (20 000 devices into SQLite); RSS is
read from /proc/<pid>/status (VmRSS now, VmHWM the peak) at start, after the index sync,
and after 100 concurrent look-ups (every listener thread then holds its own Google
service objects). Target: RSS ≤ 250 MB after the index sync.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import (
    BOT_TOKEN,
    OPERATOR,
    SIGNING_SECRET,
    Arrivals,
    BotProcess,
    fleet_parser,
    machine,
    table,
    verdict,
    wait_until,
)

TARGET_MB = 250.0


def start_sandbox_process(chrome: int, android: int) -> tuple[subprocess.Popen[str], str, str, str]:
    """`python -m bot.sandbox` on a free port; returns (process, url, customer, enterprise)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.sandbox",
            "--port",
            "0",
            "--chrome",
            str(chrome),
            "--android",
            str(android),
            "--command-delay",
            "3600",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=str(Path(__file__).resolve().parent.parent),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"at (http://\S+) \(customer (\S+), (enterprises/[^;]+);", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"unexpected sandbox output: {line!r}")
    return proc, match.group(1), match.group(2), match.group(3)


def mb(kb: int) -> float:
    """kB → MB."""
    return kb / 1024


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = fleet_parser("bench.memory", __doc__)
    parser.add_argument("--burst", type=int, default=100, help="concurrent look-ups after the sync")
    args = parser.parse_args(argv)

    from bot.playground.slack_emulator import SlackEmulator
    from bot.sandbox.testing import androidmanagement, directory

    t0 = time.perf_counter()
    sandbox, url, customer, enterprise = start_sandbox_process(args.chrome, args.android)
    sandbox_ready = time.perf_counter() - t0
    emu = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN).start()
    emu.delivery_timeout = 30.0
    arrivals = Arrivals(emu)
    rows: list[list[Any]] = []
    try:
        # a few devices to look up, read from the sandbox process over its API
        admin = directory(url).chromeosdevices()
        page = admin.list(customerId=customer, maxResults=300, projection="BASIC").execute()[
            "chromeosdevices"
        ]
        users = [d["annotatedUser"] for d in page if d.get("annotatedUser")]
        chrome = [d["serialNumber"] for d in page]
        devices = androidmanagement(url).enterprises().devices()
        android = [
            d["hardwareInfo"]["serialNumber"]
            for d in devices.list(parent=enterprise, pageSize=100).execute()["devices"]
        ]
        with tempfile.TemporaryDirectory(prefix="device-bot-bench-") as tmp:
            bot = BotProcess(url, enterprise, customer, emu.api_url, Path(tmp))
            try:
                healthy = bot.wait_healthy()
                emu.bot_url = bot.url + "/slack/events"
                st = bot.status()
                rows.append(
                    [
                        "healthy (/healthz 200)",
                        f"{healthy:.2f} s",
                        mb(st["VmRSS"]),
                        mb(st["VmHWM"]),
                        st["Threads"],
                    ]
                )
                before = arrivals.count()
                t1 = time.perf_counter()
                emu.slash_command(OPERATOR, f"find user:{users[0]}")
                arrivals.wait(before + 1, timeout=120)
                synced = time.perf_counter() - t1
                st = bot.status()
                after_sync = mb(st["VmRSS"])
                rows.append(
                    [
                        f"after the index sync (first find: {synced:.1f} s)",
                        "",
                        after_sync,
                        mb(st["VmHWM"]),
                        st["Threads"],
                    ]
                )
                # a burst of look-ups: every listener thread builds its own Google services
                before = arrivals.count()
                texts = [f"info {s}" for s in chrome[: args.burst // 2]] + [
                    f"info {s}" for s in android[: args.burst // 2]
                ]
                threads = [
                    threading.Thread(target=emu.slash_command, args=(OPERATOR, t)) for t in texts
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                arrivals.wait(before + len(texts), timeout=120)
                st = bot.status()
                rows.append(
                    [
                        f"after {len(texts)} concurrent look-ups",
                        "",
                        mb(st["VmRSS"]),
                        mb(st["VmHWM"]),
                        st["Threads"],
                    ]
                )
                wait_until(lambda: bot.proc.poll() is None, 1)
            finally:
                bot.stop()
    finally:
        arrivals.close()
        emu.stop()
        sandbox.terminate()
        sandbox.wait(timeout=20)
    print(machine())
    print(
        f"sandbox process: {args.chrome} Chrome + {args.android} Android, ready in {sandbox_ready:.1f} s"
    )
    print(
        table(
            "memory — `python -m bot` process, sandbox Google in another process",
            ["moment", "time", "VmRSS MB", "VmHWM (peak) MB", "threads"],
            rows,
        )
    )
    print()
    print(
        f"target RSS ≤ {TARGET_MB:.0f} MB after the index sync: {verdict(after_sync <= TARGET_MB)} ({after_sync:.0f} MB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
