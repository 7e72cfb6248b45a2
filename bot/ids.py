"""Every Slack action, block and callback id the bot uses, in one place.

Handlers match on these; builders emit them; tests check manifest.yml against them.
"""

from __future__ import annotations

import re
from enum import StrEnum

SLASH_COMMAND = "/device"
#: the Workflow Builder custom step (manifest.yml `functions`)
STEP_REQUEST_ACTION = "request_device_action"


class ActionId(StrEnum):
    """action_id of interactive elements in messages and modals."""

    APPROVE = "request_approve"
    DENY = "request_deny"
    CANCEL_REQUEST = "request_cancel"
    REISSUE = "request_reissue"
    REQUEST_AGAIN = "request_again"
    #: a bulk request above its cap: the approver's explicit raise (there is no plain Approve)
    APPROVE_ABOVE_CAP = "request_approve_above_cap"
    FIND_NEXT = "find_next"
    FIND_PREVIOUS = "find_previous"
    FIND_EXPORT = "find_export"
    FIND_SORT = "find_sort"
    SHOW_DEVICE = "device_show"
    #: prefix of the per-action buttons on a device card: "device_action:<action>"
    DEVICE_ACTION = "device_action"
    SEARCH_INPUT = "search_query"
    SEARCH_SORT = "search_sort"
    SEARCH_ORDER = "search_order"
    CLEAR_FIELDS = "clear_fields"
    SHOW_HISTORY = "device_history"
    HISTORY_RAW = "device_history_raw"
    HOME_SEARCH = "home_search"
    HOME_REFRESH = "home_refresh"


class CallbackId(StrEnum):
    """callback_id of modals."""

    SEARCH = "search_modal"
    ACTION = "action_modal"
    DENY = "deny_modal"
    LOADING = "loading_modal"
    BULK_LIST = "bulk_list_modal"
    BULK_CONFIRM = "bulk_confirm_modal"


class BlockId(StrEnum):
    """block_id of inputs whose values the handlers read."""

    SEARCH = "search"
    SEARCH_SORT = "search_sort"
    SEARCH_ORDER = "search_order"
    #: the annotate modal's "clear these fields" checkboxes
    CLEAR_FIELDS = "clear_fields"
    DENY_REASON = "deny_reason"
    CONFIRM_COUNT = "confirm_count"
    BULK_PASTE = "bulk_paste"
    BULK_FILE = "bulk_file"
    #: prefix of the result rows of a search page: "result-<n>"
    RESULT = "result"


def device_action_id(action: str) -> str:
    """The action_id of a device-card button for `action`."""
    return f"{ActionId.DEVICE_ACTION}:{action}"


DEVICE_ACTION_PATTERN = re.compile(rf"^{ActionId.DEVICE_ACTION}:[a-z-]+$")


def action_from_id(action_id: str) -> str:
    return action_id.split(":", 1)[1]
