"""Sandbox Google at fleet scale: start-up time and look-up latency over real HTTP.

    python bench/sandbox_scale.py [--chrome 100000] [--android 20000] [--runs 200]

Prints a table: fleet generation + start, then median / p99 of googleapiclient calls
against the sandbox (serial look-up `id:SERIAL`, prefix, user, Android get, a batch of
100 operations.get).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from bot.sandbox import Sandbox
from bot.sandbox.testing import androidmanagement, batch, directory


def _measure(fn: Callable[[], Any], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--chrome", type=int, default=100_000)
    parser.add_argument("--android", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()

    t0 = time.perf_counter()
    sb = Sandbox(chrome=args.chrome, android=args.android, seed=1, command_delay=0.0).start()
    start_s = time.perf_counter() - t0
    try:
        admin = directory(sb.url)
        amapi = androidmanagement(sb.url)
        rng = random.Random(5)
        chrome = list(sb.fleet.chrome.values())
        android = list(sb.fleet.android.values())
        users = [d["annotatedUser"] for d in chrome if d.get("annotatedUser")]
        scans = sb.fleet.scans

        def serial() -> None:
            d = rng.choice(chrome)
            got = (
                admin.chromeosdevices()
                .list(customerId="my_customer", query=f"id:{d['serialNumber']}")
                .execute()
            )
            assert got["chromeosdevices"][0]["deviceId"] == d["deviceId"]

        def prefix() -> None:
            d = rng.choice(chrome)
            admin.chromeosdevices().list(
                customerId="my_customer", query=f"id:{d['serialNumber'][:6]}"
            ).execute()

        def user() -> None:
            admin.chromeosdevices().list(
                customerId="my_customer", query=f"user:{rng.choice(users)}"
            ).execute()

        def android_get() -> None:
            amapi.enterprises().devices().get(name=rng.choice(android)["name"]).execute()

        ops = [
            amapi.enterprises()
            .devices()
            .issueCommand(name=d["name"], body={"type": "LOCK"})
            .execute()["name"]
            for d in android[:100]
        ]

        operations = amapi.enterprises().devices().operations()  # building resources is slow: once

        def batch_poll() -> None:
            b = batch(amapi, sb.url)
            for name in ops:
                b.add(operations.get(name=name))
            b.execute()

        rows = [
            ("Chrome list id:<full serial>", *_measure(serial, args.runs)),
            ("Chrome list id:<6-char prefix>", *_measure(prefix, args.runs)),
            ("Chrome list user:<email>", *_measure(user, args.runs)),
            ("Android devices.get", *_measure(android_get, args.runs)),
            ("batch of 100 operations.get", *_measure(batch_poll, max(10, args.runs // 10))),
        ]
        print(f"fleet: {args.chrome} Chrome + {args.android} Android")
        print(
            f"generate + start: {start_s:.2f} s   (full-fleet scans during look-ups: {sb.fleet.scans - scans})"
        )
        print(f"{'call (googleapiclient over HTTP)':34} {'median ms':>10} {'p99 ms':>10}")
        for name, med, p99 in rows:
            print(f"{name:34} {med:10.2f} {p99:10.2f}")
    finally:
        sb.stop()


if __name__ == "__main__":
    main()
