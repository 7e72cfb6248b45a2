"""The device card in headless Chromium: only the actions that fit the device.

`/device info <serial>` is typed on the playground page, as a person would; the buttons the
page shows are held against what bot/capabilities.py decides for that device, and against the
rules in words (tests/test_capabilities.py checks each rule against the sandbox). A lost
phone's card offers *Found* instead of *Lost mode*; `/device help <serial>` says why the rest is
not for the device; a typed sub-command that does not fit is refused in its modal, before any
request exists.

`HELPDESK_SCREENSHOTS=docs pytest tests/test_device_card_browser.py` re-makes the README's
docs/device-card.png (a fully managed phone's card).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import test_playground_browser as browser
from test_helpdesk_browser import RAW, shoot
from test_playground_browser import Page

from bot import approvals, capabilities, catalog, lost
from bot.playground.main import APPROVER1, HELPDESK, OPERATOR
from bot.requests import NewRequest

#: the browser and the page of test_playground_browser (its skip rules too); `pg` is a
#: playground of this module's on the test's store
driver, page = browser.driver, browser.page
playgrounds, pg = browser.per_store(browser.start_browser_playground)

PREFIX = "device_action:"


def label(name: str, platform: str) -> str:
    return catalog.action_for(name, platform).label


def android(pg: Any, where: Callable[[dict[str, Any]], bool], last: bool = False) -> str:
    """The serial of an active phone of the playground's fleet that `where` accepts (the
    first, or the last so that two tests of this module never share a phone)."""
    fleet = pg.sandbox.fleet
    serials = [
        str(d["hardwareInfo"]["serialNumber"])
        for name in list(fleet.android_order)
        if (d := fleet.android[name]).get("state") == "ACTIVE" and where(d)
    ]
    assert len(serials) >= 2, "the playground fleet has too few such phones"
    return serials[-1] if last else serials[0]


def chrome(pg: Any, where: Callable[[dict[str, Any]], bool]) -> str:
    """The serial of an active Chromebook of the playground's fleet that `where` accepts."""
    return next(
        str(d["serialNumber"])
        for d in pg.sandbox.fleet.iter_chrome()
        if d.get("status") == "ACTIVE" and d.get("serialNumber") and where(d)
    )


def message_headed(page: Page, title: str, timeout: float = 15) -> Any:
    """The newest message whose header is exactly `title`."""
    return page.until(
        lambda d: next(
            (
                m
                for m in reversed(page.css("#messages .msg"))
                if any(h.text == title for h in page.css(".block-header", m))
            ),
            None,
        ),
        timeout,
        f"a message headed {title!r}",
        dump="#messages .msg:last-child",
    )


def show_card(page: Page, pg: Any, platform: str, serial: str) -> tuple[Any, dict[str, str]]:
    """Type `/device info <serial>`; the card and its action buttons (action name → label)."""
    page.open(OPERATOR, HELPDESK)
    page.type(f"/device info {serial}")
    title = f"{'Android' if platform == 'android' else 'Chrome OS'} {serial}"
    card = message_headed(page, title)
    buttons = {
        (b.get_attribute("data-action-id") or "").removeprefix(PREFIX): b.text
        for b in page.css(f'button[data-action-id^="{PREFIX}"]', card)
    }
    assert "Only visible to you" in card.text
    assert not [m for m in RAW if m in card.text], card.text
    # the page shows exactly what the capability model decides for this device now
    device = pg.server.svc.devices.resolve(serial)
    expected = {
        s.name: s.label
        for s in capabilities.available(capabilities.facts_for(pg.server.svc, device))
    }
    assert buttons == expected, (buttons, expected)
    return card, buttons


def test_personal_work_profile_card_has_no_company_only_actions(page: Page, pg: Any) -> None:
    serial = android(
        pg,
        lambda d: d["managementMode"] == "PROFILE_OWNER" and d["ownership"] == "PERSONALLY_OWNED",
    )
    _, buttons = show_card(page, pg, "android", serial)
    shown = set(buttons.values())
    assert label("lock", "android") in shown
    for absent in ("lost", "reboot", "relinquish", "found"):
        assert label(absent, "android") not in shown, (absent, shown)


