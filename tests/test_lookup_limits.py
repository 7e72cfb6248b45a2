"""A search with more than 1000 results pages through Slack's limits and is never rejected."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import OPERATOR, Bot, flatten, start_bot, wait_until

from bot import ids
from bot.playground.slack_emulator import validate_blocks


@pytest.fixture(scope="module")
def big_sandbox() -> Iterator[Any]:
    from bot.sandbox import Sandbox

    sb = Sandbox(chrome=1600, android=200, seed=23, command_delay=0.0).start()
    yield sb
    sb.stop()


@pytest.fixture
def big_bot(tmp_path: Any, big_sandbox: Any, emu: Any) -> Iterator[Bot]:
    running = start_bot(tmp_path, big_sandbox, emu)
    yield running
    running.server.stop()


def test_a_1000_result_find_pages_within_block_kit_limits(big_bot: Bot) -> None:
    emu = big_bot.emu
    big_bot.slash("find example.com")
    page = wait_until(lambda: next(iter(emu.ephemerals(OPERATOR)), None), 20, "the first page")
    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        blocks = page["blocks"]
        assert len(blocks) <= 50 and validate_blocks(blocks) == []
        assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
        rows = [
            b["accessory"]["value"]
            for b in blocks
            if b.get("accessory", {}).get("action_id") == ids.ActionId.SHOW_DEVICE
        ]
        seen += rows
        nexts = [
            e
            for b in blocks
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == ids.ActionId.FIND_NEXT
        ]
        if not nexts:
            break
        assert len(nexts[0]["value"]) <= 2000
        before = flatten(page)
        assert big_bot.emu.click(OPERATOR, ids.ActionId.FIND_NEXT, message=page).status == 200

        def replaced(ts: str = page["ts"], old: str = before) -> dict[str, Any] | None:
            current = next(e for e in emu.ephemerals(OPERATOR) if e["ts"] == ts)
            return current if flatten(current) != old else None

        page = wait_until(replaced, 20, f"page {pages + 1}")
    assert len(seen) >= 1000
    assert len(set(seen)) == len(seen)  # no device twice, none lost between pages
    assert {v.split("|")[0] for v in seen} == {"chrome", "android"}
    assert f"of *{len(seen):,}*" in page["blocks"][0]["text"]["text"]
    assert [c for c in emu.calls if not c.ok] == []
    assert emu.problems == [] and all(r.status == 200 for r in emu.responses)
