"""Sustained load: signed requests at a steady rate, then the same with junk mixed in.

    python -m bench.load [--rate 200] [--junk 20] [--seconds 30] [--warmup 10] [--info-share 0.1]

The bot runs as `python -m bot` in a process of its own (the sandbox Google and the Slack
emulator in this one), on loopback. After `--warmup` seconds of clean load (not reported),
two phases of `--seconds` each, one after the other on the same bot process:

1. clean: `--rate` signed slash commands a second (`/device help`, and `/device info
   <serial>` for `--info-share` of them, which asks Google);
2. mixed: the same, plus `--junk` bad requests a second, in turn: a 200 MB Content-Length
   (the body is sent until the bot answers), a chunked body past the cap, an unsigned body
   just under the cap, a signed body that is not UTF-8, and a signed body that is not JSON.

Requests leave on a fixed schedule (open loop) from a bounded pool; the generator stops
by itself after the phase. Reported per phase: requests sent and the rate achieved, the
signed requests' acknowledgement times (HTTP round trip) and non-200 answers, the junk's
answers by status, answers posted to Slack, and the bot's peak RSS (VmHWM). Target: no
signed request refused, p99 ack in the mixed phase near the clean one, peak RSS no higher
than under clean load.
"""

from __future__ import annotations

import argparse
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench.common import (
    OPERATOR,
    SIGNING_SECRET,
    chrome_serials,
    machine,
    ms,
    sandbox_and_emulator,
    separate_bot,
    table,
    verdict,
    wait_until,
)
from bot.playground.raw_http import pieces, post, sign

CAP = 1 << 20  # the bot's default MAX_BODY_BYTES
MB = 1 << 20


# ---- the junk ---------------------------------------------------------------------------------


def _chunked(total: int) -> Iterator[bytes]:
    for piece in pieces(total):
        yield b"%x\r\n" % len(piece) + piece + b"\r\n"
    yield b"0\r\n\r\n"


FORM = "application/x-www-form-urlencoded"
JUST_UNDER = b"payload=" + b"x" * (CAP - 100)


def junk_kinds(url: str) -> list[tuple[str, Callable[[], int]]]:
    """The bad requests, each a callable returning the HTTP status the bot answered."""
    not_utf8 = b"payload=\xff\xfe\xfd"
    not_json = b'{"type": "block_actions", '
    return [
        (
            "200 MB by Content-Length",
            lambda: post(url, {"Content-Length": 200 * MB, "Content-Type": FORM}, pieces(4 * MB)),
        ),
        (
            "chunked past the cap",
            lambda: post(
                url, {"Transfer-Encoding": "chunked", "Content-Type": FORM}, _chunked(4 * MB)
            ),
        ),
        (
            "unsigned, just under the cap",
            lambda: post(
                url,
                {"Content-Length": len(JUST_UNDER), "Content-Type": FORM},
                iter([JUST_UNDER]),
            ),
        ),
        (
            "signed, not UTF-8",
            lambda: post(
                url,
                {
                    "Content-Length": len(not_utf8),
                    "Content-Type": FORM,
                    **sign(not_utf8, SIGNING_SECRET),
                },
                iter([not_utf8]),
            ),
        ),
        (
            "signed, not JSON",
            lambda: post(
                url,
                {
                    "Content-Length": len(not_json),
                    "Content-Type": "application/json",
                    **sign(not_json, SIGNING_SECRET),
                },
                iter([not_json]),
            ),
        ),
    ]


# ---- one phase ------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    seconds: float
    sent: int = 0
    acks: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    junk: Counter[tuple[str, int]] = field(default_factory=Counter)
    answers: int = 0
    peak_rss_mb: float = math.nan
    rss_mb: float = math.nan
    threads: int = 0
    took: float = math.nan
    lock: threading.Lock = field(default_factory=threading.Lock)


