"""The throwaway PostgreSQL of the tests: missing, its runs skip saying why; under CI they fail."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.pgtemp import ClusterUnavailable, TempCluster, server_bin

ROOT = Path(__file__).resolve().parent.parent
# one test of a BOTH_STORES module, on PostgreSQL
ON_POSTGRES = "tests/test_store_audit.py::test_deliveries_dedupe[postgresql]"


def test_without_initdb_the_cluster_says_postgresql_is_not_installed(monkeypatch, tmp_path):
    monkeypatch.setenv("POSTGRES_BIN", str(tmp_path))
    assert server_bin() is None
    cluster = TempCluster()
    with pytest.raises(ClusterUnavailable, match="PostgreSQL is not installed.*apt-get install"):
        cluster.start()
    assert cluster.dir is None  # nothing started, nothing to clean


def _pytest(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TEST_BOTH_STORES")}
    env["POSTGRES_BIN"] = str(tmp_path / "nowhere")
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", ON_POSTGRES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_postgresql_missing_skips_its_runs_saying_why(tmp_path):
    done = _pytest(tmp_path, ci=None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout
    assert "PostgreSQL unavailable: PostgreSQL is not installed" in done.stdout


def test_postgresql_missing_under_ci_fails(tmp_path):
    done = _pytest(tmp_path, ci="true")
    assert done.returncode == 1, done.stdout + done.stderr  # the fixture fails: an error
    assert "1 error" in done.stdout and "skipped" not in done.stdout
    assert "CI must run the PostgreSQL tests" in done.stdout
