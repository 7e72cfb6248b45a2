"""Unit tests of the Google choke point, error mapping and helpers, with HttpMockSequence."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from googleapiclient.http import HttpMockSequence

from bot.errors import (
    BadRequest,
    ConfigError,
    DeviceNotFound,
    Forbidden,
    GoogleUnavailable,
    IllegalTransition,
    InsufficientLicenses,
    OutcomeUnknown,
    RateLimited,
    ValidationError,
)
from bot.google import (
    AndroidApi,
    CallCounter,
    ChromeApi,
    GoogleClients,
    RetryPolicy,
    device_name,
    redact_operation,
    short_id,
)
from bot.google.android import ANDROID_FORBIDDEN_HINT
from bot.google.chrome import DIRECTORY_FORBIDDEN_HINT
from bot.google.client import Executor
from bot.google.errors import map_rpc_status
from bot.google.transport import ServiceFactory
from bot.settings import Secret, Settings

ENTERPRISE = "enterprises/LC0test"


class ScriptedHttp(HttpMockSequence):
    """HttpMockSequence that can also raise: an exception instance as content is raised."""

    def request(
        self, uri: str, method: str = "GET", body: Any = None, headers: Any = None, **kw: Any
    ) -> Any:  # type: ignore[override]
        resp, content = self._iterable[0]
        if isinstance(content, BaseException):
            self._iterable.pop(0)
            self.request_sequence.append((uri, method, body, headers))
            raise content
        return super().request(uri, method, body, headers, **kw)


def error_body(code: int, message: str, reason: str = "", status: str = "") -> str:
    error: dict[str, Any] = {"code": code, "message": message}
    if reason:
        error["errors"] = [{"reason": reason, "message": message, "domain": "global"}]
    if status:
        error["status"] = status
    return json.dumps({"error": error})


class Harness:
    def __init__(self, responses: list[tuple[dict[str, str], Any]]) -> None:
        self.http = ScriptedHttp(responses)
        self.sleeps: list[float] = []
        self.counter = CallCounter()
        self.policy = RetryPolicy(attempts=5, base=0.5, cap=8.0, sleep=self.sleeps.append)

    def executor(self, hint: str = "") -> Executor:
        return Executor(
            policy=self.policy, observer=lambda: self.counter, forbidden_hint=hint, timeout=3
        )

    def chrome(self) -> ChromeApi:
        factory = ServiceFactory(
            "admin", "directory_v1", http_factory=lambda: self.http, endpoint="http://google.test/"
        )
        return ChromeApi("C0test", factory, self.executor(DIRECTORY_FORBIDDEN_HINT))

    def android(self) -> AndroidApi:
        factory = ServiceFactory(
            "androidmanagement",
            "v1",
            http_factory=lambda: self.http,
            endpoint="http://google.test/",
        )
        return AndroidApi(
            ENTERPRISE,
            factory,
            self.executor(ANDROID_FORBIDDEN_HINT),
            endpoint="http://google.test/",
        )

    @property
    def methods(self) -> list[str]:
        return [method for _, method, _, _ in self.http.request_sequence]


OK_DEVICE = ({"status": "200"}, json.dumps({"deviceId": "d1", "status": "ACTIVE"}))


# ---- reads: retried --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        ({"status": "429"}, error_body(429, "Too many requests", status="RESOURCE_EXHAUSTED")),
        ({"status": "403"}, error_body(403, "Rate Limit Exceeded", reason="rateLimitExceeded")),
        ({"status": "403"}, error_body(403, "User rate", reason="userRateLimitExceeded")),
        ({"status": "403"}, error_body(403, "Quota", reason="quotaExceeded")),
        ({"status": "500"}, error_body(500, "Backend Error")),
        ({"status": "503"}, error_body(503, "Service unavailable")),
        ({"status": "503"}, TimeoutError("timed out")),
        ({"status": "503"}, ConnectionResetError("reset")),
    ],
)
def test_read_is_retried_then_succeeds(failure: tuple[dict[str, str], Any]) -> None:
    h = Harness([failure, failure, OK_DEVICE])
    assert h.chrome().get("d1")["deviceId"] == "d1"
    assert h.counter.count() == 3
    assert len(h.sleeps) == 2
    assert all(0 <= s <= 1.0 for s in h.sleeps)  # base 0.5 * 2**attempt, full jitter


def test_read_retries_are_bounded() -> None:
    h = Harness([({"status": "503"}, error_body(503, "down"))] * 5)
    with pytest.raises(GoogleUnavailable) as info:
        h.chrome().get("d1")
    assert "after 5 attempts" in str(info.value)
    assert info.value.status == 503
    assert h.counter.count("chromeosdevices.get") == 5
    assert len(h.sleeps) == 4


def test_rate_limit_exhausted_raises_rate_limited() -> None:
    h = Harness([({"status": "429"}, error_body(429, "Slow down"))] * 5)
    with pytest.raises(RateLimited) as info:
        h.chrome().get("d1")
    assert info.value.detail == "Slow down"


def test_timeout_exhausted_names_the_timeout() -> None:
    h = Harness([({"status": "0"}, TimeoutError("timed out"))] * 5)
    with pytest.raises(GoogleUnavailable, match="no answer within 3 s"):
        h.chrome().get("d1")


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    h = Harness([({"status": "429", "retry-after": "3"}, error_body(429, "x")), OK_DEVICE])
    h.chrome().get("d1")
    assert h.sleeps == [3.0]


def test_full_jitter_stays_under_the_exponential_ceiling() -> None:
    policy = RetryPolicy(base=0.5, cap=8.0, jitter=lambda lo, hi: hi)
    assert [policy.delay(a) for a in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert RetryPolicy(jitter=lambda lo, hi: lo).delay(3) == 0.0


# ---- mutations: retried only on proof that Google did nothing --------------------------------


def test_mutation_retried_on_429() -> None:
    h = Harness(
        [
            ({"status": "429"}, error_body(429, "Too many")),
            ({"status": "403"}, error_body(403, "Rate", reason="rateLimitExceeded")),
            ({"status": "200"}, json.dumps({"commandId": "77"})),
        ]
    )
    assert h.chrome().issue_command("d1", "REBOOT") == "77"
    assert h.methods == ["POST", "POST", "POST"]


@pytest.mark.parametrize(
    "failure",
    [
        ({"status": "503"}, error_body(503, "unavailable")),
        ({"status": "500"}, error_body(500, "backend")),
        ({"status": "0"}, TimeoutError("timed out")),
        ({"status": "0"}, ConnectionResetError("reset by peer")),
    ],
)
def test_mutation_with_unknown_outcome_is_not_resent(failure: tuple[dict[str, str], Any]) -> None:
    h = Harness([failure, ({"status": "200"}, json.dumps({"commandId": "77"}))])
    with pytest.raises(OutcomeUnknown, match="may or may not have happened"):
        h.chrome().issue_command("d1", "REBOOT")
    assert h.methods == ["POST"]
    assert h.sleeps == []


def test_mutation_not_sent_is_unavailable_not_unknown() -> None:
    h = Harness([({"status": "0"}, ConnectionRefusedError("refused"))])
    with pytest.raises(GoogleUnavailable, match="could not be reached"):
        h.chrome().issue_command("d1", "REBOOT")


# ---- error mapping -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (
            400,
            error_body(400, "Missing deprovision reason.", reason="invalid"),
            BadRequest,
            "Missing deprovision reason",
        ),
        (
            403,
            error_body(403, "Not Authorized to access this resource/api", reason="forbidden"),
            Forbidden,
            "domain-wide delegation",
        ),
        (
            401,
            json.dumps({"error": "invalid_grant", "error_description": "Invalid JWT"}),
            Forbidden,
            "Invalid JWT",
        ),
        (
            404,
            error_body(404, "Resource Not Found: d1", reason="notFound"),
            DeviceNotFound,
            "no such device",
        ),
        (
            412,
            error_body(412, "Insufficient licenses", reason="conditionNotMet"),
            InsufficientLicenses,
            "no free Chrome license",
        ),
        (
            412,
            error_body(412, "Illegal device state transition", reason="conditionNotMet"),
            IllegalTransition,
            "current state does not allow it",
        ),
    ],
)
def test_errors_become_domain_errors(status: int, body: str, error: type, words: str) -> None:
    h = Harness([({"status": str(status)}, body)])
    with pytest.raises(error) as info:
        h.chrome().legacy_action("d1", "disable")
    assert words in str(info.value)
    assert info.value.status == status
    assert info.value.detail
    assert h.counter.count() == 1  # never retried


def test_android_forbidden_mentions_the_enterprise_role() -> None:
    h = Harness(
        [
            (
                {"status": "403"},
                error_body(403, "Caller lacks permission", status="PERMISSION_DENIED"),
            )
        ]
    )
    with pytest.raises(Forbidden, match="Android Management User"):
        h.android().get("dev1")


def test_map_rpc_status() -> None:
    licenses = map_rpc_status({"code": 9, "message": "Insufficient licenses"}, what="re-enable X")
    assert isinstance(licenses, InsufficientLicenses)
    assert isinstance(
        map_rpc_status({"code": 9, "message": "Illegal device state transition"}, what="x"),
        IllegalTransition,
    )
    assert isinstance(map_rpc_status({"code": 5, "message": "nope"}, what="x"), DeviceNotFound)
    assert isinstance(map_rpc_status({"code": 3, "message": "bad"}, what="x"), BadRequest)
    assert isinstance(map_rpc_status({"code": 13, "message": "internal"}, what="x"), OutcomeUnknown)


# ---- logging and secrets -----------------------------------------------------------------------


def test_calls_are_logged_without_bodies(caplog: pytest.LogCaptureFixture) -> None:
    operation = {
        "name": f"{ENTERPRISE}/devices/dev1/operations/op1",
        "metadata": {"type": "RESET_PASSWORD", "newPassword": "s3cret-pw"},
    }
    h = Harness([({"status": "200"}, json.dumps(operation))])
    with caplog.at_level(logging.DEBUG):
        result = h.android().issue_command(
            "dev1", {"type": "RESET_PASSWORD", "newPassword": "s3cret-pw"}
        )
    assert "s3cret-pw" not in caplog.text
    assert "newPassword" not in json.dumps(result)
    assert "androidmanagement.enterprises.devices.issueCommand status=200" in caplog.text
    assert b"s3cret-pw" in h.http.request_sequence[0][2].encode()  # it did go to Google


def test_redact_operation_strips_new_password_anywhere() -> None:
    op = {
        "metadata": {"newPassword": "x", "nested": [{"newPassword": "y", "keep": 1}]},
        "newPassword": "z",
    }
    assert redact_operation(op) == {"metadata": {"nested": [{"keep": 1}]}}
    assert op["newPassword"] == "z"  # the input is not modified


# ---- validation and names ----------------------------------------------------------------------


def test_input_validation_sends_nothing() -> None:
    h = Harness([])
    chrome = h.chrome()
    with pytest.raises(ValidationError):
        chrome.list_devices(max_results=301)
    with pytest.raises(ValidationError):
        chrome.list_devices(order_by="bogus")
    with pytest.raises(ValidationError, match="serialNumber"):
        chrome.patch("d1", {"serialNumber": "x"})
    with pytest.raises(ValidationError, match="volume"):
        chrome.issue_command("d1", "SET_VOLUME", {"volume": 101})
    with pytest.raises(ValidationError):
        chrome.issue_command("d1", "SELF_DESTRUCT")
    with pytest.raises(ValidationError):
        chrome.change_status(["d1"], "DISABLE", deprovision_reason="retiring_device")
    with pytest.raises(ValidationError):
        chrome.change_status(["d1"], "DEPROVISION", deprovision_reason="bored")
    with pytest.raises(ValidationError):
        h.android().issue_command("dev1", {"type": "SELF_DESTRUCT"})
    with pytest.raises(ValidationError):
        h.android().get("enterprises/OTHER/devices/x")
    assert h.http.request_sequence == []


def test_set_volume_payload_is_a_json_string() -> None:
    h = Harness([({"status": "200"}, json.dumps({"commandId": "5"}))])
    h.chrome().issue_command("d1", "SET_VOLUME", {"volume": 50})
    body = json.loads(h.http.request_sequence[0][2])
    assert body == {"commandType": "SET_VOLUME", "payload": '{"volume":50}'}


def test_names() -> None:
    assert short_id(f"{ENTERPRISE}/devices/abc") == "abc"
    assert short_id("abc") == "abc"
    assert device_name("abc", ENTERPRISE) == f"{ENTERPRISE}/devices/abc"
    assert device_name(f"{ENTERPRISE}/devices/abc", ENTERPRISE) == f"{ENTERPRISE}/devices/abc"
    with pytest.raises(ValidationError):
        device_name("a/b", ENTERPRISE)


# ---- configuration -----------------------------------------------------------------------------


def settings(**kw: Any) -> Settings:
    return Settings(slack_bot_token=Secret("xoxb-1"), slack_signing_secret=Secret("s"), **kw)


def test_unconfigured_platforms_say_so() -> None:
    clients = GoogleClients.from_settings(settings())
    assert clients.chrome is None and clients.android is None
    with pytest.raises(ConfigError, match="GOOGLE_ADMIN_EMAIL"):
        clients.require_chrome()
    with pytest.raises(ConfigError, match="ANDROID_ENTERPRISE"):
        clients.require_android()


def test_endpoint_uses_anonymous_credentials() -> None:
    from google.auth.credentials import AnonymousCredentials

    clients = GoogleClients.from_settings(
        settings(android_enterprise=ENTERPRISE), endpoint="http://127.0.0.1:9"
    )
    chrome, android = clients.require_chrome(), clients.require_android()
    assert isinstance(chrome.services.http().credentials, AnonymousCredentials)  # type: ignore[attr-defined]
    assert chrome.services.service()._baseUrl == "http://127.0.0.1:9/"
    assert android.batch_uri == "http://127.0.0.1:9/batch"


def test_service_account_credentials(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    key = tmp_path / "key.json"
    key.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "p",
                "private_key_id": "1",
                "private_key": pem,
                "client_email": "bot@p.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    clients = GoogleClients.from_settings(
        settings(
            google_application_credentials=key,
            google_admin_email="admin@example.com",
            android_enterprise=ENTERPRISE,
        )
    )
    chrome_creds = clients.require_chrome().services.http().credentials  # type: ignore[attr-defined]
    android_creds = clients.require_android().services.http().credentials  # type: ignore[attr-defined]
    assert chrome_creds._subject == "admin@example.com"
    assert chrome_creds.scopes == [
        "https://www.googleapis.com/auth/admin.directory.device.chromeos"
    ]
    assert android_creds._subject is None
    assert android_creds.scopes == ["https://www.googleapis.com/auth/androidmanagement"]
    assert clients.require_android().batch_uri == "https://androidmanagement.googleapis.com/batch"


def test_bad_key_file_is_a_config_error(tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    key.write_text("{}")
    with pytest.raises(ConfigError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        GoogleClients.from_settings(
            settings(google_application_credentials=key, google_admin_email="a@b.co")
        )


# ---- batch get of operations (a fake Google batch endpoint) -------------------------------------


class FakeBatchHttp:
    """Answers Google batch requests: each GET sub-request via `answer(path) -> (status, body)`."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.requests: list[tuple[str, int]] = []

    def request(
        self, uri: str, method: str = "GET", body: Any = None, headers: Any = None, **kw: Any
    ) -> Any:
        import email

        import httplib2

        assert method == "POST" and uri == "http://google.test/batch"
        message = email.message_from_string(
            f"content-type: {headers['content-type']}\r\n\r\n{body}"
        )
        parts = []
        for part in message.get_payload():
            content_id = part["Content-ID"].strip("<>")
            request_line = part.get_payload().split("\n", 1)[0]
            path = request_line.split(" ")[1]
            status, payload = self.answer(path)
            parts.append(
                f"--BOUNDARY\r\nContent-Type: application/http\r\nContent-ID: <response-{content_id}>\r\n\r\n"
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\r\n{json.dumps(payload)}\r\n"
            )
        self.requests.append((uri, len(parts)))
        content = "".join(parts) + "--BOUNDARY--\r\n"
        resp = httplib2.Response(
            {"status": "200", "content-type": "multipart/mixed; boundary=BOUNDARY"}
        )
        return resp, content.encode()


