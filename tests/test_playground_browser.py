"""The playground page in headless Chromium (Debian's chromium + chromedriver, driven by selenium).

The bot is the real one (BotServer over the sandbox Google and the Slack emulator); a few
test-only Bolt listeners, registered through Bolt's public API, stand in for features that
are not the subject here (a button that answers in a thread, a form that validates).

`PLAYGROUND_SCREENSHOT=docs/playground.png pytest tests/test_playground_browser.py -k screenshot`
re-makes the README's screenshot.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CHROMEDRIVER, CHROMIUM, postgres_url
from slack_sdk import WebClient

from bot.playground.main import APPROVALS, APPROVER1, HELPDESK, OPERATOR, start_playground

if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip(
        f"browser tests need Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}): "
        "apt-get install -y chromium chromium-driver",
        allow_module_level=True,
    )
selenium = pytest.importorskip(
    "selenium", reason="browser tests need selenium (pip install selenium)"
)

from selenium.common.exceptions import StaleElementReferenceException, TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

WAIT = 10.0


# ---------------------------------------------------------------------------- fixtures


def _register_test_listeners(app: Any) -> None:
    """Bolt listeners for this module only: a button answering in its thread, a validating form."""

    def thread_reply(ack: Any, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.chat_postMessage(
            channel=body["channel"]["id"],
            thread_ts=body["container"]["message_ts"],
            text=f"<@{body['user']['id']}> pressed *{body['actions'][0]['text']['text']}*",
        )

    def form(ack: Any, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        values = view["state"]["values"]
        volume = values["volume"]["volume_input"]["value"]
        if not 0 <= int(volume) <= 100:
            ack(response_action="errors", errors={"volume": "The volume must be from 0 to 100."})
            return
        ack()
        flags = [o["value"] for o in values["flags"]["flags_input"]["selected_options"]]
        client.chat_postMessage(
            channel=HELPDESK,
            text=(
                f"form accepted: asset={values['asset']['asset_input']['value']} "
                f"ou={values['ou']['ou_input']['selected_option']['value']} "
                f"reason={values['reason']['reason_input']['selected_option']['value']} "
                f"flags={','.join(flags)} volume={volume} "
                f"notes={values['notes']['notes_input']['value']!r}"
            ),
        )

    app.action("pg_demo_go")(thread_reply)
    app.action("pg_demo_pick")(lambda ack: ack())
    app.action("pg_demo_more")(lambda ack: ack())
    app.view("pg_test_form")(form)


#: the browser tests' playgrounds poll their commands' outcomes every 0.2 s (the playground's
#: own 2 s are for a person watching the page)
POLL_INTERVAL = "0.2"


def start_browser_playground(database: Path, database_url: str | None = None) -> Any:
    """A playground over a sandbox of its own, with this module's test listeners; its state
    in the SQLite file `database`, or in PostgreSQL at `database_url`."""
    from bot.playground import main as playground
    from bot.sandbox import Sandbox

    make_env = playground.playground_env

    def env(**kw: Any) -> dict[str, str]:
        return {**make_env(**kw), "POLL_INTERVAL": POLL_INTERVAL}

    sandbox = Sandbox(devices=80, seed=5, command_delay=0.3).start()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(playground, "playground_env", env)
        running = start_playground(
            port=0, sandbox=sandbox, database=database, database_url=database_url
        )
    _register_test_listeners(running.server.app)
    return running


class PerStore:
    """A module's playgrounds, one per store its tests run on (with TEST_BOTH_STORES=1:
    SQLite and PostgreSQL), each started on first use and kept for the module."""

    def __init__(
        self, start: Callable[[Path, str | None], Any], tmp: pytest.TempPathFactory
    ) -> None:
        self.start = start
        self.tmp = tmp
        self.running: dict[str, Any] = {}
        self.databases: list[tuple[Any, str]] = []

    def get(self, request: pytest.FixtureRequest, backend: str) -> Any:
        if backend not in self.running:
            url = None
            if backend == "postgresql":  # a database of its own, kept for the module
                url = postgres_url(request)
                self.databases.append((request.getfixturevalue("pg_cluster"), url))
            running = self.start(self.tmp.mktemp("pgb") / "pg.db", url)
            self.running[backend] = running
            assert running.server.svc.store.dialect == backend  # the store the test is on
        return self.running[backend]

    def stop(self) -> None:
        for running in self.running.values():
            running.stop()
        for cluster, url in self.databases:
            cluster.drop_database(url)


def per_store(start: Callable[[Path, str | None], Any]) -> tuple[Any, Any]:
    """The fixtures `playgrounds, pg` of a module whose tests run on the test's store: `pg` is
    the module's playground started by `start(sqlite_file, database_url)` on that store."""

    @pytest.fixture(scope="module")
    def playgrounds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PerStore]:
        started = PerStore(start, tmp_path_factory)
        yield started
        started.stop()

    @pytest.fixture
    def pg(playgrounds: PerStore, backend: str, request: pytest.FixtureRequest) -> Any:
        return playgrounds.get(request, backend)

    return playgrounds, pg


