"""Look-up path: from the signed slash command to the answer posted at Slack, against the bare
googleapiclient calls the same answer minimally needs, 100 ms injected per Google call.

    python -m bench.lookup [--runs 30] [--latency 0.1]

Cases: `/device info <Chrome serial>`, `/device info <Android serial>` (Android through the
local index) and `/device find user:<email>`. The baseline is the one googleapiclient call
each answer needs at minimum (`chromeosdevices.list id:`, `devices.get`, `chromeosdevices.list
user:`), on a warm service object in this process. Bot and baseline alternate, call by call,
so both see the same machine state; the bot runs as its own process (`python -m bot`).
Targets: ratio of medians ≤ 1.15; 1 Google round trip on the critical path for a serial
(both platforms queried at once), i.e. bot median < 2 × latency.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bench.common import (
    OPERATOR,
    android_serials,
    chrome_serials,
    machine,
    ms,
    ratio,
    sandbox_and_emulator,
    separate_bot,
    table,
    unique_chrome_users,
    verdict,
)

TARGET_RATIO = 1.15


def slack_path_ready() -> bool:
    """Whether `/device info` and `/device find` exist yet (bot.lookup is built elsewhere)."""
    try:
        from bot import lookup
    except ImportError:
        return False
    return hasattr(lookup, "INFO") and hasattr(lookup, "FIND")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.lookup", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--runs", type=int, default=30, help="look-ups per case (each paired with a baseline call)"
    )
    parser.add_argument(
        "--latency", type=float, default=0.1, help="seconds injected per Google request"
    )
    args = parser.parse_args(argv)
    if not slack_path_ready():
        print("bot.lookup has no `info`/`find` yet: run again once it lands (nothing measured).")
        return 1

    from bot.sandbox.testing import androidmanagement, directory

    with sandbox_and_emulator(chrome=3000, android=2000) as (sandbox, emu, arrivals, tmp):
        bot = separate_bot(sandbox, emu, tmp)
        with bot:
            admin = directory(sandbox.url).chromeosdevices()
            amapi = androidmanagement(sandbox.url).enterprises().devices()
            chrome = chrome_serials(sandbox, args.runs)
            android = android_serials(sandbox, args.runs)
            users = unique_chrome_users(sandbox, args.runs)
            name_of = {
                d["hardwareInfo"]["serialNumber"]: d["name"] for d in sandbox.fleet.android.values()
            }

            def slack(text: str) -> Callable[[], float]:
                def run() -> float:
                    before = arrivals.count()
                    started = time.perf_counter()
                    reply = emu.slash_command(OPERATOR, text)
                    assert reply.status == 200, reply
                    return arrivals.wait(before + 1) - started

                return run

            def bare(request: Any) -> Callable[[], float]:
                def run() -> float:
                    started = time.perf_counter()
                    request.execute()
                    return time.perf_counter() - started

                return run

            cases: list[tuple[str, str, list[tuple[Callable[[], float], Callable[[], float]]]]] = [
                (
                    "info <Chrome serial>",
                    "chromeosdevices.list id:",
                    [
                        (
                            slack(f"info {s}"),
                            bare(
                                admin.list(
                                    customerId="my_customer",
                                    query=f"id:{s}",
                                    projection="FULL",
                                    maxResults=50,
                                )
                            ),
                        )
                        for s in chrome
                    ],
                ),
                (
                    "info <Android serial>",
                    "devices.get",
                    [(slack(f"info {s}"), bare(amapi.get(name=name_of[s]))) for s in android],
                ),
                (
                    "find user:<email>",
                    "chromeosdevices.list user:",
                    [
                        (
                            slack(f"find user:{u}"),
                            bare(
                                admin.list(
                                    customerId="my_customer",
                                    query=f"user:{u}",
                                    projection="FULL",
                                    maxResults=20,
                                )
                            ),
                        )
                        for u in users
                    ],
                ),
            ]
            # warm-up at full speed: the Android index, per-thread services, connections
            for _, _, pairs in cases:
                for bot_run, bare_run in pairs[:5]:
                    bot_run()
                    bare_run()
            sandbox.faults.latency = args.latency
            rows = []
            verdicts = []
            for name, baseline, pairs in cases:
                bot_times: list[float] = []
                bare_times: list[float] = []
                requests: list[int] = []
                for i, (bot_run, bare_run) in enumerate(pairs):
                    order = (bot_run, bare_run) if i % 2 == 0 else (bare_run, bot_run)
                    for run in order:
                        if run is bot_run:
                            before = len(sandbox.log)
                            bot_times.append(run())
                            requests.append(len(sandbox.log) - before)
                        else:
                            bare_times.append(run())
                b, g = ms(bot_times), ms(bare_times)
                trips = int(b.median // (args.latency * 1000))
                r = ratio(b.median, g.median)
                verdicts.append(r <= TARGET_RATIO and trips == 1)
                rows.append(
                    [
                        name,
                        b.n,
                        b.median,
                        b.p99,
                        baseline,
                        g.median,
                        g.p99,
                        r,
                        ratio(b.p99, g.p99),
                        f"{sum(requests) / len(requests):.1f}",
                        trips,
                    ]
                )
            sandbox.faults.latency = 0.0
    print(machine())
    print(
        table(
            f"look-up path — signed request → answer posted at Slack, {args.latency * 1000:.0f} ms per Google request, "
            f"{args.runs} pairs per case",
            [
                "case",
                "n",
                "bot median ms",
                "bot p99 ms",
                "bare googleapiclient call",
                "bare median ms",
                "bare p99 ms",
                "ratio (median)",
                "ratio (p99)",
                "Google requests per look-up",
                "round trips on critical path",
            ],
            rows,
        )
    )
    print()
    print(
        f"target ratio ≤ {TARGET_RATIO} and 1 round trip on the critical path: {verdict(all(verdicts))}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
