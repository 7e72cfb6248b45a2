"""Separate bot processes on one database: crash recovery, the jobs lease, and secrecy."""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import APPROVALS, APPROVER1, HELPDESK, OPERATOR, base_env, flatten, wait_until

from bot import approvals, ids
from bot.requests import NewRequest
from bot.services import build_services
from bot.settings import load_settings

BOTH_STORES = True  # each test runs on SQLite and on PostgreSQL (conftest)


def _one(env: dict[str, str], sql: str, params: list[Any]) -> Any:
    """One row from the database the processes share, read behind their backs."""
    if env.get("DATABASE_URL"):
        import psycopg

        with psycopg.connect(env["DATABASE_URL"]) as pg:
            return pg.execute(sql.replace("?", "%s"), params).fetchone()
    import sqlite3

    conn = sqlite3.connect(env["DATABASE_PATH"], timeout=10)
    try:
        return conn.execute(sql, params).fetchone()
    finally:
        conn.close()


class BotProcess:
    """`python -m bot` in a child process, its log collected line by line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        match = wait_until(
            lambda: self._find(r"listening on (http://\S+)"), 30, "the bot to listen"
        )
        self.url = match.group(1)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def _find(self, pattern: str) -> Any:
        for line in list(self.lines):
            found = re.search(pattern, line)
            if found:
                return found
        if self.proc.poll() is not None:
            raise AssertionError("bot exited:\n" + "".join(self.lines[-30:]))
        return None

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def process_env(tmp_path: Path, sandbox: Any, emu: Any, **overrides: str) -> dict[str, str]:
    env = base_env(str(tmp_path / "shared.db"), emu.api_url, **overrides)
    env.pop("GOOGLE_BACKEND")
    env.update(
        GOOGLE_API_ENDPOINT=sandbox.url,
        ANDROID_ENTERPRISE=sandbox.enterprise,
        LEASE_SECONDS=overrides.get("LEASE_SECONDS", "1"),
        PATH=os.environ.get("PATH", "/usr/bin:/bin"),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def processes():
    started: list[BotProcess] = []

    def start(env: dict[str, str]) -> BotProcess:
        process = BotProcess(env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def submit_from_test(
    env: dict[str, str],
    action: str,
    ref: str,
    params: dict[str, Any],
    secret: dict[str, Any] | None = None,
) -> str:
    """Create a request the way the bot's modal would, from this process, on the shared database."""
    svc = build_services(load_settings(env))
    try:
        device = svc.devices.resolve(ref)
        return approvals.submit(
            svc,
            NewRequest(
                action=action,
                platform=device.platform,
                devices=(device,),
                params=params,
                requester=OPERATOR,
                reason="e2e",
                secret=secret,
                channel=HELPDESK,
            ),
        )
    finally:
        svc.close()


def state_of(env: dict[str, str], request_id: str) -> str:
    row = _one(env, "SELECT state FROM requests WHERE id = ?", [request_id])
    return row[0] if row else ""


def approval_message(emu: Any, request_id: str) -> dict[str, Any]:
    return wait_until(
        lambda: next((m for m in emu.messages(APPROVALS) if request_id in flatten(m)), None)
    )


def test_killed_after_approval_never_sends_twice(tmp_path, sandbox, emu, claims, processes):
    env = process_env(tmp_path, sandbox, emu, GOOGLE_TIMEOUT="2")
    first = processes(env)
    emu.bot_url = first.url + "/slack/events"
    device = claims.chrome("ACTIVE")
    request_id = submit_from_test(env, "disable", device["serialNumber"], {"why": "other"})
    message = approval_message(emu, request_id)
    sandbox.log.clear()
    # Google will take 1.5 s to answer: the bot dies while the call is in flight
    sandbox.faults.add(status=None, latency=1.5, path_contains="batchChangeStatus", method="POST")
    try:
        emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
        wait_until(
            lambda: sandbox.log.count(method="POST", path_contains="batchChangeStatus") == 1, 10
        )
        assert state_of(env, request_id) == "executing"
        first.kill()
    finally:
        sandbox.faults.clear()
    second = processes(env)
    emu.bot_url = second.url + "/slack/events"
    wait_until(
        lambda: state_of(env, request_id) in ("succeeded", "failed"),
        20,
        "the restarted bot to reconcile",
    )
    assert state_of(env, request_id) == "succeeded"
    assert sandbox.log.count(method="POST", path_contains="batchChangeStatus") == 1
    assert sandbox.fleet.chrome[device["deviceId"]]["status"] == "DISABLED"
    thread = "\n".join(flatten(m) for m in emu.messages(APPROVALS, thread_ts=message["ts"]))
    wait_until(
        lambda: (
            "confirmed by reading it back"
            in "\n".join(flatten(m) for m in emu.messages(APPROVALS, thread_ts=message["ts"]))
        ),
        10,
    )
    assert thread is not None


def _lease_owner(env: dict[str, str]) -> str | None:
    row = _one(env, "SELECT owner FROM leases WHERE name = 'jobs'", [])
    return row[0] if row else None


#: a job only the lease holder runs (on PostgreSQL every process polls outcomes)
LEASED = "job lost-watch ran"


def test_two_processes_one_runs_the_jobs_and_the_other_takes_over(
    tmp_path, sandbox, emu, processes
):
    env = process_env(tmp_path, sandbox, emu, LOG_LEVEL="DEBUG", LEASE_SECONDS="1")
    a = processes(env)
    b = processes(env)
    pids = {a.proc.pid: a, b.proc.pid: b}
    owner = wait_until(lambda: _lease_owner(env), 10)
    holder = pids[int(owner.split(":")[1])]
    other = b if holder is a else a
    wait_until(lambda: holder.log.count(LEASED) >= 5, 15, "jobs to run in the holder")
    assert LEASED not in other.log
    holder.kill()
    started = __import__("time").monotonic()
    wait_until(lambda: LEASED in other.log, 10, "the other process to take over")
    assert (
        __import__("time").monotonic() - started <= 2 * 1.0 + 1.0
    )  # two lease periods (+ a poll tick)
    assert str(other.proc.pid) in (_lease_owner(env) or "")


