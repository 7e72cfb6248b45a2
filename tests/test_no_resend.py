"""A mutation is sent at most once even when the connection drops before the answer."""

from __future__ import annotations

import socket
import threading

import httplib2
import pytest

from bot.google.client import NoResendHttp


class DroppingServer:
    """Reads each request, counts it, and closes the connection without answering."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                if data:
                    self.requests += 1

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture
def server():
    s = DroppingServer()
    yield s
    s.close()


def test_plain_httplib2_resends_a_post(server):
    """The hazard this guards against: httplib2 sends the POST twice."""
    with pytest.raises((httplib2.HttpLib2Error, OSError, Exception)):
        httplib2.Http(timeout=5).request(f"http://127.0.0.1:{server.port}/wipe", "POST", body="{}")
    assert server.requests == 2


def test_no_resend_http_sends_a_post_once(server):
    with pytest.raises(OSError):
        NoResendHttp(timeout=5).request(f"http://127.0.0.1:{server.port}/wipe", "POST", body="{}")
    assert server.requests == 1


def test_reads_keep_httplib2s_reconnect(server):
    with pytest.raises(Exception):  # noqa: B017 - whatever it raises, it tried twice
        NoResendHttp(timeout=5).request(f"http://127.0.0.1:{server.port}/device", "GET")
    assert server.requests == 2
