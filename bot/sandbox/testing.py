"""Helpers for tests that drive the sandbox through real googleapiclient clients."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import google.auth.credentials
import googleapiclient.discovery
import googleapiclient.http

T = TypeVar("T")


def build(api: str, version: str, url: str) -> Any:
    """A googleapiclient service for `api` pointed at `url` with anonymous credentials."""
    return googleapiclient.discovery.build(
        api,
        version,
        static_discovery=True,
        cache_discovery=False,
        credentials=google.auth.credentials.AnonymousCredentials(),
        client_options={"api_endpoint": url},
    )


def directory(url: str) -> Any:
    """Admin SDK Directory API client (admin/directory_v1) for the sandbox at `url`."""
    return build("admin", "directory_v1", url)


def androidmanagement(url: str) -> Any:
    """Android Management API client (androidmanagement/v1) for the sandbox at `url`."""
    return build("androidmanagement", "v1", url)


def batch(service: Any, url: str, callback: Callable[..., None] | None = None) -> Any:
    """A BatchHttpRequest aimed at the sandbox (new_batch_http_request() ignores api_endpoint)."""
    return googleapiclient.http.BatchHttpRequest(callback=callback, batch_uri=url + "batch")


def wait_for(
    fn: Callable[[], T | None], timeout: float = 5.0, message: str = "", *, interval: float = 0.02
) -> T:
    """Poll `fn` until it returns something truthy, or fail after `timeout` seconds.

    The one poll-with-a-deadline of the project (tests, benchmarks): nothing sleeps a
    fixed time to wait for work.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            what = message or f"the condition (last value {value!r})"
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
