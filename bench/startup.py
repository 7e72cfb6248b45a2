"""Start-up time: `python -m bot` from exec to a healthy `/healthz`.

    python -m bench.startup [--runs 7]

Each run starts a fresh bot process (new SQLite file: migrations included) against a
sandbox Google in this process, polls GET /healthz every 5 ms until it answers 200, then
stops it with SIGTERM and times the graceful stop. Side by side: a bare interpreter
(`python -c pass`) and `python -c "import bot.server"` (imports alone), same runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from bench.common import BotProcess, machine, ms, ratio, sandbox_and_emulator, table


def _run(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=str(Path(__file__).resolve().parent.parent)
    )
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.startup", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    healthy, stops, bare, imports = [], [], [], []
    with sandbox_and_emulator(chrome=300, android=200) as (sandbox, emu, _arrivals, tmp):
        for i in range(args.runs):
            bare.append(_run("pass"))
            imports.append(_run("import bot.server"))
            workdir = tmp / f"run{i}"
            workdir.mkdir()
            bot = BotProcess(
                sandbox.url, sandbox.enterprise, sandbox.customer_id, emu.api_url, workdir
            )
            try:
                healthy.append(bot.wait_healthy())
            finally:
                t0 = time.perf_counter()
                bot.stop()
                stops.append(time.perf_counter() - t0)
    h, b, im, s = ms(healthy), ms(bare), ms(imports), ms(stops)
    print(machine())
    print(
        table(
            f"start-up — {args.runs} runs, each a new process and a new SQLite file",
            ["what", "n", "median ms", "p99 ms", "ratio to bare interpreter (median)"],
            [
                ["python -m bot → /healthz 200", h.n, h.median, h.p99, ratio(h.median, b.median)],
                [
                    "python -c 'import bot.server' (imports only)",
                    im.n,
                    im.median,
                    im.p99,
                    ratio(im.median, b.median),
                ],
                ["python -c pass (bare interpreter)", b.n, b.median, b.p99, 1.0],
                ["SIGTERM → process exited (graceful stop)", s.n, s.median, s.p99, ""],
            ],
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
