"""A mutation is sent at most once even when the connection drops before the answer."""

from __future__ import annotations

import re
import socket
import threading

import httplib2
import pytest

from bot.google.transport import NoResendHttp
from bot.sandbox.testing import wait_for


class DroppingServer:
    """Reads each request whole, counts it, and closes the connection without answering.

    It serves one connection at a time, in the order they were made: `settle()` sends a
    marker request of its own and waits for it, so every request the client made before
    has been counted (the client can give up — a timeout — before the server reads it).
    """

    MARKER = b"SETTLE / HTTP/1.1\r\n\r\n"

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self.markers = 0
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = _read_request(conn)
                if data == self.MARKER:
                    self.markers += 1
                elif data:
                    self.requests += 1

    def settle(self) -> int:
        """The number of requests counted once all made before this call are in."""
        seen = self.markers
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as marker:
            marker.sendall(self.MARKER)
            wait_for(lambda: self.markers > seen, 30, "the server to reach the marker")
        return self.requests

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def _read_request(conn: socket.socket) -> bytes:
    """Headers and the Content-Length body: closing with unread bytes would send a reset,
    which httplib2 does not retry, instead of the plain close under test."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    while length and len(body) < int(length.group(1)):
        chunk = conn.recv(4096)
        if not chunk:
            break
        body += chunk
    return data


@pytest.fixture
def server():
    s = DroppingServer()
    yield s
    s.close()


def test_plain_httplib2_resends_a_post(server):
    """The hazard this guards against: httplib2 sends the POST twice."""
    with pytest.raises((httplib2.HttpLib2Error, OSError, Exception)):
        httplib2.Http(timeout=30).request(f"http://127.0.0.1:{server.port}/wipe", "POST", body="{}")
    assert server.settle() == 2


def test_no_resend_http_sends_a_post_once(server):
    with pytest.raises(OSError):
        NoResendHttp(timeout=30).request(f"http://127.0.0.1:{server.port}/wipe", "POST", body="{}")
    assert server.settle() == 1


def test_reads_keep_httplib2s_reconnect(server):
    with pytest.raises(Exception):  # noqa: B017 - whatever it raises, it tried twice
        NoResendHttp(timeout=30).request(f"http://127.0.0.1:{server.port}/device", "GET")
    assert server.settle() == 2
