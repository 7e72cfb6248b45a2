"""Bulk disable: `/device bulk disable` of N pasted serials, from the list to the results CSV.

    python -m bench.bulk [--devices 2000] [--fleet 20000] [--latency 0.0]

The real bot (in-process, its Google calls counted) gets the list modal submitted with N
serials of active Chrome devices; measured: the time to the preview (every row resolved
exactly: two `chromeosdevices.list` per serial, `id:` and `asset_id:`, plus the Android
index), then, after the typed count and one Approve, the time to the request's end
(results CSV uploaded), the `batchChangeStatus` calls and the progress edits.
Target: ceil(N / 50) batchChangeStatus calls, one progress message per thread.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

from bench.common import (
    APPROVALS,
    APPROVER,
    CHANNEL,
    OPERATOR,
    chrome_serials,
    harness,
    machine,
    table,
    verdict,
    wait_until,
)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.bulk", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--fleet", type=int, default=20_000, help="Chrome devices in the sandbox")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per Google request")
    args = parser.parse_args(argv)

    from bot import ids
    from bot.sandbox import Sandbox

    sandbox = Sandbox(chrome=args.fleet, android=50, seed=5, command_delay=3600.0).start()
    serials = chrome_serials(sandbox, args.devices)
    if args.latency:
        sandbox.faults.latency = args.latency
    checks: dict[str, bool] = {}
    try:
        with harness(sandbox=sandbox, BULK_CAPS="none") as h:
            emu = h.emu
            mark = emu.mark()
            assert emu.slash_command(OPERATOR, "bulk disable", channel_id=CHANNEL).status == 200
            view = emu.wait_for_call("views.open", since=mark).response["view"]
            calls0 = h.google_calls()
            t0 = time.perf_counter()
            emu.submit_view(OPERATOR, view["id"], {ids.BlockId.BULK_PASTE: "\n".join(serials)})
            shown: dict[str, Any] = wait_until(
                lambda: (
                    (v := emu.open_view(OPERATOR))
                    and v.get("callback_id") == ids.CallbackId.BULK_CONFIRM
                    and v
                ),
                600,
                "the preview",
            )
            to_preview = time.perf_counter() - t0
            lookups = h.google_calls() - calls0
            emu.submit_view(
                OPERATOR,
                shown["id"],
                {ids.BlockId.CONFIRM_COUNT: str(len(serials)), "why": "other", "reason": "bench"},
            )
            db = h.svc.store.db()
            request_id = wait_until(
                lambda: (row := db.execute("SELECT id FROM requests").fetchone()) and row[0],
                60,
                "the request",
            )
            message = wait_until(
                lambda: next((m for m in emu.messages(APPROVALS) if request_id in str(m)), None),
                60,
                "the approval message",
            )
            calls1 = h.google_calls()
            slack_mark = emu.mark()
            t1 = time.perf_counter()
            emu.click(APPROVER, ids.ActionId.APPROVE, value=request_id, message=message)
            wait_until(
                lambda: (
                    db.execute("SELECT state FROM requests WHERE id = ?", [request_id]).fetchone()[
                        0
                    ]
                    in ("succeeded", "failed")
                ),
                600,
                "the run",
            )
            run = time.perf_counter() - t1
            state = db.execute("SELECT state FROM requests WHERE id = ?", [request_id]).fetchone()[
                0
            ]
            batches = h.google_calls("batchChangeStatus")
            run_calls = h.google_calls() - calls1
            edits = sum(1 for c in emu.calls[slack_mark:] if c.method == "chat.update")
            disabled = sum(
                1 for s in serials if sandbox.fleet.chrome_by_serial(s)["status"] == "DISABLED"
            )
    finally:
        sandbox.stop()
    expected = math.ceil(len(serials) / 50)
    checks[f"ceil(N/50) = {expected} batchChangeStatus calls"] = batches == expected
    checks["every device disabled, request succeeded"] = (
        disabled == len(serials) and state == "succeeded"
    )
    print(machine())
    print(
        table(
            f"bulk — /device bulk disable of {len(serials)} pasted serials, fleet of {args.fleet}"
            f" Chrome, {args.latency * 1000:.0f} ms per Google request",
            [
                "devices",
                "list → preview ms",
                "look-up requests",
                "Approve → end ms",
                "run requests",
                "batchChangeStatus",
                "Slack edits",
            ],
            [[len(serials), to_preview * 1000, lookups, run * 1000, run_calls, batches, edits]],
        )
    )
    for what, ok in checks.items():
        print(f"target {what}: {verdict(ok)}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
