"""Fairness of the look-up pool: another user's `/device info` while a big `/device move`
resolves its devices, against the same look-ups with nothing else going on.

    python -m bench.fairness [--devices 1500] [--runs 20] [--latency 0.1] [--interval 0.25]

The bot runs as its own process (`python -m bot`), Google is the sandbox with `--latency`
seconds per request. One operator sends `/device move /Sales <N serials>` (N Chrome
look-ups of 2 Google queries each, plus N Android index reads); once its look-ups are going
out, an approver sends `--runs` `/device info <serial>`, one every `--interval` seconds
whatever the answers do (open loop), and the same look-ups again with nothing else going
on. Latency: the signed slash command → the answer posted at Slack. Targets: with the move
in flight the median is within 1.5 × the median without it, the p99 under one second, and
the move is still resolving when the last look-up is answered (the look-ups overlapped it).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any

from bench.common import (
    APPROVER,
    OPERATOR,
    chrome_serials,
    machine,
    ms,
    ratio,
    sandbox_and_emulator,
    separate_bot,
    table,
    verdict,
    wait_until,
)

#: the Directory API's device list, as the sandbox logs it
CHROME_LIST = "devices/chromeos?"
TARGET_RATIO = 1.5
TARGET_P99_MS = 1000.0


class Answers:
    """When the answer naming each serial reached Slack (perf_counter), from the emulator."""

    def __init__(self, emu: Any) -> None:
        self.emu = emu
        self.cond = threading.Condition()
        self.at: dict[str, float] = {}
        self.waiting: set[str] = set()
        self._unsubscribe = emu.subscribe(self._on_event)

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("kind") != "response_url":
            return
        now = time.perf_counter()
        text = json.dumps(self.emu.responses[-1].body)
        with self.cond:
            for serial in [s for s in self.waiting if s in text]:
                self.waiting.discard(serial)
                self.at[serial] = now
            self.cond.notify_all()

    def expect(self, serial: str) -> None:
        with self.cond:
            self.waiting.add(serial)

    def wait(self, serial: str, timeout: float = 120) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: serial in self.at, timeout):
                raise TimeoutError(f"no answer about {serial} within {timeout}s")
            return self.at.pop(serial)

    def close(self) -> None:
        self._unsubscribe()


def infos(emu: Any, answers: Answers, serials: list[str], interval: float) -> list[float]:
    """`/device info` of each serial by the approver, one every `interval` seconds whatever
    the answers do (open loop); the seconds from each slash command to its answer."""
    started: dict[str, float] = {}
    threads = []

    def send(serial: str) -> None:
        answers.expect(serial)
        started[serial] = time.perf_counter()
        reply = emu.slash_command(APPROVER, f"info {serial}")
        assert reply.status == 200, reply

    for serial in serials:
        thread = threading.Thread(target=send, args=(serial,))
        thread.start()
        threads.append(thread)
        time.sleep(interval)  # pacing the load generator, not waiting for work
    for thread in threads:
        thread.join()
    return [answers.wait(serial) - started[serial] for serial in serials]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.fairness", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--devices", type=int, default=1500, help="devices in the move")
    parser.add_argument("--runs", type=int, default=20, help="/device info look-ups per case")
    parser.add_argument(
        "--latency", type=float, default=0.1, help="seconds injected per Google request"
    )
    parser.add_argument(
        "--interval", type=float, default=0.25, help="seconds between two /device info"
    )
    args = parser.parse_args(argv)

    with sandbox_and_emulator(chrome=args.devices + 500, android=200) as (sandbox, emu, _, tmp):
        serials = chrome_serials(sandbox, args.devices + args.runs)
        info_serials = serials[: args.runs]
        move_serials = serials[args.runs :][: args.devices]
        env = {"MAX_DEVICES_PER_COMMAND": str(max(args.devices, 1))}
        answers = Answers(emu)
        with separate_bot(sandbox, emu, tmp, **env):
            infos(emu, answers, info_serials[:5], 0.05)  # warm-up at full speed
            sandbox.faults.latency = args.latency

            alone = infos(emu, answers, info_serials, args.interval)

            mark = emu.mark()
            queries_before = sandbox.log.count(path_contains=CHROME_LIST)
            move_started = time.perf_counter()
            reply = emu.slash_command(OPERATOR, "move /Sales " + " ".join(move_serials))
            assert reply.status == 200, reply
            wait_until(
                lambda: sandbox.log.count(path_contains=CHROME_LIST) - queries_before >= 100,
                60,
                "the move's look-ups going out",
            )
            during = infos(emu, answers, info_serials, args.interval)
            move_queries_then = sandbox.log.count(path_contains=CHROME_LIST)
            form = emu.wait_for_call(
                "views.update",
                where=lambda c: f"{len(move_serials)} devices" in str(c.args.get("view")),
                timeout=600,
                since=mark,
            )
            move_took = time.perf_counter() - move_started
            assert form.ok, form
            sandbox.faults.latency = 0.0
            answers.close()
            # each info above made 2 of these queries too (id: and asset_id:)
            total_move_queries = (
                sandbox.log.count(path_contains=CHROME_LIST) - queries_before - 2 * len(during)
            )
            in_flight = move_queries_then - queries_before - 2 * len(during) < total_move_queries

    a, d = ms(alone), ms(during)
    r = ratio(d.median, a.median)
    print(machine())
    print(
        table(
            f"fairness — `/device info` by one user, alone and while another user's move of "
            f"{args.devices} devices resolves; {args.latency * 1000:.0f} ms per Google request, "
            f"{args.runs} look-ups per case",
            ["case", "n", "median ms", "p99 ms", "max ms"],
            [
                ["info alone", a.n, a.median, a.p99, a.max],
                [f"info during a move of {args.devices}", d.n, d.median, d.p99, d.max],
            ],
        )
    )
    print()
    print(
        table(
            "fairness — targets",
            ["measure", "value", "target", ""],
            [
                ["median during / alone", r, f"≤ {TARGET_RATIO}", verdict(r <= TARGET_RATIO)],
                [
                    "p99 during (ms)",
                    d.p99,
                    f"< {TARGET_P99_MS:.0f}",
                    verdict(d.p99 < TARGET_P99_MS),
                ],
                [
                    "the move was still resolving when the last info was answered",
                    "yes" if in_flight else "no",
                    "yes",
                    verdict(in_flight),
                ],
                [
                    f"move of {args.devices}: slash command → its form (s)",
                    move_took,
                    "(recorded)",
                    "",
                ],
                [
                    "move: Google queries",
                    total_move_queries,
                    f"{2 * args.devices} (2 per device)",
                    "",
                ],
            ],
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
