"""`/device stats` itself: the sub-command, and the run that reads, draws and uploads."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from bot.background import BackgroundRuns, DMProgress
from bot.commands import Commands, Invocation, Subcommand
from bot.errors import DeviceBotError, ValidationError
from bot.services import Services
from bot.stats.cache import OverviewCache
from bot.stats.chart import render
from bot.stats.counts import FleetStats, gather
from bot.stats.summary import summary_blocks

log = logging.getLogger(__name__)

PROGRESS_EVERY = 2.0  # seconds between edits of the progress message
MAX_RUNNING = 4  # /device stats at once in this process (one per person)


def run(svc: Services, user: str) -> None:
    """The overview for `user` (on its own thread): read or reuse, chart, upload."""
    cache: OverviewCache = svc.extras["stats_cache"]
    progress = DMProgress(svc, user, "Counting the fleet…", every=PROGRESS_EVERY)

    def reading(stats: FleetStats) -> None:
        progress.show(
            f":hourglass_flowing_sand: Counting the fleet: *{stats.chrome_total:,}* Chrome OS"
            f" devices read ({stats.chrome_pages:,} pages)…"
        )

    def make() -> tuple[FleetStats, bytes]:
        stats = gather(svc, reading)
        progress.show(":art: Drawing the chart…", force=True)
        return stats, render(stats)

    try:
        overview, cached = cache.get(make)
        stats = overview.stats
        stamp = datetime.fromtimestamp(stats.taken_at, UTC).strftime("%Y%m%d-%H%M")
        until = cache.expires_at(overview, svc.clock())
        progress.show(
            f"Fleet overview: {stats.chrome_total:,} Chrome OS, {stats.android_total:,} Android",
            force=True,
            blocks=summary_blocks(stats, until),
        )
        svc.out.upload(
            progress.channel,
            f"fleet-{stamp}.png",
            overview.png,
            title=f"Fleet overview {stamp}",
            comment=(
                f"Fleet overview: {stats.chrome_total:,} Chrome OS and"
                f" {stats.android_total:,} Android devices."
            ),
        )
    except DeviceBotError as exc:
        progress.show(f":warning: The overview stopped: {exc.message}", force=True)
        return
    except Exception:
        log.exception("fleet overview for %s failed", user)
        progress.show(":warning: The overview failed on our side; nothing was sent.", force=True)
        return
    log.info(
        "fleet overview for %s: %d Chrome + %d Android%s",
        user,
        stats.chrome_total,
        stats.android_total,
        " (cached)" if cached else f" in {stats.seconds:.1f}s, {stats.chrome_pages} pages",
    )


def stats_command(inv: Invocation) -> None:
    """`/device stats`: start the overview in the background and say where it goes."""
    if inv.args.strip():
        inv.reply(f":warning: `/device stats` takes no arguments. Usage: `{STATS.usage}`")
        return
    runs: BackgroundRuns = inv.svc.extras["stats_runs"]
    svc, user = inv.svc, inv.user_id
    try:
        runs.start(
            user,
            lambda: run(svc, user),
            inv.reply,
            ":warning: The overview could not start: device-bot cannot write to you directly.",
        )
    except ValidationError as exc:
        inv.reply(f":warning: {exc.message}")
        return
    inv.reply(
        "Counting the fleet. The summary and the chart arrive in your direct messages with"
        " device-bot."
    )


STATS = Subcommand(
    "stats",
    stats_command,
    "/device stats",
    "A chart of the whole fleet in your DMs: status per platform, Chrome OS versions,"
    " auto-update expiry, Android versions and patch levels, devices silent 30 days",
    "/device stats",
)


def register(app: Any, svc: Services, commands: Commands) -> None:
    """Add `/device stats`."""
    svc.extras["stats_cache"] = OverviewCache(svc.settings.stats_cache_seconds)
    svc.extras["stats_runs"] = BackgroundRuns(
        "stats",
        MAX_RUNNING,
        busy="Your fleet overview is still being made; it arrives in your DMs.",
        full="Several fleet overviews are being made; try again in a minute.",
    )
    commands.add(STATS)