#: the module's playground on the test's store (TEST_BOTH_STORES=1: one on each store)
playgrounds, pg = per_store(start_browser_playground)


@pytest.fixture(scope="module")
def driver(chromium: WebDriver) -> Iterator[WebDriver]:
    """The session's headless Chromium (conftest), for this module's pages; left on a blank
    page, so that no page of the module's stopped playground keeps reconnecting."""
    yield chromium
    chromium.get("about:blank")


@pytest.fixture
def slack(pg: Any) -> WebClient:
    return WebClient(token=pg.server.settings.slack_bot_token.get(), base_url=pg.emulator.api_url)


# ---------------------------------------------------------------------------- page helpers


class Page:
    """What a person does on the playground page."""

    def __init__(self, driver: WebDriver, base_url: str) -> None:
        self.d = driver
        self.base = base_url

    def open(self, user: str = OPERATOR, channel: str = HELPDESK) -> Page:
        self.d.get(f"{self.base}/?user={user}&channel={channel}")
        self.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-version"))
        self.until(lambda d: "live" in d.find_element(By.ID, "connection").get_attribute("class"))
        return self

    def until(
        self, condition: Any, timeout: float = WAIT, message: str = "", dump: str = ""
    ) -> Any:
        try:
            return WebDriverWait(
                self.d,
                timeout,
                poll_frequency=0.05,
                ignored_exceptions=(StaleElementReferenceException,),
            ).until(condition)
        except TimeoutException:
            seen = ""
            if dump:
                seen = "\n".join(e.text for e in self.css(dump))
            raise AssertionError(f"timed out: {message or condition}\n{seen}".rstrip()) from None

    def css(self, selector: str, root: Any = None) -> list[WebElement]:
        return (root or self.d).find_elements(By.CSS_SELECTOR, selector)

    def wait_css(self, selector: str, timeout: float = WAIT) -> WebElement:
        return self.until(
            lambda d: next((e for e in self.css(selector) if e.is_displayed()), None),
            timeout,
            f"a visible {selector}",
        )

    def type(self, text: str) -> None:
        box = self.wait_css("#composer-input")
        self.until(lambda d: box.is_enabled(), message="the message box")
        box.send_keys(text + Keys.ENTER)

    def message_with(
        self, needle: str, where: str = "#messages", timeout: float = WAIT
    ) -> WebElement:
        return self.until(
            lambda d: next((m for m in self.css(f"{where} .msg") if needle in m.text), None),
            timeout,
            f"a message containing {needle!r} in {where}",
        )

    def click(self, find: Any, timeout: float = WAIT, message: str = "") -> None:
        """Click what `find()` returns, finding it again if the page re-rendered it meanwhile."""

        def attempt(_: Any) -> bool:
            element = find()
            if element is None:
                return False
            try:
                element.click()
            except StaleElementReferenceException:
                return False
            return True

        self.until(attempt, timeout, message)

    def switch_user(self, user: str) -> None:
        Select(self.d.find_element(By.ID, "user-switch")).select_by_value(user)
        self.until(
            lambda d: (
                d.find_element(By.TAG_NAME, "body").get_attribute("data-user") == user
                and "live" in d.find_element(By.ID, "connection").get_attribute("class")
            )
        )
        self.until(lambda d: self.css("#channel-list button"))

    def go(self, channel: str) -> None:
        self.wait_css(f'#sidebar button[data-channel="{channel}"]').click()
        self.until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-channel") == channel
        )

    def confirm_if_asked(self) -> None:
        with contextlib.suppress(AssertionError):
            self.until(lambda d: self.css('#confirm-root [data-confirm="yes"]'), timeout=0.5)
            self.css('#confirm-root [data-confirm="yes"]')[0].click()

    def modal(self, timeout: float = WAIT) -> WebElement:
        return self.wait_css("#modal-root .modal", timeout)

    def modal_gone(self) -> None:
        self.until(lambda d: not self.css("#modal-root .modal"), message="the modal to close")


