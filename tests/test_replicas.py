"""Two replicas on one PostgreSQL: two `python -m bot` processes, one port each, behind a
round-robin balancer the emulator delivers to (as a Kubernetes Service or a PaaS router
would); exactly-once across them, and one takes over what the other left when killed."""

from __future__ import annotations

import http.server
import itertools
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import APPROVER1, APPROVER2, flatten, postgres_url, wait_until
from test_resilience import (
    BotProcess,
    approval_message,
    process_env,
    processes,  # noqa: F401, F811 (the fixture)
    state_of,
    submit_from_test,
)

from bot import ids


class Balancer:
    """POSTs go to the replicas in turn; `hits` counts what each one received."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self.hits: Counter[str] = Counter()
        turn = itertools.cycle(range(len(backends)))
        lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                with lock:
                    backend = outer.backends[next(turn)]
                    outer.hits[backend] += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length", "connection")
                }
                request = urllib.request.Request(
                    backend + self.path, data=body, headers=headers, method="POST"
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as resp:
                        status, raw, ctype = (
                            resp.status,
                            resp.read(),
                            resp.headers.get("Content-Type", ""),
                        )
                except urllib.error.HTTPError as exc:
                    status, raw, ctype = exc.code, exc.read(), ""
                self.send_response(status)
                if ctype:
                    self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 128  # 20 clicks at once: the default backlog of 5 drops some
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def replicas(
    request: pytest.FixtureRequest,
    tmp_path: Any,
    sandbox: Any,
    emu: Any,
    processes: Any,  # noqa: F811
) -> Iterator[tuple[dict[str, str], list[BotProcess], Balancer]]:
    url = postgres_url(request)  # skips without PostgreSQL (fails under CI)
    # a dead replica's call in flight is read back only once its GOOGLE_TIMEOUT has passed
    # (execution.recover): 4 s instead of 10 keeps that wait short; every call here is local
    env = process_env(
        tmp_path, sandbox, emu, DATABASE_URL=url, LEASE_SECONDS="2", GOOGLE_TIMEOUT="4"
    )
    a, b = processes(env), processes(env)
    balancer = Balancer([a.url, b.url])
    emu.bot_url = balancer.url + "/slack/events"
    yield env, [a, b], balancer
    balancer.close()
    a.stop()
    b.stop()
    request.getfixturevalue("pg_cluster").drop_database(url)


def _executor(env: dict[str, str], request_id: str) -> str:
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as pg:
        row = pg.execute("SELECT executor FROM requests WHERE id = %s", [request_id]).fetchone()
    return str(row[0] if row else "")


def test_twenty_clicks_over_two_replicas_make_one_google_call(replicas, sandbox, emu, claims):
    env, (a, b), balancer = replicas
    device = claims.chrome("ACTIVE")
    request_id = submit_from_test(env, "disable", device["serialNumber"], {"why": "other"})
    message = approval_message(emu, request_id)
    sandbox.log.clear()
    balancer.hits.clear()
    barrier = threading.Barrier(20)
    replies: list[Any] = []
    errors: list[BaseException] = []

    def click(user: str) -> None:
        barrier.wait()
        try:
            replies.append(
                emu.click(
                    user, ids.ActionId.APPROVE, value=request_id, message=message, as_shown=True
                )
            )
        except BaseException as exc:  # reported below with the count
            errors.append(exc)

    threads = [
        threading.Thread(target=click, args=(APPROVER1 if i % 2 else APPROVER2,)) for i in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(replies) == 20 and all(r.status == 200 for r in replies)
    assert balancer.hits[a.url] == 10 and balancer.hits[b.url] == 10  # both replicas had clicks
    wait_until(lambda: state_of(env, request_id) == "succeeded", 20, "the request to succeed")
    assert sandbox.log.count(method="POST", path_contains="batchChangeStatus") == 1
    assert sandbox.fleet.chrome[device["deviceId"]]["status"] == "DISABLED"

    def told() -> int:
        return sum(
            "already decided" in flatten(m)
            for u in (APPROVER1, APPROVER2)
            for m in emu.ephemerals(u)
        )

    wait_until(lambda: told() == 19, 15, "19 clicks told it was already decided")


def test_killed_replica_is_finished_by_the_other_without_a_second_call(
    replicas, sandbox, emu, claims
):
    env, (a, b), _balancer = replicas
    device = claims.chrome("ACTIVE")
    request_id = submit_from_test(env, "disable", device["serialNumber"], {"why": "other"})
    message = approval_message(emu, request_id)
    sandbox.log.clear()
    # Google takes 1.5 s to answer: the executing replica dies while its call is in flight
    sandbox.faults.add(status=None, latency=1.5, path_contains="batchChangeStatus", method="POST")
    try:
        emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
        wait_until(
            lambda: sandbox.log.count(method="POST", path_contains="batchChangeStatus") == 1, 10
        )
        assert state_of(env, request_id) == "executing"
        executor = _executor(env, request_id)
        dead, survivor = (a, b) if f":{a.proc.pid}:" in executor else (b, a)
        assert f":{dead.proc.pid}:" in executor
        dead.kill()
    finally:
        sandbox.faults.clear()
    # the survivor holds (or takes over within the 2 s lease) the jobs and reconciles
    wait_until(
        lambda: state_of(env, request_id) in ("succeeded", "failed"),
        15,
        "the other replica to reconcile",
    )
    assert state_of(env, request_id) == "succeeded", survivor.log[-2000:]
    assert sandbox.log.count(method="POST", path_contains="batchChangeStatus") == 1
    assert sandbox.fleet.chrome[device["deviceId"]]["status"] == "DISABLED"
    assert survivor.proc.poll() is None
