"""Raw HTTP to a bot's `/slack/events`, for tests and benchmarks: signed as Slack signs, or
not; a body streamed piece by piece and abandoned as soon as the server answers — what
urllib would refuse to send (a 200 MB Content-Length, a body cut short)."""

from __future__ import annotations

import hashlib
import hmac
import re
import select
import socket
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from typing import Any


def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 signature headers for `body` (now, or at `timestamp`)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + digest.hexdigest()}


def post(url: str, headers: dict[str, Any], body: Iterable[bytes] = ()) -> int:
    """POST /slack/events from a raw socket; sends `body` until the server answers.
    Returns the HTTP status, 0 when there was no answer."""
    parsed = urllib.parse.urlsplit(url)
    assert parsed.hostname and parsed.port
    with socket.create_connection((parsed.hostname, parsed.port), timeout=30) as sock:
        head = "POST /slack/events HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        sock.sendall((head + "\r\n").encode("latin-1"))
        answered = select.poll()  # not select(): it cannot watch a descriptor past 1023
        answered.register(sock, select.POLLIN)
        try:
            for piece in body:
                if answered.poll(0):
                    break  # answered before the body was all sent
                sock.sendall(piece)
        except OSError:
            pass  # the server closed the connection on a refused body
        answer = b""
        try:
            while b"\r\n" not in answer:
                part = sock.recv(4096)
                if not part:
                    break
                answer += part
        except OSError:
            return 0
    match = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    return int(match.group(1)) if match else 0


def pieces(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """`total` bytes of filler in pieces of `size`."""
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        yield b"x" * n
        sent += n
