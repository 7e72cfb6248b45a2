"""A local Slack: answers the Web API like Slack, records every call, and talks to the bot as Slack does.

The end-to-end tests and the browser playground share this one emulator. One module per idea:

- ``blockkit``: Block Kit checked as Slack checks it (slack_sdk.models plus the documented limits);
- ``emulator``: the workspace, its Web API methods, views, response_urls, Socket Mode and the
  gestures (slash command, click, submit) delivered to the bot.
"""

from bot.playground.slack_emulator.blockkit import LIMITS, validate_blocks, validate_view
from bot.playground.slack_emulator.emulator import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    JSON,
    REFUSALS,
    Call,
    Delivery,
    Refusal,
    Reply,
    ResponsePost,
    SlackApiError,
    SlackEmulator,
    element_state,
    iter_elements,
)

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "JSON",
    "LIMITS",
    "REFUSALS",
    "Call",
    "Delivery",
    "Refusal",
    "Reply",
    "ResponsePost",
    "SlackApiError",
    "SlackEmulator",
    "element_state",
    "iter_elements",
    "validate_blocks",
    "validate_view",
]