def test_get_operations_batches_by_100_and_retries_rate_limited_sub_requests() -> None:
    throttled: set[str] = set()

    def answer(path: str) -> tuple[int, Any]:
        name = path.split("?")[0].removeprefix("/v1/")
        if name.endswith("/missing"):
            return 404, {"error": {"code": 404, "message": "not found"}}
        if name.endswith("7") and name not in throttled:  # first ask of each ...7: rate limited
            throttled.add(name)
            return 429, {"error": {"code": 429, "message": "slow"}}
        return 200, {"name": name, "done": True, "metadata": {"newPassword": "pw"}}

    fake = FakeBatchHttp(answer)
    sleeps: list[float] = []
    counter = CallCounter()
    factory = ServiceFactory(
        "androidmanagement", "v1", http_factory=lambda: fake, endpoint="http://google.test/"
    )  # type: ignore[arg-type,return-value]
    executor = Executor(policy=RetryPolicy(sleep=sleeps.append), observer=lambda: counter)
    api = AndroidApi(ENTERPRISE, factory, executor, endpoint="http://google.test/")
    names = [f"{ENTERPRISE}/devices/d{i % 7}/operations/op{i}" for i in range(250)]
    missing = f"{ENTERPRISE}/devices/d1/operations/missing"
    results = api.get_operations([*names, missing])
    assert [n for _, n in fake.requests[:3]] == [100, 100, 51]
    assert sum(n for _, n in fake.requests[3:]) == len(throttled) == 25  # only the throttled, again
    assert len(fake.requests) == 4 and counter.count("batch") == 4
    assert [results[n]["name"] for n in names] == names  # type: ignore[index]
    assert all("newPassword" not in json.dumps(results[n]) for n in names)
    assert isinstance(results[missing], DeviceNotFound)
    assert len(sleeps) == 1


def test_refused_service_account_is_forbidden_and_not_retried() -> None:
    import google.auth.exceptions

    refused = google.auth.exceptions.RefreshError("unauthorized_client: Client is unauthorized")
    h = Harness([({"status": "0"}, refused)])
    with pytest.raises(Forbidden, match="domain-wide delegation"):
        h.chrome().get("d1")
    assert h.counter.count() == 1


def test_observed_durations_exclude_the_backoff() -> None:
    import time

    h = Harness([({"status": "503"}, error_body(503, "down")), OK_DEVICE])
    h.policy = RetryPolicy(sleep=time.sleep, jitter=lambda lo, hi: 0.2)
    h.chrome().get("d1")
    assert [r.status for r in h.counter.records] == [503, 200]
    assert [r.attempt for r in h.counter.records] == [1, 2]
    assert all(r.duration < 0.15 for r in h.counter.records)
