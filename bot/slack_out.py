"""Everything the bot says to Slack goes through here.

One place that marks sandbox messages, honours Slack's Retry-After (slack_sdk's
rate-limit retry handler), and keeps text fallbacks next to blocks.
"""

from __future__ import annotations

import logging
import time
import urllib.request
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from slack_sdk.webhook import WebhookClient

log = logging.getLogger(__name__)

SANDBOX_MARK = ":test_tube: SANDBOX — simulated devices, nothing real is touched"

Blocks = list[dict[str, Any]] | list[Block] | None


def _dicts(blocks: Blocks) -> list[dict[str, Any]] | None:
    if blocks is None:
        return None
    return [b.to_dict() if isinstance(b, Block) else b for b in blocks]


class SlackOut:
    """The bot's voice: post, post ephemerally, update, respond, open modals."""

    def __init__(self, client: WebClient, *, sandbox: bool = False) -> None:
        self.client = client
        if not any(isinstance(h, RateLimitErrorRetryHandler) for h in client.retry_handlers):
            client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
        self.sandbox = sandbox
        self.base_url = client.base_url
        self._permalinks: dict[tuple[str, str], str] = {}

    def _mark(self, text: str, blocks: Blocks) -> tuple[str, list[dict[str, Any]] | None]:
        """In the sandbox every message carries the same mark: the fallback text starts with
        [SANDBOX] and the message ends with the sandbox line (a text-only message, such as
        an error, becomes a section so that it shows the line too)."""
        dicts = _dicts(blocks)
        if not self.sandbox:
            return text, dicts
        if dicts is None:
            dicts = [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}]
        text = f"[SANDBOX] {text}"
        if len(dicts) < 50:
            dicts = [
                *dicts,
                {"type": "context", "elements": [{"type": "mrkdwn", "text": SANDBOX_MARK}]},
            ]
        return text, dicts

    def post(
        self, channel: str, text: str, blocks: Blocks = None, *, thread_ts: str | None = None
    ) -> str:
        """Post a message; returns its ts."""
        text, dicts = self._mark(text, blocks)
        response = self.client.chat_postMessage(
            channel=channel, text=text, blocks=dicts, thread_ts=thread_ts, unfurl_links=False
        )
        return str(response["ts"])

    def post_where(self, channel: str, text: str, blocks: Blocks = None) -> tuple[str, str]:
        """Post a message; returns (channel id, ts): a user id as `channel` becomes their DM's id."""
        text, dicts = self._mark(text, blocks)
        response = self.client.chat_postMessage(
            channel=channel, text=text, blocks=dicts, unfurl_links=False
        )
        return str(response["channel"]), str(response["ts"])

    def ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        blocks: Blocks = None,
        *,
        thread_ts: str | None = None,
    ) -> None:
        text, dicts = self._mark(text, blocks)
        self.client.chat_postEphemeral(
            channel=channel, user=user, text=text, blocks=dicts, thread_ts=thread_ts
        )

    def update(self, channel: str, ts: str, text: str, blocks: Blocks = None) -> None:
        text, dicts = self._mark(text, blocks)
        self.client.chat_update(channel=channel, ts=ts, text=text, blocks=dicts)

    def respond(
        self,
        response_url: str,
        text: str,
        blocks: Blocks = None,
        *,
        replace_original: bool = False,
        in_channel: bool = False,
    ) -> None:
        """Answer through a slash command's / interaction's response_url (ephemeral by default)."""
        text, dicts = self._mark(text, blocks)
        WebhookClient(response_url, timeout=10).send(
            text=text,
            blocks=dicts,
            response_type="in_channel" if in_channel else "ephemeral",
            replace_original=replace_original,
        )

    def permalink(self, channel: str, ts: str) -> str | None:
        """A message's link (kept: a message's permalink never changes)."""
        key = (channel, ts)
        if key in self._permalinks:
            return self._permalinks[key]
        try:
            link = str(self.client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"])
            if len(self._permalinks) > 5000:
                self._permalinks.clear()
            self._permalinks[key] = link
            return link
        except Exception:  # a missing permalink must never break the flow it decorates
            log.warning("chat.getPermalink failed for %s/%s", channel, ts, exc_info=True)
            return None

    def upload(
        self,
        channel: str,
        filename: str,
        content: bytes,
        *,
        title: str,
        comment: str = "",
        thread_ts: str | None = None,
    ) -> str:
        """Share a file in `channel` through Slack's external upload flow; returns its file id.

        With `thread_ts` the file is shared as a reply in that thread.
        files_upload_v2 does the three steps: files.getUploadURLExternal, a POST of the bytes
        to the upload_url it answers, then files.completeUploadExternal with channel_id.
        """
        if self.sandbox:  # the same sandbox line as every other message (not a bare "[SANDBOX]")
            comment = f"{comment}\n{SANDBOX_MARK}".strip()
        response = self.client.files_upload_v2(
            channel=channel,
            filename=filename,
            content=content,
            title=title,
            initial_comment=comment or None,
            thread_ts=thread_ts,
        )
        return str(response["file"]["id"])

    def download(self, file_id: str, *, max_bytes: int) -> tuple[str, bytes]:
        """A file someone shared with the bot (e.g. from a modal's file_input): its name and
        bytes, read with files.info and fetched from url_private_download with the bot token."""
        info = self.client.files_info(file=file_id)["file"]
        if int(info.get("size") or 0) > max_bytes:
            raise ValueError(f"the file is larger than {max_bytes} bytes")
        url = str(info.get("url_private_download") or info.get("url_private") or "")
        if not url.startswith(("https://", "http://")):
            raise ValueError("the file has no download address")
        request = urllib.request.Request(
            url, headers={"Authorization": f"Bearer {self.client.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (Slack's own URL)
            data = answer.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ValueError(f"the file is larger than {max_bytes} bytes")
        return str(info.get("name") or file_id), data

    def open_view(self, trigger_id: str, view: View | dict[str, Any]) -> str:
        """views.open; returns the view id for later views.update."""
        response = self.client.views_open(trigger_id=trigger_id, view=view)
        return str(response["view"]["id"])

    def update_view(self, view_id: str, view: View | dict[str, Any]) -> None:
        self.client.views_update(view_id=view_id, view=view)

    def publish_home(self, user: str, view: dict[str, Any]) -> None:
        """views.publish: `user`'s App Home tab (marked in the sandbox, like messages)."""
        if self.sandbox and len(view.get("blocks") or []) < 100:
            mark = {"type": "context", "elements": [{"type": "mrkdwn", "text": SANDBOX_MARK}]}
            view = {**view, "blocks": [*view["blocks"], mark]}
        self.client.views_publish(user_id=user, view=view)

    def complete_step(self, execution_id: str, outputs: dict[str, Any]) -> None:
        """functions.completeSuccess: a Workflow Builder step ends with its outputs."""
        self.client.functions_completeSuccess(function_execution_id=execution_id, outputs=outputs)

    def fail_step(self, execution_id: str, error: str) -> None:
        """functions.completeError: a Workflow Builder step ends with an error for the user."""
        self.client.functions_completeError(function_execution_id=execution_id, error=error)

    def update_view_external(
        self, external_id: str, view: View | dict[str, Any], *, wait: float = 10.0
    ) -> None:
        """Replace the view named `external_id` once it exists: a view set by a submission's
        `response_action: update` appears only when Slack has read that answer, so an update
        sent right after the ack may find it missing (`not_found`) for a moment."""
        deadline = time.monotonic() + wait
        delay = 0.02
        while True:
            try:
                self.client.views_update(external_id=external_id, view=view)
                return
            except SlackApiError as exc:
                if exc.response.get("error") != "not_found" or time.monotonic() > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def tell_user(
    out: SlackOut,
    body: dict[str, Any],
    text: str,
    blocks: Blocks = None,
    *,
    replace: bool = False,
) -> None:
    """Tell the person behind a gesture (`body`: a command, click or submission) something
    only they see: through its response_url (replacing the message it came from when
    `replace`), else ephemerally in its channel, else in a DM."""
    user = body.get("user_id") or (body.get("user") or {}).get("id")
    response_url = body.get("response_url") or next(
        (u.get("response_url") for u in body.get("response_urls") or []), None
    )
    channel = body.get("channel_id") or (body.get("channel") or {}).get("id")
    if response_url:
        out.respond(response_url, text, blocks, replace_original=replace)
    elif channel and user:
        out.ephemeral(channel, user, text, blocks)
    elif user:
        out.post(user, text, blocks)
    else:
        log.warning("nobody to tell: the gesture names no user")
