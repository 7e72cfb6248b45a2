"""Admin SDK Directory API: ChromeOS devices (`admin/directory/v1/customer/{c}/devices/chromeos…`).

Rules follow the API reference: status changes (disable only ACTIVE, reenable only
DISABLED, deprovision ACTIVE or DISABLED with a reason; anything else is `412 Illegal
device state transition`; an ACTIVE device holds a licence, so disabling or
deprovisioning frees one and reenabling with no free licence is `412 Insufficient
licenses`), `maxResults` ≤ 300, ≤ 50 ids for `moveDevicesToOu` and
`batchChangeStatus`. Commands walk PENDING → SENT_TO_CLIENT → ACKED_BY_CLIENT →
EXECUTED_BY_CLIENT over `command_delay` seconds, or stay PENDING until they EXPIRE
on a device set never to acknowledge. TAKE_A_SCREENSHOT adds to the device's
`screenshotFiles`, CAPTURE_LOGS and FETCH_SUPPORT_PACKET to its `deviceFiles`
(download links served by the sandbox); the command's `commandResultPayload` then
carries `{"downloadUrl": …}` too.

This module routes a request; `chrome_devices` (get, list, count, patch, move),
`chrome_status` (disable, reenable, deprovision), `chrome_commands` (issueCommand,
commands.get) and `orgunits` (orgunits.list) answer it.
The rules here that are our reading rather than documented fact are listed, with their
reasons, in `bot/sandbox/ASSUMPTIONS.md`.
"""

from __future__ import annotations

from urllib.parse import unquote

from bot.sandbox import chrome_commands, chrome_devices, chrome_status, orgunits
from bot.sandbox.api import ApiError, Request, Response
from bot.sandbox.fleet import Fleet

PREFIX = "admin/directory/v1/customer/"


def handle(fleet: Fleet, req: Request) -> Response:
    """Route one Directory API ChromeOS request (path starts with PREFIX)."""
    rest = req.path[len(PREFIX) :]
    customer, sep, tail = rest.partition("/orgunits")
    if sep and tail == "" and "/" not in customer:
        _customer(fleet, customer)
        _method(req.method, "GET")
        return orgunits.list_org_units(fleet, req)
    customer, sep, rest = rest.partition("/devices/chromeos")
    if not sep:
        raise ApiError(404, "Method not found.")
    _customer(fleet, customer)
    m = req.method
    if rest == "":
        _method(m, "GET")
        return chrome_devices.list_devices(fleet, req)
    if rest == ":batchChangeStatus":
        _method(m, "POST")
        return chrome_status.batch_change_status(fleet, req)
    if rest == ":countChromeOsDevices":
        _method(m, "GET")
        return chrome_devices.count(fleet, req)
    if not rest.startswith("/"):
        raise ApiError(404, "Method not found.")
    parts = rest[1:].split("/")
    if parts == ["moveDevicesToOu"]:
        _method(m, "POST")
        return chrome_devices.move(fleet, req)
    if len(parts) == 1:
        raw = parts[0]
        if raw.endswith(":issueCommand"):
            _method(m, "POST")
            return chrome_commands.issue_command(fleet, req, unquote(raw[: -len(":issueCommand")]))
        device_id = unquote(raw)
        if m == "GET":
            return Response(
                200,
                chrome_devices.view(
                    chrome_devices.device(fleet, device_id), req.param("projection")
                ),
            )
        if m in ("PATCH", "PUT"):
            return chrome_devices.patch(fleet, req, device_id)
        raise ApiError(404, "Method not found.")
    if len(parts) == 2 and parts[1] == "action":
        _method(m, "POST")
        return chrome_status.action(fleet, req, unquote(parts[0]))
    if len(parts) == 3 and parts[1] == "commands":
        _method(m, "GET")
        return chrome_commands.get_command(fleet, unquote(parts[0]), unquote(parts[2]))
    raise ApiError(404, "Method not found.")


def _customer(fleet: Fleet, customer: str) -> None:
    if unquote(customer) not in ("my_customer", fleet.customer_id):
        raise ApiError(403, "Not Authorized to access this resource/api", reason="forbidden")


def _method(actual: str, expected: str) -> None:
    if actual != expected:
        raise ApiError(404, "Method not found.")
