"""Acknowledgement latency beside a bare Bolt app: 50 slash commands + 50 clicks at once.

    python -m bench.ack [--rounds 10] [--latency 5] [--commands 50] [--clicks 50]
                        [--load process|threads]

Two peers, each in a process of its own and served the same way (waitress, the bot's HTTP
thread count): `python -m bot`, against a sandbox Google made `--latency` s slow, and a
minimal bolt-python app whose listeners only ack. The sandbox Google runs in a third
process: the bot's Google calls after its acks must not compete with the Slack emulator
(this process) for one GIL — the minimal app makes none, so that would weigh on the bot's
side only. Each round releases one burst at each peer in turn: half
`/device info <serial>` slash commands, half *Refresh* clicks on device cards. The Slack
emulator builds and signs each request; a load generator in a process of its own
(`bench/burst_client.py`) sends them all at one instant and times each HTTP exchange
(connect → the answer's last byte), outside the GIL of the emulator and of the peers, as
Slack's senders are (`--load threads` sends them from a thread each in this process, the
method of the earlier figures, which the emulator's own threads then compete with). The order
alternates per round (bot first, then the minimal app first) so that drift of the shared
machine falls on both. After the bot's burst the benchmark waits until every answer has
reached Slack (the work done after the ack), and before each burst until both peers are
quiet (`settle`; the bot writes down what it did after its answers have reached Slack), so
each burst starts on a quiet bot and a quiet minimal app.

The machine may run other work: each burst notes the CPU the rest of the machine used
while it ran (neither peer, nor this process, nor the load generator, nor the sandbox), as a share of all cores —
the column "others' CPU" — so a round whose ratio is off can be told apart from a round
the rest of the machine disturbed.

Absolute times depend on what else the machine runs; the ratio bot / minimal of the same
round does not, or much less. Targets: p50 and p99 ratios ≤ 1.3 in every round; no bot
burst with p99 over 2× the median burst's p99; every request answered 200.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.burst_client import BurstClient
from bench.common import (
    BOT_TOKEN,
    OPERATOR,
    SIGNING_SECRET,
    Arrivals,
    PipedChild,
    Stats,
    chrome_serials,
    cpu_seconds,
    machine,
    ms,
    ratio,
    separate_bot,
    table,
    verdict,
    wait_until,
)

TARGET_RATIO = 1.3
TARGET_SPREAD = 2.0  # worst burst's p99 / median burst's p99


# ---- the peer: a minimal Bolt app --------------------------------------------------------


def serve_minimal(port: int, threads: int, slack_api_url: str) -> None:
    """A bolt-python app whose listeners only ack, behind waitress (blocks)."""
    import re

    from slack_bolt import App
    from slack_bolt.adapter.wsgi import SlackRequestHandler
    from slack_sdk import WebClient
    from waitress.server import create_server

    app = App(
        signing_secret=SIGNING_SECRET,
        token=BOT_TOKEN,
        client=WebClient(token=BOT_TOKEN, base_url=slack_api_url),
        token_verification_enabled=False,
    )

    @app.command(re.compile(".*"))
    def command(ack: Any) -> None:
        ack()

    @app.action(re.compile(".*"))
    def action(ack: Any) -> None:
        ack()

    handler = SlackRequestHandler(app)

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        return handler(environ, start_response)

    create_server(wsgi, host="127.0.0.1", port=port, threads=threads, asyncore_use_poll=True).run()


@contextmanager
def minimal_bolt(slack_api_url: str, threads: int, workdir: Path) -> Iterator[tuple[str, int]]:
    """The minimal Bolt app in a process of its own; yields its events URL and pid."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    log = (workdir / "minimal-bolt.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.ack",
            "--serve-minimal",
            str(port),
            "--threads",
            str(threads),
            "--slack-api-url",
            slack_api_url,
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the minimal Bolt app exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    try:
        wait_until(healthy, 30, "the minimal Bolt app's /healthz")
        yield url + "/slack/events", proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# ---- the sandbox Google in a process of its own -------------------------------------------


def serve_sandbox(serials: int) -> None:
    """The sandbox Google; prints its address and `serials` Chrome serials as one JSON line,
    then obeys `latency <seconds>` lines on stdin (answers `ok`) until stdin closes."""
    from bot.sandbox import Sandbox

    sandbox = Sandbox(chrome=300, android=200, seed=11, command_delay=3600.0).start()
    about = {
        "url": sandbox.url,
        "customer": sandbox.customer_id,
        "enterprise": sandbox.enterprise,
        "serials": chrome_serials(sandbox, serials),
    }
    print(json.dumps(about), flush=True)
    for line in sys.stdin:
        command, _, value = line.strip().partition(" ")
        if command == "latency":
            sandbox.faults.latency = float(value)
            print("ok", flush=True)
    sandbox.stop()


