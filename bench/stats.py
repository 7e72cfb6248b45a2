"""Fleet overview: `/device stats` against 100 000 Chrome + 20 000 Android devices.

    python -m bench.stats [--chrome 100000] [--android 20000] [--runs 2]

The real bot (in-process, so its Google calls are counted) answers a signed `/device stats`;
the measure runs from the slash command to the chart's upload being complete at Slack
(files.completeUploadExternal). Each cold run empties the overview cache first, so it makes
the one paged pass (chromeosdevices.list, 300 a page, projection=BASIC with a `fields`
partial response; Android from the bot's index, built at start-up by its own job); a last
run within STATS_CACHE_SECONDS is served from the cache. Targets: the Chrome pass is
ceil(N / 300) requests and no Android request; the cached run makes no Google request; the
PNG is 1200 × 900.
"""

from __future__ import annotations

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
    parser = fleet_parser("bench.stats", __doc__)
    parser.add_argument("--runs", type=int, default=2, help="cold runs (then one cached run)")
    args = parser.parse_args(argv)

    from bot.stats import chart
    from bot.stats.cache import OverviewCache

    sandbox, generated = big_sandbox(args.chrome, args.android)
    rows: list[list[Any]] = []
    checks: dict[str, bool] = {}
    cold: list[float] = []
    index_requests = 0
    try:
        with harness(sandbox=sandbox) as h:
            svc = h.svc
            h.emu.add_user(OPERATOR, name="bench.operator")  # the chart goes to their DM
            wait_until(lambda: svc.devices.android_index_synced_at() is not None, 180)
            index_requests = sum(1 for r in h.calls.records if "androidmanagement" in r.method_id)
            cache: OverviewCache = svc.extras["stats_cache"]
            for run in range(args.runs + 1):
                cached_run = run == args.runs
                name = "cached" if cached_run else f"cold {run + 1}"
                if not cached_run:
                    cache.clear()  # a cold run: the pass over the fleet again
                passes = cache.passes
                before_calls = len(h.calls.records)
                before_files = len(h.emu.uploads.files())

                def uploaded(before: int = before_files) -> bool:
                    return len(h.emu.uploads.files()) > before

                t0 = time.perf_counter()
                reply = h.emu.slash_command(OPERATOR, "stats")
                acked = time.perf_counter() - t0
                assert reply.status == 200, reply
                wait_until(uploaded, 600, "the upload")
                took = time.perf_counter() - t0
                file = h.emu.uploads.files()[-1]
                png = h.emu.uploads.content(file["id"]) or b""
                records = h.calls.records[before_calls:]
                lists = [r for r in records if "chromeosdevices.list" in r.method_id]
                android = [r for r in records if "androidmanagement" in r.method_id]
                overview = cache.fresh()
                assert overview is not None
                s = overview.stats
                r0 = time.perf_counter()
                chart.render(s)
                drawn = time.perf_counter() - r0
                size = chart.png_size(png)
                rows.append(
                    [
                        name,
                        s.chrome_total + s.android_total,
                        took * 1000,
                        acked * 1000,
                        "—" if cached_run else s.seconds * 1000,
                        "—" if cached_run else drawn * 1000,
                        len(records),
                        f"{len(lists)} chromeosdevices.list + {len(android)} Android",
                        f"{size[0]}×{size[1]}",
                        f"{len(png) / 1000:.0f}",
                    ]
                )
                if cached_run:
                    checks["cached run: no Google request, no pass"] = (
                        not records and cache.passes == passes
                    )
                else:
                    cold.append(took)
                    checks[f"{name}: every device counted"] = (s.chrome_total, s.android_total) == (
                        args.chrome,
                        args.android,
                    )
                    checks[
                        f"{name}: Chrome in ceil(N/300) = {math.ceil(args.chrome / 300)} requests,"
                        " Android in 0"
                    ] = len(lists) == len(records) == math.ceil(args.chrome / 300)
                checks[f"{name}: PNG {chart.WIDTH}×{chart.HEIGHT}"] = size == (
                    chart.WIDTH,
                    chart.HEIGHT,
                )
    finally:
        sandbox.stop()
    times = ms(cold)
    print(machine())
    print(
        f"sandbox: {args.chrome} Chrome + {args.android} Android generated and serving in {generated:.1f} s;"
        f" the bot's Android index (its own start-up job) took {index_requests} AMAPI requests"
    )
    print(
        table(
            f"stats — /device stats of {args.chrome} Chrome + {args.android} Android,"
            " no injected latency",
            [
                "run",
                "devices",
                "command → chart at Slack ms",
                "ack ms",
                "pass ms",
                "drawing ms",
                "Google requests",
                "of which",
                "PNG px",
                "PNG kB",
            ],
            rows,
        )
    )
    print()
    print(f"median {times.median:.0f} ms over {times.n} cold runs")
    return report_checks(checks)


if __name__ == "__main__":
    raise SystemExit(main())