def run_phase(
    phase: Phase,
    send_signed: Callable[[int], tuple[int, float]],
    junk: list[tuple[str, Callable[[], int]]],
    rate: float,
    junk_rate: float,
) -> None:
    """Send on a fixed schedule for `phase.seconds` (open loop); wait for the stragglers."""
    total = int(rate * phase.seconds)
    total_junk = int(junk_rate * phase.seconds)
    schedule = sorted(
        [(i / rate, "signed", i) for i in range(total)]
        + [(i / junk_rate, "junk", i) for i in range(total_junk)]
    )

    def signed(i: int) -> None:
        status, elapsed = send_signed(i)
        with phase.lock:
            phase.statuses[status] += 1
            if status == 200:
                phase.acks.append(elapsed)

    def bad(i: int) -> None:
        name, call = junk[i % len(junk)]
        status = call()
        with phase.lock:
            phase.junk[name, status] += 1

    with ThreadPoolExecutor(max_workers=96, thread_name_prefix="load") as pool:
        started = time.perf_counter()
        for at, kind, i in schedule:
            delay = started + at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)  # the open-loop schedule itself, not a wait for work
            pool.submit(signed if kind == "signed" else bad, i)
            phase.sent += 1
        # leaving the block waits for the requests in flight (each has a 30 s timeout)
    phase.took = time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rate", type=float, default=200.0, help="signed requests a second")
    parser.add_argument("--junk", type=float, default=20.0, help="bad requests a second (mixed)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of clean load first")
    parser.add_argument("--info-share", type=float, default=0.1, help="share of /device info")
    args = parser.parse_args(argv)

    phases = [Phase("clean", args.seconds), Phase("mixed", args.seconds)]
    with sandbox_and_emulator(chrome=300, android=200) as (sandbox, emu, arrivals, tmp):
        emu.delivery_timeout = 30.0
        with separate_bot(sandbox, emu, tmp, LOG_LEVEL="WARNING") as bot:
            serials = chrome_serials(sandbox, 50)
            every = max(1, round(1 / args.info_share)) if args.info_share > 0 else 0

            def send_signed(i: int) -> tuple[int, float]:
                text = f"info {serials[i % len(serials)]}" if every and i % every == 0 else "help"
                reply = emu.slash_command(OPERATOR, text)
                return reply.status, reply.elapsed

            junk = junk_kinds(bot.url)
            # warm-up, not reported: every pool thread of the bot started (a burst of look-ups
            # against a slow Google), then the full rate for a while: the threads, their
            # Google services, the Android index and the allocator's arenas at working size
            sandbox.faults.latency = 1.0
            burst_before = arrivals.count()
            with ThreadPoolExecutor(max_workers=300) as pool:
                list(pool.map(lambda s: emu.slash_command(OPERATOR, f"info {s}"), serials * 6))
            wait_until(lambda: arrivals.count() >= burst_before + 300, 60, "the burst's answers")
            sandbox.faults.latency = 0.0
            log_from = 0
            for phase in [Phase("warm-up", args.warmup), *phases]:
                if phase.name == "clean":  # the log of the measured phases only
                    log_from = len(bot.log_path.read_bytes().splitlines())
                before = arrivals.count()
                mixed = phase.name == "mixed"
                run_phase(phase, send_signed, junk if mixed else [], args.rate, args.junk * mixed)
                expected = before + phase.statuses[200]
                wait_until(lambda n=expected: arrivals.count() >= n, 60, "every answer posted")
                phase.answers = arrivals.count() - before
                status = bot.status()
                phase.peak_rss_mb = status["VmHWM"] / 1024
                phase.rss_mb = status["VmRSS"] / 1024
                phase.threads = status["Threads"]
            log_lines = bot.log_path.read_text(errors="replace").splitlines()[log_from:]

    print(machine())
    rows = []
    for phase in phases:
        stats = ms(phase.acks)
        signed_sent = sum(phase.statuses.values())
        non_200 = signed_sent - phase.statuses[200]
        rows.append(
            [
                phase.name,
                f"{signed_sent / phase.took:.0f}/s",
                signed_sent,
                stats.median,
                stats.p99,
                stats.max,
                non_200,
                phase.answers,
                sum(phase.junk.values()),
                phase.rss_mb,
                phase.peak_rss_mb,
                phase.threads,
            ]
        )
    print(
        table(
            f"load — {args.rate:g} signed requests/s for {args.seconds:g} s, then the same "
            f"with {args.junk:g} bad ones/s; bot in its own process",
            [
                "phase",
                "signed rate",
                "signed sent",
                "ack median ms",
                "ack p99 ms",
                "ack max ms",
                "signed non-200",
                "answers posted",
                "bad sent",
                "RSS MB",
                "peak RSS MB",
                "threads",
            ],
            rows,
        )
    )
    print()
    mixed = phases[1]
    junk_rows = [[name, status, count] for (name, status), count in sorted(mixed.junk.items())]
    print(
        table(
            "load — the bad requests' answers (mixed phase)", ["request", "status", "n"], junk_rows
        )
    )
    refusals = [ln for ln in log_lines if "refused" in ln and "/slack/events" in ln]
    tracebacks = sum("Traceback" in ln for ln in log_lines)
    print()
    clean, mixed = phases
    grown = mixed.peak_rss_mb - clean.peak_rss_mb
    ok_signed = all(p.statuses[200] == sum(p.statuses.values()) for p in phases)
    expected_junk = {
        "200 MB by Content-Length": 413,
        "chunked past the cap": 413,
        "unsigned, just under the cap": 401,
        "signed, not UTF-8": 400,
        "signed, not JSON": 400,
    }
    ok_junk = all(expected_junk[name] == status for (name, status) in mixed.junk)
    print(
        table(
            "load — verdict",
            ["check", "measured", ""],
            [
                [
                    "every signed request answered 200",
                    f"{'yes' if ok_signed else 'no'}",
                    verdict(ok_signed),
                ],
                [
                    "each bad request refused with its status",
                    f"{'yes' if ok_junk else 'no'}",
                    verdict(ok_junk),
                ],
                ["peak RSS growth, mixed over clean", f"{grown:+.1f} MB", verdict(grown < 20)],
                [
                    "ack p99, mixed / clean",
                    f"{ms(mixed.acks).p99 / ms(clean.acks).p99:.2f}",
                    "",
                ],
                [
                    "bot log of the phases: refusals / tracebacks",
                    f"{len(refusals)} / {tracebacks}",
                    verdict(tracebacks == 0),
                ],
            ],
        )
    )
    if tracebacks:
        first = next(i for i, ln in enumerate(log_lines) if "Traceback" in ln)
        print(
            "\nFirst traceback in the bot's log:\n\n```\n"
            + "\n".join(log_lines[first - 1 : first + 40])
            + "\n```"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
