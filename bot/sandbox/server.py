"""The sandbox's HTTP side: routing, Google's multipart batch endpoint, request log, faults.

Served with the standard library's ThreadingHTTPServer (HTTP/1.1 keep-alive, daemon
threads). Every request: recorded in the log, delayed by `faults.latency`, matched
against injected faults, checked against Google's discovery documents
(`bot.sandbox.schema`: names, JSON types, enums, query parameters), then dispatched
under the fleet lock (due command events are applied first by `Fleet.tick()`).

Besides Google's paths the sandbox serves its own: `GET /` (what it serves),
`GET sandbox/files/…` (command downloads) and the control interface
`GET|POST sandbox/licenses` (`{"free": n}` or `{"total": n}`: the Chrome licence pool) and
`POST sandbox/outside-change` (a change made outside the bot, by someone else: see
`bot.sandbox.reports`).
"""

from __future__ import annotations

import email.message
import email.parser
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from email import policy as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from bot.sandbox import android, chrome, console, fields, reports, schema
from bot.sandbox.api import ApiError, Request, Response
from bot.sandbox.fleet import Fleet

log = logging.getLogger(__name__)

MAX_BATCH = 1000
DROP = 0  # the status App.call answers when the connection is to be closed unanswered
_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    412: "Precondition Failed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


_FILE_TYPES = {".png": "image/png", ".tar.gz": "application/gzip", ".zip": "application/zip"}


class Answer(NamedTuple):
    """One request or batch part as answered: what was asked, with what body, and the status."""

    method: str
    path: str  # with the query
    status: int  # DROP (0) when a fault dropped the answer
    body: bytes  # the request body


