"""What may reach Bolt over HTTP: a bounded, signed, well-formed body.

Bolt's WSGI adapter reads the whole body, decodes it and parses it before its middleware
checks the signature, and a body that is not UTF-8 or not JSON ends in a 500 and a logged
traceback. `SlackIngress` stands in front of Bolt on `POST /slack/events`:

1. a body larger than the cap is refused with 413 by its Content-Length, before it is read
   (waitress refuses it first, and refuses a chunked body as soon as it passes the cap; the
   check here holds under any WSGI server);
2. Slack's signature (HMAC-SHA256, scheme v0, timestamp within 5 minutes) is checked on the
   raw bytes: 401 otherwise;
3. only then is the body decoded and parsed (as Bolt will): 400 if it is not UTF-8, not
   JSON or a form, or not an object.

Each refusal is one log line (no traceback, no body) and costs at most the cap in memory.
https://api.slack.com/authentication/verifying-requests-from-slack
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.adapter.wsgi.http_response import WsgiHttpResponse
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from bot import ids, metrics
from bot.gate import AckGate, answered_upstream, working_for
from bot.listeners import is_click

log = logging.getLogger(__name__)

MAX_SKEW = 5 * 60  # seconds a signed request stays valid (Slack's advice)
DEFAULT_MAX_BODY = 1 << 20  # Slack's own payloads are far smaller
_CHUNK = 64 * 1024


class Refused(Exception):
    """A request that does not reach Bolt: its HTTP status and the one line logged."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The request body, never more than `limit` bytes of it read. Raises Refused."""
    raw_length = (environ.get("CONTENT_LENGTH") or "").strip()
    if raw_length:
        if not _digits(raw_length):
            raise Refused(400, "invalid Content-Length")
        length = int(raw_length)
        if length > limit:
            raise Refused(413, f"body of {length} bytes is over the cap of {limit}")
        step = length  # known: in one read (one copy)
    elif environ.get("wsgi.input_terminated"):
        length = limit + 1  # chunked, no length given: read to the end, or just past the cap
        step = _CHUNK
    else:
        length = 0  # PEP 3333: no Content-Length, no body
    stream = environ.get("wsgi.input")
    if stream is None or length == 0:
        return b""
    parts: list[bytes] = []
    received = 0
    while received < length:
        part = stream.read(min(step, length - received))
        if not part:
            break
        parts.append(part)
        received += len(part)
    if received > limit:
        raise Refused(413, f"body over the cap of {limit} bytes")
    return b"".join(parts)


def verify_signature(
    secret: bytes, body: bytes, timestamp: str | None, signature: str | None, now: float
) -> None:
    """Slack's v0 signature of `body` as sent, and a fresh timestamp. Raises Refused(401)."""
    check_signature_headers(timestamp, signature, now)
    assert timestamp is not None and signature is not None
    mac = hmac.new(secret, b"v0:" + timestamp.encode("ascii") + b":", hashlib.sha256)
    mac.update(body)  # no copy of the body
    expected = "v0=" + mac.hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise Refused(401, "invalid signature")


def check_signature_headers(timestamp: str | None, signature: str | None, now: float) -> None:
    """What can be refused before the body is read: no signature, or a stale or malformed
    timestamp. Raises Refused(401)."""
    if not timestamp or not signature:
        raise Refused(401, "unsigned request")
    if not _digits(timestamp) or abs(now - int(timestamp)) > MAX_SKEW:
        raise Refused(401, "request timestamp missing or more than 5 minutes off")


