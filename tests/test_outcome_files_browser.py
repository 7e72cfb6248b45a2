"""Outcomes in words, files in the thread: headless Chromium on the playground page.

An operator types `/device screenshot <kiosk>` and `/device logs <kiosk>`, an approver
clicks *Approve*, and the operator's thread reads the outcome once, in words, with the
screenshot shown as an image (a real PNG the bot fetched from the sandbox's `downloadUrl`)
and the logs as a `.tar.gz` file; the approval thread reads the same words once, with a
pointer to the requester's thread and no file.

In this module the playground asks approval for screenshots and logs too (by default they
need none), so that the whole path is played: request, approval, command, file.

`HELPDESK_SCREENSHOTS=docs pytest tests/test_outcome_files_browser.py` re-makes the README's
docs/outcome-files.png.
"""

from __future__ import annotations

import io
import os
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import test_playground_browser as browser
from test_helpdesk_browser import RAW, shoot
from test_playground_browser import Page, _fill_required

from bot.playground import main as playground
from bot.playground.main import APPROVALS, APPROVER1, HELPDESK, OPERATOR, start_playground

#: the browser and the page of test_playground_browser (its skip rules too); `pg` is this
#: module's own playground on the test's store, where screenshots and logs need approval
driver, page = browser.driver, browser.page

APPROVAL_REQUIRED = (
    "deprovision,disable,wipe,relinquish,reset-password,clear-app-data,remove-esim,"
    "powerwash,wipe-users,screenshot,logs,support-packet"
)


def start_approving_playground(database: Path, database_url: str | None) -> Any:
    """A playground over a sandbox of its own where screenshots and logs need approval."""
    from bot.sandbox import Sandbox

    make_env = playground.playground_env

    def env(**kw: Any) -> dict[str, str]:
        return {
            **make_env(**kw),
            "APPROVAL_REQUIRED": APPROVAL_REQUIRED,
            "POLL_INTERVAL": browser.POLL_INTERVAL,
        }

    sandbox = Sandbox(devices=100, seed=5, command_delay=0.3).start()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(playground, "playground_env", env)
        return start_playground(
            port=0, sandbox=sandbox, database=database, database_url=database_url
        )


playgrounds, pg = browser.per_store(start_approving_playground)


def kiosks(pg: Any) -> list[dict[str, Any]]:
    """The playground fleet's active kiosk Chromebooks (a Kiosk Upgrade licence)."""
    found = [
        d
        for d in pg.sandbox.fleet.iter_chrome()
        if d.get("status") == "ACTIVE"
        and d.get("serialNumber")
        and d.get("deviceLicenseType") == "kioskUpgrade"
    ]
    assert len(found) >= 2, "the playground fleet has too few kiosks"
    return found


def ask(page: Page, pg: Any, action: str, serial: str) -> str:
    """As the operator: `/device <action> <serial>`, the form filled and sent; the request id."""
    page.open(OPERATOR, HELPDESK)
    page.type(f"/device {action} {serial}")
    modal = page.until(
        lambda d: next(iter(page.css("#modal-root .modal:has(.modal-submit)")), None),
        15,
        f"the {action} form",
        dump="#modal-root, #messages .msg:last-child",
    )
    _fill_required(page, modal, "INC-6021 the lobby kiosk shows a blank page")
    page.css(".modal-submit", modal)[0].click()
    page.modal_gone()
    svc = pg.server.svc
    device = svc.devices.resolve(serial)
    row = page.until(
        lambda d: next(
            iter(
                svc.store.db().query(
                    "SELECT id FROM requests WHERE action = ? AND device_ids LIKE ?",
                    [action, f"%{device.id}%"],
                )
            ),
            None,
        ),
        15,
        "the request in the database",
    )
    return str(row["id"])


def approve(page: Page, request_id: str) -> None:
    """As an approver, in the approvals channel: *Approve* on the request's card."""
    page.open(APPROVER1, APPROVALS)
    card = page.message_with(request_id, timeout=15)
    ts = card.get_attribute("data-ts")
    page.click(
        lambda: next(
            iter(page.css(f'#messages .msg[data-ts="{ts}"] [data-action-id="request_approve"]')),
            None,
        ),
        message="Approve",
    )
    page.confirm_if_asked()


