"""`/device stats` end to end: Slack command → one paged Directory pass (BASIC + `fields`) and
the Android index → a 1200 × 900 PNG chart and a text summary in the requester's DM → the
cache serves the next request without a Google call.

The bot runs against its own sandbox (650 Chrome devices: three pages of 300; 60 Android).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import APPROVER1, OPERATOR, OUTSIDER, Bot, flatten, start_bot, wait_until

from bot.sandbox import Sandbox
from bot.stats import chart, command, counts
from bot.stats.cache import OverviewCache

DM = "D" + OPERATOR[1:]


def chrome_lists(entries: list[tuple[str, str]]) -> list[dict[str, list[str]]]:
    out = []
    for method, target in entries:
        url = urlsplit(target)
        if method == "GET" and url.path.endswith("/devices/chromeos"):
            out.append(parse_qs(url.query))
    return out


def uploads_after(bot: Bot, n: int) -> list[dict[str, Any]]:
    files = wait_until(
        lambda: (f := bot.emu.uploads.files()) and len(f) > n and f,
        30,
        f"upload {n + 1}\n{bot.emu.dump()}",
    )
    return list(files)


def summary_in(bot: Bot, channel: str, needle: str = "Fleet overview") -> str:
    """The text of the progress message once it has become the summary."""

    def done() -> str | None:
        for m in bot.messages_in(channel):
            text = flatten(m)
            if not m.get("files") and needle in text and "Counting" not in text:
                return text
        return None

    return str(wait_until(done, 30, f"the summary in {channel}\n{bot.emu.dump()}"))


def expected(fleet: Any, now: float) -> dict[str, Any]:
    """The overview's numbers, counted here from the sandbox's own data."""
    cutoff = now - 30 * 86400
    month = datetime.fromtimestamp(now, UTC).strftime("%Y-%m")
    chrome = list(fleet.chrome.values())
    in_service = [d for d in chrome if d["status"] in ("ACTIVE", "DISABLED")]
    active = [d for d in chrome if d["status"] == "ACTIVE"]

    def ts(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    android = list(fleet.android.values())
    in_hand = [d for d in android if d["state"] in ("ACTIVE", "DISABLED", "LOST")]
    return {
        "chrome_status": Counter(d["status"] for d in chrome),
        "chrome_stale": sum(1 for d in active if ts(d["lastSync"]) < cutoff),
        "chrome_active": len(active),
        "milestones": Counter(int(d["osVersion"].split(".")[0]) for d in in_service),
        "expired": sum(1 for d in in_service if d["autoUpdateThrough"][:7] <= month),
        "android_status": Counter(d["state"] for d in android),
        "android_versions": Counter(
            counts.android_major(d["softwareInfo"]["androidVersion"]) for d in in_hand
        ),
        "patch_months": Counter(d["softwareInfo"]["securityPatchLevel"][:7] for d in in_hand),
    }


def test_stats_posts_a_chart_and_summary_from_one_pass_then_serves_the_cache(
    fleet_bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = fleet_bot
    monkeypatch.setattr(command, "PROGRESS_EVERY", 0.0)  # an edit per page, to see them
    google_before = len(bot.sandbox.log)
    mark = bot.emu.mark()
    bot.slash("stats")
    assert "arrive in your direct messages" in bot.wait_ephemeral("Counting the fleet")
    (file,) = uploads_after(bot, 0)

    # the chart: a PNG of 1200 × 900 px, shared in the requester's DM
    png = bot.emu.uploads.content(file["id"])
    assert png is not None and len(png) > 20_000
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert chart.png_size(png) == (1200, 900)
    assert file["name"].startswith("fleet-") and file["name"].endswith(".png")
    assert file["channels"] == [DM]
    calls = [c for c in bot.emu.calls[mark:] if c.method.startswith("files.")]
    assert [c.method for c in calls] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    assert all(c.ok for c in calls) and calls[1].args["channel_id"] == DM

    # Google: three pages of 300 with BASIC and exactly the fields the overview reads;
    # Android from the index: no AMAPI call
    google = list(bot.sandbox.log)[google_before:]
    lists = chrome_lists(google)
    assert len(lists) == 3 and len(google) == 3, google
    for call in lists:
        assert call["projection"] == ["BASIC"] and call["maxResults"] == ["300"]
        assert call["fields"] == [counts.CHROME_FIELDS]
    assert "pageToken" not in lists[0] and all("pageToken" in c for c in lists[1:])

    # the summary: the counts, checked against the sandbox's own data
    cache: OverviewCache = bot.svc.extras["stats_cache"]
    overview = cache.fresh()
    assert overview is not None and cache.passes == 1
    want = expected(bot.sandbox.fleet, overview.stats.taken_at)
    text = summary_in(bot, DM)
    assert "*Chrome OS: 650 devices*" in text and "*Android: 60 devices*" in text
    for status, n in want["chrome_status"].most_common(6):
        assert f"{status} *{n:,}*" in text
    for state, n in want["android_status"].items():
        assert f"{state} *{n:,}*" in text
    assert want["chrome_stale"] > 0
    assert (
        f"not synced in 30 days: *{want['chrome_stale']:,}* of {want['chrome_active']:,} active"
        in text
    )
    newest = max(want["milestones"])
    assert f"M{newest} *{want['milestones'][newest]:,}*" in text
    assert want["expired"] > 0 and f"expired *{want['expired']:,}*" in text
    for version, n in want["android_versions"].most_common(3):
        assert f"{version} *{n:,}*" in text
    latest = max(want["patch_months"])
    assert f"{latest} *{want['patch_months'][latest]:,}*" in text
    assert "3 pages of the Directory API (projection=BASIC" in text
    assert "Android: the bot's device index, refreshed 20" in text
    assert overview.stats.chrome_status == want["chrome_status"]
    assert overview.stats.android_status == want["android_status"]
    assert dict(overview.stats.chrome_milestones) == dict(want["milestones"])

    # one progress message, edited in place (pages read, the drawing), then the summary
    progress = [m for m in bot.messages_in(DM) if not m.get("files")]
    assert len(progress) == 1
    updates = [c for c in bot.emu.calls_to("chat.update") if c.args.get("ts") == progress[0]["ts"]]
    assert any("Chrome OS devices read (3 pages)" in flatten(c.args) for c in updates)
    assert any("Drawing the chart" in flatten(c.args) for c in updates)

    # a second person within STATS_CACHE_SECONDS: the same chart, no Google call at all
    google_before = len(bot.sandbox.log)
    bot.slash("stats", user=APPROVER1)
    files = uploads_after(bot, 1)
    dm2 = "D" + APPROVER1[1:]
    assert files[-1]["channels"] == [dm2]
    assert bot.emu.uploads.content(files[-1]["id"]) == png
    assert "*Chrome OS: 650 devices*" in summary_in(bot, dm2)
    assert list(bot.sandbox.log)[google_before:] == []
    assert cache.passes == 1
    assert not bot.emu.problems


def test_a_request_during_a_pass_waits_for_it_instead_of_making_another(fleet_bot: Bot) -> None:
    bot = fleet_bot
    before = len(bot.sandbox.log)
    # the first page takes a second: the second request surely arrives during the pass
    bot.sandbox.faults.add(None, count=1, path_contains="devices/chromeos", latency=1.0)
    bot.slash("stats")
    wait_until(lambda: chrome_lists(list(bot.sandbox.log)[before:]), 10, "the first page asked")
    bot.slash("stats", user=APPROVER1)
    files = uploads_after(bot, 1)
    assert sorted(f["channels"][0] for f in files) == sorted([DM, "D" + APPROVER1[1:]])
    assert len(chrome_lists(list(bot.sandbox.log)[before:])) == 3
    assert bot.svc.extras["stats_cache"].passes == 1


def test_without_a_cache_every_request_reads_google(tmp_path: Any, emu: Any) -> None:
    sandbox = Sandbox(chrome=40, android=5, seed=5).start()
    bot = start_bot(tmp_path, sandbox, emu, STATS_CACHE_SECONDS="0")
    try:
        bot.settle()
        bot.slash("stats")
        uploads_after(bot, 0)
        before = len(sandbox.log)
        bot.slash("stats", user=APPROVER1)
        uploads_after(bot, 1)
        assert len(chrome_lists(list(sandbox.log)[before:])) == 1
        assert bot.svc.extras["stats_cache"].passes == 2
    finally:
        bot.server.stop()
        sandbox.stop()


def test_a_google_failure_is_told_in_place_and_nothing_is_cached(fleet_bot: Bot) -> None:
    bot = fleet_bot
    bot.sandbox.faults.add(400, count=1, path_contains="pageToken=", message="Invalid page token")
    bot.slash("stats")
    failed = wait_until(
        lambda: next((m for m in bot.messages_in(DM) if "overview stopped" in flatten(m)), None),
        15,
        f"the failure in the progress message\n{bot.emu.dump()}",
    )
    assert "Invalid page token" in flatten(failed)
    assert not bot.emu.uploads.files()
    cache: OverviewCache = bot.svc.extras["stats_cache"]
    assert cache.fresh() is None and cache.passes == 0


def test_an_outsider_gets_no_overview_and_arguments_are_refused(bot: Bot) -> None:
    bot.slash("stats", user=OUTSIDER)
    bot.wait_ephemeral("not allowed", user=OUTSIDER)
    bot.slash("stats everything")
    bot.wait_ephemeral("takes no arguments")
    assert not bot.emu.calls_to("files.getUploadURLExternal")
    assert bot.svc.extras["stats_cache"].passes == 0


# ---------------------------------------------------------------------------- units


def test_expiry_month_prefers_auto_update_through_then_the_deprecated_millis() -> None:
    assert counts.expiry_month({"autoUpdateThrough": "2029-06-01"}) == "2029-06"
    assert counts.expiry_month({"autoUpdateThrough": "2031-08-01T00:00:00Z"}) == "2031-08"
    millis = int(datetime(2030, 2, 1, tzinfo=UTC).timestamp() * 1000)
    assert counts.expiry_month({"autoUpdateExpiration": str(millis)}) == "2030-02"
    assert counts.expiry_month({}) == "unknown"
    assert counts.expiry_month({"autoUpdateExpiration": "0"}) == "unknown"


def test_counting_rules() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC).timestamp()
    s = counts.FleetStats(taken_at=now)
    counts.add_chrome(
        s,
        [
            {"status": "ACTIVE", "osVersion": "131.0.1.2", "lastSync": "2026-11-29T10:00:00.000Z"},
            {"status": "ACTIVE", "osVersion": "120.0.1.2", "lastSync": "2026-10-01T10:00:00Z"},
            {"status": "ACTIVE"},  # never synced: counts as not synced
            {"status": "DEPROVISIONED", "osVersion": "100.0"},  # out of service: no version
        ],
        now - 30 * 86400,
    )
    assert s.chrome_active == 3 and s.chrome_stale == 2
    assert s.chrome_milestones == Counter({131: 1, 120: 1, 0: 1})
    counts.add_android(
        s,
        [
            ("ACTIVE", "8.1.0", "2026-10-01", "2026-11-29T00:00:00Z"),
            ("LOST", "12L", "2025-01-01", None),
            ("DELETED", "14", "2026-11-01", None),
        ],
        now - 30 * 86400,
    )
    assert s.android_versions == Counter({"8": 1, "12L": 1})
    assert s.android_patch_age == Counter({"≤ 90 days": 1, "over a year": 1})
    assert s.android_active == 1 and s.android_stale == 0


def test_the_cache_expires_and_makes_one_pass_at_a_time() -> None:
    clock = [0.0]
    cache = OverviewCache(60, clock=lambda: clock[0])
    made = []

    def make() -> tuple[counts.FleetStats, bytes]:
        made.append(1)
        return counts.FleetStats(taken_at=0), b"png"

    assert cache.get(make)[1] is False
    clock[0] = 59
    assert cache.get(make)[1] is True
    clock[0] = 61
    assert cache.get(make)[1] is False
    assert len(made) == 2 == cache.passes


def test_png_size_reads_the_header() -> None:
    png = chart.render(counts.FleetStats(taken_at=0))  # an empty fleet still draws
    assert chart.png_size(png) == (chart.WIDTH, chart.HEIGHT)
    with pytest.raises(ValueError):
        chart.png_size(b"GIF89a" + b"\0" * 30)
