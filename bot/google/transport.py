"""How requests reach Google: one googleapiclient service per API, shared, each request on
its thread's own Http, which never resends a mutation by itself.
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
    """One googleapiclient service per API, shared by every thread; one httplib2.Http per
    thread, made lazily.

    httplib2.Http is not thread-safe; the service and its Resource objects are, as long as
    no request goes out through an Http another thread uses. googleapiclient's thread-safety
    page gives two ways; this is its first: the service's `requestBuilder` gives each
    request the Http of the thread that builds it, and each request is built and executed
    by the same thread (every call goes through one `Executor.execute` in the function that
    built it). https://googleapis.github.io/google-api-python-client/docs/thread_safety.html

    Building a service (parsing the discovery document, a closure and a docstring for every
    method of every Resource) costs 5–60 ms of CPU and some thousand objects; with one
    service per thread, each of the 200 listener threads paid it on its first Google call,
    after an acknowledgement, and the objects weighed on every full garbage collection.
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
        self._service: Any = None
        self._resources: dict[tuple[str, ...], Any] = {}
        self.builds = 0
        self.build_seconds = 0.0
        self.https = 0  # Http objects made: one per thread that called Google

    def service(self) -> Any:
        """The service, built on first use (once, whichever thread asks first)."""
        service = self._service
        if service is None:
            with self._lock:
                if self._service is None:
                    self._service = self._build()
                service = self._service
        return service

    def _build(self) -> Any:
        from googleapiclient.discovery import build
        from googleapiclient.http import HttpRequest

        def request_builder(_shared: Any, *args: Any, **kwargs: Any) -> HttpRequest:
            return HttpRequest(self.http(), *args, **kwargs)  # the calling thread's own

        started = time.perf_counter()
        options = {"api_endpoint": self.endpoint} if self.endpoint else None
        service = build(
            self.name,
            self.version,
            http=_UNSHARED,
            requestBuilder=request_builder,
            static_discovery=True,
            cache_discovery=False,
            client_options=options,
        )
        self.builds += 1
        self.build_seconds += time.perf_counter() - started
        return service

    def resource(self, *path: str) -> Any:
        """The Resource object at `path`, e.g. ("enterprises", "devices"), made once.

        googleapiclient builds a new Resource, with a closure for each of its methods, on
        every `service.enterprises()` call (0.8–2 ms of CPU per Google call, under the GIL):
        the factory keeps the ones it made instead.
        """
        resource = self._resources.get(path)
        if resource is None:
            service = self.service()
            with self._lock:
                resource = self._resources.get(path)
                if resource is None:
                    resource = service
                    for name in path:
                        resource = getattr(resource, name)()
                    self._resources[path] = resource
        return resource

    def http(self) -> httplib2.Http:
        """This thread's (authorized) httplib2.Http, made on first use."""
        http: httplib2.Http | None = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = self._http_factory()
            with self._lock:
                self.https += 1
        return http


class _Unshared:
    """The Http the shared service holds: never used, every request carries its thread's
    own (see ServiceFactory); a request that did not would fail here, not share one."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a Google request must carry its thread's own Http")


_UNSHARED = _Unshared()
