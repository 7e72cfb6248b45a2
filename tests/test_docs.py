"""README and the code must agree (sqlite-utils' test_docs idea)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def test_two_setup_commands_and_ci_runs_the_test_one():
    blocks = _shell_blocks(README)
    commands = [
        line
        for block in blocks[:2]
        for line in block.splitlines()
        if line and not line.startswith("#")
    ]
    assert len(commands) == 2, commands
    run, test = commands
    assert run.endswith("python -m bot playground")
    assert test.endswith("python -m pytest")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci, "'.ci/run' must run exactly README's test command"
    assert ci[-1] == test


def test_every_setting_is_documented():
    source = (ROOT / "bot" / "settings.py").read_text()
    variables = set(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', source)) - {
        "INFO",
        "DEBUG",
        "WARNING",
        "ERROR",
    }
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)`", README, re.M))
    missing = sorted(variables - documented)
    assert not missing, f"settings missing from README's table: {missing}"


def test_spec_variables_are_documented():
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "SLACK_API_URL",
        "PORT",
        "DATABASE_PATH",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_ADMIN_EMAIL",
        "GOOGLE_CUSTOMER_ID",
        "ANDROID_ENTERPRISE",
        "GOOGLE_API_ENDPOINT",
        "GOOGLE_BACKEND",
        "DEVICE_OPERATORS",
        "DEVICE_APPROVERS",
        "APPROVAL_CHANNEL",
        "LOST_DEVICE_CHANNEL",
        "APPROVAL_REQUIRED",
        "APPROVAL_TTL",
        "POLL_INTERVAL",
    ):
        assert f"`{name}`" in README