@pytest.fixture
def page(driver: WebDriver, pg: Any) -> Page:
    return Page(driver, pg.url)


# ---------------------------------------------------------------------------- tests


def test_page_loads_with_channels_people_and_the_sandbox_notice(page: Page) -> None:
    page.open()
    assert "SANDBOX" in page.wait_css("#sandbox-banner").text
    assert "device-bot playground" in page.d.title
    channels = [b.text for b in page.css("#channel-list button")]
    assert channels == ["# help-desk", "# device-approvals", "# lost-devices"]
    people = [o.text for o in Select(page.d.find_element(By.ID, "user-switch")).options]
    assert people[:3] == [
        "Olivia Operator — operator",
        "Alex Approver — approver",
        "Sam Approver — approver",
    ]
    assert page.wait_css("#channel-title").text == "# help-desk"


def test_device_help_answers_only_to_the_user_who_asked(page: Page) -> None:
    page.open(OPERATOR)
    page.type("/device help")
    answer = page.message_with("device-bot: /device sub-commands")
    assert "Only visible to you" in answer.text
    assert page.css(".block-header", answer)[0].text == "device-bot: /device sub-commands"
    assert page.css("code", answer), "mrkdwn `code` in the help is rendered"

    page.switch_user(APPROVER1)
    page.until(lambda d: page.css("#messages .msg, #messages .empty"))
    assert "device-bot: /device sub-commands" not in page.wait_css("#messages").text
    page.switch_user(OPERATOR)
    page.message_with("device-bot: /device sub-commands")


