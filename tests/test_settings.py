import subprocess
import sys

import pytest

from bot import catalog
from bot.settings import (
    Secret,
    SettingsError,
    load_settings,
    parse_duration,
)

BASE = {
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_SIGNING_SECRET": "s3cret",
    "APPROVAL_CHANNEL": "C0APPROVALS",
    "DEVICE_APPROVERS": "U0APPROVER1,S0APPROVERS",
    "DEVICE_OPERATORS": "U0OPERATOR U0OTHER",
}


def test_defaults():
    s = load_settings(BASE)
    assert s.port == 3000
    assert s.approval_required == catalog.approval_required()
    assert s.approval_ttl == 24 * 3600
    assert s.poll_interval == 10
    assert s.device_approvers == ("U0APPROVER1", "S0APPROVERS")
    assert s.device_operators == ("U0OPERATOR", "U0OTHER")
    assert s.google_customer_id == "my_customer"
    assert s.lost_device_channel == "C0APPROVALS"
    assert not s.socket_mode
    assert not s.chrome_configured and not s.android_configured


def test_secrets_do_not_show():
    s = load_settings(BASE)
    assert "xoxb-1" not in repr(s)
    assert "s3cret" not in repr(s)
    assert s.slack_bot_token.get() == "xoxb-1"
    assert repr(Secret("x")) == "Secret('**********')"


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"SLACK_BOT_TOKEN": ""}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxp-user"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_SIGNING_SECRET": ""}, "SLACK_SIGNING_SECRET"),
        ({"DEVICE_APPROVERS": "U0OK,bob"}, "DEVICE_APPROVERS"),
        ({"DEVICE_OPERATORS": "C0CHANNEL"}, "DEVICE_OPERATORS"),
        ({"APPROVAL_CHANNEL": "general"}, "APPROVAL_CHANNEL"),
        ({"APPROVAL_CHANNEL": ""}, "APPROVAL_CHANNEL"),
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"POLL_INTERVAL": "-1"}, "POLL_INTERVAL"),
        ({"APPROVAL_TTL": "tomorrow"}, "APPROVAL_TTL"),
        ({"APPROVAL_REQUIRED": "wipe,explode"}, "APPROVAL_REQUIRED"),
        ({"GOOGLE_BACKEND": "azure"}, "GOOGLE_BACKEND"),
        ({"ANDROID_ENTERPRISE": "LC123"}, "ANDROID_ENTERPRISE"),
        (
            {"GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/key.json"},
            "GOOGLE_APPLICATION_CREDENTIALS",
        ),
        ({"GOOGLE_ADMIN_EMAIL": "not-an-email"}, "GOOGLE_ADMIN_EMAIL"),
        ({"SLACK_API_URL": "slack.local"}, "SLACK_API_URL"),
        ({"SLACK_APP_TOKEN": "xoxb-wrong"}, "SLACK_APP_TOKEN"),
        ({"BOT_SECRET_KEY": "short"}, "BOT_SECRET_KEY"),
    ],
)
def test_bad_values_name_the_variable(change, variable):
    with pytest.raises(SettingsError) as info:
        load_settings({**BASE, **change})
    assert info.value.variable == variable
    assert str(info.value).startswith(variable + ":")
    assert "\n" not in str(info.value)


def test_overrides():
    s = load_settings(
        {
            **BASE,
            "APPROVAL_REQUIRED": "none",
            "APPROVAL_CHANNEL": "",
            "APPROVAL_TTL": "90m",
            "GOOGLE_BACKEND": "sandbox",
            "SLACK_APP_TOKEN": "xapp-1",
            "SLACK_SIGNING_SECRET": "",
            "SLACK_API_URL": "http://127.0.0.1:9/api",
        }
    )
    assert s.approval_required == frozenset()
    assert s.approval_ttl == 5400
    assert s.socket_mode
    assert s.sandbox and s.chrome_configured and s.android_configured
    assert s.slack_api_url == "http://127.0.0.1:9/api/"
    assert not s.needs_approval("wipe")


def test_parse_duration():
    assert parse_duration("30") == 30
    assert parse_duration("2h") == 7200
    assert parse_duration("1d") == 86400
    with pytest.raises(ValueError):
        parse_duration("1w")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "SLACK_BOT_TOKEN"),
        ({**BASE, "DEVICE_APPROVERS": "bob"}, "DEVICE_APPROVERS"),
        ({**BASE, "POLL_INTERVAL": "soon"}, "POLL_INTERVAL"),
    ],
)
def test_python_m_bot_exits_2_with_one_line(env, variable, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bot"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


def test_database_url_selects_postgresql_and_needs_the_secret_key(tmp_path):
    url = "postgresql://bot:pw-in-url@db.internal:5432/bot"
    with pytest.raises(SettingsError, match="BOT_SECRET_KEY: is required with DATABASE_URL"):
        load_settings({**BASE, "DATABASE_URL": url})
    with pytest.raises(SettingsError, match="DATABASE_URL: expected postgresql://"):
        load_settings({**BASE, "DATABASE_URL": "mysql://h/db", "BOT_SECRET_KEY": "k" * 16})
    s = load_settings({**BASE, "DATABASE_URL": url, "BOT_SECRET_KEY": "k" * 16})
    assert s.database_url is not None and s.database_url.get() == url
    assert "pw-in-url" not in repr(s)  # the URL may carry a password
    from bot.store import Store

    with pytest.raises(SettingsError, match="DATABASE_URL: cannot reach PostgreSQL"):
        Store(tmp_path / "x.db", url="postgresql://bot@127.0.0.1:1/bot")
