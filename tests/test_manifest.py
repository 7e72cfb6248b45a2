"""manifest.yml and Procfile agree with the code: command, URLs, scopes, events."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import Bot
from slack_sdk import WebClient

from bot import ids

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "bot"
#: not the bot talking to Slack: the local Slack emulator and the simulated Google
NOT_SLACK_CLIENTS = ("playground", "sandbox")

#: the bot scopes each Web API method needs (https://api.slack.com/methods). A method the
#: code calls that is missing here fails the test: look its scopes up and add it.
METHOD_SCOPES: dict[str, set[str]] = {
    "api_test": set(),
    "auth_test": set(),
    # chat:write.public: the bot posts to APPROVAL_CHANNEL / LOST_DEVICE_CHANNEL without an invitation
    "chat_postMessage": {"chat:write", "chat:write.public"},
    "chat_postEphemeral": {"chat:write"},
    "chat_update": {"chat:write"},
    "chat_delete": {"chat:write"},
    "chat_scheduleMessage": {"chat:write"},
    "chat_getPermalink": set(),
    "views_open": set(),
    "views_update": set(),
    "views_push": set(),
    "views_publish": set(),
    "functions_completeSuccess": set(),
    "functions_completeError": set(),
    "usergroups_users_list": {"usergroups:read"},
    "usergroups_list": {"usergroups:read"},
    "users_info": {"users:read"},
    "users_list": {"users:read"},
    "users_lookupByEmail": {"users:read", "users:read.email"},
    "conversations_info": {"channels:read", "groups:read"},
    "conversations_join": {"channels:join"},
    "conversations_open": {"im:write"},
    "conversations_history": {"channels:history", "groups:history"},
    "conversations_replies": {"channels:history", "groups:history"},
    "reactions_add": {"reactions:write"},
    "files_upload_v2": {"files:write"},
    "files_getUploadURLExternal": {"files:write"},
    "files_completeUploadExternal": {"files:write"},
    "files_info": {"files:read"},
}
#: a slash command in the manifest needs this scope whatever the code calls
COMMAND_SCOPES = {"commands"}

WEB_API_METHODS = {
    name for name, value in vars(WebClient).items() if not name.startswith("_") and callable(value)
}
_CALL = re.compile(r"\.([a-z]+_[A-Za-z0-9_]+)\(")
_API_CALL = re.compile(r"api_call\(\s*['\"]([a-z]+(?:\.[A-Za-z]+)+)['\"]")
_EVENT = re.compile(r"\.event\(\s*['\"]([a-z_]+)['\"]")
#: `app.function(...)` listens to function_executed (a custom step); ids hold its callback_id
_FUNCTION = re.compile(r"\.function\(")


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "manifest.yml").read_text())
    return data


def bot_sources() -> dict[Path, str]:
    return {
        path: path.read_text()
        for path in sorted(BOT.rglob("*.py"))
        if not set(path.relative_to(BOT).parts) & set(NOT_SLACK_CLIENTS)
    }


def web_api_calls() -> dict[str, set[str]]:
    """Web API methods (WebClient names) the bot's code calls, with where."""
    found: dict[str, set[str]] = {}
    for path, text in bot_sources().items():
        names = {m for m in _CALL.findall(text) if m in WEB_API_METHODS}
        names |= {m.replace(".", "_") for m in _API_CALL.findall(text)}
        for name in names:
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_the_scan_sees_the_calls_we_know_of() -> None:
    calls = web_api_calls()
    assert {"chat_postMessage", "chat_postEphemeral", "views_open", "usergroups_users_list"} <= set(
        calls
    )
    assert "search_page" not in calls  # a builder, not the search.* Web API


