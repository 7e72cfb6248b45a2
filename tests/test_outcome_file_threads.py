"""Where a command's file goes when the command was approved, end to end.

A screenshot, logs or a support packet goes to the person who asked for it, in their thread,
and nowhere else; the approval thread reads the same outcome in words once, with a one-line
pointer to the requester's thread instead of the file (a kiosk's screen and a device's
system logs can show people's data; the approvers need to know that it ran). The bot fetches
Google's `downloadUrl` itself, through its Google client and with that client's credentials.
"""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Callable
from typing import Any

import google_auth_httplib2
import httplib2
import pytest
from conftest import APPROVALS, APPROVER1, HELPDESK, OPERATOR, Claims, flatten, start_bot
from google.oauth2.credentials import Credentials

from bot import ids, outcomes
from bot.google import NoResendHttp
from bot.sandbox.testing import wait_for
from tests.test_actions import inputs, request_rows, run
from tests.test_approvals import approval_message, request_row, submit, wait_state

#: the bearer token the bot's Google client carries in this module (a service account's
#: access token stands in for it: the sandbox takes anonymous calls too)
TOKEN = "ya29.sandbox-test-token"


def _bearer_http(timeout: float) -> Callable[[], httplib2.Http]:
    def make() -> httplib2.Http:
        return google_auth_httplib2.AuthorizedHttp(  # type: ignore[no-any-return]
            Credentials(token=TOKEN), http=NoResendHttp(timeout=timeout)
        )

    return make


