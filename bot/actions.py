"""Acting on devices: a `/device` sub-command per action, the device-card buttons, the action modal.

Every path ends the same way: a modal that shows exactly which device(s) will be touched and
asks for the action's parameters; on submit, `approvals.submit` records the request and asks
for approval or runs it. Nothing here calls a Google mutation.

Blast radius: a target is only ever an exact match (`devices.resolve`);
a reference naming several devices gets a picker; a bulk move over 10 devices asks for the
device count to be typed.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot import annotation, approvals, capabilities, catalog, ids, modals, moves, requests
from bot.blocks import esc, section
from bot.commands import Commands, Invocation, Subcommand, refuse
from bot.devices import Device
from bot.errors import Ambiguous, Conflict, DeviceBotError, ValidationError
from bot.modals import Metadata
from bot.roles import Role
from bot.services import Services

log = logging.getLogger(__name__)

DRAFT_TTL = 3600.0
MAX_DRAFTS = 500

#: where a move over MAX_DEVICES_PER_COMMAND devices is sent (`/device bulk <action>`)
BULK_MOVE = "/device bulk move"


class Drafts:
    """The devices a modal was opened for, kept server-side until it is submitted.

    A move may target hundreds of devices: their ids do not fit in Slack's 3000-character
    private_metadata, and the approver must see the summaries read when the modal opened.
    """

    def __init__(self, ttl: float = DRAFT_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, tuple[Device, ...]]] = {}

    def put(self, devices: Sequence[Device]) -> str:
        """Keep `devices`; returns the key the modal carries."""
        key = secrets.token_urlsafe(12)
        now = self.clock()
        with self._lock:
            for old in [k for k, (t, _) in self._items.items() if now - t > self.ttl]:
                del self._items[old]
            while len(self._items) >= MAX_DRAFTS:
                del self._items[next(iter(self._items))]
            self._items[key] = (now, tuple(devices))
        return key

    def peek(self, key: str | None) -> tuple[Device, ...] | None:
        """The devices kept under `key`, left in place; None if unknown or expired."""
        with self._lock:
            item = self._items.get(key or "")
        if item is None or self.clock() - item[0] > self.ttl:
            return None
        return item[1]

    def take(self, key: str | None) -> tuple[Device, ...] | None:
        """The devices kept under `key` (once), or None if unknown or expired."""
        if not key:
            return None
        with self._lock:
            item = self._items.pop(key, None)
        if item is None or self.clock() - item[0] > self.ttl:
            return None
        return item[1]


def register(app: App, svc: Services, commands: Commands) -> None:
    """Add the action sub-commands, the device-card button handler and the modal submission."""
    drafts = Drafts()
    svc.extras["action_drafts"] = drafts

    def update(view_id: str, view: dict[str, Any]) -> None:
        try:
            svc.out.update_view(view_id, view)
        except SlackApiError as exc:  # the user closed the modal meanwhile: nothing to show
            log.info("views.update %s failed: %s", view_id, exc.response.get("error"))

    def show_form(
        view_id: str,
        name: str,
        devices: Sequence[Device],
        channel: str | None,
        preset: dict[str, str],
        *,
        warnings: Sequence[str] = (),
        left_out: Sequence[str] = (),
    ) -> None:
        """Replace the loading view with the action's modal, or with why it cannot run."""
        platforms = {d.platform for d in devices}
        if len(platforms) > 1:
            android = [d.serial or d.short_id for d in devices if d.platform == "android"]
            raise ValidationError(
                f"Only Chrome OS devices can be moved; these are Android: {', '.join(android[:20])}."
            )
        spec = catalog.action_for(name, devices[0].platform)
        for device in devices if spec.kind != "move" else ():
            refusal = capabilities.refusal(spec, capabilities.facts_for(svc, device))
            if refusal:
                raise ValidationError(refusal)
        initial: dict[str, Any] = dict(preset)
        if len(devices) == 1:
            initial = {**catalog.device_initial(spec, devices[0].ownership), **initial}
        if spec.kind == "patch":
            raw = devices[0].raw
            for f in spec.fields:
                initial.setdefault(f.name, raw.get(f.name))
        view = modals.action_view(
            spec,
            devices,
            channel=channel,
            needs_approval=svc.settings.needs_approval(spec.name),
            initial=initial,
            draft=drafts.put(devices),
            warnings=warnings,
            left_out=left_out,
        )
        update(view_id, view)

    def run_into(view_id: str, title: str, work: Callable[[], None]) -> None:
        """Run `work`; any failure replaces the loading view with the reason."""
        try:
            work()
        except DeviceBotError as exc:
            update(view_id, modals.error_view(title, exc.message))
        except Exception:
            update(
                view_id,
                modals.error_view(title, "Something went wrong on our side; nothing was done."),
            )
            raise

    def open_for_ref(
        view_id: str, name: str, ref: str, channel: str | None, preset: dict[str, str], title: str
    ) -> None:
        def work() -> None:
            try:
                device = svc.devices.resolve(ref)
            except Ambiguous as exc:
                candidates = [c for c in exc.candidates if isinstance(c, Device)]
                meta = Metadata(action=name, platform="", channel=channel, preset=preset)
                update(view_id, modals.picker_view(name, ref, candidates, metadata=meta))
                return
            show_form(view_id, name, [device], channel, preset)

        run_into(view_id, title, work)

    def action_command(inv: Invocation) -> None:
        """`/device <action> <ref>`: open the modal at once, then fill it in from Google."""
        words = inv.words
        preset: dict[str, str] = {}
        if inv.name == "volume" and len(words) == 2 and words[0].isascii() and words[0].isdigit():
            preset["volume"] = words[0]
            words = words[1:]
        if len(words) != 1:
            inv.reply(f"Usage: `{catalog.usage(inv.name)}` (one device per command).")
            return
        ref = words[0]
        title = catalog.label(inv.name)
        view_id = svc.out.open_view(
            inv.trigger_id, modals.loading_view(title, f"Looking up `{esc(ref)}`…")
        )
        open_for_ref(view_id, inv.name, ref, inv.channel_id, preset, title)

    def move_command(inv: Invocation) -> None:
        """`/device move <ou> <ref…>`: every reference resolved exactly, then the list to confirm."""
        words = inv.words
        if len(words) < 2:
            inv.reply(f"Usage: `{catalog.usage('move')}`")
            return
        ou, refs = words[0], list(dict.fromkeys(words[1:]))
        limit = svc.settings.max_devices_per_command
        if len(refs) > limit:
            inv.reply(
                f":warning: `/device move` takes at most {limit} devices per command; you named"
                f" {len(refs)}, so nothing was looked up. Move larger sets with `{BULK_MOVE}`"
                " (a pasted list or a CSV file, one approval), or split the list."
            )
            return
        title = "Move"
        view_id = svc.out.open_view(
            inv.trigger_id, modals.loading_view(title, f"Looking up {len(refs)} device(s)…")
        )

        def work() -> None:
            move = moves.plan(svc, refs)
            ou_path, ou_problem = moves.typed_ou(svc, ou)
            if not move.devices:
                lines = [section(f"• {p}") for p in move.problems[: modals.PICKER_MAX]]
                message = "Nothing to move: none of the devices given resolves."
                if ou_problem:
                    message += f" Also, {ou_problem[0].lower()}{ou_problem[1:]}"
                update(view_id, modals.error_view(title, message, blocks=lines))
                return
            show_form(
                view_id,
                "move",
                list(move.devices),
                inv.channel_id,
                {"ou": ou_path or ""},
                warnings=[ou_problem] if ou_problem else [],
                left_out=move.problems,
            )

        run_into(view_id, title, work)

    def card_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        """A device card's (or a picker's) action button: open the action's modal for that device."""
        ack()
        user = body["user"]["id"]
        name = ids.action_from_id(action["action_id"])
        if svc.roles.role_of(user) < Role.OPERATOR:
            refuse(svc, user, f"button {name}")
        platform, _, device_id = str(action.get("value") or "").partition("|")
        title = catalog.label(name)
        loading = modals.loading_view(title, "Reading the device…")
        container = body.get("container") or {}
        preset: dict[str, str] = {}
        if container.get("type") == "view":  # a picker inside our own modal
            view = body["view"]
            try:
                meta = Metadata.from_json(view.get("private_metadata", ""))
                channel, preset = meta.channel, meta.preset
            except ValidationError:  # a button in someone else's modal (e.g. search results)
                channel = None
            view_id = view["id"]
            update(view_id, loading)
        else:
            channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
            view_id = svc.out.open_view(body["trigger_id"], loading)

        def work() -> None:
            if platform not in ("chrome", "android") or not device_id:
                raise ValidationError("That button is out of date; look the device up again.")
            show_form(view_id, name, [svc.devices.get(platform, device_id)], channel, preset)

        run_into(view_id, title, work)

    def submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        """The action modal was submitted: validate next to the field, then hand to approvals."""
        user = body["user"]["id"]
        meta = Metadata.from_json(view.get("private_metadata", ""))
        spec = catalog.action_for(meta.action, meta.platform)
        values = modals.submitted_values((view.get("state") or {}).get("values") or {})
        inputs = [f.name for f in spec.fields]
        try:
            if meta.count > modals.CONFIRM_THRESHOLD:
                modals.check_count(values.get(ids.BlockId.CONFIRM_COUNT), meta.count)
            params = spec.parse(values)
            if spec.kind == "move":
                params["ou"] = moves.check_ou(svc, params["ou"])
            for device in drafts.peek(meta.draft) or ():
                catalog.check_device(spec, params, device.ownership, device)
            if spec.kind == "patch":
                params = _annotation_changes(spec, drafts.peek(meta.draft), params, values)
        except ValidationError as exc:
            target = exc.field if exc.field in values else (inputs[0] if inputs else None)
            if target is None:
                ack()
                raise
            ack(response_action="errors", errors={target: exc.message})
            return
        ack()
        if svc.roles.role_of(user) < Role.OPERATOR:
            refuse(svc, user, f"submit {spec.name}")
        # one form, one request: a second submission of the same view (or of its draft) is
        # refused, whatever its trigger id (the store is shared by every bot process)
        first = svc.store.first_delivery("submission:" + modals.submission_key(view))
        if not first or (meta.draft and not svc.store.first_delivery("draft:" + meta.draft)):
            raise Conflict(
                f"This `{spec.name}` form was already submitted; its request is in your thread."
                " It was not submitted twice."
            )
        devices = drafts.take(meta.draft)
        if devices is None:
            if not meta.device_ids or len(meta.device_ids) != meta.count:
                raise ValidationError(
                    "That form expired before it was submitted; run the command again."
                )
            devices = tuple(svc.devices.get(meta.platform, d) for d in meta.device_ids)
        secret = {name: params.pop(name) for name in spec.secret_fields() if name in params}
        # the action's own reason field, or the one the form adds when approval is needed
        reason = str(params.pop("reason", "") or values.get("reason") or "").strip()[:500]
        request_id = approvals.submit(
            svc,
            requests.NewRequest(
                action=spec.name,
                platform=spec.platform,
                devices=tuple(devices),
                params=params,
                requester=user,
                reason=reason,
                secret=secret or None,
                channel=meta.channel,
            ),
        )
        log.info("request %s: %s on %d device(s) by %s", request_id, spec.name, len(devices), user)

    for name in catalog.names():
        commands.add(
            Subcommand(
                name=name,
                handler=move_command if name == "move" else action_command,
                usage=catalog.usage(name),
                summary=catalog.summary(name),
                example=catalog.specs_named(name)[0].example,
                min_role=Role.OPERATOR,
            )
        )

    def ou_options(ack: Ack, body: dict[str, Any]) -> None:
        """The move modal's OU picker asks for options as the requester types."""
        user = str((body.get("user") or {}).get("id") or "")
        ack(options=moves.options(svc, user, str(body.get("value") or "")))

    app.action(ids.DEVICE_ACTION_PATTERN)(card_button)
    app.view(ids.CallbackId.ACTION)(submitted)
    app.options(moves.OU_FIELD)(ou_options)


def _annotation_changes(
    spec: catalog.ActionSpec,
    devices: tuple[Device, ...] | None,
    params: dict[str, Any],
    values: dict[str, Any],
) -> dict[str, Any]:
    """Annotate: only the changed fields, compared with what the modal showed when it opened."""
    if not devices:
        raise ValidationError("That form expired before it was submitted; run the command again.")
    clear = values.get(ids.BlockId.CLEAR_FIELDS) or []
    return annotation.changes(spec.fields, devices[0].raw, params, clear)
