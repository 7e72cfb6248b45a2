"""What reaches `/slack/events` before the signature is checked: capped, unread, unparsed.

The bot runs as `python -m bot` in a child process so that its peak memory (VmHWM) and its
log are its own. Oversized bodies (with a Content-Length or chunked, several at once),
unsigned ones and signed-but-malformed ones get 413, 401 and 400; none raises the bot's
peak memory; each refusal the bot decides is one log line, never a traceback.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import OPERATOR, SIGNING_SECRET, wait_until
from test_resilience import BotProcess, process_env

from bot.ingress import Refused, parse, read_body, verify_signature
from bot.playground import raw_http

CAP = 1 << 20
MB = 1 << 20


def sign(body: bytes, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    return raw_http.sign(body, secret, timestamp)


post, pieces = raw_http.post, raw_http.pieces


def chunked(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    for piece in pieces(total, size):
        yield b"%x\r\n" % len(piece) + piece + b"\r\n"
    yield b"0\r\n\r\n"


def at_once(*calls: Any) -> list[int]:
    """Run each `lambda: post(...)` in its own thread; their statuses in order."""
    results: list[int] = [0] * len(calls)

    def run(i: int) -> None:
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def settled_peak_rss_mb(pid: int) -> float:
    """The peak once start-up (warm-up threads, index sync) stops raising it: unchanged for 1 s."""
    seen = [peak_rss_mb(pid), time.monotonic()]

    def settled() -> float | None:
        now = peak_rss_mb(pid)
        if now != seen[0]:
            seen[:] = [now, time.monotonic()]
        return now if time.monotonic() - seen[1] >= 1.0 else None

    return float(wait_until(settled, 30, "the bot's peak memory to settle"))


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def signed(body: bytes, content_type: str = FORM, **sig: Any) -> dict[str, Any]:
    return {"Content-Type": content_type, "Content-Length": len(body), **sign(body, **sig)}


# ---- end to end: a bot process -----------------------------------------------------------------


@pytest.fixture
def bot_process(tmp_path, sandbox, emu):
    proc = BotProcess(process_env(tmp_path, sandbox, emu))
    emu.bot_url = proc.url + "/slack/events"
    yield proc
    proc.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/status")
def test_oversized_unsigned_and_malformed_bodies_are_refused_cheaply(bot_process, emu):
    url = bot_process.url
    # a clean phase first: the memory the bot needs to do its work
    for _ in range(5):
        assert emu.slash_command(OPERATOR, "help").status == 200
    wait_until(lambda: len(emu.responses) >= 5, 15, "five help answers")
    wait_until(lambda: "android index synced" in bot_process.log, 30, "the start-up index sync")
    before = settled_peak_rss_mb(bot_process.proc.pid)
    log_before = len(bot_process.lines)

    # over the cap: refused by the Content-Length (the 200 MB are never sent) or, chunked, as
    # soon as the cap is passed; four at once
    assert post(url, {"Content-Length": 200 * MB, **sign(b"")}, pieces(200 * MB)) == 413
    assert post(url, {"Content-Length": CAP + 1, **sign(b"")}, pieces(CAP + 1)) == 413
    assert (
        at_once(
            *[
                lambda: post(
                    url, {"Transfer-Encoding": "chunked", "Content-Type": FORM}, chunked(50 * MB)
                )
                for _ in range(4)
            ]
        )
        == [413] * 4
    )

    # unsigned, badly signed, stale, or a timestamp that is not a number: 401 unparsed
    body = b"command=%2Fdevice&text=help&user_id=" + OPERATOR.encode()
    refused = [
        post(url, {"Content-Type": FORM, "Content-Length": len(body)}, [body]),
        post(url, signed(body, secret="not-the-secret"), [body]),
        post(url, signed(body, timestamp=int(time.time()) - 600), [body]),
        post(url, {**signed(body), "X-Slack-Request-Timestamp": "soon"}, [body]),
    ]
    full = b"payload=" + b"%7B" * (CAP // 3 - 3)  # just under the cap, unsigned, four at once
    refused += at_once(*[lambda: post(url, signed(full, secret="x"), [full]) for _ in range(4)])
    assert refused == [401] * 8

    # signed, but not UTF-8, not JSON, not a form's JSON payload, not an object: 400
    malformed = [
        (b"payload=\xff\xfe\xfd", FORM),
        (b'{"type": "block_actions", ', JSON),
        (b"payload=%7Bnot-json", FORM),
        (b"[1, 2, 3]", JSON),
        (b'payload="a string"', FORM),
    ]
    statuses = [post(url, signed(b, ct), [b]) for b, ct in malformed]
    assert statuses == [400] * 5

    # the bot is still fine and its peak memory did not follow the bodies
    assert emu.slash_command(OPERATOR, "help").status == 200
    wait_until(lambda: len(emu.responses) >= 6, 15, "the help answer after the attack")
    grown = peak_rss_mb(bot_process.proc.pid) - before
    assert grown < 30, f"peak RSS grew by {grown:.0f} MB"

    log = "".join(bot_process.lines[log_before:])
    assert "Traceback" not in log and " ERROR " not in log, log
    refusals = [line for line in log.splitlines() if "refused" in line and "/slack/events" in line]
    # the 413s by Content-Length and the chunked ones are waitress's, before the bot sees them
    assert len(refusals) == 8 + 5, "\n".join(refusals)
    assert sum(" 401 " in line for line in refusals) == 8
    assert sum(" 400 " in line for line in refusals) == 5
    assert "\\xff" not in log and "not-json" not in log  # bodies are never logged


def test_a_get_is_not_taken_for_an_event(bot):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(bot.url + "/slack/events", timeout=5)
    assert caught.value.code == 405


def test_a_signed_request_still_works_and_a_client_cannot_set_the_gate_token(bot):
    body = b"command=%2Fdevice&text=help&user_id=" + OPERATOR.encode() + b"&channel_id=C0HELPDESK"
    status = post(bot.url, {**signed(body), "X-Device-Bot-Request": "forged"}, [body])
    assert status == 200


# ---- the checks one by one -----------------------------------------------------------------


class Stream:
    """wsgi.input that counts what was read from it."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.read_bytes = 0

    def read(self, n: int = -1) -> bytes:
        n = len(self.data) - self.read_bytes if n < 0 else n
        part = self.data[self.read_bytes : self.read_bytes + n]
        self.read_bytes += len(part)
        return part


