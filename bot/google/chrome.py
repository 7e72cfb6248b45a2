"""Chrome OS devices through the Admin SDK Directory API (admin/directory_v1).

One method per operation; every call goes through Executor.execute.
Reference: https://developers.google.com/workspace/admin/directory/reference/rest/v1/chromeosdevices
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

from bot.blocks import esc
from bot.errors import DeviceBotError, OutcomeUnknown, ValidationError
from bot.google import discovery
from bot.google.client import Executor
from bot.google.errors import map_rpc_status
from bot.google.results import DeviceResult, Page, read_back
from bot.google.transport import ServiceFactory

MAX_LIST_RESULTS = 300  # chromeosdevices.list maxResults
#: the largest command file (screenshot, logs, support packet) fetched to upload to Slack
MAX_DOWNLOAD_BYTES = 100 * 1024 * 1024
CHUNK = 50  # batchChangeStatus and moveDevicesToOu take at most 50 ids

PATCHABLE_FIELDS = frozenset(
    {"annotatedUser", "annotatedLocation", "annotatedAssetId", "notes", "orgUnitPath"}
)
_LIST = "chromeosdevices.list"
_BATCH = "BatchChangeChromeOsDeviceStatusRequest"
ORDER_BY = frozenset(discovery.enum(discovery.DIRECTORY, f"{_LIST}?orderBy"))
PROJECTIONS = frozenset(discovery.enum(discovery.DIRECTORY, f"{_LIST}?projection"))
SORT_ORDERS = frozenset(discovery.enum(discovery.DIRECTORY, f"{_LIST}?sortOrder"))

StatusAction = Literal["DISABLE", "REENABLE", "DEPROVISION"]
_ACTION_PREFIX = "CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_"
STATUS_ACTIONS = tuple(
    v.removeprefix(_ACTION_PREFIX)
    for v in discovery.enum(discovery.DIRECTORY, f"{_BATCH}.changeChromeOsDeviceStatusAction")
)
#: the status a device shows once a status action took effect
STATUS_AFTER = {"DISABLE": "DISABLED", "REENABLE": "ACTIVE", "DEPROVISION": "DEPROVISIONED"}
_VERBS = {"DISABLE": "disable", "REENABLE": "re-enable", "DEPROVISION": "deprovision"}

#: the reasons an admin may give for deprovisioning, with the description of each: the
#: four the `action` reference lists (lower-case there); each is sent as batchChangeStatus's
#: DEPROVISION_REASON_<upper>, a member of the discovery enum (tests/test_sandbox_schema.py
#: checks)
DEPROVISION_REASON_TEXT = {
    "different_model_replacement": "Use if you're upgrading or replacing your device with a newer"
    " model of the same device.",
    "retiring_device": "Use if you're reselling, donating, or permanently removing the device"
    " from use.",
    "same_model_replacement": "Use if a hardware issue was encountered on a device and it is being"
    " replaced with the same model or a like-model replacement from a repair vendor / manufacturer.",
    "upgrade_transfer": "Use if you're replacing your Cloud Ready devices with Chromebooks within"
    " one year.",
}
DEPROVISION_REASONS = tuple(DEPROVISION_REASON_TEXT)

COMMAND_TYPES = frozenset(
    discovery.enum(discovery.DIRECTORY, "DirectoryChromeosdevicesIssueCommandRequest.commandType")
)

DIRECTORY_FORBIDDEN_HINT = (
    "Check that the service account has domain-wide delegation for the scope "
    "https://www.googleapis.com/auth/admin.directory.device.chromeos and that "
    "GOOGLE_ADMIN_EMAIL is an admin allowed to manage Chrome devices."
)


def _reason_short(reason: str) -> str:
    short = reason.strip().lower().removeprefix("deprovision_reason_")
    if short not in DEPROVISION_REASONS:
        raise ValidationError(
            f"Unknown deprovision reason {esc(repr(reason))}; choose one of: "
            + ", ".join(DEPROVISION_REASONS),
            field="deprovision_reason",
        )
    return short


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _ids(device_ids: Sequence[str] | str) -> list[str]:
    ids = [device_ids] if isinstance(device_ids, str) else list(device_ids)
    ids = list(dict.fromkeys(i.strip() for i in ids if i and i.strip()))
    if not ids:
        raise ValidationError("No device given.", field="device_ids")
    return ids


class ChromeApi:
    """The Directory API calls the bot makes for Chrome OS devices of one customer."""

    def __init__(self, customer_id: str, services: ServiceFactory, executor: Executor) -> None:
        self.customer_id = customer_id
        self.services = services
        self.executor = executor

    def _devices(self) -> Any:
        return self.services.resource("chromeosdevices")

    def _customer_chromeos(self) -> Any:
        return self.services.resource("customer", "devices", "chromeos")

    # ---- reads ------------------------------------------------------------------------

    def list_devices(
        self,
        query: str | None = None,
        *,
        order_by: str | None = None,
        sort_order: str | None = None,
        projection: str = "FULL",
        page_token: str | None = None,
        max_results: int = 100,
        org_unit_path: str | None = None,
        fields: str | None = None,
    ) -> Page:
        """One page of chromeosdevices.list (Directory query syntax: user:, id:, status:, …).

        `fields` asks for a partial response, e.g. `nextPageToken,chromeosdevices(meid)`.
        """
        if not 1 <= max_results <= MAX_LIST_RESULTS:
            raise ValidationError(
                f"max_results must be from 1 to {MAX_LIST_RESULTS}, got {max_results}",
                field="max_results",
            )
        if order_by is not None and order_by not in ORDER_BY:
            raise ValidationError(
                f"Cannot sort by {esc(repr(order_by))}; choose one of: "
                + ", ".join(sorted(ORDER_BY)),
                field="order_by",
            )
        if sort_order is not None:
            sort_order = sort_order.upper()
            if sort_order not in SORT_ORDERS:
                raise ValidationError(
                    "sort_order must be ASCENDING or DESCENDING", field="sort_order"
                )
        projection = self._projection(projection)
        params: dict[str, Any] = {
            "customerId": self.customer_id,
            "projection": projection,
            "maxResults": max_results,
        }
        optional = {
            "query": query or None,
            "orderBy": order_by,
            "sortOrder": sort_order,
            "pageToken": page_token,
            "orgUnitPath": org_unit_path,
            "fields": fields,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        what = f"search Chrome devices ({query})" if query else "list Chrome devices"
        response = self.executor.execute(self._devices().list(**params), mutation=False, what=what)
        return Page(
            items=list(response.get("chromeosdevices") or []),
            next_page_token=response.get("nextPageToken") or None,
        )

    def count(self, query: str | None = None) -> int:
        """How many Chrome devices match `query` (countChromeOsDevices; same query language)."""
        request = self._customer_chromeos().countChromeOsDevices(
            customerId=self.customer_id, **({"filter": query} if query else {})
        )
        what = f"count Chrome devices ({query})" if query else "count Chrome devices"
        response = self.executor.execute(request, mutation=False, what=what)
        return int(response.get("count") or 0)

    def iter_devices(
        self,
        query: str | None = None,
        *,
        projection: str = "BASIC",
        page_size: int = MAX_LIST_RESULTS,
    ) -> Iterator[dict[str, Any]]:
        """Every device matching `query`, page after page (a generator: pages fetched lazily)."""
        token: str | None = None
        while True:
            page = self.list_devices(
                query, projection=projection, page_token=token, max_results=page_size
            )
            yield from page.items
            token = page.next_page_token
            if not token:
                return

    def get(self, device_id: str, projection: str = "FULL") -> dict[str, Any]:
        """One Chrome device by its deviceId."""
        request = self._devices().get(
            customerId=self.customer_id,
            deviceId=self._device_id(device_id),
            projection=self._projection(projection),
        )
        return dict(
            self.executor.execute(request, mutation=False, what=f"get Chrome device {device_id}")
        )

    def get_command(self, device_id: str, command_id: str) -> dict[str, Any]:
        """The state (and result, once executed) of a remote command."""
        request = (
            self._customer_chromeos()
            .commands()
            .get(
                customerId=self.customer_id,
                deviceId=self._device_id(device_id),
                commandId=str(command_id),
            )
        )
        what = f"read command {command_id} of Chrome device {device_id}"
        return dict(self.executor.execute(request, mutation=False, what=what))

    # ---- mutations --------------------------------------------------------------------

    def patch(self, device_id: str, fields: dict[str, str]) -> dict[str, Any]:
        """Update annotations (user, location, asset id, notes) or the OU of one device."""
        unknown = sorted(set(fields) - PATCHABLE_FIELDS)
        if unknown:
            raise ValidationError(
                f"Cannot change {esc(', '.join(unknown))}; only "
                + ", ".join(sorted(PATCHABLE_FIELDS))
                + " may be changed.",
                field=unknown[0],
            )
        if not fields:
            raise ValidationError("Nothing to change.")
        request = self._devices().patch(
            customerId=self.customer_id,
            deviceId=self._device_id(device_id),
            projection="FULL",
            body=dict(fields),
        )
        what = f"update Chrome device {device_id}"
        return dict(self.executor.execute(request, mutation=True, what=what))

    def change_status(
        self,
        device_ids: Sequence[str] | str,
        action: StatusAction,
        deprovision_reason: str | None = None,
    ) -> list[DeviceResult]:
        """Disable, re-enable or deprovision devices via batchChangeStatus (chunks of 50).

        Returns one DeviceResult per device. A chunk that fails as a whole (e.g. 400) marks
        its devices failed with that error; later chunks still run. A lost answer (timeout,
        5xx) leaves the outcome of its devices unknown (`DeviceResult.outcome_unknown`):
        `confirm_status` reads them back; nothing is ever sent twice.
        """
        action = action.upper()  # type: ignore[assignment]
        if action not in STATUS_ACTIONS:
            raise ValidationError(
                f"Unknown status action {esc(repr(action))}; expected DISABLE, REENABLE or DEPROVISION",
                field="action",
            )
        body_extra: dict[str, str] = {}
        if deprovision_reason:
            if action != "DEPROVISION":
                raise ValidationError(
                    "A deprovision reason only goes with DEPROVISION.", field="deprovision_reason"
                )
            body_extra["deprovisionReason"] = (
                "DEPROVISION_REASON_" + _reason_short(deprovision_reason).upper()
            )
        # A missing reason is left for Google to refuse (400), as the API documents.
        verb = _VERBS[action]
        results: list[DeviceResult] = []
        for chunk in _chunks(_ids(device_ids), CHUNK):
            body = {
                "deviceIds": chunk,
                "changeChromeOsDeviceStatusAction": _ACTION_PREFIX + action,
                **body_extra,
            }
            what = f"{verb} {_describe(chunk)}"
            try:
                request = self._customer_chromeos().batchChangeStatus(
                    customerId=self.customer_id, body=body
                )
                response = self.executor.execute(request, mutation=True, what=what)
            except DeviceBotError as exc:
                results.extend(DeviceResult(d, False, exc) for d in chunk)
                continue
            results.extend(self._status_results(chunk, response, verb))
        return results

    def _status_results(
        self, chunk: list[str], response: dict[str, Any], verb: str
    ) -> list[DeviceResult]:
        by_id = {
            str(r.get("deviceId")): r
            for r in response.get("changeChromeOsDeviceStatusResults") or []
        }
        out: list[DeviceResult] = []
        for device_id in chunk:
            item = by_id.get(device_id)
            if item is None:
                error: DeviceBotError = OutcomeUnknown(
                    f"Google returned no result for Chrome device {esc(device_id)}; "
                    "the bot will check its status."
                )
                out.append(DeviceResult(device_id, False, error))
            elif item.get("error"):
                error = map_rpc_status(
                    item["error"],
                    what=f"{verb} Chrome device {device_id}",
                    forbidden_hint=self.executor.forbidden_hint,
                )
                out.append(DeviceResult(device_id, False, error))
            else:
                out.append(DeviceResult(device_id, True, None))
        return out

    def legacy_action(
        self, device_id: str, action: str, deprovision_reason: str | None = None
    ) -> None:
        """Disable, re-enable or deprovision one device via the deprecated chromeosdevices.action."""
        action = action.strip().lower()
        if action not in ("disable", "reenable", "deprovision"):
            raise ValidationError(
                f"Unknown action {esc(repr(action))}; expected disable, reenable or deprovision",
                field="action",
            )
        body: dict[str, str] = {"action": action}
        if deprovision_reason:
            body["deprovisionReason"] = _reason_short(deprovision_reason)
        request = self._devices().action(
            customerId=self.customer_id, resourceId=self._device_id(device_id), body=body
        )
        what = f"{action} Chrome device {device_id}"
        self.executor.execute(request, mutation=True, what=what)

    def move(self, device_ids: Sequence[str] | str, org_unit_path: str) -> list[DeviceResult]:
        """Move devices to an organisational unit via moveDevicesToOu, 50 ids per call.

        A chunk's failure marks its devices failed; the other chunks still run. A lost
        answer leaves its devices' outcome unknown: `confirm_moved` reads them back.
        """
        org_unit_path = org_unit_path.strip()
        if not org_unit_path.startswith("/"):
            raise ValidationError(
                f"An organisational unit path starts with '/', got {esc(repr(org_unit_path))}",
                field="org_unit_path",
            )
        results: list[DeviceResult] = []
        for chunk in _chunks(_ids(device_ids), CHUNK):
            what = f"move {_describe(chunk)} to {org_unit_path}"
            try:
                request = self._devices().moveDevicesToOu(
                    customerId=self.customer_id,
                    orgUnitPath=org_unit_path,
                    body={"deviceIds": chunk},
                )
                self.executor.execute(request, mutation=True, what=what)
            except DeviceBotError as exc:
                results.extend(DeviceResult(d, False, exc) for d in chunk)
                continue
            results.extend(DeviceResult(d, True, None) for d in chunk)
        return results

    # ---- lost answers: read the devices back ------------------------------------------

    def confirm_status(
        self, results: Sequence[DeviceResult], action: StatusAction
    ) -> list[DeviceResult]:
        """Settle each unknown outcome of `change_status` by reading the device's status."""
        action = action.upper()  # type: ignore[assignment]
        target = STATUS_AFTER[action]
        verb = _VERBS[action]
        return read_back(
            results,
            self._read_basic,
            lambda raw: raw.get("status") == target,
            lambda raw: (
                f"Google did not {verb} it: the device is still "
                f"{esc(raw.get('status'))} (read back after the answer was lost)."
            ),
        )

    def confirm_moved(
        self, results: Sequence[DeviceResult], org_unit_path: str
    ) -> list[DeviceResult]:
        """Settle each unknown outcome of `move` by reading the device's organisational unit."""
        wanted = _ou_key(org_unit_path)
        return read_back(
            results,
            self._read_basic,
            lambda raw: _ou_key(str(raw.get("orgUnitPath") or "")) == wanted,
            lambda raw: (
                f"Not moved: the device is in `{esc(raw.get('orgUnitPath'))}` "
                "(read back after the answer was lost)."
            ),
        )

    def _read_basic(self, device_id: str) -> dict[str, Any]:
        return self.get(device_id, "BASIC")

    def issue_command(
        self, device_id: str, command_type: str, payload: dict[str, Any] | None = None
    ) -> str:
        """Issue a remote command (REBOOT, SET_VOLUME, …); returns its commandId."""
        command_type = command_type.strip().upper()
        if command_type not in COMMAND_TYPES:
            raise ValidationError(
                f"Unknown Chrome command {esc(repr(command_type))}; expected one of: "
                + ", ".join(sorted(COMMAND_TYPES)),
                field="command_type",
            )
        if command_type == "SET_VOLUME":
            volume = (payload or {}).get("volume")
            if not isinstance(volume, int) or isinstance(volume, bool) or not 0 <= volume <= 100:
                raise ValidationError(
                    "The volume must be a whole number from 0 to 100.", field="volume"
                )
        body: dict[str, str] = {"commandType": command_type}
        if payload:
            # The API takes the payload as a JSON *string*, e.g. '{"volume": 50}'.
            body["payload"] = json.dumps(payload, separators=(",", ":"))
        request = self._customer_chromeos().issueCommand(
            customerId=self.customer_id, deviceId=self._device_id(device_id), body=body
        )
        what = f"send {command_type} to Chrome device {device_id}"
        response = self.executor.execute(request, mutation=True, what=what)
        return str(response["commandId"])

    def download(self, url: str, *, max_bytes: int = MAX_DOWNLOAD_BYTES) -> bytes:
        """The bytes of a file a command produced (a `downloadUrl` of screenshotFiles /
        deviceFiles), fetched with the bot's own credentials through the choke point.

        The credentials go only to Google (https, a googleapis.com or google.com host) or to
        the API endpoint the bot is configured for (the sandbox): a URL from device data
        pointing elsewhere is refused, never followed with the bot's token.
        """
        if not self._trusted(url):
            raise ValidationError(f"Not a Google download link: `{esc(url[:200])}`.", field="url")
        from googleapiclient.http import HttpRequest

        def body(response: Any, content: bytes) -> bytes:
            return content

        request = HttpRequest(
            self.services.http(), body, url, method="GET", methodId="directory.files.download"
        )
        content = self.executor.execute(request, mutation=False, what="download a device file")
        if not isinstance(content, bytes):
            content = str(content).encode()
        if len(content) > max_bytes:
            raise ValidationError(
                f"The file is larger than {max_bytes // (1024 * 1024)} MB; use its link instead."
            )
        return content

    def _trusted(self, url: str) -> bool:
        endpoint = self.services.endpoint
        if endpoint and url.startswith(endpoint):
            return True
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        return parts.scheme == "https" and (
            host.endswith(".googleapis.com") or host.endswith(".google.com")
        )

    # ---- helpers ----------------------------------------------------------------------

    @staticmethod
    def _projection(projection: str) -> str:
        projection = projection.upper()
        if projection not in PROJECTIONS:
            raise ValidationError("projection must be BASIC or FULL", field="projection")
        return projection

    @staticmethod
    def _device_id(device_id: str) -> str:
        device_id = (device_id or "").strip()
        if not device_id or "/" in device_id:
            raise ValidationError(
                f"Not a Chrome device id: {esc(repr(device_id))}", field="device_id"
            )
        return device_id


def _ou_key(path: str) -> str:
    return path.strip().rstrip("/").lower() or "/"


def _describe(chunk: list[str]) -> str:
    if len(chunk) == 1:
        return f"Chrome device {chunk[0]}"
    return f"{len(chunk)} Chrome devices"
