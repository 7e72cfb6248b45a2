"""Full-fleet export: `/device export` against 100 000 Chrome + 20 000 Android devices.

    python -m bench.export [--chrome 100000] [--android 20000] [--runs 2]

The real bot (in-process, so its Google calls are counted) answers a signed
`/device export`; the measure runs from the slash command to the CSV's upload being
complete at Slack (files.completeUploadExternal), and also records the
acknowledgement, the Google requests (chromeosdevices.list pages of 300 with a `fields`
partial response; Android comes from the bot's index), the progress edits, the CSV's
size and its MEID column. Target: the Chrome pages are ceil(N / 300) requests.
"""

from __future__ import annotations

import csv
import io
import math
import time
from typing import Any

from bench.common import (
    OPERATOR,
    big_sandbox,
    fleet_parser,
    harness,
    machine,
    ms,
    report_checks,
    table,
    wait_until,
)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = fleet_parser("bench.export", __doc__)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args(argv)

    sandbox, generated = big_sandbox(args.chrome, args.android)
    rows: list[list[Any]] = []
    checks: dict[str, bool] = {}
    try:
        with harness(sandbox=sandbox) as h:
            svc = h.svc
            h.emu.add_user(OPERATOR, name="bench.operator")  # the export goes to their DM
            wait_until(lambda: svc.devices.android_index_synced_at() is not None, 180)
            for run in range(args.runs):
                before_calls = list(h.calls.records)
                before_files = len(h.emu.uploads.files())

                def uploaded(before: int = before_files) -> bool:
                    return len(h.emu.uploads.files()) > before

                mark = h.emu.mark()
                t0 = time.perf_counter()
                reply = h.emu.slash_command(OPERATOR, "export")
                acked = time.perf_counter() - t0
                assert reply.status == 200, reply
                wait_until(uploaded, 600, "the upload")
                took = time.perf_counter() - t0
                file = h.emu.uploads.files()[-1]
                content = h.emu.uploads.content(file["id"]) or b""
                records = h.calls.records[len(before_calls) :]
                lists = [r for r in records if "chromeosdevices.list" in r.method_id]
                android = [r for r in records if "androidmanagement" in r.method_id]
                calls = h.emu.calls[mark:]
                updates = sum(1 for c in calls if c.method == "chat.update")
                table_rows = list(csv.DictReader(io.StringIO(content.decode("utf-8"))))
                meids = sum(
                    1 for r in table_rows if r["Platform"] == "Chrome OS" and r["MEID / IMEI"]
                )
                expected_meids = sum(1 for d in sandbox.fleet.chrome.values() if d.get("meid"))
                rows.append(
                    [
                        f"run {run + 1}",
                        len(table_rows),
                        took * 1000,
                        acked * 1000,
                        len(records),
                        f"{len(lists)} chromeosdevices.list + {len(android)} Android",
                        updates,
                        f"{len(content) / 1e6:.1f}",
                        f"{meids} / {expected_meids}",
                    ]
                )
                checks[f"run {run + 1}: every device exported"] = len(table_rows) == (
                    args.chrome + args.android
                )
                checks[
                    f"run {run + 1}: Chrome in ceil(N/300) = {math.ceil(args.chrome / 300)} requests"
                ] = len(lists) == math.ceil(args.chrome / 300)
                checks[f"run {run + 1}: MEID column filled from the fields response"] = (
                    meids == expected_meids > 0
                )
    finally:
        sandbox.stop()
    times = ms([r[2] / 1000 for r in rows])
    print(machine())
    print(
        f"sandbox: {args.chrome} Chrome + {args.android} Android generated and serving in {generated:.1f} s"
    )
    print(
        table(
            f"export — /device export of {args.chrome} Chrome + {args.android} Android to CSV,"
            " no injected latency",
            [
                "run",
                "rows",
                "command → file at Slack ms",
                "ack ms",
                "Google requests",
                "of which",
                "progress edits",
                "CSV MB",
                "MEIDs",
            ],
            rows,
        )
    )
    print()
    print(f"median {times.median:.0f} ms over {times.n} runs")
    return report_checks(checks)


if __name__ == "__main__":
    raise SystemExit(main())