def test_read_body_refuses_by_content_length_without_reading():
    stream = Stream(b"x" * 5000)
    with pytest.raises(Refused) as caught:
        read_body({"CONTENT_LENGTH": "5000", "wsgi.input": stream}, 4096)
    assert caught.value.status == 413
    assert stream.read_bytes == 0


def test_read_body_without_length_reads_at_most_one_byte_past_the_cap():
    stream = Stream(b"x" * 100_000)
    with pytest.raises(Refused) as caught:
        read_body({"wsgi.input": stream, "wsgi.input_terminated": True}, 4096)
    assert caught.value.status == 413
    assert stream.read_bytes == 4097
    assert read_body({"wsgi.input": Stream(b"abc"), "wsgi.input_terminated": True}, 4096) == b"abc"
    assert read_body({"wsgi.input": Stream(b"abc")}, 4096) == b""  # PEP 3333: no length, no body
    assert read_body({"CONTENT_LENGTH": "4096", "wsgi.input": Stream(b"y" * 4096)}, 4096) == (
        b"y" * 4096
    )
    with pytest.raises(Refused) as bad:
        read_body({"CONTENT_LENGTH": "-1", "wsgi.input": Stream(b"")}, 4096)
    assert bad.value.status == 400


def flip_last(signature: str) -> str:
    """The same signature with its last hex digit changed (never to itself)."""
    return signature[:-1] + ("1" if signature[-1] == "0" else "0")


