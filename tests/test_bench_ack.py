"""bench/ack.py's fairness helpers: a burst waits until both peers are quiet, and notes how
much CPU the rest of the machine took while it ran."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench import ack

BUSY_THEN_IDLE = "import time\nend = time.monotonic() + {busy}\nwhile time.monotonic() < end: pass\ntime.sleep(60)\n"


def _child(busy: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", BUSY_THEN_IDLE.format(busy=busy)])


def test_settle_waits_while_a_peer_works_and_not_once_it_is_quiet():
    busy, idle = _child(0.8), _child(0.0)
    try:
        time.sleep(0.1)  # both started: one spinning, one asleep
        waited = ack.settle([idle.pid, busy.pid], timeout=10)
        assert waited >= 0.6, f"released after {waited:.2f} s while a peer still spun"
        assert waited < 5
        assert ack.settle([idle.pid, busy.pid], timeout=10) < 2 * ack.QUIET_WINDOW + 0.3
    finally:
        for proc in (busy, idle):
            proc.kill()
            proc.wait()


def test_the_rest_of_the_machine_is_a_share_of_all_cores():
    burst = ack.Burst()
    burst.span, burst.others = 0.1, 0.1 * (os.cpu_count() or 1) / 2
    assert abs(ack._share(burst) - 0.5) < 1e-9
    assert ack.machine_busy() > 0


def test_prepared_deliveries_are_signed_and_sent_at_once_by_the_burst_client():
    """`SlackEmulator.preparing` signs without sending; the burst client sends them all and
    reports each exchange's status and time."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    from slack_sdk.signature import SignatureVerifier

    from bench.burst_client import BurstClient
    from bot.playground.slack_emulator import SlackEmulator

    verifier = SignatureVerifier("burst-secret")
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            valid = verifier.is_valid(
                body, self.headers["X-Slack-Request-Timestamp"], self.headers["X-Slack-Signature"]
            )
            bodies.append(body)
            status = 200 if valid and self.path == "/slack/events" else 401
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    emu = SlackEmulator(signing_secret="burst-secret", bot_url=url + "/slack/events").start()
    client = BurstClient()
    try:
        with emu.preparing() as prepared:
            replies = [emu.slash_command("U0BURST", f"info SERIAL{i}") for i in range(20)]
        assert [r.status for r in replies] == [0] * 20
        assert bodies == [], "a prepared delivery was sent"
        assert emu.slash_command("U0BURST", "help").status == 200  # outside: sent as always
        assert len(bodies) == 1

        client.load(url + "/slack/events", prepared)
        results, cpu = client.go(os.getpid())
        assert [status for _, status in results] == [200] * 20
        assert cpu > 0  # this process served them
        assert all(0 < seconds < 10 for seconds, _ in results)
        sent = b"".join(bodies[1:])
        assert all(sent.count(f"info+SERIAL{i}&".encode()) == 1 for i in range(20))

        client.load(url + "/elsewhere", prepared[:3])
        assert [status for _, status in client.go()[0]] == [401] * 3
    finally:
        client.close()
        emu.stop()
        server.shutdown()