def test_block_kit_message_buttons_confirm_selects_overflow_and_thread(
    page: Page, pg: Any, slack: WebClient
) -> None:
    plain = lambda text: {"type": "plain_text", "text": text}  # noqa: E731
    md = lambda text: {"type": "mrkdwn", "text": text}  # noqa: E731
    option = lambda text, value: {"text": plain(text), "value": value}  # noqa: E731
    blocks = [
        {"type": "header", "text": plain("Chromebook 5CD1234XYZ")},
        {
            "type": "section",
            "text": md("*Status* ACTIVE · _last sync_ today"),
            "fields": [md("*User*\nana@example.com"), md("*OU*\n/Sales")],
            "accessory": {
                "type": "overflow",
                "action_id": "pg_demo_more",
                "options": [option("History", "history"), option("Move", "move")],
            },
        },
        {"type": "divider"},
        {
            "type": "actions",
            "block_id": "demo_actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "pg_demo_go",
                    "text": plain("Disable"),
                    "style": "danger",
                    "value": "x",
                    "confirm": {
                        "title": plain("Disable it?"),
                        "text": md("The device stops working until re-enabled."),
                        "confirm": plain("Disable"),
                        "deny": plain("Keep"),
                        "style": "danger",
                    },
                },
                {
                    "type": "button",
                    "action_id": "pg_demo_ok",
                    "text": plain("Fine"),
                    "style": "primary",
                },
                {
                    "type": "static_select",
                    "action_id": "pg_demo_pick",
                    "placeholder": plain("Move to…"),
                    "options": [option("/Sales", "sales"), option("/Lost", "lost")],
                },
            ],
        },
        {"type": "context", "elements": [md(":test_tube: SANDBOX")]},
    ]
    ts = slack.chat_postMessage(channel=APPROVALS, text="card", blocks=blocks)["ts"]
    page.open(OPERATOR, APPROVALS)
    card = page.message_with("Chromebook 5CD1234XYZ")
    assert [f.text for f in page.css(".field", card)] == ["User\nana@example.com", "OU\n/Sales"]
    assert "🧪 SANDBOX" in page.css(".block-context", card)[0].text
    assert page.css(".block-divider", card)
    assert "danger" in page.css('[data-action-id="pg_demo_go"]', card)[0].get_attribute("class")
    assert "primary" in page.css('[data-action-id="pg_demo_ok"]', card)[0].get_attribute("class")

    mark = len(pg.emulator.deliveries)
    Select(page.css('select[data-action-id="pg_demo_pick"]', card)[0]).select_by_value("lost")
    page.css('.overflow-toggle[data-action-id="pg_demo_more"]', card)[0].click()
    page.wait_css('.overflow-menu button[data-value="move"]').click()

    def delivered(action_id: str) -> Any:
        return next(
            (
                d.payload["actions"][0]
                for d in pg.emulator.deliveries[mark:]
                if d.kind == "block_actions" and d.payload["actions"][0]["action_id"] == action_id
            ),
            None,
        )

    assert page.until(lambda d: delivered("pg_demo_pick"))["selected_option"]["value"] == "lost"
    assert page.until(lambda d: delivered("pg_demo_more"))["selected_option"]["value"] == "move"

    # a confirm dialog: "Keep" sends nothing, "Disable" sends the click
    page.message_with("Chromebook 5CD1234XYZ").find_element(
        By.CSS_SELECTOR, '[data-action-id="pg_demo_go"]'
    ).click()
    dialog = page.wait_css("#confirm-root .confirm-dialog")
    assert "Disable it?" in dialog.text and "until re-enabled" in dialog.text
    page.css('#confirm-root [data-confirm="no"]')[0].click()
    page.message_with("Chromebook 5CD1234XYZ").find_element(
        By.CSS_SELECTOR, '[data-action-id="pg_demo_go"]'
    ).click()
    page.wait_css('#confirm-root [data-confirm="yes"]').click()
    assert page.until(lambda d: delivered("pg_demo_go"))["value"] == "x"
    assert (
        sum(
            1
            for d in pg.emulator.deliveries[mark:]
            if d.payload.get("actions", [{}])[0].get("action_id") == "pg_demo_go"
        )
        == 1
    )

    # the listener answered in the thread: "1 reply" opens the thread pane
    page.until(lambda d: page.css(f'#messages .msg[data-ts="{ts}"] .thread-link'))
    page.css(f'#messages .msg[data-ts="{ts}"] .thread-link')[0].click()
    reply = page.message_with("pressed Disable", "#thread-messages")
    assert "@Olivia Operator" in reply.text
    page.wait_css("#thread-input").send_keys("thanks, bot" + Keys.ENTER)
    page.message_with("thanks, bot", "#thread-messages")
    assert "2 replies" in page.css(f'#messages .msg[data-ts="{ts}"] .thread-link')[0].text


def test_mrkdwn_is_rendered_and_nothing_from_the_bot_becomes_html(
    page: Page, slack: WebClient
) -> None:
    text = (
        "mrkdwn-check *bold* _italic_ ~gone~ `code` <https://example.com/x|a link> <@U0APPROVER1> "
        "&lt;b&gt;not bold&lt;/b&gt; &amp; snake_case_name\n```line one\nline two```\n&gt; quoted\n"
        "<img src=x onerror=window.__pwned=1> <javascript:alert(1)|bad link>"
    )
    slack.chat_postMessage(channel=HELPDESK, text=text)
    page.open(OPERATOR, HELPDESK)
    msg = page.message_with("mrkdwn-check")
    body = page.css(".mrkdwn", msg)[0]
    assert page.css("b", body)[0].text == "bold"
    assert page.css("i", body)[0].text == "italic"
    assert page.css("s", body)[0].text == "gone"
    assert page.css("code", body)[0].text == "code"
    assert page.css("pre", body)[0].text == "line one\nline two"
    assert page.css("blockquote", body)[0].text == "quoted"
    links = page.css("a", body)
    assert [(a.text, a.get_attribute("href")) for a in links] == [
        ("a link", "https://example.com/x")
    ]
    assert page.css(".mention", body)[0].text == "@Alex Approver"
    assert "<b>not bold</b> & snake_case_name" in body.text
    assert "bad link" in body.text
    assert not page.css("img", body)
    assert page.d.execute_script("return window.__pwned === undefined")