@pytest.fixture
def approving(tmp_path: Any, sandbox: Any, emu: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A bot where the file commands need approval, whose Google calls carry TOKEN; the
    headers of every file download the sandbox serves are kept in `extras["downloads"]`."""
    monkeypatch.setattr("bot.google._anonymous_http", _bearer_http)
    downloads: list[tuple[str, dict[str, str]]] = []
    lock = threading.Lock()
    app = sandbox._app
    serve = app.call

    def call(method: str, target: str, body: bytes, headers: dict[str, str], **kw: Any) -> Any:
        if "sandbox/files/" in target:
            with lock:
                downloads.append((target, dict(headers)))
        return serve(method, target, body, headers, **kw)

    monkeypatch.setattr(app, "call", call)
    running = start_bot(
        tmp_path, sandbox, emu, APPROVAL_REQUIRED="screenshot,logs,support-packet,disable"
    )
    running.extras["downloads"] = downloads
    yield running
    running.server.stop()


def replies(bot: Any, channel: str, ts: str) -> list[dict[str, Any]]:
    return [m for m in bot.emu.messages(channel, thread_ts=ts) if m["ts"] != ts]


def run_approved(bot: Any, action: str, device: dict[str, Any]) -> dict[str, Any]:
    """Ask for `action` on `device`, have an approver approve it; its row once it ran."""
    request_id = submit(bot, action, device["serialNumber"], reason="INC-6021 kiosk frozen")
    message = approval_message(bot, request_id)
    bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
    wait_state(bot, request_id, "succeeded")
    return request_row(bot, request_id)


@pytest.mark.parametrize(
    ("action", "words", "suffix"),
    [
        ("screenshot", "Screenshot of {serial}", ".png"),
        ("logs", "System logs of {serial}", ".tar.gz"),
    ],
)
def test_an_approved_file_command_shares_the_file_once_and_points_the_approvers_to_it(
    approving: Any, claims: Claims, action: str, words: str, suffix: str
) -> None:
    bot = approving
    device = claims.chrome_kiosk()
    row = run_approved(bot, action, device)
    outcome = words.format(serial=device["serialNumber"])
    mine = (row["requester_channel"], row["requester_ts"])
    theirs = (row["approval_channel"], row["approval_ts"])
    assert mine[0] == HELPDESK and theirs[0] == APPROVALS

    def files_in(where: tuple[str, str]) -> list[dict[str, Any]]:
        return [f for m in replies(bot, *where) for f in m.get("files") or []]

    wait_for(lambda: files_in(mine), 20, "the file in the requester's thread")
    wait_for(
        lambda: any(outcome in flatten(m) for m in replies(bot, *theirs)),
        10,
        "the outcome in the approval thread",
    )
    outcomes.poll(bot.svc)  # one more poll cycle: nothing is said again

    # the requester's thread: the outcome once, then the file, once
    said = [flatten(m) for m in replies(bot, *mine)]
    assert sum(outcome in t for t in said) == 1, said
    (file,) = files_in(mine)
    assert file["name"].endswith(suffix)
    content = bot.emu.uploads.content(file["id"])
    if suffix == ".png":
        assert content.startswith(b"\x89PNG\r\n\x1a\n")
    else:
        with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as archive:
            assert archive.getnames()
    order = [m for m in replies(bot, *mine) if outcome in flatten(m) or m.get("files")]
    assert outcome in flatten(order[0]) and order[1].get("files"), "the words, then the file"

    # the approval thread: the outcome once, with a pointer and no file
    said = [flatten(m) for m in replies(bot, *theirs)]
    pointers = [t for t in said if outcome in t]
    assert len(pointers) == 1, said
    assert file["name"] in pointers[0] and "not copied here" in pointers[0]
    link = bot.svc.out.permalink(*mine)
    assert link and link in pointers[0] and f"/archives/{HELPDESK}/" in link
    assert not files_in(theirs)
    assert not any(m.get("files") for m in bot.emu.messages(APPROVALS))  # nor in the channel

    # the bot fetched the file once, itself, with its Google client's credentials
    fetched = [h for target, h in bot.extras["downloads"] if device["deviceId"] in target]
    assert len(fetched) == 1, fetched
    assert fetched[0].get("authorization") == f"Bearer {TOKEN}"
    assert bot.sandbox.log.count("GET", f"sandbox/files/{device['deviceId']}/") == 1


def test_a_command_without_a_file_reads_the_same_in_both_threads(
    approving: Any, claims: Claims
) -> None:
    """Only file commands get a pointer: a disable says its outcome in both threads alike."""
    bot = approving
    device = claims.chrome("ACTIVE")
    request_id = submit(bot, "disable", device["serialNumber"], {"why": "other"})
    message = approval_message(bot, request_id)
    bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
    wait_state(bot, request_id, "succeeded")
    row = request_row(bot, request_id)
    done = f"{device['serialNumber']} is now disabled."
    seen = []
    for where in (
        (row["requester_channel"], row["requester_ts"]),
        (row["approval_channel"], row["approval_ts"]),
    ):
        said = wait_for(
            lambda w=where: [t for m in replies(bot, *w) if done in (t := flatten(m))],
            10,
            "the outcome",
        )
        assert len(said) == 1, said
        seen.append(said[0])
    assert seen[0] == seen[1]


def test_the_pointer_to_a_direct_message_has_no_link() -> None:
    """A requester followed in their DMs: the approvers cannot open that, so no link."""

    class Out:
        def permalink(self, channel: str, ts: str) -> str:
            raise AssertionError("no link is asked for a DM")

    class Svc:
        out = Out()

    class Request:
        requester = "U0OPERATOR"
        requester_channel = "U0OPERATOR"
        requester_ts = "1.0"

    text = outcomes.file_pointer(
        Svc(),  # type: ignore[arg-type]
        Request(),
        "Screenshot of 5CD1<b>:\nline two",
        ["shot<1>.png"],
    )
    assert text == (
        "Screenshot of 5CD1<b>: `shot&lt;1&gt;.png` was sent to <@U0OPERATOR> only,"
        " not copied here.\nline two"
    )


def test_a_command_that_needs_approval_asks_why_and_the_approver_reads_it(
    approving: Any, claims: Claims
) -> None:
    """A screenshot has no reason field of its own; once it needs approval, its form asks
    for one, and the approval card shows it (the reason everywhere)."""
    bot = approving
    device = claims.chrome_kiosk()
    view = run(bot, f"screenshot {device['serialNumber']}")
    assert "reason" in inputs(view)
    reply = bot.emu.submit_view(OPERATOR, view["id"], {"reason": "INC-6022 blank kiosk"})
    assert reply.status == 200
    rows = wait_for(lambda: request_rows(bot, "screenshot"), 10, "the request")
    assert [r["reason"] for r in rows] == ["INC-6022 blank kiosk"]
    assert "INC-6022 blank kiosk" in flatten(approval_message(bot, rows[0]["id"]))


def test_a_command_that_needs_no_approval_asks_no_reason(bot: Any, claims: Claims) -> None:
    view = run(bot, f"screenshot {claims.chrome_kiosk()['serialNumber']}")
    assert "reason" not in inputs(view)
