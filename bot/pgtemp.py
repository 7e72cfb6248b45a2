"""A throwaway PostgreSQL cluster for the tests and benchmarks (Debian's `postgresql`).

`TempCluster().start()` runs initdb and pg_ctl from the installed server into a temporary
directory, listening on a free loopback port (and a socket in that directory), with
durability off (a scratch database). `POSTGRES_BIN` names the server's bin directory
when it is not Debian's. PostgreSQL refuses to run as root: as root it runs
as the `postgres` user the package creates, which then owns the directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import psycopg


class ClusterUnavailable(RuntimeError):
    """PostgreSQL is not installed here, or would not start: the message says which."""


def server_bin() -> Path | None:
    """The directory of initdb and pg_ctl (Debian keeps them out of PATH), or None.
    `POSTGRES_BIN` names it where it is elsewhere (and only it is then looked in)."""
    named = os.environ.get("POSTGRES_BIN")
    if named:
        return Path(named) if (Path(named) / "initdb").is_file() else None
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TempCluster:
    def __init__(self) -> None:
        self.dir: Path | None = None
        self.port = 0
        self._as: list[str] = []
        self._count = 0
        self._lock = threading.Lock()

    def _run(self, *argv: str) -> None:
        done = subprocess.run(
            [*self._as, *argv], capture_output=True, text=True, timeout=120, cwd=self.dir
        )
        if done.returncode != 0:
            raise ClusterUnavailable(
                f"{Path(argv[0]).name} failed ({done.returncode}): {(done.stderr or done.stdout)[-800:]}"
            )

    def start(self) -> TempCluster:
        bindir = server_bin()
        if bindir is None:
            raise ClusterUnavailable(
                "PostgreSQL is not installed (no initdb"
                + (
                    f" in POSTGRES_BIN={os.environ['POSTGRES_BIN']}"
                    if os.environ.get("POSTGRES_BIN")
                    else ""
                )
                + "; Debian: apt-get install postgresql)"
            )
        root = os.geteuid() == 0
        # as root: under /tmp, which the postgres user can reach whatever TMPDIR says
        self.dir = Path(
            tempfile.mkdtemp(
                prefix="device-bot-pg-", dir="/tmp" if root and os.path.isdir("/tmp") else None
            )
        )
        if root:  # the server will not run as root
            try:
                user = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise ClusterUnavailable("running as root and there is no postgres user") from exc
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            runuser = shutil.which("runuser") or shutil.which("setpriv")
            if runuser is None:
                raise ClusterUnavailable("running as root without runuser to drop to postgres")
            self._as = (
                [runuser, "-u", "postgres", "--"]
                if runuser.endswith("runuser")
                else [runuser, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
            )
        data = self.dir / "data"
        self._run(
            str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--no-sync", "--no-instructions",
        )  # fmt: skip
        self.port = _free_port()
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=400"
        )
        self._run(
            str(bindir / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"), "-w",
            "-t", "60", "-o", options, "start",
        )  # fmt: skip
        self._bindir = bindir
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "t") -> str:
        """A fresh empty database; its URL."""
        with self._lock:
            self._count += 1
            name = f"{prefix}{os.getpid()}_{self._count}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by `new_database` (its connections are ended)."""
        name = url.rsplit("/", 1)[-1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.dir is None:
            return
        with contextlib.suppress(ClusterUnavailable, AttributeError, subprocess.TimeoutExpired):
            self._run(
                str(self._bindir / "pg_ctl"),
                "-D",
                str(self.dir / "data"),
                "-m",
                "immediate",
                "stop",
            )
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