def test_bot_scopes_are_exactly_the_ones_the_code_needs(manifest: dict[str, Any]) -> None:
    calls = web_api_calls()
    unknown = {name: sorted(where) for name, where in calls.items() if name not in METHOD_SCOPES}
    assert unknown == {}, f"add these Web API methods and their scopes to METHOD_SCOPES: {unknown}"
    needed = set(COMMAND_SCOPES)
    for name in calls:
        needed |= METHOD_SCOPES[name]
    declared = manifest["oauth_config"]["scopes"]["bot"]
    assert len(declared) == len(set(declared)), "a scope is listed twice"
    assert set(declared) == needed, (
        f"missing: {sorted(needed - set(declared))}, unused: {sorted(set(declared) - needed)}"
    )
    assert "user" not in manifest["oauth_config"]["scopes"]


def test_the_slash_command_is_the_one_the_code_serves(manifest: dict[str, Any]) -> None:
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == ids.SLASH_COMMAND
    assert command["usage_hint"] and len(command["usage_hint"]) <= 1000
    assert 0 < len(command["description"]) <= 2000
    for sub in ("help", "find", "info", "history", "requests"):
        assert sub in command["usage_hint"]


def test_identity_and_settings(manifest: dict[str, Any]) -> None:
    info = manifest["display_information"]
    assert info["name"] and 0 < len(info["description"]) <= 140
    assert manifest["features"]["bot_user"]["display_name"]
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is False
    text = (ROOT / "manifest.yml").read_text()  # the comment says how to switch to Socket Mode
    assert "connections:write" in text and "SLACK_APP_TOKEN" in text


def test_events_subscribed_are_the_events_handled(manifest: dict[str, Any]) -> None:
    handled = {e for text in bot_sources().values() for e in _EVENT.findall(text)}
    if any(_FUNCTION.search(text) for text in bot_sources().values()):
        handled.add("function_executed")
    subscribed = set(
        (manifest["settings"].get("event_subscriptions") or {}).get("bot_events") or []
    )
    assert subscribed == handled
    if handled:
        assert (
            urlsplit(manifest["settings"]["event_subscriptions"]["request_url"]).path
            == "/slack/events"
        )


def urls(manifest: dict[str, Any]) -> list[str]:
    found = [c["url"] for c in manifest["features"]["slash_commands"]]
    found.append(manifest["settings"]["interactivity"]["request_url"])
    # the OU picker's options (block_suggestion) come to the same place
    found.append(manifest["settings"]["interactivity"]["message_menu_options_url"])
    if manifest["settings"].get("event_subscriptions"):
        found.append(manifest["settings"]["event_subscriptions"]["request_url"])
    return found


def test_every_request_url_is_the_path_the_server_serves(
    manifest: dict[str, Any], bot: Bot
) -> None:
    paths = {urlsplit(url).path for url in urls(manifest)}
    assert all(urlsplit(url).scheme == "https" for url in urls(manifest))
    assert len(paths) == 1
    (path,) = paths
    # the running server hands that path to Bolt: an unsigned POST is refused by signature checks
    request = urllib.request.Request(
        bot.url + path, data=b"command=%2Fdevice&text=help", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as elsewhere:
        urllib.request.urlopen(
            urllib.request.Request(bot.url + "/slack/other", data=b"x", method="POST"), timeout=5
        )
    assert elsewhere.value.code == 404
    # and a signed slash command on it works
    assert bot.slash("help").status == 200
    assert "/device sub-commands" in bot.wait_ephemeral("/device sub-commands")


def test_procfile_runs_the_web_process() -> None:
    assert (ROOT / "Procfile").read_text().strip().splitlines() == ["web: python -m bot"]


def test_the_workflow_step_is_the_one_the_code_serves(manifest: dict[str, Any]) -> None:
    from bot import workflow

    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["settings"]["org_deploy_enabled"] is True  # Slack: custom steps need it
    (callback_id,) = manifest["functions"]
    assert callback_id == ids.STEP_REQUEST_ACTION
    step = manifest["functions"][callback_id]
    assert set(step["input_parameters"]) == set(workflow.INPUTS)
    assert set(step["output_parameters"]) == set(workflow.OUTPUTS)
    for param in [*step["input_parameters"].values(), *step["output_parameters"].values()]:
        assert param["type"] in ("string", "slack#/types/user_id") and param["title"]