def open_thread(page: Page, user: str, channel: str, request_id: str, needle: str) -> Any:
    """Open the thread of the message about `request_id`; the thread pane once `needle` is in it."""
    page.open(user, channel)
    page.click(
        lambda: next(
            iter(page.css(".thread-link", page.message_with(request_id, timeout=15))), None
        ),
        timeout=20,
        message=f"the thread of {request_id}",
    )
    page.until(
        lambda d: needle in page.wait_css("#thread-pane").text,
        30,
        f"{needle!r} in the thread",
        dump="#thread-pane",
    )
    return page.wait_css("#thread-pane")


def replies_with(page: Page, needle: str) -> list[Any]:
    return [m for m in page.css("#thread-messages .msg:not(.thread-parent)") if needle in m.text]


def test_a_screenshot_is_shown_in_the_thread_and_logs_arrive_as_a_file(page: Page, pg: Any) -> None:
    shot_device, logs_device = kiosks(pg)[:2]
    shot = ask(page, pg, "screenshot", shot_device["serialNumber"])
    logs = ask(page, pg, "logs", logs_device["serialNumber"])
    approve(page, shot)
    approve(page, logs)

    # the requester's thread: the words once, the screenshot as an image (a real PNG)
    words = f"Screenshot of {shot_device['serialNumber']}:"
    pane = open_thread(page, OPERATOR, HELPDESK, shot, words)
    image = page.until(
        lambda d: next(
            (
                i
                for i in page.css("#thread-messages img.file-image")
                if page.d.execute_script(
                    "return arguments[0].complete && arguments[0].naturalWidth > 0", i
                )
            ),
            None,
        ),
        20,
        "the screenshot shown in the thread",
        dump="#thread-pane",
    )
    size = page.d.execute_script(
        "return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image
    )
    assert size == [320, 200], size  # the browser decoded the sandbox's PNG
    assert len(replies_with(page, words)) == 1
    assert len(page.css("#thread-messages img.file-image")) == 1
    assert "Reason: INC-6021" in page.css("#thread-messages .thread-parent")[0].text
    assert not [m for m in RAW if m in pane.text], pane.text
    assert "Download:" not in pane.text and "downloadUrl" not in pane.text
    if os.environ.get("HELPDESK_SCREENSHOTS"):
        size = page.d.get_window_size()
        page.d.set_window_size(size["width"], size["height"] + 240)  # the thread and the image
        try:
            page.d.execute_script(
                "const m = document.getElementById('thread-messages'); m.scrollTop = m.scrollHeight"
            )
            shoot(page.wait_css("#thread-pane"), "outcome-files.png")
        finally:
            page.d.set_window_size(size["width"], size["height"])

    # the logs: a .tar.gz file in the thread, once, that is a real gzip'd tar archive
    words = f"System logs of {logs_device['serialNumber']}:"
    open_thread(page, OPERATOR, HELPDESK, logs, words)
    assert len(replies_with(page, words)) == 1
    links = page.until(
        lambda d: [
            a
            for a in page.css("#thread-messages a.file")
            if (a.get_attribute("download") or "").endswith(".tar.gz")
        ],
        20,
        "the logs file in the thread",
        dump="#thread-pane",
    )
    assert len(links) == 1
    assert not page.css("#thread-messages img.file-image")  # not an image
    with urllib.request.urlopen(links[0].get_attribute("href"), timeout=10) as answer:  # noqa: S310
        content = answer.read()
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as archive:
        assert "var/log/messages" in archive.getnames()

    # the approval thread: the same words once, a pointer to the requester's thread, no file
    for request_id, serial, name in (
        (shot, shot_device["serialNumber"], "Screenshot"),
        (logs, logs_device["serialNumber"], "System logs"),
    ):
        words = f"{name} of {serial}:"
        pane = open_thread(page, APPROVER1, APPROVALS, request_id, words)
        said = replies_with(page, words)
        assert len(said) == 1, [m.text for m in said]
        assert "not copied here" in said[0].text and "open it" in said[0].text
        assert not page.css("#thread-messages img.file-image, #thread-messages a.file")
        link = next(a for a in page.css("a", said[0]) if a.text == "open it")
        assert f"/archives/{HELPDESK}/" in (link.get_attribute("href") or "")
