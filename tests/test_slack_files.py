"""The Slack emulator's external file upload: getUploadURLExternal → POST the bytes → complete."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.playground.slack_emulator import SlackEmulator

TOKEN = "xoxb-test"
OPERATOR = "U0OPERATOR"
HELPDESK = "C0HELPDESK"


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(bot_token=TOKEN).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def client(emu: SlackEmulator) -> WebClient:
    return WebClient(token=TOKEN, base_url=emu.api_url)


def post(url: str, data: bytes) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_files_upload_v2_shares_the_file_in_a_dm(emu: SlackEmulator, client: WebClient) -> None:
    dm = client.chat_postMessage(channel=OPERATOR, text="your export")["channel"]
    answer = client.files_upload_v2(
        channel=dm,
        filename="devices.csv",
        content=b"a,b\n1,2\n",
        title="Devices",
        initial_comment="here",
    )
    file = answer["file"]
    assert file["name"] == "devices.csv" and file["title"] == "Devices" and file["size"] == 8
    assert emu.uploads.content(file["id"]) == b"a,b\n1,2\n"
    assert [c.method for c in emu.calls if c.method.startswith("files.")] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    shared = [m for m in emu.messages(dm) if m.get("files")]
    assert len(shared) == 1 and shared[0]["text"] == "here"
    assert shared[0]["files"][0]["id"] == file["id"]
    with urllib.request.urlopen(file["url_private"], timeout=5) as download:
        assert download.read() == b"a,b\n1,2\n"


def test_the_flow_refuses_what_slack_refuses(emu: SlackEmulator, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.api_call("files.getUploadURLExternal", params={"filename": "x.csv"})
    assert exc.value.response["error"] == "invalid_arguments"
    # complete before the bytes arrived
    ticket = client.files_getUploadURLExternal(filename="x.csv", length=3)
    with pytest.raises(SlackApiError) as exc:
        client.files_completeUploadExternal(files=[{"id": ticket["file_id"]}], channel_id=HELPDESK)
    assert exc.value.response["error"] == "file_not_found"
    # more or fewer bytes than announced
    assert post(ticket["upload_url"], b"abcd") == (200, "OK - 4")
    with pytest.raises(SlackApiError) as exc:
        client.files_completeUploadExternal(files=[{"id": ticket["file_id"]}])
    assert exc.value.response["error"] == "invalid_arguments"
    assert any("announced 3 bytes, 4 arrived" in p for p in emu.problems)
    # an upload URL nobody issued
    assert post(emu.base_url + "/upload/v1/nonsense", b"x")[0] == 404
    # an unknown file id, and a channel the bot is not in
    with pytest.raises(SlackApiError) as exc:
        client.files_completeUploadExternal(files=[{"id": "F000"}])
    assert exc.value.response["error"] == "file_not_found"
    emu.add_channel("C0PRIVATE", "private", is_member=False)
    good = client.files_getUploadURLExternal(filename="y.txt", length=1)
    post(good["upload_url"], b"y")
    with pytest.raises(SlackApiError) as exc:
        client.files_completeUploadExternal(files=[{"id": good["file_id"]}], channel_id="C0PRIVATE")
    assert exc.value.response["error"] == "not_in_channel"
    # without a channel the file is kept but shared nowhere
    done = client.files_completeUploadExternal(files=[{"id": good["file_id"], "title": "Y"}])
    assert done["files"][0]["title"] == "Y" and done["files"][0]["channels"] == []


def test_a_persons_file_is_read_with_files_info_and_downloaded_with_the_bot_token(
    emu: SlackEmulator, client: WebClient
) -> None:
    """A file picked in a modal's file_input: files.info, then url_private_download + token."""
    file = emu.uploads.user_upload(OPERATOR, "devices.csv", b"device\n5CD1\n")
    info = client.files_info(file=file["id"])["file"]
    assert info["user"] == OPERATOR and info["size"] == 12 and info["filetype"] == "csv"
    url = info["url_private_download"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=5)  # no token: Slack answers no file
    assert refused.value.code == 403
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.read() == b"device\n5CD1\n"
    with pytest.raises(SlackApiError) as missing:
        client.files_info(file="F0NOPE")
    assert missing.value.response["error"] == "file_not_found"
