"""The cyclic garbage collector's pauses in the bot after bursts of look-ups.

    python -m bench.gc_pause [--bursts 2] [--size 100]

A collection holds the GIL: an acknowledgement that arrives during one waits for it to
end. The bot (in this process, as the end-to-end tests start it; the sandbox and the
Slack emulator are frozen out of the collector first) answers `--bursts` bursts of
`--size` `/device info` commands at once; then the objects the collector tracks are
counted and a middle and a full collection timed (CPU time of this thread), beside the
number of googleapiclient services the bot built and the Http objects it made.
"""

from __future__ import annotations

import argparse
import gc
import threading
import time

from bench.common import OPERATOR, chrome_serials, harness, machine, table


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.gc_pause", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--bursts", type=int, default=2)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args(argv)
    with harness() as h:
        gc.collect()
        gc.freeze()  # the sandbox and the emulator live in this process too: not the bot's
        serials = chrome_serials(h.sandbox, args.size)
        for _ in range(args.bursts):
            before = h.arrivals.count()
            threads = [
                threading.Thread(target=h.emu.slash_command, args=(OPERATOR, f"info {s}"))
                for s in serials
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            h.arrivals.wait(before + len(serials), timeout=120)
        tracked = sum(len(gc.get_objects(g)) for g in range(3))
        started = time.thread_time()
        gc.collect(1)
        middle = time.thread_time() - started
        started = time.thread_time()
        gc.collect(2)
        full = time.thread_time() - started
        chrome = h.svc.google.require_chrome().services
        rows = [
            [
                args.bursts * args.size,
                tracked,
                f"{middle * 1000:.1f}",
                f"{full * 1000:.1f}",
                chrome.builds,
                chrome.https,
            ]
        ]
        gc.unfreeze()
    print(machine())
    print(
        table(
            f"GC after {args.bursts} bursts of {args.size} `/device info` at once",
            [
                "look-ups",
                "objects tracked",
                "middle collection CPU ms",
                "full collection CPU ms",
                "Directory services built",
                "Directory Http made",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
