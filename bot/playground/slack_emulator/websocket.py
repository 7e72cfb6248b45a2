"""The server end of one WebSocket, on the socket the emulator's HTTP server accepted.

websockets' Sans-I/O protocol (``websockets.server.ServerProtocol``) does RFC 6455: the opening
handshake, framing, masking, ping/pong and close codes. This module only moves bytes between that
protocol and the socket, from the HTTP handler's thread and from whoever sends.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

MAX_MESSAGE = 16 * 1024 * 1024  # bigger frames are closed with 1009 by the protocol


def accept(
    sock: socket.socket,
    request_line: str,
    headers: Iterable[tuple[str, str]],
    allowed: Callable[[], bool],
) -> ServerProtocol | None:
    """Answer the opening handshake on ``sock``; the open protocol, or None once refused.

    The HTTP server has read the request already; it is handed to the protocol as it came, so the
    protocol's parser moves on to frames. ``allowed`` is asked only for a well-formed upgrade (it
    spends the Socket Mode ticket); when it says no, the answer is 401 ``invalid_ticket``.
    """
    protocol = ServerProtocol(max_size=MAX_MESSAGE)
    lines = [request_line, *(f"{name}: {value}" for name, value in headers), "", ""]
    protocol.receive_data("\r\n".join(lines).encode("latin-1"))
    request = next((e for e in protocol.events_received() if isinstance(e, Request)), None)
    if request is None:  # not even HTTP: the protocol has its 400 ready
        response = protocol.reject(400, "Failed to open a WebSocket connection.")
    else:
        response = protocol.accept(request)
        if response.status_code == 101 and not allowed():
            response = protocol.reject(401, "invalid_ticket")
    protocol.send_response(response)
    for data in protocol.data_to_send():
        if data:
            sock.sendall(data)
    return protocol if response.status_code == 101 else None


class WebSocketConnection:
    """One open WebSocket: send text, ping, close; ``run`` reads until it ends."""

    def __init__(self, sock: socket.socket, rfile: Any, protocol: ServerProtocol) -> None:
        self.sock = sock
        self.rfile = rfile  # the HTTP handler's buffered reader: it may hold the first frames
        self.protocol = protocol
        self.id = uuid.uuid4().hex[:12]
        self._lock = threading.Lock()  # the protocol object is not thread-safe
        self._ended = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def closed(self) -> bool:
        """True once a close was sent or received, or the connection dropped."""
        return self._ended.is_set() or self.protocol.state is not State.OPEN

    def _flush(self) -> None:
        """Write what the protocol has to send (caller holds the lock)."""
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)
            else:  # the protocol is done sending: half-close
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_WR)

    def _send(self, action: Callable[[], None]) -> None:
        with self._lock:
            if self.protocol.state is not State.OPEN:
                raise ConnectionResetError("the WebSocket is closing")
            action()
            self._flush()

    def send_text(self, text: str) -> None:
        """Send one text message."""
        self._send(lambda: self.protocol.send_text(text.encode("utf-8")))

    def ping(self, data: bytes = b"") -> None:
        """Send a ping; the client answers with a pong."""
        self._send(lambda: self.protocol.send_ping(data[:125]))

    def keep_pinging(self, interval: float) -> None:
        """Ping every ``interval`` seconds until the connection ends."""
        while not self._ended.wait(interval):
            try:
                self.ping(f"{time.time():.6f}".encode())
            except OSError:
                return

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (once) and drop the connection, as Slack does."""
        with self._lock:
            if self.protocol.state is State.OPEN:
                self.protocol.send_close(code, reason)
                with contextlib.suppress(OSError):
                    self._flush()
        self._ended.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reading thread

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread serving this connection to finish."""
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def run(self, on_text: Callable[[str], None]) -> None:
        """Read until the connection ends, passing each text message to ``on_text``.

        Pings, closes and protocol errors are answered by the protocol; binary data is refused
        (Slack speaks text only).
        """
        self._thread = threading.current_thread()
        parts: list[bytes] = []
        try:
            while not self._ended.is_set():
                data = self.rfile.read1(65536)
                with self._lock:
                    if data:
                        self.protocol.receive_data(data)
                    else:
                        self.protocol.receive_eof()
                    frames = self.protocol.events_received()
                    self._flush()  # pongs, the close echo, the close after a protocol error
                for frame in frames:
                    if not isinstance(frame, Frame):
                        continue
                    if frame.opcode is Opcode.BINARY:
                        self.close(1003, "unsupported data")
                        return
                    if frame.opcode is Opcode.TEXT:
                        parts = [bytes(frame.data)]
                    elif frame.opcode is Opcode.CONT:
                        parts.append(bytes(frame.data))
                    else:
                        continue
                    if frame.fin:
                        on_text(b"".join(parts).decode("utf-8", "replace"))
                        parts = []
                if not data or self.protocol.close_expected():
                    break  # EOF (slack_sdk drops the TCP connection so), or a close under way
        except OSError:
            pass
        finally:
            self._ended.set()
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
