"""`python -m bot.sandbox --port N [--devices N] [--seed N]`: serve the sandbox Google in the foreground."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from types import FrameType

from bot.sandbox import Sandbox


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, serve until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bot.sandbox", description=__doc__)
    parser.add_argument(
        "--port", type=int, default=8088, help="port on 127.0.0.1 (0: any free port)"
    )
    parser.add_argument(
        "--devices", type=int, default=500, help="fleet size (60%% Chrome, 40%% Android)"
    )
    parser.add_argument("--chrome", type=int, default=None, help="number of Chrome devices")
    parser.add_argument("--android", type=int, default=None, help="number of Android devices")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--command-delay", type=float, default=2.0, help="seconds until a device executes a command"
    )
    parser.add_argument(
        "--licenses",
        type=int,
        default=None,
        help="Chrome licences in the pool (default: those in use + 2%%, at least 10)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    sb = Sandbox(
        args.devices,
        chrome=args.chrome,
        android=args.android,
        seed=args.seed,
        port=args.port,
        command_delay=args.command_delay,
        licenses=args.licenses,
    ).start()
    print(
        f"sandbox Google serving {len(sb.fleet.chrome)} Chrome + {len(sb.fleet.android)} Android devices "
        f"at {sb.url} (customer {sb.customer_id}, {sb.enterprise}; ready in {time.perf_counter() - started:.1f}s)",
        flush=True,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    stop.wait()
    sb.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