def test_modal_inputs_and_a_validation_error_next_to_the_field(
    page: Page, pg: Any, slack: WebClient
) -> None:
    plain = lambda text: {"type": "plain_text", "text": text}  # noqa: E731
    option = lambda text, value: {"text": plain(text), "value": value}  # noqa: E731
    view = {
        "type": "modal",
        "callback_id": "pg_test_form",
        "title": plain("Annotate device"),
        "submit": plain("Save"),
        "close": plain("Cancel"),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "Device *5CD1234XYZ*"}},
            {
                "type": "input",
                "block_id": "asset",
                "label": plain("Asset id"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "asset_input",
                    "initial_value": "A-1",
                },
            },
            {
                "type": "input",
                "block_id": "notes",
                "label": plain("Notes"),
                "optional": True,
                "element": {
                    "type": "plain_text_input",
                    "action_id": "notes_input",
                    "multiline": True,
                },
            },
            {
                "type": "input",
                "block_id": "ou",
                "label": plain("Org unit"),
                "element": {
                    "type": "static_select",
                    "action_id": "ou_input",
                    "options": [option("/Sales", "/Sales"), option("/Lost", "/Lost")],
                },
            },
            {
                "type": "input",
                "block_id": "reason",
                "label": plain("Reason"),
                "element": {
                    "type": "radio_buttons",
                    "action_id": "reason_input",
                    "options": [
                        option("Retiring", "retiring_device"),
                        option("Upgrade", "upgrade_transfer"),
                    ],
                },
            },
            {
                "type": "input",
                "block_id": "flags",
                "label": plain("Flags"),
                "optional": True,
                "element": {
                    "type": "checkboxes",
                    "action_id": "flags_input",
                    "options": [option("Lost", "lost"), option("Urgent", "urgent")],
                },
            },
            {
                "type": "input",
                "block_id": "volume",
                "label": plain("Volume"),
                "hint": plain("0 to 100"),
                "element": {
                    "type": "number_input",
                    "action_id": "volume_input",
                    "is_decimal_allowed": False,
                },
            },
        ],
    }
    page.open(OPERATOR, HELPDESK)
    slack.views_open(trigger_id=pg.emulator.issue_trigger(OPERATOR), view=view)
    modal = page.modal()
    assert page.css(".modal-title", modal)[0].text == "Annotate device"
    assert page.css('[data-block-id="asset"] input', modal)[0].get_attribute("value") == "A-1"
    assert page.css('[data-block-id="notes"] textarea', modal)
    assert "(optional)" in page.css('[data-block-id="notes"] label', modal)[0].text

    # a required field left empty is refused in the page, as Slack does
    page.css(".modal-submit", modal)[0].click()
    error = page.wait_css('[data-block-id="ou"] .field-error')
    assert "required" in error.text

    page.css('[data-block-id="notes"] textarea', modal)[0].send_keys("first line\nsecond line")
    Select(page.css('[data-block-id="ou"] select', modal)[0]).select_by_value("/Lost")
    page.css('[data-block-id="reason"] input[value="upgrade_transfer"]', modal)[0].click()
    page.css('[data-block-id="flags"] input[value="urgent"]', modal)[0].click()
    volume = page.css('[data-block-id="volume"] input', modal)[0]
    volume.send_keys("150")
    page.css(".modal-submit", modal)[0].click()
    error = page.until(
        lambda d: next(
            (
                e
                for e in page.css('[data-block-id="volume"] .field-error')
                if "volume must" in e.text
            ),
            None,
        ),
        message="the bot's error under the volume field",
        dump="#modal-root",
    )
    assert error.text == "The volume must be from 0 to 100."
    assert "has-error" in page.css('[data-block-id="volume"]')[0].get_attribute("class")
    assert not page.css('[data-block-id="ou"] .field-error')[0].is_displayed()
    assert (
        page.css('[data-block-id="notes"] textarea')[0].get_attribute("value")
        == "first line\nsecond line"
    )

    volume.clear()
    volume.send_keys("40")
    page.css(".modal-submit")[0].click()
    page.modal_gone()
    msg = page.message_with("form accepted")
    assert (
        "asset=A-1 ou=/Lost reason=upgrade_transfer flags=urgent volume=40 notes='first line\\nsecond line'"
        in msg.text
    )


