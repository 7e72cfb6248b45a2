"""Every benchmark, one after the other, each in a fresh process; prints their tables.

    python -m bench.run_all [--only ack,lookup] [--output results.md]

The output is Markdown (the README section pastes it as is). Total time on a 2-core
machine: under 5 minutes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from bench.common import machine

BENCHMARKS = (
    "ack",
    "lookup",
    "fleet",
    "fairness",
    "export",
    "stats",
    "bulk",
    "polling",
    "stores",
    "memory",
    "gc_pause",
    "startup",
)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; exit status 1 if one of them failed to run."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.run_all", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(BENCHMARKS))
    parser.add_argument("--output", type=Path, help="also write the Markdown to this file")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    root = Path(__file__).resolve().parent.parent
    parts = [f"Measured {machine()}.", ""]
    failed = False
    started = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", f"bench.{name}"], cwd=root, capture_output=True, text=True
        )
        took = time.perf_counter() - t0
        lines = [ln for ln in proc.stdout.splitlines() if not ln.startswith(("20", "WARNING"))]
        section = [f"#### `python -m bench.{name}` ({took:.0f} s)", "", *lines, ""]
        if proc.returncode != 0:
            failed = True
            section += ["```", proc.stderr[-3000:], "```", ""]
        print("\n".join(section), flush=True)
        parts += section
    parts.append(f"Total: {time.perf_counter() - started:.0f} s.")
    print(parts[-1])
    if args.output:
        args.output.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
