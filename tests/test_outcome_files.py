"""Outcomes in words, files in the thread, end to end.

Each action says what it did ("6X8PHJ9 is now disabled"), once per thread: the thread's
parent shows the state and the outcome is one reply. A Chrome screenshot, logs or a
support packet is fetched by the bot from the `downloadUrl` with its own credentials
(through the Google layer) and shared in the requester's thread through Slack's external
upload flow: a real PNG, a real `.tar.gz`.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from typing import Any

import pytest
from conftest import APPROVER1, Claims, flatten

from bot import ids
from bot.sandbox.testing import wait_for
from tests.test_approvals import approval_message, request_row, submit, wait_state


def thread(bot: Any, request_id: str, approval: bool = False) -> list[dict[str, Any]]:
    """The replies of the request's thread (the parent left out)."""
    row = request_row(bot, request_id)
    channel, ts = (
        (row["approval_channel"], row["approval_ts"])
        if approval
        else (row["requester_channel"], row["requester_ts"])
    )
    return [m for m in bot.emu.messages(channel, thread_ts=ts) if m["ts"] != ts]


def shared_file(bot: Any, request_id: str) -> dict[str, Any]:
    """The file shared in the requester's thread, once it is there."""

    def find() -> dict[str, Any] | None:
        return next((f for m in thread(bot, request_id) for f in m.get("files") or []), None)

    found: dict[str, Any] = wait_for(find, 20, "a file in the requester's thread")
    return found


@pytest.mark.parametrize(
    ("action", "words", "mimetype"),
    [
        ("screenshot", "Screenshot of {serial}:", "image/png"),
        ("logs", "System logs of {serial}:", "application/gzip"),
        ("support-packet", "Support packet of {serial}:", "application/zip"),
    ],
)
def test_a_command_file_is_shared_in_the_thread(
    direct: Any, claims: Claims, action: str, words: str, mimetype: str
) -> None:
    device = claims.chrome_kiosk()
    direct.sandbox.log.clear()
    request_id = submit(direct, action, device["serialNumber"])
    wait_state(direct, request_id, "succeeded")
    file = shared_file(direct, request_id)
    assert file["mimetype"] == mimetype
    content = direct.emu.uploads.content(file["id"])
    assert content is not None
    if action == "screenshot":
        assert content.startswith(b"\x89PNG\r\n\x1a\n") and b"IDAT" in content
    elif action == "logs":
        assert file["name"].endswith(".tar.gz")
        gzip.decompress(content)  # a real gzip stream…
        with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as archive:
            assert "var/log/messages" in archive.getnames()  # …of a real tar archive
    else:
        assert zipfile.ZipFile(io.BytesIO(content)).namelist()
    # the bot fetched the file itself, from the sandbox's downloadUrl
    assert direct.sandbox.log.count("GET", f"sandbox/files/{device['deviceId']}/") == 1
    replies = [flatten(m) for m in thread(direct, request_id)]
    outcome = words.format(serial=device["serialNumber"])
    assert sum(outcome in r for r in replies) == 1  # said once, the file below it
    assert not any("Download:" in r or "downloadUrl" in r for r in replies)


def test_each_action_says_what_it_did_once_per_thread(bot: Any, claims: Claims) -> None:
    device = claims.chrome("ACTIVE")
    request_id = submit(bot, "disable", device["serialNumber"], {"why": "other"})
    message = approval_message(bot, request_id)
    bot.emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
    wait_state(bot, request_id, "succeeded")
    done = f"{device['serialNumber']} is now disabled."
    row = request_row(bot, request_id)
    for approval in (False, True):
        wait_for(
            lambda a=approval: any(done in flatten(m) for m in thread(bot, request_id, a)),
            10,
            "the outcome in the thread",
        )
        channel = row["approval_channel"] if approval else row["requester_channel"]
        ts = row["approval_ts"] if approval else row["requester_ts"]
        everything = [flatten(m) for m in bot.emu.messages(channel, thread_ts=ts)]
        assert sum(done in t for t in everything) == 1, everything  # the parent only shows "Done"
        parent = flatten(bot.emu.message(channel, ts))
        assert done not in parent and "Done" in parent


@pytest.mark.parametrize(
    ("action", "params", "words"),
    [
        ("lock", {}, "{serial} is locked."),
        (
            "lost",
            {"message": "Please call IT"},
            "{serial} is locked in lost mode; the screen shows your message.",
        ),
    ],
)
def test_android_outcomes_in_words(
    direct: Any, claims: Claims, action: str, params: dict[str, Any], words: str
) -> None:
    device = claims.fitting(action, "android")
    serial = device["hardwareInfo"]["serialNumber"]
    request_id = submit(direct, action, serial, params)
    wait_state(direct, request_id, "succeeded")
    outcome = words.format(serial=serial)
    wait_for(lambda: any(outcome in flatten(m) for m in thread(direct, request_id)), 10, outcome)
    assert not any("ran the command" in flatten(m) for m in thread(direct, request_id))


def test_a_company_phone_wiped_is_removed_from_management(direct: Any, claims: Claims) -> None:
    device = claims.android(
        lambda d: d["ownership"] == "COMPANY_OWNED" and d["managementMode"] == "DEVICE_OWNER"
    )
    request_id = submit(direct, "wipe", device["hardwareInfo"]["serialNumber"])
    wait_state(direct, request_id, "succeeded")
    wait_for(
        lambda: any(
            "Phone wiped and removed from management." in flatten(m)
            for m in thread(direct, request_id)
        ),
        10,
        "the wipe's words",
    )