def _fill_required(page: Page, modal: WebElement, reason: str) -> None:
    """Fill every required, empty field of a bot modal with something plausible."""
    for wrap in page.css(".input-block", modal):
        kind = wrap.get_attribute("data-element-type")
        optional = wrap.get_attribute("data-optional")
        if kind == "plain_text_input":
            field = page.css("textarea, input", wrap)[0]
            if not field.get_attribute("value") and (
                not optional or "reason" in (wrap.get_attribute("data-block-id") or "")
            ):
                field.send_keys(reason)
        elif optional:
            continue
        elif kind in ("static_select", "external_select"):
            select = Select(page.css("select", wrap)[0])
            if not select.first_selected_option.get_attribute("value"):
                select.select_by_index(1)
        elif kind in ("radio_buttons", "checkboxes"):
            if not page.css("input:checked", wrap):
                page.css("input", wrap)[0].click()
        elif kind == "number_input":
            field = page.css("input", wrap)[0]
            if not field.get_attribute("value"):
                field.send_keys("1")


def play_disable_flow(page: Page, pg: Any) -> dict[str, Any]:
    """The whole story: find a device, ask to disable it, have someone else approve it."""
    device = next(
        d
        for d in pg.sandbox.fleet.iter_chrome()
        if d.get("status") == "ACTIVE" and d.get("serialNumber")
    )
    page.open(OPERATOR, HELPDESK)
    page.type(f"/device info {device['serialNumber']}")

    def disable_button() -> WebElement | None:
        messages = page.css("#messages .msg")
        if messages and "is not a sub-command" in messages[-1].text:
            pytest.fail("/device info is not there yet")
        for message in reversed(messages):
            buttons = page.css('[data-action-id="device_action:disable"]', message)
            if buttons and device["serialNumber"] in message.text:
                return buttons[0]
        return None

    page.click(disable_button, timeout=15, message="the device card's Disable button")
    page.confirm_if_asked()
    # the bot may open a "loading" modal first and views.update it into the form
    modal = page.until(
        lambda d: next(iter(page.css("#modal-root .modal:has(.modal-submit)")), None),
        message="the bot's form",
        dump="#modal-root, #messages .msg:last-child",
    )
    _fill_required(page, modal, "Lost on the train")
    page.css(".modal-submit", modal)[0].click()
    page.modal_gone()

    page.switch_user(APPROVER1)
    page.go(APPROVALS)
    request = page.until(
        lambda d: next(
            (
                m
                for m in reversed(page.css("#messages .msg"))
                if page.css('[data-action-id="request_approve"]', m)
                and (device["serialNumber"] in m.text or device["deviceId"] in m.text)
            ),
            None,
        ),
        timeout=15,
        message="the approval request with an Approve button",
    )
    ts = request.get_attribute("data-ts")
    page.click(
        lambda: next(
            iter(page.css(f'#messages .msg[data-ts="{ts}"] [data-action-id="request_approve"]')),
            None,
        ),
        message="Approve",
    )
    confirm_until_disabled(page, pg, device)
    page.click(  # found again if the message re-renders (its reply count changes) meanwhile
        lambda: next(iter(page.css(f'#messages .msg[data-ts="{ts}"] .thread-link')), None),
        timeout=15,
        message="the request's thread link",
    )
    outcome = page.until(
        lambda d: next(
            (
                m
                for m in page.css("#thread-messages .msg:not(.thread-parent)")
                if "disabl" in m.text.lower()
            ),
            None,
        ),
        timeout=15,
        message="the outcome in the request's thread",
        dump="#thread-pane",
    )
    return {"device": device, "outcome": outcome.text}


def test_full_flow_disable_with_approval_in_the_browser(page: Page, pg: Any) -> None:
    try:
        result = play_disable_flow(page, pg)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{pg.emulator.dump(last=15)}") from None
    assert "disabl" in result["outcome"].lower()