class SandboxProcess(PipedChild):
    """`serve_sandbox` in a child process: what `separate_bot` needs, and its latency knob."""

    def __init__(self, serials: int) -> None:
        super().__init__("bench.ack", "--serve-sandbox", str(serials))
        about = json.loads(self.read())
        self.url, self.customer_id = about["url"], about["customer"]
        self.enterprise, self.serials = about["enterprise"], about["serials"]

    def latency(self, seconds: float) -> None:
        if self.ask(f"latency {seconds}") != "ok":
            raise RuntimeError("the sandbox process did not take the latency")


@contextmanager
def sandbox_process(serials: int) -> Iterator[SandboxProcess]:
    proc = SandboxProcess(serials)
    try:
        yield proc
    finally:
        proc.stop()


@contextmanager
def emulator() -> Iterator[tuple[Any, Arrivals, Path]]:
    """The Slack emulator in this process, its answer stream, and a scratch directory."""
    from bot.playground.slack_emulator import SlackEmulator

    emu = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN).start()
    emu.delivery_timeout = 30.0
    arrivals = Arrivals(emu)
    try:
        with tempfile.TemporaryDirectory(prefix="device-bot-bench-") as tmp:
            yield emu, arrivals, Path(tmp)
    finally:
        arrivals.close()
        emu.stop()


@contextmanager
def burst_client(wanted: bool) -> Iterator[BurstClient | None]:
    """The load generator process (`--load process`), or None (`--load threads`)."""
    client = BurstClient() if wanted else None
    try:
        yield client
    finally:
        if client is not None:
            client.close()


# ---- one burst ---------------------------------------------------------------------------


class Burst:
    """One burst's acknowledgement times (s) and statuses."""

    def __init__(self) -> None:
        self.acks: list[float] = []
        self.statuses: list[int] = []
        self.at = 0.0  # wall-clock time of the release (to match a peer's own logs)
        self.cpu = 0.0  # CPU seconds the peer's process used from the release to the last ack
        # the same read by the load generator at the instant of the last answer (--load
        # process; the above is read here a moment later, after the answers reached this
        # process), or None
        self.cpu_answered: float | None = None
        self.settled = 0.0  # seconds waited for the peers to be quiet before the release
        # CPU seconds the rest of the machine (not the peer, not this load generator) used
        # from the release to the last ack, and how long that was
        self.others = 0.0
        self.span = 0.0

    @property
    def stats(self) -> Stats:
        return ms(self.acks)

    @property
    def non_200(self) -> int:
        return sum(1 for s in self.statuses if s != 200)


#: a peer is quiet when it used at most QUIET_CPU of CPU over QUIET_WINDOW seconds
QUIET_WINDOW = 0.2
QUIET_CPU = 0.02
#: how often `--repeat-disturbed` runs a round again at most
MAX_REPEATS = 3


def settle(pids: list[int], timeout: float = 10.0) -> float:
    """Wait until every process in `pids` is quiet (at most QUIET_CPU seconds of CPU over
    QUIET_WINDOW): the bot's answers reach Slack before it has finished writing down what it
    did, and a burst released then would pay for that. The seconds waited."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        before = [cpu_seconds(p) for p in pids]
        time.sleep(QUIET_WINDOW)
        used = max(cpu_seconds(p) - b for p, b in zip(pids, before, strict=True))
        if used <= QUIET_CPU or time.monotonic() >= deadline:
            return time.monotonic() - start


def machine_busy() -> float:
    """CPU seconds the whole machine has spent in processes so far, or stolen by the host
    (/proc/stat). Interrupts are left out: the loopback traffic of the peers' own requests
    is counted there, and to no process."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + steal) / os.sysconf("SC_CLK_TCK")