def parse(body: bytes, headers: dict[str, Any], query: str) -> BoltRequest:
    """The body parsed as Bolt parses it (JSON, or a form with an optional JSON `payload`)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "body is not valid UTF-8") from None
    try:
        request = BoltRequest(body=text, query=query, headers=headers)
    except ValueError:  # json.JSONDecodeError is one
        raise Refused(400, "body is not valid JSON or form data") from None
    except (TypeError, AttributeError, KeyError, IndexError):
        raise Refused(400, "body is not a Slack payload") from None
    if not isinstance(request.body, dict):
        raise Refused(400, "body is not a Slack payload")
    return request


def _digits(text: str) -> bool:
    """ASCII digits only ("²".isdigit() is true, and int("²") raises)."""
    return text.isascii() and text.isdigit()


def _header(environ: dict[str, Any], name: str) -> str | None:
    value = environ.get("HTTP_" + name.upper().replace("-", "_"))
    return value if isinstance(value, str) else None


def answered_at_once(body: dict[str, Any]) -> bool:
    """A request whose acknowledgement carries nothing Slack reads, and which the bot's
    listeners acknowledge before anything else: a click (block_actions, wherever it is) and
    `/device` (its listener acks first and answers through its response_url)."""
    return is_click(body) or body.get("command") == ids.SLASH_COMMAND


class SlackIngress:
    """The WSGI app for `POST /slack/events`: checks, then Bolt, inside the ack gate.

    With an `executor`, a request `answered_at_once` is answered here (200, no body) and
    handed to Bolt afterwards: the gate starts its dispatch on the executor once the burst
    it came in is answered, in the order of the requests (`AckGate.defer`). Bolt's matching
    and its listener arguments — half of such a request's CPU before its answer — then
    wait until after it; the listener runs in that thread (`listeners.guard`).
    """

    def __init__(
        self,
        app: App,
        gate: AckGate,
        signing_secret: str,
        *,
        max_body: int = DEFAULT_MAX_BODY,
        clock: Callable[[], float] = time.time,
        executor: Executor | None = None,
    ) -> None:
        self.app = app
        self.gate = gate
        self.secret = signing_secret.encode()
        self.max_body = max_body
        self.clock = clock
        self.executor = executor

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _plain(start_response, 405, "POST only\n", [("Allow", "POST")])
        try:
            declared = (environ.get("CONTENT_LENGTH") or "").strip()
            if _digits(declared) and int(declared) > self.max_body:
                raise Refused(413, f"body of {declared} bytes is over the cap of {self.max_body}")
            timestamp = _header(environ, "X-Slack-Request-Timestamp")
            signature = _header(environ, "X-Slack-Signature")
            # an unsigned or stale request is refused before its body is read: junk costs
            # no memory however much of it arrives
            check_signature_headers(timestamp, signature, self.clock())
            body = read_body(environ, self.max_body)
            verify_signature(self.secret, body, timestamp, signature, self.clock())
            headers = WsgiHttpRequest(environ).get_headers()  # type: ignore[arg-type]
            token = self.gate.enter()
            headers[AckGate.HEADER.lower()] = token  # replaces any value the client sent
            try:
                request = parse(body, headers, environ.get("QUERY_STRING", ""))
                # the kind for the metrics, here rather than in a Bolt middleware: each
                # middleware costs its argument building before every acknowledgement
                metrics.note_kind(metrics.request_kind(request.body))
                if self.executor is not None and answered_at_once(request.body):
                    answer = self._answer_then_dispatch(request, token, self.executor)
                else:
                    answer = self.app.dispatch(request)
            finally:
                self.gate.leave(token)
        except Refused as refused:
            log.warning(
                "refused %s /slack/events from %s: %s",
                refused.status,
                environ.get("REMOTE_ADDR", "?"),
                refused.reason,
            )
            return _plain(start_response, refused.status, refused.reason + "\n")
        response = WsgiHttpResponse(status=answer.status, headers=answer.headers, body=answer.body)
        start_response(response.status, response.get_headers())
        return response.get_body()

    def _answer_then_dispatch(
        self, request: BoltRequest, token: str, executor: Executor
    ) -> BoltResponse:
        """Answer now; Bolt dispatches the request on `executor` once the gate lets it."""
        ready = threading.Event()  # set once the listener has begun (its claim written)
        self.gate.acked(token)
        later = functools.partial(self._dispatch, request, token, ready)
        self.gate.defer(token, functools.partial(executor.submit, later), ready)
        return BoltResponse(status=200, body="")

    def _dispatch(self, request: BoltRequest, token: str, ready: threading.Event) -> None:
        working_for(token)
        answered_upstream(ready)
        try:
            self.app.dispatch(request)  # Bolt reports its own errors (App.error)
        except Exception:
            log.exception("dispatch after the answer failed")
        finally:
            answered_upstream(None)
            working_for(None)
            ready.set()  # no listener took it (or it failed before its claim): go on


def _plain(
    start_response: Callable[..., Any],
    status: int,
    text: str,
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    body = text.encode()
    phrase = WsgiHttpResponse(status=status).status
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    start_response(phrase, headers + (extra or []))
    return [body]