def test_screenshot(page: Page, pg: Any) -> None:
    target = os.environ.get("PLAYGROUND_SCREENSHOT")
    if not target:
        pytest.skip(
            "set PLAYGROUND_SCREENSHOT=docs/playground.png to re-make the README screenshot"
        )
    page.open(OPERATOR, HELPDESK)
    page.type("/device help")
    page.message_with("device-bot: /device sub-commands")
    try:
        play_disable_flow(page, pg)
    except (AssertionError, pytest.fail.Exception):
        page.open(OPERATOR, HELPDESK)  # the flow is not all there yet: show what is
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    assert page.d.save_screenshot(str(target))


def _untouched_chrome(pg: Any, skip: int) -> dict[str, Any]:
    """An active Chrome device from the end of the fleet (the other flows take the first)."""
    active = [
        d
        for d in pg.sandbox.fleet.iter_chrome()
        if d.get("status") == "ACTIVE" and d.get("serialNumber")
    ]
    return active[-1 - skip]


def run_step_in_home(page: Page, device: dict[str, Any], reason: str) -> None:
    """On the Home pane: the workflow form runs the bot's custom step."""
    form = page.wait_css(".step-form")
    for name, value in (
        ("device", device["serialNumber"]),
        ("action", "disable"),
        ("reason", reason),
    ):
        field = page.css(f'input[name="{name}"]', form)[0]
        field.clear()
        field.send_keys(value)
    page.css('button[type="submit"]', form)[0].click()


def confirm_until_disabled(page: Page, pg: Any, device: dict[str, Any]) -> None:
    """Confirm the approval if asked, then wait until the sandbox has disabled the device."""
    page.confirm_if_asked()
    page.until(
        lambda d: (
            (pg.sandbox.fleet.chrome_get(device["deviceId"]) or {}).get("status") == "DISABLED"
        ),
        timeout=15,
        message="the sandbox device to be disabled",
    )


def home_text(page: Page) -> str:
    return "\n".join(e.text for e in page.css(".home-view"))


def test_home_tab_and_the_workflow_step_in_the_browser(page: Page, pg: Any) -> None:
    device = _untouched_chrome(pg, 0)
    page.open(OPERATOR, "home")
    page.until(lambda d: "Your open requests" in home_text(page), message="the Home tab")
    run_step_in_home(page, device, "leaver: ticket 7")
    page.until(
        lambda d: (
            device["serialNumber"] in home_text(page) and "Waiting for approval" in home_text(page)
        ),
        message="the step's request on the requester's Home tab",
    )
    page.until(lambda d: page.css(".step.running"), message="the step, waiting")
    page.switch_user(APPROVER1)  # still on the Home pane: opened for the approver
    page.click(
        lambda: next(
            (
                b
                for block in page.css('.home-view [data-block-type="section"]')
                if device["serialNumber"] in block.text
                for b in page.css(
                    '[data-action-id="request_approve"]',
                    block.find_element(By.XPATH, "following-sibling::*[1]"),
                )
            ),
            None,
        ),
        timeout=15,
        message="Approve on the approver's Home tab",
    )
    confirm_until_disabled(page, pg, device)
    page.switch_user(OPERATOR)
    done = page.until(
        lambda d: next(iter(page.css(".step.completed")), None),
        timeout=15,
        message="the step completed",
    )
    assert "succeeded" in done.text


def test_home_screenshot(page: Page, pg: Any) -> None:
    target = os.environ.get("HOME_SCREENSHOT")
    if not target:
        pytest.skip(
            "set HOME_SCREENSHOT=docs/home-tab.png to re-make the README's Home tab picture"
        )
    page.open(OPERATOR, "home")
    page.until(lambda d: "Your open requests" in home_text(page), message="the Home tab")
    for n, reason in enumerate(("leaver: ticket 7", "stolen from the library cart")):
        device = _untouched_chrome(pg, 5 + n)
        run_step_in_home(page, device, reason)
        page.until(lambda d, s=device["serialNumber"]: s in home_text(page), message="the request")
    page.switch_user(APPROVER1)
    page.until(
        lambda d: page.css('.home-view [data-action-id="request_approve"]'), message="Approve"
    )
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    assert page.d.save_screenshot(str(target))