def burst(
    emu: Any,
    pid: int,
    url: str,
    serials: list[str],
    cards: list[dict[str, Any]],
    arrivals: Any = None,
    timeout: float = 120.0,
    quiet: list[int] | None = None,
    also: tuple[int, ...] = (),
    client: BurstClient | None = None,
) -> Burst:
    """Release every request at once at `url`; with `arrivals`, also wait for every answer.
    With `client`, the requests are signed here and sent by that process (`--load process`);
    without, by a thread each in this one (`--load threads`). With `quiet`, first wait until
    those processes are quiet (`settle`). The CPU the rest of the machine used meanwhile
    leaves out the peer, this process, the client, `quiet` and `also`."""
    emu.bot_url = url
    out = Burst()
    n = len(serials) + len(cards)
    before = arrivals.count() if arrivals is not None else 0
    if client is not None:
        release = _from_client(emu, client, pid, url, serials, cards, out)
        also = (*also, client.pid)
    else:
        release = _from_threads(emu, serials, cards, out)
    if quiet:
        out.settled = settle(quiet)
    gc.collect()
    gc.disable()  # the load generator must not pause mid-burst and blame the peer for it
    try:
        ours = [os.getpid(), *(p for p in quiet or [] if p != pid), *also]
        cpu, own, busy = cpu_seconds(pid), [cpu_seconds(p) for p in ours], machine_busy()
        out.at = time.time()
        release()
        out.cpu = cpu_seconds(pid) - cpu
        ours_used = sum(cpu_seconds(p) - o for p, o in zip(ours, own, strict=True))
        out.others = machine_busy() - busy - out.cpu - ours_used
        out.span = time.time() - out.at
    finally:
        gc.enable()
    if arrivals is not None:
        arrivals.wait(before + n, timeout=timeout)
    return out


def _gestures(emu: Any, serials: list[str], cards: list[dict[str, Any]]) -> list[Any]:
    """A burst's requests, one callable each: `/device info <serial>`, *Refresh* on a card."""
    from bot import ids

    def command(serial: str) -> Any:
        return lambda: emu.slash_command(OPERATOR, f"info {serial}")

    def click(card: dict[str, Any]) -> Any:
        return lambda: emu.click(OPERATOR, ids.ActionId.SHOW_DEVICE, message=card)

    return [command(s) for s in serials] + [click(c) for c in cards]


def _from_threads(emu: Any, serials: list[str], cards: list[dict[str, Any]], out: Burst) -> Any:
    """A thread per request in this process, held at a barrier; the release lets them go and
    waits for every answer. Each thread signs its request after the release, as before."""
    gestures = _gestures(emu, serials, cards)
    barrier = threading.Barrier(len(gestures) + 1)
    lock = threading.Lock()

    def send(gesture: Any) -> None:
        barrier.wait()
        reply = gesture()
        with lock:
            out.acks.append(reply.elapsed)
            out.statuses.append(reply.status)

    threads = [threading.Thread(target=send, args=(g,)) for g in gestures]
    for t in threads:
        t.start()

    def release() -> None:
        barrier.wait()
        for t in threads:
            t.join()

    return release


def _from_client(
    emu: Any,
    client: BurstClient,
    pid: int,
    url: str,
    serials: list[str],
    cards: list[dict[str, Any]],
    out: Burst,
) -> Any:
    """The requests signed now and handed to the burst client; the release sends them."""
    with emu.preparing() as prepared:
        for gesture in _gestures(emu, serials, cards):
            gesture()
    client.load(url, prepared)

    def release() -> None:
        results, out.cpu_answered = client.go(pid)
        for elapsed, status in results:
            out.acks.append(elapsed)
            out.statuses.append(status)

    return release


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


# ---- the report --------------------------------------------------------------------------


def _answered(b: Burst) -> str:
    """The CPU to the last answer, when the load generator read it, for the progress lines."""
    return "" if b.cpu_answered is None else f" ({b.cpu_answered * 1000:.0f} to the last answer)"


def _share(b: Burst) -> float:
    """The rest of the machine's CPU during a burst, as a share of all cores' time."""
    return b.others / max(b.span * (os.cpu_count() or 1), 1e-9)


