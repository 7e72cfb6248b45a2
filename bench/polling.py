"""Polling cost: one poll cycle over 500 pending Android commands, and an idle cycle.

    python -m bench.polling [--pending 500] [--cycles 20] [--latency 0.1]

500 real LOCK operations are created in the sandbox (devices that never run them within
the benchmark) and tracked as the bot tracks sent commands; `bot.outcomes.poll` then runs
cycle after cycle (each time all of them due). The sandbox counts the HTTP requests it
receives and the batch parts inside them. Side by side: the same 500 operations read one
`operations.get` at a time through googleapiclient (a bare client without batching, 32
concurrent threads). Targets: ≤ 10 HTTP requests per cycle for 500 (ceil(500 / 100) = 5),
none when nothing is pending.
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import harness, machine, ms, ratio, table, verdict

TARGET_REQUESTS = 10


def _track(svc: Any, operations: list[dict[str, Any]]) -> None:
    """Store the operations as pending commands, the way `outcomes.track` leaves them."""
    now = time.time()
    with svc.store.transaction() as db:
        for i, op in enumerate(operations):
            device = op["name"].split("/operations/")[0]
            db.execute(
                "INSERT INTO pending_commands(request_id, platform, device_id, google_ref, command_type, state,"
                " created_at, expires_at, next_poll_at) VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    f"bench-{i}",
                    "android",
                    device,
                    op["name"],
                    "LOCK",
                    "PENDING",
                    now,
                    now + 86400,
                    0,
                ],
            )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.polling", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--pending", type=int, default=500)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument(
        "--latency", type=float, default=0.1, help="seconds injected per HTTP request (second run)"
    )
    args = parser.parse_args(argv)

    from bot import outcomes
    from bot.sandbox.testing import androidmanagement

    rows: list[list[Any]] = []
    checks: dict[str, bool] = {}
    with harness(chrome=100, android=args.pending + 100, command_delay=86400.0) as h:
        svc, sandbox = h.svc, h.sandbox
        android = svc.google.require_android()
        names = [d["name"] for d in sandbox.fleet.android.values() if d.get("state") == "ACTIVE"]
        with ThreadPoolExecutor(16) as pool:
            ops = list(pool.map(lambda n: android.issue_command(n, {"type": "LOCK"}), names))
        ops = [op for op in ops if not op.get("done")][: args.pending]
        assert len(ops) == args.pending, f"only {len(ops)} pending operations"
        _track(svc, ops)
        db = svc.store.db()
        local = threading.local()

        def bare_get(name: str) -> None:
            if not hasattr(local, "ops"):
                local.ops = androidmanagement(sandbox.url).enterprises().devices().operations()
            local.ops.get(name=name).execute()

        for latency in (0.0, args.latency):
            sandbox.faults.latency = latency
            cycle_s, requests, parts = [], [], []
            bare_s = []
            with ThreadPoolExecutor(32) as pool:
                list(pool.map(bare_get, [op["name"] for op in ops[:64]]))  # warm the bare clients
                for _ in range(args.cycles if latency == 0 else max(3, args.cycles // 4)):
                    db.execute("UPDATE pending_commands SET next_poll_at = 0 WHERE done = 0")
                    log_before, parts_before = len(sandbox.log), len(sandbox.log.parts)
                    t0 = time.perf_counter()
                    polled = outcomes.poll(svc)
                    cycle_s.append(time.perf_counter() - t0)
                    requests.append(len(sandbox.log) - log_before)
                    parts.append(len(sandbox.log.parts) - parts_before)
                    assert polled == args.pending, polled
                    t0 = time.perf_counter()
                    list(pool.map(bare_get, [op["name"] for op in ops]))
                    bare_s.append(time.perf_counter() - t0)
            c, b = ms(cycle_s), ms(bare_s)
            rows.append(
                [
                    f"{latency * 1000:.0f} ms",
                    f"poll cycle, {args.pending} pending",
                    c.n,
                    c.median,
                    c.p99,
                    max(requests),
                    max(parts),
                    "",
                ]
            )
            rows.append(
                [
                    f"{latency * 1000:.0f} ms",
                    f"bare: {args.pending} × operations.get, 32 threads",
                    b.n,
                    b.median,
                    b.p99,
                    args.pending,
                    0,
                    f"{ratio(c.median, b.median):.2f}",
                ]
            )
            checks[
                f"≤ {TARGET_REQUESTS} HTTP requests per cycle ({latency * 1000:.0f} ms latency)"
            ] = max(requests) <= TARGET_REQUESTS
        sandbox.faults.latency = 0.0
        # idle: nothing pending, several cycles
        db.execute("UPDATE pending_commands SET done = 1")
        log_before, calls_before = len(sandbox.log), h.google_calls()
        idle_s = []
        for _ in range(args.cycles):
            t0 = time.perf_counter()
            outcomes.poll(svc)
            idle_s.append(time.perf_counter() - t0)
        idle_requests = len(sandbox.log) - log_before
        i = ms(idle_s)
        rows.append(
            [
                "—",
                "poll cycle, nothing pending",
                i.n,
                i.median,
                i.p99,
                idle_requests,
                h.google_calls() - calls_before,
                "",
            ]
        )
        checks["0 requests when idle"] = idle_requests == 0
    print(machine())
    print(
        table(
            f"polling — {args.pending} pending Android commands (batch requests of ≤ 100 operations.get)",
            [
                "Google latency",
                "what",
                "n",
                "median ms",
                "p99 ms",
                "HTTP requests per cycle (max)",
                "batch parts per cycle",
                "ratio poll / bare (median)",
            ],
            rows,
        )
    )
    print()
    for what, ok in checks.items():
        print(f"target {what}: {verdict(ok)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
