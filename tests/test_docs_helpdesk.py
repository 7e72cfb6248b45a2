"""README and the code agree on what the help desk's set-up and pictures need."""

from __future__ import annotations

import re
from pathlib import Path

from bot import google

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_scope_the_bot_asks_for_is_in_the_delegation_list() -> None:
    """An admin delegates exactly what the bot asks for (the OU picker's read-only scope too)."""
    asked = {
        google.DIRECTORY_SCOPE,
        google.ORGUNIT_SCOPE,
        google.REPORTS_SCOPE,
        google.ANDROID_SCOPE,
    }
    listed = set(re.findall(r"`(https://www\.googleapis\.com/auth/[a-z.]+)`", README))
    assert listed == asked


def test_every_picture_the_readme_shows_is_committed_and_remade_by_a_test() -> None:
    pictures = re.findall(r"!\[[^\]]*\]\((docs/[a-z-]+\.png)\)", README)
    assert {"docs/outcome-files.png", "docs/approval-card.png", "docs/history.png"} <= set(pictures)
    for picture in pictures:
        path = ROOT / picture
        assert path.exists(), picture
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", picture
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*browser.py"))
    for name in ("device-card", "approval-card", "lost-post", "history", "outcome-files"):
        assert f'"{name}.png"' in tests, name