def test_fully_managed_card_offers_reboot_and_lost_mode_not_relinquish(page: Page, pg: Any) -> None:
    serial = android(pg, lambda d: d["managementMode"] == "DEVICE_OWNER" and d["apiLevel"] >= 33)
    card, buttons = show_card(page, pg, "android", serial)
    assert {"reboot", "lost", "lock", "wipe"} <= set(buttons)
    assert buttons["reboot"] == "Reboot" and buttons["lost"] == label("lost", "android")
    assert not {"relinquish", "found", "device-info"} & set(buttons), buttons
    shoot(card, "device-card.png")


def test_users_chromebook_card_has_no_kiosk_only_commands(page: Page, pg: Any) -> None:
    serial = chrome(pg, lambda d: d.get("deviceLicenseType") != "kioskUpgrade")
    _, buttons = show_card(page, pg, "chrome", serial)
    assert {"reboot", "disable", "powerwash"} <= set(buttons), buttons
    for absent in ("screenshot", "volume", "logs"):
        assert absent not in buttons and label(absent, "chrome") not in buttons.values()


def test_kiosk_chromebook_card_offers_screenshot(page: Page, pg: Any) -> None:
    serial = chrome(pg, lambda d: d.get("deviceLicenseType") == "kioskUpgrade")
    _, buttons = show_card(page, pg, "chrome", serial)
    assert buttons.get("screenshot") == label("screenshot", "chrome")
    assert {"volume", "logs"} <= set(buttons), buttons


def test_device_help_says_why_the_rest_is_not_for_this_device(page: Page, pg: Any) -> None:
    serial = android(
        pg,
        lambda d: d["managementMode"] == "PROFILE_OWNER" and d["ownership"] == "PERSONALLY_OWNED",
    )
    page.open(OPERATOR, HELPDESK)
    page.type(f"/device help {serial}")
    answer = message_headed(page, f"What fits Android {serial}")
    text = answer.text
    assert "Only visible to you" in text and "Not for this device" in text
    offered, refused = text.split("Not for this device", 1)
    assert label("lock", "android") in offered
    assert (
        f"Relinquish applies only to company-owned work profiles; {serial} is a personal work profile."
        in refused
    )
    assert f"{label('lost', 'android')}: Lost mode applies only to company-owned devices" in refused
    assert f"{serial} is not reported lost" in refused  # Found
    assert not [m for m in RAW if m in text], text


def test_a_lost_phone_offers_found_instead_of_lost_mode(page: Page, pg: Any) -> None:
    svc = pg.server.svc
    serial = android(
        pg, lambda d: d["managementMode"] == "DEVICE_OWNER" and d["apiLevel"] >= 33, last=True
    )
    device = svc.devices.resolve(serial)
    request_id = approvals.submit(
        svc,
        NewRequest(
            action="lost",
            platform="android",
            devices=(device,),
            params={"message": "Please call IT", "phone": "+1 555 0100"},
            requester=OPERATOR,
            reason="INC-9120 left in a taxi",
            channel=HELPDESK,
        ),
    )
    if svc.settings.needs_approval("lost"):
        approvals.approve(svc, request_id, APPROVER1)
    page.until(
        lambda d: lost.open_case_for(svc, "android", device.id),
        15,
        "the lost case to open",
    )
    card, buttons = show_card(page, pg, "android", serial)
    assert buttons.get("found") == label("found", "android"), buttons
    assert "lost" not in buttons and "Lost mode" not in buttons.values(), buttons


def test_a_typed_command_that_does_not_fit_is_refused_before_approval(page: Page, pg: Any) -> None:
    serial = android(pg, lambda d: d["managementMode"] == "DEVICE_OWNER")
    page.open(OPERATOR, HELPDESK)
    page.type(f"/device relinquish {serial}")
    words = f"Relinquish applies only to company-owned work profiles; {serial} is fully managed."
    modal = page.until(
        lambda d: next((m for m in page.css("#modal-root .modal") if words in m.text), None),
        15,
        "the refusal in the modal",
        dump="#modal-root",
    )
    assert not page.css(".modal-submit", modal), "nothing to submit: no request can be made"
    page.css(".modal-x", modal)[0].click()
    page.modal_gone()
    rows = pg.server.svc.store.db().query(
        "SELECT COUNT(*) AS n FROM requests WHERE action = ?", ["relinquish"]
    )
    assert [dict(r) for r in rows] == [{"n": 0}]
