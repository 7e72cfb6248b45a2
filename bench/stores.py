"""SQLite beside PostgreSQL: the approval path and the poll cycle on each store.

    python -m bench.stores [--approvals 30] [--pending 500] [--cycles 10] [--database-url URL]

PostgreSQL is a throwaway cluster started here (Debian's `postgresql`; see
bot/pgtemp.py) unless `--database-url` names one (a database the benchmark may fill).
For each store, with the bot in-process and the sandbox Google:

1. approval path: `--approvals` Chrome disables, one at a time: the request recorded
   (`approvals.submit`: the row, its audit event) and then the approver's signed click →
   the request `succeeded` (the conditional transitions, the Google call, the audit
   events, the thread updates);
2. poll cycle: `--pending` pending Android commands, all due, polled by one replica on
   SQLite (the jobs lease holder polls) and by two replicas at once on PostgreSQL (each
   claims due rows with FOR UPDATE SKIP LOCKED). Checked: every command asked about once.
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import (
    APPROVALS,
    APPROVER,
    CHANNEL,
    OPERATOR,
    chrome_serials,
    harness,
    machine,
    ms,
    table,
    verdict,
    wait_until,
)
from bench.polling import _track


def _approval_path(h: Any, n: int) -> tuple[list[float], list[float]]:
    from bot import approvals, ids, requests
    from bot.requests import NewRequest

    svc, emu = h.svc, h.emu
    submit_s, approve_s = [], []
    for serial in chrome_serials(h.sandbox, n):
        device = svc.devices.resolve(serial)
        t0 = time.perf_counter()
        request_id = approvals.submit(
            svc,
            NewRequest(
                action="disable",
                platform="chrome",
                devices=(device,),
                params={"why": "other"},
                requester=OPERATOR,
                reason="bench",
                channel=CHANNEL,
            ),
        )
        submit_s.append(time.perf_counter() - t0)
        message = wait_until(
            lambda rid=request_id: next(
                (m for m in emu.messages(APPROVALS) if rid in str(m)), None
            ),
            30,
            "the approval message",
        )
        t0 = time.perf_counter()
        emu.click(APPROVER, ids.ActionId.APPROVE, value=request_id, message=message)
        wait_until(
            lambda rid=request_id: requests.load(svc, rid).state == "succeeded",
            30,
            "the request to succeed",
        )
        approve_s.append(time.perf_counter() - t0)
    return submit_s, approve_s


def _poll_cycles(h: Any, pending: int, cycles: int, replicas: int) -> tuple[list[float], bool]:
    from bot import outcomes
    from bot.services import build_services

    svc, sandbox = h.svc, h.sandbox
    android = svc.google.require_android()
    names = [d["name"] for d in sandbox.fleet.android.values() if d.get("state") == "ACTIVE"]
    with ThreadPoolExecutor(16) as pool:
        ops = list(pool.map(lambda name: android.issue_command(name, {"type": "LOCK"}), names))
    ops = [op for op in ops if not op.get("done")][:pending]
    assert len(ops) == pending, f"only {len(ops)} pending operations"
    _track(svc, ops)
    others = [build_services(svc.settings, sandbox=sandbox) for _ in range(replicas - 1)]
    polls = [svc, *others]
    once = True
    cycle_s = []
    try:
        for _ in range(cycles):
            svc.store.db().execute("UPDATE pending_commands SET next_poll_at = 0 WHERE done = 0")
            parts_before = len(sandbox.log.parts)
            counts: list[int] = []
            barrier = threading.Barrier(len(polls))

            def run(s: Any, barrier: Any = barrier, counts: list[int] = counts) -> None:
                barrier.wait()
                counts.append(outcomes.poll(s))

            threads = [threading.Thread(target=run, args=(s,)) for s in polls]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            cycle_s.append(time.perf_counter() - t0)
            asked = len(sandbox.log.parts) - parts_before
            once = once and sum(counts) == pending and asked == pending
    finally:
        for other in others:
            other.close()
    return cycle_s, once


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stores", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--approvals", type=int, default=30)
    parser.add_argument("--pending", type=int, default=500)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL database to use")
    args = parser.parse_args(argv)

    from bot.pgtemp import TempCluster

    cluster = None
    if args.database_url:
        url = args.database_url
    else:
        cluster = TempCluster().start()
        url = cluster.new_database("bench")
    rows: list[list[Any]] = []
    checks: dict[str, bool] = {}
    try:
        for name, env in (("SQLite", {}), ("PostgreSQL", {"DATABASE_URL": url})):
            replicas = 2 if env else 1
            with harness(chrome=args.approvals + 50, android=args.pending + 100, **env) as h:
                submit_s, approve_s = _approval_path(h, args.approvals)
                cycle_s, once = _poll_cycles(h, args.pending, args.cycles, replicas)
            s, a, c = ms(submit_s), ms(approve_s), ms(cycle_s)
            rows.append([name, "request recorded (submit)", s.n, s.median, s.p99])
            rows.append([name, "approve click → succeeded", a.n, a.median, a.p99])
            rows.append(
                [
                    name,
                    f"poll cycle, {args.pending} pending, {replicas} replica(s)",
                    c.n,
                    c.median,
                    c.p99,
                ]
            )
            checks[f"{name}: every pending command asked about once per cycle"] = once
            if cluster is None:  # a given database: the second run starts from what we left
                break
    finally:
        if cluster is not None:
            cluster.stop()
    print(machine())
    print(
        table(
            "stores — SQLite beside PostgreSQL", ["store", "what", "n", "median ms", "p99 ms"], rows
        )
    )
    for check, ok in checks.items():
        print(f"{verdict(ok)} {check}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