def report(
    rounds: list[tuple[Burst, Burst]],
    commands: int,
    clicks: int,
    latency: float,
    load: str = "process",
) -> tuple[str, bool]:
    """The per-round table and the verdict lines; and whether every target is met."""
    rows = []
    ratios_ok = True
    for i, (bot, bare) in enumerate(rounds, 1):
        b, m = bot.stats, bare.stats
        r50, r99 = ratio(b.median, m.median), ratio(b.p99, m.p99)
        ok = r50 <= TARGET_RATIO and r99 <= TARGET_RATIO
        ratios_ok &= ok
        rows.append(
            [
                i,
                "bot" if i % 2 else "minimal",
                b.median,
                b.p99,
                m.median,
                m.p99,
                f"{r50:.2f}",
                f"{r99:.2f}" + ("" if ok else " ✗"),
                f"{bot.cpu * 1000:.1f} / {bare.cpu * 1000:.1f}",
                f"{_share(bot):.0%} / {_share(bare):.0%}",
                bot.non_200 + bare.non_200,
            ]
        )
    text = [
        table(
            f"ack — {commands} slash commands + {clicks} clicks at once, bot (Google "
            f"{latency:g} s slow) vs a minimal Bolt app; one burst each per round; sent by "
            + ("a load generator process" if load == "process" else "a thread each"),
            [
                "round",
                "first",
                "bot p50 ms",
                "bot p99 ms",
                "minimal p50 ms",
                "minimal p99 ms",
                "ratio p50",
                "ratio p99",
                "CPU ms bot / minimal",
                "others' CPU bot / minimal",
                "non-200",
            ],
            rows,
        ),
        "",
    ]
    all_ok = True
    for name, side in (("bot", 0), ("minimal", 1)):
        p99s = [r[side].stats.p99 for r in rounds]
        p50s = [r[side].stats.median for r in rounds]
        median_p99 = statistics.median(p99s)
        worst = max(range(len(p99s)), key=lambda k: p99s[k])
        spread = ratio(p99s[worst], median_p99)
        flagged = [k + 1 for k, p in enumerate(p99s) if p > TARGET_SPREAD * median_p99]
        pooled = ms([x for r in rounds for x in r[side].acks])
        text.append(
            f"{name}: median of the bursts' p50 {statistics.median(p50s):.1f} ms, of their p99 "
            f"{median_p99:.1f} ms; all {pooled.n} requests p50 {pooled.median:.1f} ms, p99 "
            f"{pooled.p99:.1f} ms; worst burst: round {worst + 1}, p99 {p99s[worst]:.1f} ms "
            f"= {spread:.2f} × the median burst's"
            + (
                f" — over {TARGET_SPREAD:g}×: round {', '.join(map(str, flagged))}"
                if flagged
                else ""
            )
        )
        if name == "bot":
            all_ok &= not flagged
    cpu_bot = statistics.median(b.cpu for b, _ in rounds) * 1000
    cpu_bare = statistics.median(m.cpu for _, m in rounds) * 1000
    text.append(
        f"CPU per burst (release to last answer), median: bot {cpu_bot:.1f} ms, minimal "
        f"{cpu_bare:.1f} ms, ratio {ratio(cpu_bot, cpu_bare):.2f}"
    )
    answered = [(b.cpu_answered, m.cpu_answered) for b, m in rounds]
    if all(b is not None and m is not None for b, m in answered):
        to_bot = statistics.median(b or 0.0 for b, _ in answered) * 1000
        to_bare = statistics.median(m or 0.0 for _, m in answered) * 1000
        text.append(
            f"CPU to the instant of the last answer (read by the load generator), median: bot "
            f"{to_bot:.1f} ms, minimal {to_bare:.1f} ms, ratio {ratio(to_bot, to_bare):.2f}"
        )
    ratio50 = [ratio(b.stats.median, m.stats.median) for b, m in rounds]
    ratio99 = [ratio(b.stats.p99, m.stats.p99) for b, m in rounds]
    statuses_ok = all(b.non_200 == 0 and m.non_200 == 0 for b, m in rounds)
    all_ok &= ratios_ok and statuses_ok
    text.append(
        f"ratio bot/minimal p50 {min(ratio50):.2f}–{max(ratio50):.2f} (median "
        f"{statistics.median(ratio50):.2f}), p99 {min(ratio99):.2f}–{max(ratio99):.2f} (median "
        f"{statistics.median(ratio99):.2f})"
    )
    text.append(
        f"target p50 and p99 ratios ≤ {TARGET_RATIO:g} in every round, no bot burst's p99 over "
        f"{TARGET_SPREAD:g}× the median burst's, all 200: {verdict(all_ok)}"
    )
    return "\n".join(text), all_ok


