"""Sandbox Google: a simulated Directory API (ChromeOS devices), Reports API (the Admin
console's audit log of device changes) and Android Management API.

Served over real HTTP on loopback with Google's REST paths, parameters, JSON shapes and
error bodies, so unmodified googleapiclient code works against it::

    sb = Sandbox(devices=500, seed=1).start()
    service = googleapiclient.discovery.build(
        "admin", "directory_v1", static_discovery=True, cache_discovery=False,
        credentials=google.auth.credentials.AnonymousCredentials(),
        client_options={"api_endpoint": sb.url})
    service.chromeosdevices().list(customerId=sb.customer_id, query="id:5CD").execute()
    batch = googleapiclient.http.BatchHttpRequest(batch_uri=sb.url + "batch")
    ...
    sb.stop()

`sb.url` is the root URL for every API. `sb.fleet` is the in-memory state (see
`bot.sandbox.fleet` for the test helpers: look-ups by status / serial / API level /
management mode, `set_never_ack`, `check_in`, `set_outcome`, `licenses`);
`sb.faults` injects latency and errors (`bot.sandbox.server.Faults.add`); `sb.log`
records every HTTP request as (method, path_with_query), batch parts in `sb.log.parts`.
Every request is first checked against Google's discovery documents bundled with
googleapiclient (`bot.sandbox.schema`: field names, JSON types, enums, query
parameters; 400 with Google's wording). Rules and simplifications:
`bot.sandbox.chrome`, `bot.sandbox.android`, `bot.sandbox.query`; every rule that is
our reading rather than a documented fact is listed, with its reason, in
`bot/sandbox/ASSUMPTIONS.md`. The Chrome licence pool is set with `licenses=`,
`sb.fleet.set_free_licenses(n)` or over HTTP (`POST sandbox/licenses {"free": n}`).
`python -m bot.sandbox --port N` serves it in the foreground.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from bot.sandbox import console
from bot.sandbox.devices import Json
from bot.sandbox.fleet import Fleet
from bot.sandbox.server import App, Faults, RequestLog, serve

__all__ = ["Sandbox"]


class Sandbox:
    """A generated fleet served as Google's APIs on a loopback port."""

    def __init__(
        self,
        devices: int = 500,
        *,
        chrome: int | None = None,
        android: int | None = None,
        seed: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        command_delay: float = 2.0,
        licenses: int | None = None,
        customer_id: str = "C0sandbox",
        enterprise: str = "enterprises/LC0sandbox",
    ) -> None:
        if chrome is None and android is None:
            chrome = round(devices * 0.6)
            android = devices - chrome
        elif chrome is None:
            chrome = max(0, devices - (android or 0))
        elif android is None:
            android = max(0, devices - chrome)
        assert chrome is not None and android is not None
        self.customer_id = customer_id
        self.enterprise = enterprise
        self.host = host
        self.port = port
        self.fleet = Fleet(
            chrome=chrome,
            android=android,
            seed=seed,
            customer_id=customer_id,
            enterprise=enterprise,
            licenses=licenses,
            command_delay=command_delay,
        )
        self.faults = Faults()
        self.log = RequestLog()
        self.url = ""
        self._app = App(self.fleet, self.faults, self.log)
        self._server: object | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread; returns self."""
        server = serve(self._app, self.host, self.port)
        self._server = server
        self.port = server.server_address[1]
        self.url = f"http://{self.host}:{self.port}/"
        self.fleet.url = self.url
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox-google",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Bind and serve in the calling thread until stop() (or KeyboardInterrupt)."""
        server = serve(self._app, self.host, self.port)
        self._server = server
        self.port = server.server_address[1]
        self.url = f"http://{self.host}:{self.port}/"
        self.fleet.url = self.url
        server.serve_forever()

    def outside_change(self, ref: str, kind: str, actor: str, **kw: Any) -> Json:
        """A change made "in the Admin console" by `actor`: see `bot.sandbox.console`."""
        return console.outside_change(self.fleet, ref, kind, actor, **kw)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        server = self._server
        self._server = None
        if server is not None:
            server.shutdown()  # type: ignore[attr-defined]
            server.server_close()  # type: ignore[attr-defined]
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
