"""`python -m bot` — run the bot; `python -m bot audit …` — export or verify the audit log;
`python -m bot playground` — the bot on the sandbox with a local Slack in the browser."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from bot.logs import configure_logging
from bot.settings import SettingsError, load_settings


def _configure_logging(level: str, fmt: str = "text") -> None:
    configure_logging(getattr(logging, level, logging.INFO), fmt=fmt)


def run() -> int:
    """Serve the bot until SIGTERM/SIGINT."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"device-bot: {exc}", file=sys.stderr)
        return 2
    _configure_logging(settings.log_level, settings.log_format)
    from bot.gate import Collector
    from bot.server import BotServer

    try:
        server = BotServer(settings, warm=True)
    except SettingsError as exc:  # e.g. the audit key is not the one the log was written with
        print(f"device-bot: {exc}", file=sys.stderr)
        return 2
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("bot").info("signal %d: shutting down", signum)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start(background=True)
    # Start-up objects (discovery documents, modules) live as long as the process: keep
    # them out of the cyclic collector so a full collection never stalls acknowledgements.
    gc.collect()
    gc.freeze()
    # and collect what comes later between bursts, not while acknowledgements are pending
    Collector(server.svc.gate).start()
    # hand the GIL over more often (default 5 ms): an ack waiting behind busy threads goes sooner
    sys.setswitchinterval(0.001)
    # a timed wait: the kernel may deliver SIGTERM to any thread, and Python runs its handler
    # in the main thread only once that thread wakes — an untimed wait never would
    while not stopping.wait(0.2):
        pass
    # in-flight work gets until its Google calls time out; then the process exits regardless
    stopper = threading.Thread(target=server.stop, name="shutdown", daemon=True)
    stopper.start()
    stopper.join(settings.google_timeout + 10)
    if stopper.is_alive():
        logging.getLogger("bot").error("shutdown did not finish in time; exiting anyway")
    # exit now, whatever is left: the interpreter's own exit joins the threads of every
    # thread pool, and a thread still inside a call would hold the process up unbounded
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def audit_main(argv: Sequence[str]) -> int:
    """Export or verify the audit log (never creates a database)."""
    parser = argparse.ArgumentParser(
        prog="python -m bot audit", description="Export or verify the audit log."
    )
    parser.add_argument(
        "--since", help="only events at or after this date (YYYY-MM-DD or ISO time)"
    )
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="check the keyed chain and its anchors; exit 1 if broken",
    )
    parser.add_argument("--database", help="SQLite file (default: DATABASE_PATH or device-bot.db)")
    parser.add_argument(
        "--anchors",
        help="anchor file (default: AUDIT_ANCHOR_FILE, or the file beside the database)",
    )
    parser.add_argument(
        "--no-anchors",
        action="store_true",
        help="check the chain alone when there is no anchor file (a deleted tail goes unseen)",
    )
    args = parser.parse_args(list(argv))
    import os
    from pathlib import Path

    from bot import audit, audit_key
    from bot.store import Store

    path = Path(args.database or os.environ.get("DATABASE_PATH") or "device-bot.db")
    url = os.environ.get("DATABASE_URL", "").strip() or None  # PostgreSQL
    if url is None and not path.is_file():
        print(
            f"device-bot: no database at {path} (nothing to read; none was created)",
            file=sys.stderr,
        )
        return 2
    if not args.verify:
        store = Store(path, migrate=False, url=url)
        for chunk in audit.export(store, since=args.since, fmt=args.format):
            sys.stdout.write(chunk)
        return 0
    key = audit_key.load_key(os.environ.get("AUDIT_KEY", "").strip() or None, path, create=False)
    if key is None:
        print(
            f"device-bot: AUDIT_KEY: required to verify (there is no key file {audit_key.key_file_for(path)}"
            " either); set it to the bot's audit key",
            file=sys.stderr,
        )
        return 2
    anchors = args.anchors or os.environ.get("AUDIT_ANCHOR_FILE", "").strip() or None
    store = Store(
        path, audit_key=key, anchor_file=Path(anchors) if anchors else None, migrate=False, url=url
    )
    result = audit.verify(store, anchors_required=not args.no_anchors)
    if result.ok:
        print(
            f"audit log intact: {result.checked} events, checked with the key from {key.source}"
            f" against {result.anchors} anchors in {store.anchor_file}"
        )
        if result.note:
            print(f"note: {result.note}")
        return 0
    print(f"audit log BROKEN: {result.problem} (checked {result.checked} events)", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "audit":
        return audit_main(argv[1:])
    if argv and argv[0] == "playground":
        from bot.playground.main import main as playground_main

        return playground_main(argv[1:])
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv:
        print(
            f"device-bot: unknown command {argv[0]!r}; try: python -m bot [audit|playground]",
            file=sys.stderr,
        )
        return 2
    return run()


if __name__ == "__main__":
    sys.exit(main())
