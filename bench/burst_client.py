"""A load generator in a process of its own: sends prepared HTTP requests all at one instant
and times each exchange, from one thread, without sharing a GIL with anything it measures.

The parent (`BurstClient`) hands it a burst — the URL and each request's headers and body,
signed beforehand (`SlackEmulator.preparing`) — and it answers `ready` once the raw bytes are
built. On `go` it opens every connection, non-blocking, one after the other; sends each
request as soon as its connection takes it; and notes when each answer is complete (its
Content-Length read, or the server closed the connection). Each request's time runs from the
start of its own connect to its last byte, as `urllib` timed it when a thread per request
sent it (`Connection: close`, a new connection each, as urllib sends them).

One thread serves all the connections, so answers that arrive together are noted one after
the other: some tens of microseconds each, the same for whichever peer is measured. The
garbage collector is off during a burst.

    python -m bench.burst_client   (the parent starts it; JSON lines on stdin and stdout)
"""

from __future__ import annotations

import errno
import gc
import json
import selectors
import socket
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from bench.common import PipedChild, cpu_seconds

#: how long one burst may take before the remaining requests are reported as status 0
BURST_TIMEOUT = 120.0


# ---- the child: one thread, non-blocking sockets -------------------------------------------


@dataclass
class _Exchange:
    raw: bytes
    sock: socket.socket | None = None
    sent: int = 0
    started: float = 0.0
    elapsed: float = 0.0
    status: int = 0
    answer: bytearray = field(default_factory=bytearray)

    def complete(self) -> bool:
        """Whether the whole answer is in (headers and Content-Length bytes of body)."""
        head, sep, body = bytes(self.answer).partition(b"\r\n\r\n")
        if not sep:
            return False
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        return length is not None and len(body) >= length

    def finish(self, now: float) -> None:
        self.elapsed = now - self.started
        first = bytes(self.answer).split(b"\r\n", 1)[0].split()
        self.status = int(first[1]) if len(first) >= 2 and first[1].isdigit() else 0
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _raw(url: str, headers: dict[str, str], body: bytes) -> tuple[tuple[str, int], bytes]:
    parts = urllib.parse.urlsplit(url)
    lines = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return (parts.hostname or "127.0.0.1", parts.port or 80), "\r\n".join(lines).encode() + body


def fire(
    address: tuple[str, int], raws: list[bytes], timeout: float = BURST_TIMEOUT
) -> list[_Exchange]:
    """Send every request at once to `address`; each exchange with its time and status."""
    exchanges = [_Exchange(raw) for raw in raws]
    selector = selectors.DefaultSelector()
    open_ = 0
    for ex in exchanges:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        ex.sock, ex.started = sock, time.perf_counter()
        code = sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS, errno.EAGAIN):
            ex.finish(time.perf_counter())
            continue
        selector.register(sock, selectors.EVENT_WRITE, ex)
        open_ += 1
    deadline = time.perf_counter() + timeout
    while open_ and time.perf_counter() < deadline:
        for key, events in selector.select(timeout=1.0):
            ex = key.data
            sock = ex.sock
            if events & selectors.EVENT_WRITE:
                try:
                    ex.sent += sock.send(ex.raw[ex.sent :])
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    selector.unregister(sock)
                    ex.finish(time.perf_counter())
                    open_ -= 1
                    continue
                if ex.sent == len(ex.raw):
                    selector.modify(sock, selectors.EVENT_READ, ex)
                continue
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if data:
                ex.answer += data
                if not ex.complete():
                    continue
            now = time.perf_counter()
            selector.unregister(sock)
            ex.finish(now)
            open_ -= 1
    for ex in exchanges:
        if ex.sock is not None:  # timed out
            ex.sock.close()
            ex.sock = None
    selector.close()
    return exchanges


def serve() -> None:
    """The child's loop: `{"url", "requests": [{"headers", "body"}]}` → `ready`; `{"go": pid}`
    → `{"results": [[seconds, status], …], "cpu": seconds}` (the CPU process `pid` used from
    the release to the last answer; 0 without a pid); until stdin closes."""
    address: tuple[str, int] = ("127.0.0.1", 0)
    raws: list[bytes] = []
    for line in sys.stdin:
        message = json.loads(line)
        if "go" in message:
            peer = message["go"]
            gc.collect()
            gc.disable()
            try:
                cpu = cpu_seconds(peer) if peer else 0.0
                exchanges = fire(address, raws)
                cpu = cpu_seconds(peer) - cpu if peer else 0.0
            finally:
                gc.enable()
            results = [[ex.elapsed, ex.status] for ex in exchanges]
            print(json.dumps({"results": results, "cpu": cpu}), flush=True)
            continue
        raws = []
        for request in message["requests"]:
            address, raw = _raw(message["url"], request["headers"], request["body"].encode())
            raws.append(raw)
        print(json.dumps("ready"), flush=True)


# ---- the parent's side -----------------------------------------------------------------------


class BurstClient(PipedChild):
    """`serve` in a child process: load a burst (`ready`), then release it (`go`)."""

    def __init__(self) -> None:
        super().__init__("bench.burst_client")

    def load(self, url: str, requests: list[Any]) -> None:
        """Hand over one burst: `requests` are `Prepared` deliveries (headers, body)."""
        bodies = [{"headers": r.headers, "body": r.body.decode()} for r in requests]
        answer = json.loads(self.ask(json.dumps({"url": url, "requests": bodies})))
        if answer != "ready":
            raise RuntimeError(f"the burst client answered {answer!r}")

    def go(self, peer: int | None = None) -> tuple[list[tuple[float, int]], float]:
        """Release the burst loaded last: each request's seconds and HTTP status (0: none), and
        the CPU seconds process `peer` used from the release to the last answer."""
        answer = json.loads(self.ask(json.dumps({"go": peer})))
        return [(float(s), int(c)) for s, c in answer["results"]], float(answer["cpu"])

    def close(self) -> None:
        self.stop(timeout=10)


if __name__ == "__main__":
    serve()
