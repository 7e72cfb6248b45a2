"""Acknowledgement latency: 50 signed slash commands + 50 button clicks at once, Google slow.

    python -m bench.ack [--rounds 3] [--latency 5] [--commands 50] [--clicks 50]

Each round releases every request at the same instant (a barrier), half `/device info
<serial>` slash commands, half *Refresh* clicks on device cards; the emulator times each
HTTP exchange (request sent → Slack's answer received). Rounds alternate between a fast
Google (0 s) and a slow one (`--latency` s injected on every Google request), so the
ratio compares the two side by side on the same machine state. After each round the
benchmark waits until every answer has reached Slack (the work done after the ack).
Target: every request answered 200, p99 acknowledgement ≤ 100 ms with Google slow.
"""

from __future__ import annotations

import argparse
import gc
import threading
import time
from typing import Any

from bench.common import (
    OPERATOR,
    chrome_serials,
    harness,
    machine,
    ms,
    ratio,
    sandbox_and_emulator,
    separate_bot,
    table,
    verdict,
)

TARGET_P99_MS = 100.0


def _round(
    h: Any, serials: list[str], cards: list[dict[str, Any]], latency: float
) -> tuple[list[float], list[float], list[int], float]:
    """One burst; returns (command acks, click acks, statuses, seconds until every answer)."""
    from bot import ids

    h.sandbox.faults.latency = latency
    n = len(serials) + len(cards)
    barrier = threading.Barrier(n + 1)
    command_acks: list[float] = []
    click_acks: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    before = h.arrivals.count()

    def command(serial: str) -> None:
        barrier.wait()
        reply = h.emu.slash_command(OPERATOR, f"info {serial}")
        with lock:
            command_acks.append(reply.elapsed)
            statuses.append(reply.status)

    def click(card: dict[str, Any]) -> None:
        barrier.wait()
        reply = h.emu.click(OPERATOR, ids.ActionId.SHOW_DEVICE, message=card)
        with lock:
            click_acks.append(reply.elapsed)
            statuses.append(reply.status)

    threads = [threading.Thread(target=command, args=(s,)) for s in serials]
    threads += [threading.Thread(target=click, args=(c,)) for c in cards]
    for t in threads:
        t.start()
    gc.collect()
    gc.disable()  # the load generator must not pause mid-burst and blame the bot for it
    try:
        barrier.wait()
        started = time.perf_counter()
        for t in threads:
            t.join()
    finally:
        gc.enable()
    last = h.arrivals.wait(before + n, timeout=latency * 10 + 60)
    h.sandbox.faults.latency = 0.0
    return command_acks, click_acks, statuses, last - started


def _cards(emu: Any, arrivals: Any, serials: list[str]) -> list[dict[str, Any]]:
    """Device cards to click *Refresh* on (built while Google is fast; builds the Android index)."""
    cards = []
    for serial in serials:
        before = arrivals.count()
        emu.slash_command(OPERATOR, f"info {serial}")
        arrivals.wait(before + 1)
        cards.append(
            next(e for e in reversed(emu.ephemerals(OPERATOR)) if serial in str(e.get("blocks")))
        )
    return cards


Run = tuple[list[float], list[float], list[int], float]


def _measure(
    h: Any, commands: list[str], cards: list[dict[str, Any]], rounds: int, latency: float
) -> dict[float, list[Run]]:
    results: dict[float, list[Run]] = {0.0: [], latency: []}
    _round(h, commands, cards, 0.0)  # warm-up: threads, per-thread Google services
    for _ in range(rounds):
        for lat in (0.0, latency):
            results[lat].append(_round(h, commands, cards, lat))
    return results


class _Target:
    """What `_round` needs: the emulator, the sandbox and the answer stream."""

    def __init__(self, emu: Any, sandbox: Any, arrivals: Any) -> None:
        self.emu, self.sandbox, self.arrivals = emu, sandbox, arrivals


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.ack", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="bursts per Google speed and bot mode"
    )
    parser.add_argument(
        "--latency", type=float, default=5.0, help="seconds added to every Google request"
    )
    parser.add_argument("--commands", type=int, default=50)
    parser.add_argument("--clicks", type=int, default=50)
    parser.add_argument("--mode", choices=("both", "process", "in-process"), default="both")
    args = parser.parse_args(argv)

    modes: dict[str, dict[float, list[Run]]] = {}
    if args.mode in ("both", "process"):
        with sandbox_and_emulator(chrome=300, android=200) as (sandbox, emu, arrivals, tmp):
            bot = separate_bot(sandbox, emu, tmp, GOOGLE_TIMEOUT="60")
            with bot:
                target = _Target(emu, sandbox, arrivals)
                serials = chrome_serials(sandbox, args.commands + args.clicks)
                cards = _cards(emu, arrivals, serials[args.commands :])
                modes["bot process"] = _measure(
                    target, serials[: args.commands], cards, args.rounds, args.latency
                )
    if args.mode in ("both", "in-process"):
        with harness(chrome=300, android=200) as h:
            serials = chrome_serials(h.sandbox, args.commands + args.clicks)
            cards = _cards(h.emu, h.arrivals, serials[args.commands :])
            modes["in-process"] = _measure(
                h, serials[: args.commands], cards, args.rounds, args.latency
            )

    rows = []
    summary: dict[tuple[str, float], Any] = {}
    for mode, results in modes.items():
        for latency, runs in results.items():
            cmd = [x for r in runs for x in r[0]]
            clk = [x for r in runs for x in r[1]]
            statuses = [x for r in runs for x in r[2]]
            done = [r[3] for r in runs]
            both = ms(cmd + clk)
            summary[mode, latency] = (both, statuses)
            non_200 = sum(1 for s in statuses if s != 200)
            for name, stats in (
                ("slash commands", ms(cmd)),
                ("button clicks", ms(clk)),
                ("all", both),
            ):
                last = f"{max(done):.1f} s" if name == "all" else ""
                rows.append(
                    [
                        mode,
                        f"{latency:g} s",
                        name,
                        stats.n,
                        stats.median,
                        stats.p99,
                        stats.max,
                        non_200 if name == "all" else "",
                        last,
                    ]
                )
    print(machine())
    print(
        table(
            f"ack — {args.commands} signed slash commands + {args.clicks} clicks at once; "
            f"{args.rounds} bursts per Google speed, alternated",
            [
                "bot",
                "Google latency",
                "requests",
                "n",
                "median ms",
                "p99 ms",
                "max ms",
                "non-200",
                "every answer posted after",
            ],
            rows,
        )
    )
    print()
    for mode in modes:
        (slow, slow_statuses), (fast, _) = summary[mode, args.latency], summary[mode, 0.0]
        ok = slow.p99 <= TARGET_P99_MS and all(s == 200 for s in slow_statuses)
        print(
            f"{mode}: ratio slow/fast Google median {ratio(slow.median, fast.median):.2f}, "
            f"p99 {ratio(slow.p99, fast.p99):.2f}; target p99 ≤ {TARGET_P99_MS:.0f} ms with "
            f"{args.latency:g} s Google latency, all 200: {verdict(ok)} (p99 {slow.p99:.1f} ms)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
