"""Serving the bot: Bolt behind waitress (threaded, production-grade WSGI) or Socket Mode.

`BotServer` is what `python -m bot` runs and what the end-to-end tests start in-process:
POST /slack/events goes to Bolt through `SlackIngress` (body cap, signature, well-formed
body: bot/ingress.py), GET /healthz answers once everything is up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from waitress.server import create_server

from bot import metrics as metrics_mod
from bot import requests
from bot.app import create_app, job_specs, listener_pool, warm_listeners
from bot.ingress import SlackIngress
from bot.jobs import Jobs, new_owner_id
from bot.metrics import Metrics
from bot.readiness import Readiness
from bot.services import Services, build_services
from bot.settings import Settings

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
HTTP_THREADS = 32


class BotServer:
    """The whole bot in one object: services, Bolt app, jobs, HTTP server."""

    def __init__(
        self,
        settings: Settings,
        *,
        sandbox: Any = None,
        extra: WSGIApp | None = None,
        run_jobs: bool = True,
        warm: bool = False,
    ) -> None:
        self.settings = settings
        self.svc: Services = build_services(settings, sandbox=sandbox)
        self.svc.owner = self.svc.owner or new_owner_id()
        self.metrics = self.svc.metrics = Metrics(
            self.svc.store, self.svc.owner, requests.count_by_state
        )
        self.svc.google.on_call = self.metrics.observe_google
        self.readiness = Readiness(self.svc)
        # /slack/events reaches the App only through SlackIngress, which checks the signature
        self.app = create_app(self.svc, signed_upstream=True)
        self.jobs = Jobs(self.svc, job_specs(self.svc)) if run_jobs else None
        self.extra = extra
        self.warm = warm
        self._slack = SlackIngress(
            self.app,
            self.svc.gate,
            settings.slack_signing_secret.get(),
            max_body=settings.max_body_bytes,
            executor=listener_pool(self.app),  # clicks and /device: answered, then dispatched
        )
        self._server: Any = None
        self._metrics_server: Any = None
        self._thread: threading.Thread | None = None
        self._socket_mode: Any = None
        self._stopping = False
        self.ready = False

    # ---- WSGI -----------------------------------------------------------------
    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            status = "200 OK" if self.ready else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain")])
            return [b"ok\n" if self.ready else b"starting\n"]
        if path == "/readyz":
            ok, text = self.readiness.check() if self.ready else (False, "starting")
            start_response(
                "200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")]
            )
            return [text.encode() + b"\n"]
        if path == "/metrics" and self.settings.metrics_port is None:
            return self.serve_metrics(environ, start_response)
        if path == "/slack/events" and not self.settings.socket_mode:
            started = time.perf_counter()
            metrics_mod.note_kind(None)
            answered: list[str] = []

            def respond(status: str, headers: Any, exc_info: Any = None) -> Any:
                answered.append(status)
                return start_response(status, headers, exc_info)

            try:
                return self._slack(environ, respond)
            finally:
                self.metrics.observe_request(
                    metrics_mod.noted_kind() or "unverified",
                    int(answered[0][:3]) if answered else 500,
                    time.perf_counter() - started,
                )
        if self.extra is not None:
            return self.extra(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    def serve_metrics(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """GET /metrics: Prometheus' text format (never behind Slack's signature)."""
        if environ.get("PATH_INFO", "") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        body = self.metrics.render()
        start_response("200 OK", [("Content-Type", metrics_mod.CONTENT_TYPE)])
        return [body]

    # ---- life cycle ----------------------------------------------------------------
    def start(self, *, port: int | None = None, background: bool = True) -> str:
        """Start HTTP (and Socket Mode, jobs); returns the base URL. Blocks unless background."""
        self._server = create_server(
            self.wsgi,
            host=self.settings.host,
            port=self.settings.port if port is None else port,
            threads=HTTP_THREADS,
            ident="device-bot",
            clear_untrusted_proxy_headers=True,
            # waitress refuses a larger body (413) by its Content-Length before reading it, and
            # a chunked one once it passes the cap (its limit is exclusive, hence + 1)
            max_request_body_size=self.settings.max_body_bytes + 1,
            # poll(), not select(): with a few hundred threads each holding its SQLite and
            # Google connections the process passes 1024 descriptors, and select() then
            # raises in the accept loop, which ends the HTTP server (bench/load.py found it)
            asyncore_use_poll=True,
        )
        # requests waiting for an HTTP thread have not reached the gate yet: count them
        queue = self._server.task_dispatcher.queue
        self.svc.gate.watch(lambda: len(queue))
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "") else self.settings.host
        url = f"http://{host}:{self._server.effective_port}"
        if self.settings.metrics_port is not None:
            self._metrics_server = create_server(
                self.serve_metrics,
                host=self.settings.host,
                port=self.settings.metrics_port,
                threads=2,
                ident="device-bot-metrics",
                asyncore_use_poll=True,  # see above
            )
            threading.Thread(
                target=self._metrics_server.run, name="metrics-http", daemon=True
            ).start()
        if self.settings.socket_mode:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            assert self.settings.slack_app_token is not None
            self._socket_mode = SocketModeHandler(self.app, self.settings.slack_app_token.get())
            self._socket_mode.connect()
        if self.jobs is not None:
            self.jobs.start()
        self.ready = True
        if self.warm:
            self.svc.warm()
            warm_listeners(self.app)
        log.info(
            "device-bot listening on %s (%s)",
            url,
            "Socket Mode" if self.settings.socket_mode else "HTTP",
        )
        if background:
            self._thread = threading.Thread(target=self._serve, name="http", daemon=True)
            self._thread.start()
        else:
            self._serve()
        return url

    def _serve(self) -> None:
        try:
            self._server.run()
        except OSError:
            # closing the listening socket from stop() can wake select() with EBADF
            if self._server is not None and not self._stopping:
                raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.effective_port}"

    @property
    def metrics_url(self) -> str:
        """Where /metrics is served (the metrics port if one is set, else the main one)."""
        server = self._metrics_server or self._server
        return f"http://127.0.0.1:{server.effective_port}/metrics"

    def stop(self) -> None:
        """Stop taking requests, let in-flight work finish, release the lease."""
        self.ready = False
        self._stopping = True
        if self._socket_mode is not None:
            try:
                self._socket_mode.close()
            except Exception:
                log.exception("socket mode close failed")
        if self._metrics_server is not None:
            self._metrics_server.close()
        if self._server is not None:
            self._server.close()
            self._server.task_dispatcher.shutdown(timeout=10)
        if self.jobs is not None:
            self.jobs.stop()
        pool = listener_pool(self.app)
        if pool is not None:
            pool.shutdown(wait=True)
        self.svc.close()
