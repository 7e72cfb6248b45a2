"""Lost devices: announce, watch for check-ins, resolve.

A case opens when Android lost mode succeeds or a Chrome device is disabled as
"lost_or_stolen"; it gets one thread in LOST_DEVICE_CHANNEL (a second report reuses it).
The watch job reads every open case's device with as few Google calls as it can — one
Chrome list query (`status:disabled sync:<date>..`) for all Chrome cases, one batch
request per 100 Android cases — and posts each *new* check-in once. Lost mode stopped, `found`, or a
re-enable closes the case and edits the channel message.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from slack_bolt import App

from bot import audit, catalog, dates
from bot.blocks import esc
from bot.cards.device import lost_post
from bot.changes import Change, LostCaseChanged, RequestFinished
from bot.commands import Commands
from bot.dates import when
from bot.devices import Device, android_device, chrome_device
from bot.errors import DeviceBotError
from bot.jobs import JobSpec
from bot.lost_cases import OPEN, RESOLVED, open_case_for
from bot.request_model import Request
from bot.services import Services

log = logging.getLogger(__name__)

BOT = "device-bot"


# ---- Block Kit -----------------------------------------------------------------------------


def case_message(
    case: dict[str, Any], now: float | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The lost-devices channel message of a case (edited on each check-in and when resolved).

    Everything from the device is escaped, the fallback text included: a user field
    reading `<!channel>` must not ping the channel (the header is plain text, never parsed).
    """
    d = json.loads(case["summary"])
    who = d.get("user") or "unknown user"
    title = f"Lost: {esc(d.get('serial') or d['id'])} ({esc(who)})"
    return title, lost_post(case, d, time.time() if now is None else now)


def _reason(request: Request | None) -> str | None:
    """Why the device was reported: the request's reason, and the disable reason by label."""
    if request is None:
        return None
    parts = []
    why = (request.params or {}).get("why")
    if why:
        parts.append(catalog.option_label(str(why)))
    if request.reason:
        parts.append(str(request.reason))
    return " — ".join(parts) or None


# ---- the life of a case ------------------------------------------------------------------------


def report(svc: Services, device: Device, reporter: str, *, request: Request | None = None) -> int:
    """Open a case (or reuse the open one) and announce it in the lost-devices channel."""
    existing = open_case_for(svc, device.platform, device.id)
    channel = svc.settings.lost_device_channel
    if existing is not None:
        audit.record(
            svc.store,
            actor=reporter,
            event="lost_reported_again",
            platform=device.platform,
            device_id=device.id,
            request_id=getattr(request, "id", None),
        )
        if channel and existing["ts"]:
            svc.out.post(
                channel, f"Reported lost again by <@{reporter}>.", thread_ts=existing["ts"]
            )
        return int(existing["id"])
    summary = {**device.summary(), "network": device.network, "reason": _reason(request)}
    if request is not None and request.requester_channel and request.requester_ts:
        summary["request_link"] = svc.out.permalink(request.requester_channel, request.requester_ts)
    now = svc.clock()
    with svc.store.transaction() as db:
        cursor = db.execute(
            "INSERT INTO lost_devices(platform, device_id, serial, summary, state, reported_by, reported_at,"
            " request_id, channel, last_checkin) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                device.platform,
                device.id,
                device.serial,
                json.dumps(summary),
                OPEN,
                reporter,
                now,
                getattr(request, "id", None),
                channel,
                device.last_seen,
            ],
        )
        case_id = int(cursor.lastrowid or 0)
        audit.record(
            svc.store,
            actor=reporter,
            event="lost_reported",
            platform=device.platform,
            device_id=device.id,
            request_id=getattr(request, "id", None),
            detail={"case": case_id},
        )
    svc.changed(LostCaseChanged(device.platform, device.id))
    if channel:
        case = _case(svc, case_id)
        text, blocks = case_message(case, svc.clock())
        ts = svc.out.post(channel, text, blocks)
        with svc.store.transaction() as db:
            db.execute("UPDATE lost_devices SET ts = ? WHERE id = ?", [ts, case_id])
    return case_id


def resolve(svc: Services, platform: str, device_id: str, actor: str, how: str) -> bool:
    """Close the open case of a device, say so in its thread and edit the channel message."""
    case = open_case_for(svc, platform, device_id)
    if case is None:
        return False
    now = svc.clock()
    with svc.store.transaction() as db:
        cursor = db.execute(
            "UPDATE lost_devices SET state = ?, resolved_by = ?, resolved_at = ?, resolution = ?"
            " WHERE id = ? AND state = ?",
            [RESOLVED, actor, now, how, case["id"], OPEN],
        )
        if cursor.rowcount != 1:
            return False
        audit.record(
            svc.store,
            actor=actor,
            event="lost_resolved",
            platform=platform,
            device_id=device_id,
            detail={"case": case["id"], "how": how},
        )
    svc.changed(LostCaseChanged(platform, device_id))
    case = _case(svc, case["id"])
    if case["channel"] and case["ts"]:
        svc.out.post(
            case["channel"],
            f":white_check_mark: Found — <@{actor}> {when(now)}: {how}",
            thread_ts=case["ts"],
        )
        text, blocks = case_message(case, svc.clock())
        svc.out.update(case["channel"], case["ts"], text, blocks)
    return True