def test_a_new_password_never_leaves_plaintext(
    tmp_path, sandbox, emu, claims, processes, backend, request
):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key_file = tmp_path / "sa.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "private_key": pem,
                "client_email": "bot@x.iam.gserviceaccount.com",
                "token_uri": "https://oauth2.googleapis.com/token",
                "project_id": "x",
            }
        )
    )
    password = "Zebra-Quokka-7731!"
    db_dir = tmp_path / "db"
    env = process_env(db_dir, sandbox, emu, LOG_LEVEL="DEBUG")
    db_dir.mkdir()
    env["GOOGLE_APPLICATION_CREDENTIALS"] = str(key_file)
    bot = processes(env)
    emu.bot_url = bot.url + "/slack/events"
    device = claims.android(
        lambda d: d["managementMode"] == "DEVICE_OWNER"
    )  # any API level takes it
    # the way a person does it: the slash command, the modal, a submission carrying the password
    emu.slash_command(OPERATOR, f"reset-password {device['hardwareInfo']['serialNumber']}")
    view = wait_until(
        lambda: (v := emu.open_view(OPERATOR)) and "new_password" in json.dumps(v) and v,
        15,
        "the reset-password modal",
    )
    reply = emu.submit_view(
        OPERATOR,
        view["id"],
        {"new_password": password, "flags": ["REQUIRE_ENTRY"], "reason": "user forgot it"},
    )
    assert reply.status == 200
    message = wait_until(
        lambda: next((m for m in emu.messages(APPROVALS) if "Reset password" in flatten(m)), None),
        15,
    )
    request_id = re.search(r"`(R[0-9A-F]{12})`", flatten(message)).group(1)
    emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
    wait_until(lambda: state_of(env, request_id) in ("succeeded", "failed"), 20)
    assert state_of(env, request_id) == "succeeded", bot.log[-2000:]
    # the sandbox (Google) did get it: the test is not vacuous
    assert any(password in json.dumps(op.extra) for op in sandbox.fleet.operations.values())
    bot.stop()
    secret_bytes = password.encode()
    for path in db_dir.iterdir():
        assert secret_bytes not in path.read_bytes(), f"password found in {path.name}"
    if backend == "postgresql":  # every file of the cluster, its WAL included
        import psycopg

        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as pg:
            pg.execute("CHECKPOINT")
        for path in Path(request.getfixturevalue("pg_cluster").dir).rglob("*"):
            if path.is_file():
                assert secret_bytes not in path.read_bytes(), f"password found in {path}"
    assert password not in bot.log
    assert "DEBUG" in bot.log  # logging really was at DEBUG
    for call in emu.calls:
        assert password not in json.dumps(call.args), call.method
    for secret in (
        env["SLACK_BOT_TOKEN"],
        env["SLACK_SIGNING_SECRET"],
        "BEGIN PRIVATE KEY",
        pem.splitlines()[1],
    ):
        assert secret not in bot.log


def signal_a_thread_other_than_main(pid: int, signum: int) -> None:
    """Send `signum` to one of process `pid`'s threads that is not its main thread, as the
    kernel may deliver a signal sent to the process (tgkill; the main thread's id is pid)."""
    libc = ctypes.CDLL(None, use_errno=True)
    others = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
    assert others, "the process has no other thread"
    assert libc.tgkill(pid, others[-1], signum) == 0, os.strerror(ctypes.get_errno())


@pytest.mark.parametrize("entry", [["bot"], ["bot", "playground", "--port", "0"]])
def test_sigterm_received_by_any_thread_stops_the_process(tmp_path, sandbox, emu, entry):
    """The kernel hands a process's SIGTERM to any thread that does not block it, mostly the
    main one. Python runs the handler in the main thread, so a main thread asleep in an
    untimed wait never ran it: the process went on serving (a stop once took over 30 s)."""
    env = process_env(tmp_path, sandbox, emu)
    proc = subprocess.Popen(
        [sys.executable, "-m", *entry],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = ("listening on", "press Ctrl-C")
        seen: list[str] = []
        while not any(r in "".join(seen[-1:]) for r in ready):
            line = proc.stdout.readline()
            assert line, "".join(seen)
            seen.append(line)
        signal_a_thread_other_than_main(proc.pid, signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_lets_in_flight_work_finish(tmp_path, sandbox, emu, claims, processes):
    env = process_env(tmp_path, sandbox, emu)
    bot = processes(env)
    emu.bot_url = bot.url + "/slack/events"
    device = claims.chrome("ACTIVE")
    request_id = submit_from_test(env, "disable", device["serialNumber"], {"why": "other"})
    message = approval_message(emu, request_id)
    sandbox.faults.add(status=None, latency=1.0, path_contains="batchChangeStatus", method="POST")
    try:
        emu.click(APPROVER1, ids.ActionId.APPROVE, value=request_id, message=message)
        wait_until(
            lambda: sandbox.log.count(method="POST", path_contains="batchChangeStatus") >= 1, 10
        )
        bot.proc.send_signal(signal.SIGTERM)
        assert bot.proc.wait(30) == 0
    finally:
        sandbox.faults.clear()
    assert state_of(env, request_id) == "succeeded"
    assert "shutting down" in bot.log
