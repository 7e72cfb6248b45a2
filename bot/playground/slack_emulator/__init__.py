"""A local Slack: answers the Web API like Slack, records every call, and talks to the bot as Slack does.

The end-to-end tests and the browser playground share this one emulator. One module per idea:

- ``blockkit``: Block Kit checked as Slack checks it (slack_sdk.models plus the documented limits);
- ``limits``: the table of those limits, each with the page that states it;
- ``records``: what the emulator records (calls, deliveries, refusals) and ``SlackApiError``;
- ``workspace``: users, channels, messages, threads, ephemerals, and the queries on them;
- ``views``: trigger_ids, modals and App Home (the ``views.*`` methods);
- ``socket_mode``: Socket Mode tickets, envelopes and acks;
- ``websocket``: the WebSocket under it (the websockets library's protocol);
- ``web_api``: the Web API method table and ``response_url``s;
- ``elements``: the interactive elements of blocks and the ``state.values`` Slack builds;
- ``gestures``: slash commands, clicks, modal submissions delivered to the bot;
- ``events``: the Events API (``app_home_opened``, ``function_executed``) and ``functions.*``;
- ``http_handler``: the HTTP front;
- ``emulator``: ``SlackEmulator``, the layers above put together, and the server's lifecycle.
"""

from bot.playground.slack_emulator.blockkit import validate_blocks, validate_view
from bot.playground.slack_emulator.elements import element_state, iter_elements
from bot.playground.slack_emulator.emulator import SlackEmulator
from bot.playground.slack_emulator.limits import LIMITS
from bot.playground.slack_emulator.records import (
    JSON,
    REFUSALS,
    Call,
    Delivery,
    Refusal,
    Reply,
    ResponsePost,
    SlackApiError,
)
from bot.playground.slack_emulator.workspace import APP_ID, BOT_ID, BOT_USER_ID

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