def _case(svc: Services, case_id: int) -> dict[str, Any]:
    return next(svc.store.db().query("SELECT * FROM lost_devices WHERE id = ?", [case_id]))


def on_request_finished(svc: Services, request: Request, state: str) -> None:
    """Every request's end passes here: an action whose spec names a lost case (`spec.lost`)
    opens or closes one."""
    if state != "succeeded" or request.params.get("bulk"):
        return  # a bulk request's devices are not announced one by one
    effect = request.spec.lost
    if effect is None or not effect.applies(request.params):
        return
    try:
        if effect.opens:
            device = svc.devices.get(request.platform, request.device_ids[0])
            report(svc, device, request.requester, request=request)
        else:
            how = effect.closes
            if request.result.get("lostMode") == "NOT_IN_LOST_MODE":
                how = "the device was not in lost mode any more"
            resolve(
                svc,
                request.platform,
                request.device_ids[0],
                request.decided_by or request.requester,
                how,
            )
    except DeviceBotError as exc:
        log.warning("lost-device bookkeeping for %s failed: %s", request.id, exc.message)


# ---- the watch ------------------------------------------------------------------------------------


def watch(svc: Services) -> int:
    """Post each new check-in of an open case once; no Google call when no case is open."""
    cases = list(svc.store.db().query("SELECT * FROM lost_devices WHERE state = ?", [OPEN]))
    if not cases:
        return 0
    seen: dict[str, Device] = {}
    chrome_cases = [c for c in cases if c["platform"] == "chrome"]
    android_cases = [c for c in cases if c["platform"] == "android"]
    if chrome_cases and svc.google.chrome is not None:
        since = min(c["reported_at"] for c in chrome_cases)
        day = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d")
        wanted = {c["device_id"] for c in chrome_cases}
        for raw in svc.google.chrome.iter_devices(
            f"status:disabled sync:{day}..", projection="FULL"
        ):
            if raw.get("deviceId") in wanted:
                seen[raw["deviceId"]] = chrome_device(raw)
    if android_cases and svc.google.android is not None:
        # AMAPI has no filter: one batch request reads up to 100 lost devices
        answers = svc.google.android.get_devices([c["device_id"] for c in android_cases])
        for device_id, answer in answers.items():
            if isinstance(answer, dict):
                seen[device_id] = android_device(answer)
            else:
                log.info("lost watch: cannot read %s: %s", device_id, answer)
    posted = 0
    for case in cases:
        device = seen.get(case["device_id"])
        if device is None or not device.last_seen:
            continue
        last_known = max(dates.epoch_of(case["last_checkin"]) or 0.0, 0.0)
        if (dates.epoch_of(device.last_seen) or 0.0) <= last_known:
            continue
        summary = {
            **json.loads(case["summary"]),
            "last_seen": device.last_seen,
            "network": device.network or _network_words(device),
        }
        with svc.store.transaction() as db:
            cursor = db.execute(
                "UPDATE lost_devices SET last_checkin = ?, summary = ? WHERE id = ? AND state = ? AND"
                " (last_checkin IS NULL OR last_checkin = ?)",
                [device.last_seen, json.dumps(summary), case["id"], OPEN, case["last_checkin"]],
            )
            if cursor.rowcount != 1:
                continue
            audit.record(
                svc.store,
                actor=BOT,
                event="lost_checkin",
                platform=device.platform,
                device_id=device.id,
                detail={"at": device.last_seen, "network": _network_words(device)},
            )
        svc.changed(LostCaseChanged(device.platform, device.id))
        if case["channel"] and case["ts"]:
            svc.out.post(
                case["channel"],
                f":satellite_antenna: The device checked in {when(device.last_seen)}"
                f" — {esc(_network_words(device))}",
                thread_ts=case["ts"],
            )
            text, blocks = case_message(_case(svc, case["id"]), svc.clock())
            try:
                svc.out.update(case["channel"], case["ts"], text, blocks)
            except Exception:
                log.exception("could not update the lost post of case %s", case["id"])
        posted += 1
    return posted


def _network_words(device: Device) -> str:
    raw = device.raw
    if device.platform == "chrome":
        nets = raw.get("lastKnownNetwork") or []
        if nets:
            first = nets[0]
            return f"IP {first.get('ipAddress') or '?'}, WAN IP {first.get('wanIpAddress') or '?'}"
        return "no network reported"
    info = raw.get("networkInfo") or {}
    parts = []
    if info.get("networkOperatorName"):
        parts.append(f"operator {info['networkOperatorName']}")
    for tel in info.get("telephonyInfos") or []:
        if tel.get("carrierName"):
            parts.append(f"carrier {tel['carrierName']}")
    if info.get("wifiMacAddress"):
        parts.append(f"Wi-Fi MAC {info['wifiMacAddress']}")
    return ", ".join(parts) or "no network reported"


def jobs(svc: Services) -> list[JobSpec]:
    """The lost-device watch."""
    return [JobSpec("lost-watch", watch, svc.settings.lost_watch_interval)]


def register(app: App, svc: Services, commands: Commands) -> None:
    """Lost devices have no listeners of their own: cases open and close as requests finish."""
    svc.hooks.append(on_change)


def on_change(svc: Services, change: Change) -> None:
    """The hook: a request that ran and ended may open or close a lost case."""
    if isinstance(change, RequestFinished):
        on_request_finished(svc, change.request, change.request.state)