def test_signature_is_checked_on_the_raw_bytes():
    body = b"payload=\xff"  # not UTF-8: slack_sdk's verifier would raise decoding it
    now = time.time()
    headers = sign(body)
    verify_signature(SIGNING_SECRET.encode(), body, headers["X-Slack-Request-Timestamp"],
                     headers["X-Slack-Signature"], now)  # fmt: skip
    for ts, sig in [
        (headers["X-Slack-Request-Timestamp"], flip_last(headers["X-Slack-Signature"])),
        (str(int(now) - 301), sign(body, int(now) - 301)["X-Slack-Signature"]),
        (str(int(now) + 301), sign(body, int(now) + 301)["X-Slack-Signature"]),
        ("12x", headers["X-Slack-Signature"]),
        ("²", headers["X-Slack-Signature"]),
        (None, headers["X-Slack-Signature"]),
        (headers["X-Slack-Request-Timestamp"], None),
        (headers["X-Slack-Request-Timestamp"], "v0=é"),
    ]:
        with pytest.raises(Refused) as caught:
            verify_signature(SIGNING_SECRET.encode(), body, ts, sig, now)
        assert caught.value.status == 401


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"\xc3\x28", FORM),
        (b"{", JSON),
        (b"{", FORM),
        (b"null", JSON),
        (b"payload=%5B%5D", FORM),
        (b"payload=1", FORM),
        (b'{"team": "T1", "authorizations": "x"}', JSON),
    ],
)
def test_malformed_bodies_are_refused_with_400(body, content_type):
    with pytest.raises(Refused) as caught:
        parse(body, {"content-type": content_type}, "")
    assert caught.value.status == 400


def test_well_formed_bodies_parse():
    assert parse(b"command=%2Fdevice&text=help", {"content-type": FORM}, "").body["text"] == "help"
    assert parse(b"payload=%7B%22type%22%3A%22x%22%7D", {"content-type": FORM}, "").body == {
        "type": "x"
    }
    assert parse(b'{"type": "url_verification"}', {"content-type": JSON}, "").body["type"] == (
        "url_verification"
    )


def test_the_server_keeps_serving_past_1024_open_descriptors(bot):
    """A busy bot holds many connections (SQLite, Google, per thread); select() cannot watch a
    descriptor above 1023 and its ValueError ended waitress's accept loop. poll() can."""
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1500:
        pytest.skip("the descriptor limit is too low to pass 1024")
    if soft != resource.RLIM_INFINITY and soft < 1500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1500, hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        body = b"command=%2Fdevice&text=help&user_id=" + OPERATOR.encode()
        assert post(bot.url, signed(body), [body]) == 200  # its socket is numbered past 1024
        assert post(bot.url, signed(body), [body]) == 200  # and the server is still there
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_only_signed_requests_reach_a_listener_though_bolt_checks_no_signature(bot):
    """The server's App leaves Bolt's second signature check out (SlackIngress checked the
    raw bytes): an unsigned or wrongly signed `/device help` is still refused with 401 and
    no listener answers it; the signed one after it is answered, once."""
    from slack_bolt.middleware.request_verification import RequestVerification

    assert not any(isinstance(m, RequestVerification) for m in bot.server.app._middleware_list)
    before = len(bot.emu.responses)
    import urllib.parse

    # a response_url the emulator honours: were the request let in, its answer would arrive
    url = bot.emu._issue_response_url({"user": OPERATOR, "channel": "C0HELPDESK"})
    form = {"command": "/device", "text": "help", "user_id": OPERATOR, "channel_id": "C0HELPDESK"}
    body = urllib.parse.urlencode({**form, "response_url": url, "trigger_id": "1.2.3"}).encode()
    unsigned = {"Content-Type": FORM, "Content-Length": len(body)}
    assert post(bot.url, unsigned, [body]) == 401
    assert post(bot.url, signed(body, secret="not-the-secret"), [body]) == 401
    assert bot.slash("help").status == 200
    wait_until(lambda: len(bot.emu.responses) > before, 15, "the signed help's answer")
    assert len(bot.emu.responses) == before + 1


def test_an_app_built_without_the_ingress_checks_signatures_itself(tmp_path):
    """`create_app` keeps Bolt's check unless told a signed ingress stands before it."""
    from fakes import SyncExecutor, make_services
    from slack_bolt import BoltRequest

    from bot.app import create_app

    svc = make_services(tmp_path)
    app = create_app(svc, listener_executor=SyncExecutor())
    body = "command=%2Fdevice&text=help&user_id=" + OPERATOR + "&trigger_id=1.2.3"
    assert app.dispatch(BoltRequest(body=body, headers={})).status == 401
    assert svc.out.calls == []  # type: ignore[attr-defined]
