"""How requests reach Google: one googleapiclient service per thread, over an Http that never
resends a mutation by itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httplib2


class ResendBlocked(ConnectionAbortedError):
    """httplib2 wanted to send a non-idempotent request a second time; we refused."""


class _OneShot:
    """A connection proxy that lets a request be sent once: a second send raises."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._sent = False

    def request(self, *args: Any, **kwargs: Any) -> Any:
        if self._sent:
            raise ResendBlocked("the connection broke after the request was sent; not resending it")
        self._sent = True
        return self._conn.request(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class NoResendHttp(httplib2.Http):
    """httplib2.Http that never resends a POST/PATCH/PUT/DELETE by itself.

    httplib2 silently sends a request again when the first answer is a BadStatusLine or a
    dropped connection ("the connection just went stale"), whatever the method. For a
    wipe that could mean twice. Here a mutation is sent at most once per call; the choke
    point turns the failure into OutcomeUnknown and the caller reads Google back.
    """

    def _conn_request(
        self, conn: Any, request_uri: str, method: str, body: Any, headers: Any
    ) -> Any:
        if method in ("GET", "HEAD", "OPTIONS"):
            return super()._conn_request(conn, request_uri, method, body, headers)
        return super()._conn_request(_OneShot(conn), request_uri, method, body, headers)


class ServiceFactory:
    """Builds one googleapiclient service (and its httplib2.Http) per thread, lazily.

    httplib2.Http and service objects are not thread-safe; only this immutable recipe is
    shared between threads.
    """

    def __init__(
        self,
        name: str,
        version: str,
        *,
        http_factory: Callable[[], httplib2.Http],
        endpoint: str | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.endpoint = endpoint
        self._http_factory = http_factory
        self._local = threading.local()
        self._lock = threading.Lock()
        self.builds = 0
        self.build_seconds = 0.0

    def service(self) -> Any:
        """This thread's service object, built on first use."""
        service = getattr(self._local, "service", None)
        if service is None:
            from googleapiclient.discovery import build

            started = time.perf_counter()
            http = self._http_factory()
            options = {"api_endpoint": self.endpoint} if self.endpoint else None
            service = build(
                self.name,
                self.version,
                http=http,
                static_discovery=True,
                cache_discovery=False,
                client_options=options,
            )
            self._local.service = service
            self._local.http = http
            with self._lock:
                self.builds += 1
                self.build_seconds += time.perf_counter() - started
        return service

    def resource(self, *path: str) -> Any:
        """This thread's resource object at `path`, e.g. ("enterprises", "devices"), made once.

        googleapiclient builds a new Resource, with a closure for each of its methods, on
        every `service.enterprises()` call (0.8–2 ms of CPU per Google call, under the GIL):
        each thread keeps the ones it made instead.
        """
        cache: dict[tuple[str, ...], Any] | None = getattr(self._local, "resources", None)
        if cache is None:
            cache = self._local.resources = {}
        resource = cache.get(path)
        if resource is None:
            resource = self.service()
            for name in path:
                resource = getattr(resource, name)()
            cache[path] = resource
        return resource

    def http(self) -> httplib2.Http:
        """This thread's (authorized) httplib2.Http, the one its service uses."""
        self.service()
        return self._local.http  # type: ignore[no-any-return]
