"""Logging set-up shared by `python -m bot` and the playground.

Two formats: `text` for a terminal, `json` (one object per line) for a log pipeline. Both
carry what the current listener or job is about — the Slack user, the request id, the
device — from `bind`, a context that each listener sets on entry.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

# slack_sdk logs request bodies at DEBUG (a new password in a view submission, tokens in
# headers); these libraries never log below `floor`, whatever the bot's own level
NOISY = ("slack_sdk", "slack_bolt", "urllib3", "googleapiclient.discovery", "waitress.queue")

#: what a log line is about, set by `bind` (the fields of a JSON line)
FIELDS = ("request_id", "slack_user", "device", "google_request_id")
_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "log_context", default=None
)
#: Slack tokens and signing material never reach a log line, whatever a library puts there
_TOKEN = re.compile(r"\b(xox[abpre]|xapp)-[A-Za-z0-9-]+")


@contextlib.contextmanager
def bind(**fields: str | None) -> Iterator[None]:
    """Tag every log line inside the block with these fields (None leaves a field out)."""
    current = {**(_context.get() or {}), **{k: v for k, v in fields.items() if v}}
    token = _context.set(current)
    try:
        yield
    finally:
        _context.reset(token)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the bound fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value:
                out[key] = str(value)
        if record.exc_info:
            out["traceback"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        tags = " ".join(f"{k}={getattr(record, k)}" for k in FIELDS if getattr(record, k, None))
        return redact(f"{text} [{tags}]" if tags else text)


def redact(text: str) -> str:
    return _TOKEN.sub(lambda m: m.group(1) + "-…", text)


def configure_logging(level: int, *, floor: int = logging.INFO, fmt: str = "text") -> None:
    """Log to stderr at `level` in `fmt` (text or json); the noisy libraries at `floor` or above."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in NOISY:
        logging.getLogger(name).setLevel(max(floor, logging.getLogger(name).level))
