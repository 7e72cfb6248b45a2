"""Logging set-up shared by `python -m bot` and the playground."""

from __future__ import annotations

import logging
import sys

# slack_sdk logs request bodies at DEBUG (a new password in a view submission, tokens in
# headers); these libraries never log below `floor`, whatever the bot's own level
NOISY = ("slack_sdk", "slack_bolt", "urllib3", "googleapiclient.discovery", "waitress.queue")


def configure_logging(level: int, *, floor: int = logging.INFO) -> None:
    """Log to stderr at `level`; the noisy libraries at `floor` or above."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for name in NOISY:
        logging.getLogger(name).setLevel(max(floor, logging.getLogger(name).level))