# ---- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.ack", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rounds", type=int, default=10, help="rounds of one burst per peer")
    parser.add_argument(
        "--latency", type=float, default=5.0, help="seconds added to every Google request"
    )
    parser.add_argument("--commands", type=int, default=50)
    parser.add_argument("--clicks", type=int, default=50)
    parser.add_argument(
        "--no-settle",
        action="store_true",
        help="release each burst without waiting for both peers to be quiet",
    )
    parser.add_argument(
        "--repeat-disturbed",
        type=float,
        default=0.0,
        metavar="SHARE",
        help=f"run a round's pair of bursts again (up to {MAX_REPEATS} times) when the rest of "
        "the machine used more than SHARE (0–1) of the cores during either; the pairs set "
        "aside are printed",
    )
    parser.add_argument(
        "--load",
        choices=("process", "threads"),
        default="process",
        help="who sends a burst: a load generator process of its own, signed requests "
        "released at one instant from one thread (default); or a thread per request in this "
        "process, which also runs the Slack emulator (the method until session 5)",
    )
    parser.add_argument("--serve-minimal", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--serve-sandbox", type=int, metavar="SERIALS", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--slack-api-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_minimal:
        serve_minimal(args.serve_minimal, args.threads, args.slack_api_url)
        return 0
    if args.serve_sandbox:
        serve_sandbox(args.serve_sandbox)
        return 0

    from bot.server import HTTP_THREADS

    rounds: list[tuple[Burst, Burst]] = []
    with (
        emulator() as (emu, arrivals, tmp),
        sandbox_process(args.commands + args.clicks) as sandbox,
        separate_bot(sandbox, emu, tmp, GOOGLE_TIMEOUT="60") as bot,
        minimal_bolt(emu.api_url, HTTP_THREADS, tmp) as (bare_url, bare_pid),
        burst_client(args.load == "process") as client,
    ):
        bot_url = bot.url + "/slack/events"
        serials = sandbox.serials
        cards = _cards(emu, arrivals, serials[args.commands :])
        commands = serials[: args.commands]
        timeout = args.latency * 10 + 60
        # both peers quiet before either's burst (unless --no-settle): the same start for both
        quiet = [] if args.no_settle else [bot.pid, bare_pid]
        also = (sandbox.pid,)

        def on_bot() -> Burst:
            sandbox.latency(args.latency)
            try:
                return burst(
                    emu, bot.pid, bot_url, commands, cards, arrivals, timeout, quiet, also, client
                )
            finally:
                sandbox.latency(0.0)

        def on_bare() -> Burst:
            return burst(
                emu, bare_pid, bare_url, commands, cards, quiet=quiet, also=also, client=client
            )

        on_bot(), on_bare()  # warm-up: threads, connections, per-thread Google services
        disturbed: list[tuple[int, Burst, Burst]] = []
        for i in range(args.rounds):
            for attempt in range(1 + (MAX_REPEATS if args.repeat_disturbed else 0)):
                if i % 2 == 0:
                    b = on_bot()
                    m = on_bare()
                else:
                    m = on_bare()
                    b = on_bot()
                print(
                    f"round {i + 1}{'' if attempt == 0 else f' again ({attempt})'} "
                    f"(bot at {b.at:.3f}, minimal at {m.at:.3f}): bot p50 {b.stats.median:.1f} "
                    f"p99 {b.stats.p99:.1f} ms, CPU {b.cpu * 1000:.0f}{_answered(b)} ms; minimal "
                    f"p50 {m.stats.median:.1f} p99 {m.stats.p99:.1f} ms, CPU "
                    f"{m.cpu * 1000:.0f}{_answered(m)} ms; "
                    f"waited for quiet {b.settled * 1000:.0f} / {m.settled * 1000:.0f} ms, "
                    f"others' CPU {_share(b):.0%} / {_share(m):.0%}, "
                    f"load {os.getloadavg()[0]:.2f}",
                    file=sys.stderr,
                    flush=True,
                )
                limit = args.repeat_disturbed
                if not limit or max(_share(b), _share(m)) <= limit or attempt == MAX_REPEATS:
                    break
                disturbed.append((i + 1, b, m))
            rounds.append((b, m))
    text, _ = report(rounds, args.commands, args.clicks, args.latency, args.load)
    print(machine())
    print(text)
    if args.repeat_disturbed:
        print(
            f"{len(disturbed)} pair(s) of bursts run again because the rest of the machine used "
            f"over {args.repeat_disturbed:.0%} of the cores during one of them (at most "
            f"{MAX_REPEATS} per round):"
            + "".join(
                f"\n  round {n}: bot p50 {b.stats.median:.1f} p99 {b.stats.p99:.1f} ms "
                f"(others {_share(b):.0%}), minimal p50 {m.stats.median:.1f} p99 "
                f"{m.stats.p99:.1f} ms (others {_share(m):.0%}), ratio "
                f"{ratio(b.stats.median, m.stats.median):.2f} / {ratio(b.stats.p99, m.stats.p99):.2f}"
                for n, b, m in disturbed
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