class RequestLog(list[tuple[str, str]]):
    """Every HTTP request served, as (method, path_with_query); batch parts in `.parts`.

    `.answers` holds each request and batch part as answered (`Answer`: method, path,
    status, request body), in the order answered; a batch itself answers 200 whatever its
    parts say.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        #: the sub-requests of batch requests, as (method, path_with_query)
        self.parts: list[tuple[str, str]] = []
        #: every request and batch part with its HTTP status, in the order answered
        self.answers: list[Answer] = []

    def record(self, method: str, path: str, *, part: bool = False) -> None:
        """Append one request (thread-safe)."""
        with self._lock:
            (self.parts if part else self).append((method, path))

    def answered(self, method: str, path: str, status: int, body: bytes = b"") -> None:
        """Record the status a request or batch part was answered with (thread-safe)."""
        with self._lock:
            self.answers.append(Answer(method, path, status, body))

    def clear(self) -> None:
        """Forget every recorded request, batch part and answer."""
        with self._lock:
            super().clear()
            self.parts.clear()
            self.answers.clear()

    def count(  # type: ignore[override]  # list.count(x) would be of little use here
        self, method: str | None = None, path_contains: str | None = None, *, parts: bool = False
    ) -> int:
        """How many recorded requests (or batch parts) match the method and path fragment."""
        with self._lock:
            entries = list(self.parts if parts else self)
        return sum(
            1
            for m, p in entries
            if (method is None or m == method.upper())
            and (path_contains is None or path_contains in p)
        )


@dataclass
class Fault:
    """One injected failure rule (see Faults.add)."""

    status: int | None
    count: int
    path_contains: str | None
    method: str | None
    latency: float
    after_apply: bool
    reason: str | None
    message: str | None
    retry_after: float | None
    body_contains: str | None = None
    drop: bool = False

    def matches(self, method: str, path: str, body: bytes = b"") -> bool:
        """Whether this rule applies to a request."""
        if self.method and self.method.upper() != method:
            return False
        if self.body_contains and self.body_contains.encode() not in body:
            return False
        return not (self.path_contains and self.path_contains not in path)

    def error(self) -> ApiError:
        """The error this fault answers with."""
        status = self.status or 500
        reason = self.reason
        if status == 403 and reason is None:
            reason = "rateLimitExceeded"
        message = self.message
        if message is None and status == 403:
            message = (
                "Rate Limit Exceeded"
                if reason == "rateLimitExceeded"
                else "User Rate Limit Exceeded"
            )
        headers = {"Retry-After": f"{self.retry_after:g}"} if self.retry_after is not None else {}
        return ApiError(status, message, reason=reason, headers=headers)


class Faults:
    """Fault injection: global latency plus rules that fail or delay the next N matching requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        #: seconds added to every HTTP request
        self.latency = 0.0

    def add(
        self,
        status: int | None = 429,
        count: int = 1,
        path_contains: str | None = None,
        method: str | None = None,
        latency: float = 0.0,
        *,
        after_apply: bool = False,
        reason: str | None = None,
        message: str | None = None,
        retry_after: float | None = None,
        body_contains: str | None = None,
        drop: bool = False,
    ) -> Fault:
        """Fail (status) and/or delay (latency) the next `count` matching requests.

        `status=None` only delays. `after_apply=True` performs the request, then answers
        the error anyway (an "outcome unknown" mutation). 403 defaults to reason
        `rateLimitExceeded` (pass `reason="userRateLimitExceeded"` or `"forbidden"`).
        Batch parts are matched individually after the batch request itself.
        `body_contains` limits the rule to requests whose body holds that text (e.g. one
        device id), so a test's fault never hits another test's request. `drop=True`
        performs the request, then closes the connection without any answer (a lost
        answer on the network; inside a batch the part answers 503 instead).
        """
        fault = Fault(
            status,
            count,
            path_contains,
            method,
            latency,
            after_apply,
            reason,
            message,
            retry_after,
            body_contains,
            drop,
        )
        with self._lock:
            self._rules.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every rule and the global latency."""
        with self._lock:
            self._rules.clear()
            self.latency = 0.0

    def pending(self) -> int:
        """How many fault firings are left."""
        with self._lock:
            return sum(f.count for f in self._rules)

    def take(self, method: str, path: str, body: bytes = b"") -> Fault | None:
        """Consume one firing of the first rule matching this request."""
        with self._lock:
            for f in self._rules:
                if f.count > 0 and f.matches(method, path, body):
                    f.count -= 1
                    if f.count == 0:
                        self._rules.remove(f)
                    return f
        return None


class App:
    """Dispatches requests (whole HTTP requests or batch parts) to the API handlers."""

    def __init__(self, fleet: Fleet, faults: Faults, request_log: RequestLog) -> None:
        self.fleet = fleet
        self.faults = faults
        self.log = request_log

    def call(
        self, method: str, target: str, body: bytes, headers: dict[str, str], *, part: bool = False
    ) -> tuple[int, dict[str, str], bytes]:
        """Serve one request (with faults); returns (status, headers, body bytes)."""
        fault = self.faults.take(method, target, body)
        if fault is not None and fault.latency > 0:
            time.sleep(fault.latency)
        if fault is not None and fault.status and not (fault.after_apply or fault.drop):
            return _render_error(fault.error())
        path = urlsplit(target).path.lstrip("/")
        if not part and (path == "batch" or path.startswith("batch/")):
            if method != "POST":
                result = _render_error(ApiError(404, "Method not found."))
            else:
                result = self.batch(headers.get("content-type", ""), body)
        else:
            result = self.dispatch(method, target, body)
        if fault is not None and fault.drop:
            return _render_error(ApiError(503)) if part else (DROP, {}, b"")
        if fault is not None and fault.status and fault.after_apply:
            return _render_error(fault.error())
        return result

    def dispatch(self, method: str, target: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Route one API call under the fleet lock and serialise its answer."""
        url = urlsplit(target)
        path = url.path.lstrip("/")
        req = Request(method, path, parse_qs(url.query, keep_blank_values=True), body)
        try:
            if path.startswith("sandbox/files/") and method == "GET":
                content = self.fleet.files.get(path)
                if content is None:
                    raise ApiError(404, "File not found.")
                ctype = next(
                    (t for ext, t in _FILE_TYPES.items() if path.endswith(ext)),
                    "application/octet-stream",
                )
                return 200, {"Content-Type": ctype}, content
            # Google's front end checks names, types and enums before the method runs
            req.parsed = schema.validate(method, path, req.query, body)
            with self.fleet.lock:
                self.fleet.tick()
                resp = self._route(req)
                answer = fields.apply(resp.body, req.param("fields"))  # partial response
                payload = b"" if answer is None else json.dumps(answer).encode()
            headers = {"Content-Type": resp.content_type, **resp.headers}
            return resp.status, headers, payload
        except ApiError as e:
            return _render_error(e)
        except Exception:  # a sandbox bug: answer like Google's 500, keep the traceback
            log.exception("sandbox: unhandled error on %s %s", method, target)
            return _render_error(ApiError(500))

    def _route(self, req: Request) -> Response:
        path = req.path
        if path.startswith(chrome.PREFIX):
            return chrome.handle(self.fleet, req)
        if path.startswith(android.PREFIX):
            return android.handle(self.fleet, req)
        if path.startswith(reports.PREFIX):
            return reports.handle(self.fleet, req)
        if path == "sandbox/outside-change":
            return console.control(self.fleet, req)
        if path == "sandbox/licenses":
            return self._licenses(req)
        if path == "" and req.method == "GET":
            return Response(
                200,
                {
                    "sandbox": True,
                    "customerId": self.fleet.customer_id,
                    "enterprise": self.fleet.enterprise,
                    "adminEmail": self.fleet.admin_email,
                    "chromeDevices": len(self.fleet.chrome),
                    "androidDevices": len(self.fleet.android),
                    "licenses": self._licence_counts(),
                },
            )
        raise ApiError(404, "The requested URL was not found on this server.")

    def _licence_counts(self) -> dict[str, int]:
        fleet = self.fleet
        return {
            "total": fleet.licenses,
            "used": fleet.licenses_used(),
            "free": fleet.free_licenses(),
        }

    def _licenses(self, req: Request) -> Response:
        """Control interface: GET the Chrome licence pool; POST {"free": n} or {"total": n}."""
        if req.method == "POST":
            body = req.json()
            if isinstance(body.get("free"), int) and not isinstance(body["free"], bool):
                self.fleet.set_free_licenses(body["free"])
            elif isinstance(body.get("total"), int) and not isinstance(body["total"], bool):
                self.fleet.licenses = max(0, body["total"])
            else:
                raise ApiError(400, 'Expected {"free": n} or {"total": n} (integers).')
        elif req.method != "GET":
            raise ApiError(404, "Method not found.")
        return Response(200, self._licence_counts())

    # -------------------------------------------------------------------------- batch

    def batch(self, content_type: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Google's multipart/mixed batch: one application/http part per sub-request."""
        if "multipart/mixed" not in content_type.lower():
            return _render_error(ApiError(400, "Batch requests must be multipart/mixed."))
        msg = email.parser.BytesParser(policy=email_policy.compat32).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        parts = msg.get_payload() if msg.is_multipart() else None
        if not parts:
            return _render_error(ApiError(400, "The batch request contains no parts."))
        if len(parts) > MAX_BATCH:
            return _render_error(
                ApiError(400, f"A batch request may contain at most {MAX_BATCH} calls.")
            )
        boundary = f"batch_{uuid.uuid4().hex}"
        out: list[bytes] = []
        for part in parts:
            if not isinstance(part, email.message.Message):
                return _render_error(ApiError(400, "Malformed batch part."))
            content_id = str(part.get("Content-ID") or "")
            raw = part.get_payload(decode=False)
            text = raw if isinstance(raw, str) else ""
            status, headers, payload = self._part(text)
            inner = content_id.strip()
            if inner.startswith("<") and inner.endswith(">"):
                inner = inner[1:-1]
            head = [
                f"--{boundary}",
                "Content-Type: application/http",
                f"Content-ID: <response-{inner}>",
                "",
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            ]
            head += [f"{k}: {v}" for k, v in headers.items()]
            head += [f"Content-Length: {len(payload)}", "", ""]
            out.append("\r\n".join(head).encode() + payload + b"\r\n")
        out.append(f"--{boundary}--\r\n".encode())
        return 200, {"Content-Type": f"multipart/mixed; boundary={boundary}"}, b"".join(out)

    def _part(self, text: str) -> tuple[int, dict[str, str], bytes]:
        text = text.replace("\r\n", "\n")
        request_line, _, rest = text.partition("\n")
        head, _, sub_body = rest.partition("\n\n")
        pieces = request_line.split()
        if len(pieces) < 2:
            return _render_error(ApiError(400, "Malformed batch part."))
        method, target = pieces[0].upper(), pieces[1]
        if target.startswith("http"):
            u = urlsplit(target)
            target = u.path + (f"?{u.query}" if u.query else "")
        headers = {}
        for line in head.split("\n"):
            k, sep, v = line.partition(":")
            if sep:
                headers[k.strip().lower()] = v.strip()
        self.log.record(method, target, part=True)
        answer = self.call(method, target, sub_body.encode(), headers, part=True)
        self.log.answered(method, target, answer[0], sub_body.encode())
        return answer


def _render_error(e: ApiError) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json; charset=UTF-8", **e.headers}
    return e.status, headers, json.dumps(e.body()).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body in one segment: unbuffered separate writes meet delayed ACKs (~40 ms)
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        sandbox = self.server.app
        method = self.command.upper()
        sandbox.log.record(method, self.path)
        if sandbox.faults.latency > 0:
            time.sleep(sandbox.faults.latency)
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, out_headers, payload = sandbox.call(method, self.path, body, headers)
        sandbox.log.answered(method, self.path, status, body)
        if status == DROP:  # a fault: the request was applied, its answer is lost
            self.close_connection = True
            return
        self.send_response(status)
        for k, v in out_headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the stdlib's per-request stderr line (the RequestLog records requests)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], app: App) -> None:
        super().__init__(address, _Handler)
        self.app = app


def serve(app: App, host: str, port: int) -> _Server:
    """Bind the server (not yet serving)."""
    return _Server((host, port), app)
