"""What the help desk reads, in headless Chromium on the playground page.

The requests are made through the bot's own domain function (the browser flow of a request
is tested in test_playground_browser.py); what is checked here is what a person sees and
clicks: the approval card, the lost-device post, a device's history and its raw detail.

`HELPDESK_SCREENSHOTS=docs pytest tests/test_helpdesk_browser.py` re-makes the README's
docs/approval-card.png, docs/lost-post.png and docs/history.png (emoji need the
fonts-noto-color-emoji package).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import test_playground_browser as browser
from test_playground_browser import Page

from bot import approvals, lost
from bot.playground.main import APPROVALS, APPROVER1, HELPDESK, LOST, OPERATOR
from bot.requests import NewRequest

#: the browser and the page of test_playground_browser (its skip rules too); `pg` is a
#: playground of this module's on the test's store
driver, page = browser.driver, browser.page
playgrounds, pg = browser.per_store(browser.start_browser_playground)

#: the markup a person must never see raw on the page
RAW = ("<!date", "<@U", "lost_or_stolen", "{date_short_pretty}", "{ago}", "&lt;", "&gt;")


def shoot(element: Any, name: str) -> None:
    """Save `element` as docs/<name> when HELPDESK_SCREENSHOTS names the folder."""
    folder = os.environ.get("HELPDESK_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        assert element.screenshot(str(Path(folder) / name))


def active_chrome(pg: Any, skip: int = 0) -> dict[str, Any]:
    devices = [
        d
        for d in pg.sandbox.fleet.iter_chrome()
        if d.get("status") == "ACTIVE" and d.get("serialNumber")
    ]
    return devices[-1 - skip]  # from the end: test_playground_browser takes the first


def request(pg: Any, action: str, device: Any, params: dict[str, Any], reason: str) -> str:
    svc = pg.server.svc
    return approvals.submit(
        svc,
        NewRequest(
            action=action,
            platform=device.platform,
            devices=(device,),
            params=params,
            requester=OPERATOR,
            reason=reason,
            channel=HELPDESK,
        ),
    )


def test_approval_card_reads_at_a_glance(page: Page, pg: Any) -> None:
    raw = active_chrome(pg)
    device = pg.server.svc.devices.resolve(raw["serialNumber"])
    request_id = request(
        pg, "disable", device, {"why": "lost_or_stolen"}, "INC-4411 left on the train"
    )
    page.open(APPROVER1, APPROVALS)
    card = page.message_with(request_id, timeout=15)
    text = card.text
    assert "@Olivia Operator asked to disable it" in text
    assert "Reason: INC-4411 left on the train" in text
    assert "Why: Lost or stolen" in text
    assert "expires in 24 h" in text
    assert "Approving runs exactly this; any change needs a new request." in text
    assert "Today" in text  # a Slack date, shown in the reader's words
    assert not [m for m in RAW if m in text], text
    links = [a for a in page.css("a", card) if a.text == "their thread"]
    assert links and f"/archives/{HELPDESK}/" in (links[0].get_attribute("href") or "")
    assert {b.text for b in page.css("button", card)} >= {"Approve", "Deny"}
    shoot(card, "approval-card.png")


def test_lost_post_with_reason_buttons_and_open_card(page: Page, pg: Any) -> None:
    svc = pg.server.svc
    phone = next(
        d
        for name in list(pg.sandbox.fleet.android_order)
        if (d := pg.sandbox.fleet.android[name]).get("state") == "ACTIVE"
        and d.get("managementMode") == "DEVICE_OWNER"
    )
    serial = phone["hardwareInfo"]["serialNumber"]
    device = svc.devices.resolve(serial)
    request_id = request(
        pg, "lost", device, {"message": "Please call IT", "phone": "+1 555 0100"}, "INC-7781 taxi"
    )
    if svc.settings.needs_approval("lost"):
        approvals.approve(svc, request_id, APPROVER1)  # lost mode succeeds: the case opens
    page.open(OPERATOR, LOST)
    post = page.message_with(f"Lost device: {serial}", timeout=20)
    assert "Why: INC-7781 taxi" in post.text
    assert "Reported by @Olivia Operator" in post.text
    assert "Android" in post.text and "Last check-in" in post.text, post.text
    assert "ago" in post.text or "just now" in post.text, post.text
    assert not [m for m in RAW if m in post.text], post.text
    labels = [b.text for b in page.css("button", post)]
    assert labels[:3] == ["Found", "Wipe…", "Open card"], labels
    # a check-in edits the post in place
    pg.sandbox.fleet.check_in(phone["name"], at=time.time(), operator="Vodafone UK")
    lost.watch(svc)
    page.until(
        lambda d: "Vodafone UK" in page.message_with(f"Lost device: {serial}").text,
        message="the post updated with the check-in",
    )
    shoot(page.message_with(f"Lost device: {serial}"), "lost-post.png")
    page.click(
        lambda: next(
            (
                b
                for b in page.css("button", page.message_with(f"Lost device: {serial}"))
                if b.text == "Open card"
            ),
            None,
        ),
        message="Open card",
    )
    # the card comes privately, in the post's thread (the post has check-in replies)
    page.click(
        lambda: next(iter(page.css(".thread-link", page.message_with(f"Lost device: {serial}")))),
        message="the post's thread",
    )
    card = page.until(
        lambda d: next(
            (
                m
                for m in page.css("#thread-messages .msg.ephemeral")
                if f"Android {serial}" in m.text
            ),
            None,
        ),
        15,
        "the device card",
        dump="#thread-pane",
    )
    assert "Only visible to you" in card.text


def test_history_in_words_with_raw_detail(page: Page, pg: Any) -> None:
    svc = pg.server.svc
    raw = active_chrome(pg, skip=1)
    device = svc.devices.resolve(raw["serialNumber"])
    note = request(pg, "annotate", device, {"notes": "Returned by a leaver"}, "INC-5120")
    if svc.settings.needs_approval("annotate"):
        approvals.approve(svc, note, APPROVER1)
    request_id = request(pg, "disable", device, {"why": "other"}, "INC-5120 leaver")
    approvals.approve(svc, request_id, APPROVER1)
    page.open(OPERATOR, HELPDESK)
    page.type(f"/device history {raw['serialNumber']}")
    history = page.message_with(f"History of Chrome OS {raw['serialNumber']}", timeout=15)
    page.until(lambda d: "disabled" in history.text, message="the outcome in the history")
    text = history.text
    assert "@Olivia Operator asked to disable it (INC-5120 leaver; Why: Other)" in text
    assert "@Alex Approver approved" in text
    assert "asked to change its annotations (INC-5120; Notes" in text
    assert text.index("asked to disable") < text.index("asked to change")  # newest first
    assert not [m for m in RAW if m in text], text
    shoot(history, "history.png")
    page.click(
        lambda: next((b for b in page.css("button", history) if b.text == "Raw detail"), None),
        message="Raw detail",
    )
    raw_detail = page.message_with("Audit log of", timeout=15)
    assert '"event": "requested"' in raw_detail.text and request_id in raw_detail.text
