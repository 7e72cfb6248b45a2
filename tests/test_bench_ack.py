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
