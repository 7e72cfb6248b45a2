"""In-memory fakes for testing listeners without starting the bot (the middle test layer).

`make_services(tmp_path)` builds the `Services` a listener receives, with:

- `FakeSlackOut` in place of `SlackOut`: records every call (post, update, ephemeral,
  respond, open_view, update_view, upload …), answers with a ts / view id / file id, and
  checks every message, view and response_url message with the emulator's Block Kit checker
  (`validate_blocks` / `validate_view`): what Slack would refuse is refused here too
  (SlackApiError `invalid_blocks`, `no_text`, `not_found` as Slack answers) and kept in
  `refusals`, which a test's teardown must find empty.
- `FakeChrome` under the real `GoogleClients` and `DeviceDirectory`: canned Directory API
  device dicts (`chrome_raw()`) in, the real normalisation and exact-reference resolution
  on top; every mutation is recorded in `FakeChrome.mutations` and applied to the canned
  device. `FakeAndroid` likewise for the Android Management API when `android=` devices are
  given (else Android is not configured).
- the real `Roles` over user ids, with `FakeUserGroups` answering usergroups.users.list;
- the real `Store` on a SQLite file under tmp_path (migrations, audit chain and all);
- `SyncExecutor`: pool tasks run inline, in the calling thread.

`Slack(svc)` builds the App with `create_app(svc)` (listeners run inline) and dispatches
signed slash commands, clicks and modal submissions built from what the fakes recorded,
as bolt-python's own tests do with `app.dispatch(BoltRequest(...))`.

What these fakes do NOT check — the Slack emulator and the sandbox Google are the contract,
and the end-to-end tests the proof:
- Slack: trigger_id expiry (3 s) and single use, response_url expiry and its 5 uses,
  channel membership and `not_in_channel`, length limits of `text` outside blocks, rate
  limits and Retry-After, user and channel ids,
  Socket Mode, the 3-second ack over HTTP, retries (X-Slack-Retry-Num) as Slack sends them.
  A click is built from a recorded element, not from what a client shows.
- Google: the Directory query language (only `id:`, `asset_id:`, `user:`, `status:` and
  bare words, as prefix / substring matches, no paging), projections and partial responses,
  request bodies, HTTP errors, retries, timeouts and lost answers, batch requests, licences
  and state rules beyond the Chrome status transitions, the AMAPI command rules (API
  levels, management modes: here only the bot's capability model decides), command
  execution (commands and operations stay pending: no device runs them), the Reports API,
  and everything googleapiclient checks against the discovery documents.
- Concurrency: one thread runs everything (no ack gate, no fair pool, no listener pool);
  races (two approvers at once, a job and a click) are the end-to-end tests' business.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from conftest import (
    APPROVALS,
    APPROVER1,
    APPROVER2,
    BOT_TOKEN,
    HELPDESK,
    OPERATOR,
    SIGNING_SECRET,
)
from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from bot.app import create_app
from bot.directory import DeviceDirectory
from bot.errors import DeviceNotFound, IllegalTransition
from bot.gate import AckGate
from bot.google import GoogleClients
from bot.google.results import DeviceResult, Page
from bot.playground.slack_emulator import (
    element_state,
    iter_elements,
    validate_blocks,
    validate_view,
)
from bot.roles import Roles
from bot.secrets_box import SecretBox
from bot.services import Services, open_store
from bot.settings import Secret, Settings

T = TypeVar("T")
JSON = dict[str, Any]

APPROVER_GROUP = "S0APPROVERS"  # APPROVER2 approves through it, as in the end-to-end tests


# ---- Slack out ---------------------------------------------------------------------------


@dataclass
class SlackCall:
    """One call the bot made through SlackOut."""

    method: str  # "post", "update", "ephemeral", "respond", "open_view", "update_view", …
    args: JSON
    result: Any = None

    @property
    def text(self) -> str:
        return str(self.args.get("text") or "")

    @property
    def blocks(self) -> list[JSON]:
        view = self.args.get("view")
        if view is not None:
            return list(view.get("blocks") or [])
        return list(self.args.get("blocks") or [])

    def words(self) -> str:
        """The fallback text and every text in the blocks, one string (for `in` asserts)."""
        return "\n".join([self.text, *_texts(self.blocks)])


def _texts(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
            yield node["text"]
        for value in node.values():
            yield from _texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)


def _as_dict(value: Any) -> Any:
    """A slack_sdk model (Block, View) as the dict sent over the wire; dicts unchanged."""
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else copy.deepcopy(value)


@dataclass
class Refusal:
    """What Slack would have refused, and why."""

    method: str
    errors: list[str]


class FakeSlackOut:
    """Stands in for `SlackOut`: records every call, checks Block Kit as Slack would."""

    def __init__(self) -> None:
        # Bolt needs a WebClient; nothing reaches it (every listener speaks through SlackOut).
        self.client = WebClient(token=BOT_TOKEN, base_url="http://127.0.0.1:9/api/")
        self.sandbox = False
        self.base_url = self.client.base_url
        self.calls: list[SlackCall] = []
        self.refusals: list[Refusal] = []
        self.views: dict[str, JSON] = {}  # view id → the view as last opened / updated
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)

    # -- checking
    def _check(self, method: str, errors: list[str], error: str = "invalid_blocks") -> None:
        if errors:
            self.refusals.append(Refusal(method, errors))
            raise SlackApiError(
                f"{method}: {error}", {"ok": False, "error": error, "errors": errors}
            )

    def _message(self, method: str, text: str, blocks: Any) -> list[JSON] | None:
        dicts = None if blocks is None else [_as_dict(b) for b in blocks]
        if dicts is None and not text:
            self._check(method, ["no_text"], "no_text")
        if dicts is not None:
            self._check(method, validate_blocks(dicts))
        return dicts

    def _record(self, method: str, result: Any = None, **args: Any) -> Any:
        self.calls.append(SlackCall(method, args, result))
        return result

    def _next_ts(self) -> str:
        return f"{1_700_000_000 + next(self._ts)}.000100"

    # -- SlackOut's methods
    def post(
        self, channel: str, text: str, blocks: Any = None, *, thread_ts: str | None = None
    ) -> str:
        dicts = self._message("post", text, blocks)
        ts = self._next_ts()
        return str(
            self._record(
                "post", ts, channel=channel, text=text, blocks=dicts, thread_ts=thread_ts, ts=ts
            )
        )

    def post_where(self, channel: str, text: str, blocks: Any = None) -> tuple[str, str]:
        dicts = self._message("post_where", text, blocks)
        where = "D" + channel[1:] if channel.startswith(("U", "W")) else channel
        ts = self._next_ts()
        self._record("post", (where, ts), channel=where, text=text, blocks=dicts, ts=ts)
        return where, ts

    def ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        blocks: Any = None,
        *,
        thread_ts: str | None = None,
    ) -> None:
        dicts = self._message("ephemeral", text, blocks)
        self._record(
            "ephemeral", channel=channel, user=user, text=text, blocks=dicts, thread_ts=thread_ts
        )

    def update(self, channel: str, ts: str, text: str, blocks: Any = None) -> None:
        if not any(c.args.get("ts") == ts for c in self.of("post", channel=channel)):
            self._check("update", [f"no message {ts} in {channel}"], "message_not_found")
        dicts = self._message("update", text, blocks)
        self._record("update", channel=channel, ts=ts, text=text, blocks=dicts)

    def respond(
        self,
        response_url: str,
        text: str,
        blocks: Any = None,
        *,
        replace_original: bool = False,
        in_channel: bool = False,
    ) -> None:
        dicts = self._message("respond", text, blocks)
        self._record(
            "respond",
            response_url=response_url,
            text=text,
            blocks=dicts,
            replace_original=replace_original,
            in_channel=in_channel,
        )

    def permalink(self, channel: str, ts: str) -> str | None:
        return f"https://fake.slack.com/archives/{channel}/p{ts.replace('.', '')}"

    def upload(
        self, channel: str, filename: str, content: bytes, *, title: str, comment: str = ""
    ) -> str:
        file_id = f"F{next(self._ids):08d}"
        return str(
            self._record(
                "upload",
                file_id,
                channel=channel,
                filename=filename,
                content=content,
                title=title,
                comment=comment,
            )
        )

    def open_view(self, trigger_id: str, view: Any) -> str:
        data = _as_dict(view)
        self._check("open_view", validate_view(data))
        view_id = f"V{next(self._ids):08d}"
        self.views[view_id] = {**data, "id": view_id, "hash": _hash(data)}
        return str(self._record("open_view", view_id, trigger_id=trigger_id, view=data))

    def update_view(self, view_id: str, view: Any) -> None:
        data = _as_dict(view)
        if view_id not in self.views:
            self._check("update_view", ["view not found"], "not_found")
        self._check("update_view", validate_view(data))
        self.views[view_id] = {**data, "id": view_id, "hash": _hash(data)}
        self._record("update_view", view_id=view_id, view=data)

    # -- what tests read
    def of(self, method: str, **where: Any) -> list[SlackCall]:
        """The calls of `method` whose arguments match `where`."""
        return [
            c
            for c in self.calls
            if c.method == method and all(c.args.get(k) == v for k, v in where.items())
        ]

    def last(self, method: str, **where: Any) -> SlackCall:
        found = self.of(method, **where)
        assert found, f"no {method} call with {where}; calls: {[c.method for c in self.calls]}"
        return found[-1]

    def said(self) -> str:
        """Everything the bot said or showed so far, as one string."""
        return "\n".join(c.words() for c in self.calls)

    def message(self, channel: str, ts: str) -> JSON:
        """A posted message as it stands now (its last update applied)."""
        posted = [c for c in self.of("post", channel=channel) if c.args["ts"] == ts]
        assert posted, f"no message {ts} in {channel}"
        current = dict(posted[0].args)
        for update in self.of("update", channel=channel, ts=ts):
            current.update(text=update.args["text"], blocks=update.args["blocks"])
        return current


def _hash(view: JSON) -> str:
    return hashlib.sha256(json.dumps(view, sort_keys=True).encode()).hexdigest()[:16]


# ---- Google --------------------------------------------------------------------------------


_ids = itertools.count(1)


def chrome_raw(
    serial: str,
    *,
    status: str = "ACTIVE",
    user: str | None = "ada@example.com",
    org_unit: str = "/Staff",
    kiosk: bool = False,
    asset_id: str | None = None,
) -> JSON:
    """A Directory API ChromeOsDevice (the fields the bot reads), with a fresh deviceId."""
    n = next(_ids)
    raw: JSON = {
        "kind": "admin#directory#chromeosdevice",
        "deviceId": f"{n:08x}-0000-4000-a000-{n:012x}",
        "serialNumber": serial,
        "status": status,
        "lastSync": "2026-11-30T08:00:00.000Z",
        "model": "Acme Chromebook 14",
        "osVersion": "131.0.6778.85",
        "orgUnitPath": org_unit,
        "deviceLicenseType": "kioskUpgrade" if kiosk else "enterpriseUpgradePerpetual",
        "lastKnownNetwork": [{"ipAddress": "10.0.0.7", "wanIpAddress": "203.0.113.7"}],
    }
    if user:
        raw["annotatedUser"] = user
        raw["recentUsers"] = [{"type": "USER_TYPE_MANAGED", "email": user}]
    if asset_id:
        raw["annotatedAssetId"] = asset_id
    return raw


_STATUS_AFTER = {
    "DISABLE": ({"ACTIVE"}, "DISABLED"),
    "REENABLE": ({"DISABLED"}, "ACTIVE"),
    "DEPROVISION": ({"ACTIVE", "DISABLED"}, "DEPROVISIONED"),
}


class FakeChrome:
    """The Directory API calls the bot makes (`ChromeApi`'s methods), over canned devices."""

    def __init__(self, devices: Iterable[JSON] = ()) -> None:
        self.devices: dict[str, JSON] = {d["deviceId"]: copy.deepcopy(d) for d in devices}
        self.mutations: list[tuple[Any, ...]] = []  # (method, arguments…) in call order
        self.reads = 0
        self.commands: dict[str, JSON] = {}
        self.failures: dict[str, Exception] = {}  # method → raised by its next call

    def fail_next(self, method: str, error: Exception) -> None:
        """Make the next call of `method` raise `error` (a Google error, or a bug)."""
        self.failures[method] = error

    def _enter(self, method: str) -> None:
        error = self.failures.pop(method, None)
        if error is not None:
            raise error

    def _device(self, device_id: str) -> JSON:
        if device_id not in self.devices:
            raise DeviceNotFound(f"Google does not know Chrome device {device_id}.", status=404)
        return self.devices[device_id]

    # -- reads
    def list_devices(self, query: str | None = None, **kwargs: Any) -> Page:
        self._enter("list_devices")
        self.reads += 1
        found = [copy.deepcopy(d) for d in self.devices.values() if _matches(d, query or "")]
        return Page(items=found[: int(kwargs.get("max_results") or 100)], next_page_token=None)

    def iter_devices(self, query: str | None = None, **kwargs: Any) -> Iterator[JSON]:
        yield from self.list_devices(query).items

    def count(self, query: str | None = None) -> int:
        self._enter("count")
        self.reads += 1
        return sum(1 for d in self.devices.values() if _matches(d, query or ""))

    def get(self, device_id: str, projection: str = "FULL") -> JSON:
        self._enter("get")
        self.reads += 1
        return copy.deepcopy(self._device(device_id))

    def get_command(self, device_id: str, command_id: str) -> JSON:
        self._enter("get_command")
        return copy.deepcopy(self.commands[command_id])

    # -- mutations
    def change_status(
        self,
        device_ids: Sequence[str] | str,
        action: str,
        deprovision_reason: str | None = None,
    ) -> list[DeviceResult]:
        self._enter("change_status")
        ids = [device_ids] if isinstance(device_ids, str) else list(device_ids)
        self.mutations.append(("change_status", tuple(ids), action.upper(), deprovision_reason))
        before, after = _STATUS_AFTER[action.upper()]
        results = []
        for device_id in ids:
            device = self.devices.get(device_id)
            if device is None or device["status"] not in before:
                error = IllegalTransition("Illegal device state transition.", status=412)
                results.append(DeviceResult(device_id, False, error))
                continue
            device["status"] = after
            results.append(DeviceResult(device_id, True))
        return results

    def patch(self, device_id: str, fields: dict[str, str]) -> JSON:
        self._enter("patch")
        self.mutations.append(("patch", device_id, dict(fields)))
        self._device(device_id).update(fields)
        return copy.deepcopy(self.devices[device_id])

    def move(self, device_ids: Sequence[str] | str, org_unit_path: str) -> list[DeviceResult]:
        self._enter("move")
        ids = [device_ids] if isinstance(device_ids, str) else list(device_ids)
        self.mutations.append(("move", tuple(ids), org_unit_path))
        for device_id in ids:
            self._device(device_id)["orgUnitPath"] = org_unit_path
        return [DeviceResult(d, True) for d in ids]

    def issue_command(
        self, device_id: str, command_type: str, payload: dict[str, Any] | None = None
    ) -> str:
        self._enter("issue_command")
        self._device(device_id)
        self.mutations.append(("issue_command", device_id, command_type, payload))
        command_id = str(1000 + len(self.commands))
        self.commands[command_id] = {
            "commandId": command_id,
            "type": command_type,
            "state": "PENDING",
        }
        return command_id


ENTERPRISE = "enterprises/LC0fake"


def android_raw(
    serial: str,
    *,
    mode: str = "DEVICE_OWNER",
    ownership: str = "COMPANY_OWNED",
    api_level: int = 34,
    state: str = "ACTIVE",
    user: str = "grace@example.com",
) -> JSON:
    """An Android Management API Device (the fields the bot reads), with a fresh name."""
    n = next(_ids)
    return {
        "name": f"{ENTERPRISE}/devices/3{n:015x}",
        "managementMode": mode,
        "ownership": ownership,
        "state": state,
        "apiLevel": api_level,
        "policyName": f"{ENTERPRISE}/policies/default",
        "lastStatusReportTime": "2026-11-30T08:00:00Z",
        "hardwareInfo": {"brand": "Acme", "model": "Phone 9", "serialNumber": serial},
        "softwareInfo": {"androidVersion": "14"},
        "user": {"accountIdentifier": user},
    }


class FakeAndroid:
    """The Android Management API calls the bot makes (`AndroidApi`'s methods), over canned
    devices. Commands are recorded and stay not done (no device runs them)."""

    def __init__(self, devices: Iterable[JSON] = ()) -> None:
        self.enterprise = ENTERPRISE
        self.devices: dict[str, JSON] = {d["name"]: copy.deepcopy(d) for d in devices}
        self.mutations: list[tuple[Any, ...]] = []
        self.operations: dict[str, JSON] = {}

    def device_name(self, short_or_full: str) -> str:
        if short_or_full.startswith("enterprises/"):
            return short_or_full
        return f"{self.enterprise}/devices/{short_or_full}"

    def _device(self, name: str) -> JSON:
        full = self.device_name(name)
        if full not in self.devices:
            raise DeviceNotFound(f"Google does not know Android device {full}.", status=404)
        return self.devices[full]

    def list_devices(self, *, page_token: str | None = None, page_size: int = 100) -> Page:
        return Page(items=[copy.deepcopy(d) for d in self.devices.values()], next_page_token=None)

    def iter_devices(self, *, page_size: int = 100) -> Iterator[JSON]:
        yield from self.list_devices().items

    def get(self, name: str) -> JSON:
        return copy.deepcopy(self._device(name))

    def get_devices(self, names: Iterable[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in names:
            try:
                out[self.device_name(name)] = self.get(name)
            except DeviceNotFound as exc:
                out[self.device_name(name)] = exc
        return out

    def issue_command(self, name: str, command: JSON) -> JSON:
        full = self.device_name(name)
        self._device(full)
        self.mutations.append(("issue_command", full, dict(command)))
        operation = {
            "name": f"{full}/operations/{len(self.operations) + 1}",
            "metadata": {"type": command.get("type"), "duration": command.get("duration")},
            "done": False,
        }
        self.operations[operation["name"]] = operation
        return copy.deepcopy(operation)

    def get_operation(self, name: str) -> JSON:
        return copy.deepcopy(self.operations[name])

    def get_operations(self, names: Iterable[str]) -> dict[str, Any]:
        return {n: self.get_operation(n) for n in names}

    def list_operations(self, device: str) -> list[JSON]:
        prefix = self.device_name(device) + "/operations/"
        return [copy.deepcopy(o) for n, o in self.operations.items() if n.startswith(prefix)]

    def cancel_operation(self, name: str) -> None:
        self.mutations.append(("cancel_operation", name))


def _matches(device: JSON, query: str) -> bool:
    """A few Directory query terms, as prefix (id:, asset_id:) or substring matches."""
    for term in query.split():
        op, sep, value = term.partition(":")
        value = value.lower()
        if not sep:
            op, value = "", term.lower()
        serial = str(device.get("serialNumber") or "").lower()
        user = str(device.get("annotatedUser") or "").lower()
        if op == "id" and not serial.startswith(value):
            return False
        if op == "asset_id" and not str(device.get("annotatedAssetId") or "").lower().startswith(
            value
        ):
            return False
        if op == "user" and value not in user:
            return False
        if op == "status" and str(device.get("status") or "").lower() != value:
            return False
        if op == "" and value not in serial and value not in user:
            return False
    return True


# ---- roles, executor ---------------------------------------------------------------------


class FakeUserGroups:
    """Answers usergroups.users.list, the one Slack call `Roles` makes (or fails it)."""

    def __init__(self, groups: dict[str, list[str]] | None = None) -> None:
        self.groups = dict(groups or {})
        self.down = False  # True: Slack cannot be reached

    def usergroups_users_list(self, *, usergroup: str) -> JSON:
        if self.down:
            raise ConnectionError("Slack is unreachable")
        if usergroup not in self.groups:
            raise SlackApiError("no_such_subteam", {"ok": False, "error": "no_such_subteam"})
        return {"ok": True, "users": list(self.groups[usergroup])}


class SyncExecutor(Executor):
    """Runs each task at once in the calling thread (the pool's fairness is not modelled)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # delivered through the future, as a pool would
            future.set_exception(exc)
        return future


# ---- Services ------------------------------------------------------------------------------


def fake_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings as the end-to-end tests use them, with a database under tmp_path."""
    values: JSON = {
        "slack_bot_token": Secret(BOT_TOKEN),
        "slack_signing_secret": Secret(SIGNING_SECRET),
        "database_path": tmp_path / "bot.db",
        "google_api_endpoint": "http://127.0.0.1:9/",  # never called: FakeChrome answers
        "device_operators": (OPERATOR,),
        "device_approvers": (APPROVER1, APPROVER_GROUP),
        "approval_channel": APPROVALS,
    }
    values.update(overrides)
    return Settings(**values)


def make_services(
    tmp_path: Path,
    *,
    devices: Iterable[JSON] = (),
    android: Iterable[JSON] | None = None,
    settings: dict[str, Any] | None = None,
    **overrides: Any,
) -> Services:
    """Services for one test: fakes at the edges, the real Store, Roles and DeviceDirectory.

    `devices` are the canned Chrome devices (see `chrome_raw`), `android` the Android ones
    (`android_raw`; None: Android not configured); `settings` overrides Settings fields; any
    other keyword replaces that field of Services (e.g. `clock=`).
    """
    if android is not None:
        settings = {"android_enterprise": ENTERPRISE, **(settings or {})}
    config = fake_settings(tmp_path, **(settings or {}))
    store = open_store(config)
    google = GoogleClients(
        FakeChrome(devices),  # type: ignore[arg-type]
        None if android is None else FakeAndroid(android),  # type: ignore[arg-type]
    )
    executor = SyncExecutor()
    svc = Services(
        settings=config,
        store=store,
        google=google,
        devices=DeviceDirectory(google, store, executor),
        out=FakeSlackOut(),  # type: ignore[arg-type]
        roles=Roles(
            config.device_operators,
            config.device_approvers,
            FakeUserGroups({APPROVER_GROUP: [APPROVER2]}),  # type: ignore[arg-type]
        ),
        secrets=SecretBox.for_store(
            config.bot_secret_key.get() if config.bot_secret_key else None, store
        ),
        executor=executor,  # type: ignore[arg-type]
        gate=AckGate(),
        owner="fake-bot",
    )
    names = {f.name for f in fields(Services)}
    unknown = set(overrides) - names
    if unknown:
        raise TypeError(f"not fields of Services: {sorted(unknown)}")
    return replace(svc, **overrides)


# ---- gestures: what Slack sends the bot --------------------------------------------------


class Slack:
    """The Bolt App of `svc`, and signed Slack requests dispatched to it in this thread."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.out: FakeSlackOut = svc.out  # type: ignore[assignment]
        self.app: App = create_app(svc, listener_executor=SyncExecutor())
        self._verifier = SignatureVerifier(SIGNING_SECRET)
        self._triggers = itertools.count(1)
        self._urls = itertools.count(1)

    def _trigger(self) -> str:
        return f"{next(self._triggers)}.1.fake-trigger"

    def _response_url(self) -> str:
        return f"https://hooks.fake.slack.com/commands/T0FAKE/{next(self._urls)}"

    def dispatch(self, body: str) -> BoltResponse:
        """Send a form-encoded body signed as Slack signs it."""
        ts = str(int(time.time()))
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": ts,
            "x-slack-signature": self._verifier.generate_signature(timestamp=ts, body=body),
        }
        return self.app.dispatch(BoltRequest(body=body, headers=headers))

    def send(self, payload: JSON) -> BoltResponse:
        """An interaction payload (block_actions, view_submission)."""
        return self.dispatch(urllib.parse.urlencode({"payload": json.dumps(payload)}))

    def slash(self, text: str, user: str = OPERATOR, channel: str = HELPDESK) -> BoltResponse:
        """`/device <text>` typed by `user` in `channel`."""
        form = {
            "token": "fake",
            "team_id": "T0FAKE",
            "channel_id": channel,
            "user_id": user,
            "command": "/device",
            "text": text,
            "response_url": self._response_url(),
            "trigger_id": self._trigger(),
            "api_app_id": "A0FAKE",
        }
        return self.dispatch(urllib.parse.urlencode(form))

    def click_payload(
        self,
        user: str,
        action_id: str,
        *,
        channel: str,
        ts: str,
        blocks: list[JSON],
        ephemeral: bool = False,
    ) -> JSON:
        """The block_actions payload of `user` clicking the element `action_id` in a message
        (`ephemeral`: one only they see, e.g. an answer through a response_url)."""
        block, element = _element(blocks, action_id)
        return {
            "type": "block_actions",
            "user": {"id": user, "name": user.lower(), "team_id": "T0FAKE"},
            "api_app_id": "A0FAKE",
            "team": {"id": "T0FAKE"},
            "trigger_id": self._trigger(),
            "container": {
                "type": "message",
                "message_ts": ts,
                "channel_id": channel,
                "is_ephemeral": ephemeral,
            },
            "channel": {"id": channel},
            "response_url": self._response_url(),
            "actions": [
                {
                    "type": element.get("type", "button"),
                    "action_id": action_id,
                    "block_id": block.get("block_id", ""),
                    "value": element.get("value"),
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }

    def click(self, user: str, action_id: str, *, channel: str, ts: str) -> BoltResponse:
        """`user` clicks `action_id` on the message (channel, ts) as it stands now."""
        message = self.out.message(channel, ts)
        return self.send(
            self.click_payload(user, action_id, channel=channel, ts=ts, blocks=message["blocks"])
        )

    def click_answer(self, user: str, action_id: str, answer: SlackCall) -> BoltResponse:
        """`user` clicks `action_id` in an ephemeral answer the bot gave through a response_url."""
        return self.send(
            self.click_payload(
                user,
                action_id,
                channel=HELPDESK,
                ts=f"{time.time():.6f}",
                blocks=answer.blocks,
                ephemeral=True,
            )
        )

    def submit(self, user: str, view_id: str, values: JSON | None = None) -> BoltResponse:
        """`user` submits the open view `view_id` with `{block_id: value}` typed or chosen."""
        view = copy.deepcopy(self.out.views[view_id])
        values = dict(values or {})
        state: JSON = {}
        for block, element in iter_elements(view.get("blocks")):
            if block.get("type") != "input":
                continue
            bid, aid = block.get("block_id", ""), element.get("action_id", "")
            if bid in values:
                state.setdefault(bid, {})[aid] = element_state(element, values.pop(bid))
            else:
                state.setdefault(bid, {})[aid] = element_state(element, touched=False)
        assert not values, f"not inputs of the view: {sorted(values)}"
        view["state"] = {"values": state}
        return self.send(
            {
                "type": "view_submission",
                "user": {"id": user, "name": user.lower(), "team_id": "T0FAKE"},
                "api_app_id": "A0FAKE",
                "team": {"id": "T0FAKE"},
                "trigger_id": self._trigger(),
                "view": view,
                "response_urls": [],
            }
        )


def _element(blocks: list[JSON], action_id: str) -> tuple[JSON, JSON]:
    for block, element in iter_elements(blocks):
        if element.get("action_id") == action_id:
            return block, element
    raise AssertionError(f"no element {action_id} in the message")


def input_block_ids(view: JSON) -> set[str]:
    """The block ids a `response_action: errors` may name (Slack shows errors on inputs only)."""
    return {b.get("block_id", "") for b in view.get("blocks") or [] if b.get("type") == "input"}
