"""The Slack emulator's file uploads: Slack's external upload flow, in three steps.

1. ``files.getUploadURLExternal`` (``filename``, ``length`` in bytes) answers an
   ``upload_url`` and a ``file_id``;
2. the client POSTs the file's bytes to ``upload_url`` (answered ``200 OK - <length>``);
3. ``files.completeUploadExternal`` (``files`` = JSON list of ``{"id", "title"}``, optional
   ``channel_id``, ``initial_comment``, ``thread_ts``) finishes it and, with a channel,
   shares the file there as a message carrying ``files``.

https://api.slack.com/messaging/files#uploading_files. A file whose bytes never arrived, or
whose size differs from the announced ``length``, is not completed (``file_not_found`` /
``invalid_arguments`` and a note in ``problems``).

A person's file picked in a modal's ``file_input`` (``user_upload``) reaches the bot as file
objects in the submitted view's state; the bot reads it with ``files.info`` and downloads
``url_private_download`` with its token (``Authorization: Bearer``), as on Slack.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

from bot.playground.slack_emulator.records import SlackApiError
from bot.playground.slack_emulator.workspace import BOT_USER_ID

if TYPE_CHECKING:
    from bot.playground.slack_emulator.web_api import WebApi

JSON = dict[str, Any]
UPLOAD_PATH = "/upload/v1/"
FILES_PATH = "/files/"
MAX_FILE_BYTES = 1024 * 1024 * 1024  # Slack: files up to 1 GB


def _mimetype(name: str) -> tuple[str, str]:
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    known = {
        "csv": "text/csv",
        "txt": "text/plain",
        "json": "application/json",
        "png": "image/png",
        "gz": "application/gzip",  # logs (.tar.gz)
        "zip": "application/zip",  # support packets
    }
    return known.get(ext, "application/octet-stream"), ext or "binary"


class FileUploads:
    """Pending and completed uploads of one emulator (guarded by the emulator's lock)."""

    def __init__(self, emu: WebApi) -> None:
        self.emu = emu
        self._pending: dict[str, JSON] = {}  # file_id -> {filename, length, token, data}
        self._by_token: dict[str, str] = {}  # upload token -> file_id
        self._files: dict[str, JSON] = {}  # file_id -> Slack's file object
        self._content: dict[str, bytes] = {}
        self._private: set[str] = set()  # people's files: downloaded with a token only

    def methods(self) -> dict[str, Any]:
        """The Web API methods this adds to the emulator."""
        return {
            "files.getUploadURLExternal": self.get_upload_url,
            "files.completeUploadExternal": self.complete,
            "files.info": self.info,
        }

    # ---- step 1 ---------------------------------------------------------------------------
    def get_upload_url(self, args: JSON) -> JSON:
        filename = str(args.get("filename") or "")
        try:
            length = int(str(args.get("length")))
        except ValueError:
            length = -1
        if not filename or length < 0:
            raise SlackApiError("invalid_arguments")
        if length > MAX_FILE_BYTES:
            raise SlackApiError("file_too_large")
        with self.emu._lock:
            file_id = self.emu._new_id("F")
            token = secrets.token_urlsafe(16)
            self._pending[file_id] = {"filename": filename, "length": length, "data": None}
            self._by_token[token] = file_id
        return {"upload_url": f"{self.emu.base_url}{UPLOAD_PATH}{token}", "file_id": file_id}

    # ---- step 2 ---------------------------------------------------------------------------
    def receive(self, token: str, data: bytes) -> tuple[int, str]:
        """The bytes POSTed to an upload_url; returns (status, text) as Slack answers."""
        with self.emu._lock:
            file_id = self._by_token.get(token)
            pending = self._pending.get(file_id or "")
            if pending is None:
                return 404, "Not Found"
            pending["data"] = data
            self.emu._changed({"kind": "upload", "file_id": file_id})
        return 200, f"OK - {len(data)}"

    # ---- step 3 ---------------------------------------------------------------------------
    def complete(self, args: JSON) -> JSON:
        raw = args.get("files")
        try:
            items = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            items = None
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise SlackApiError("invalid_arguments")
        with self.emu._lock:
            channel = None
            if args.get("channel_id"):
                channel = self.emu._channel(args["channel_id"], need_member=True)
            done: list[JSON] = []
            for item in items:
                file_id = str(item.get("id") or "")
                pending = self._pending.get(file_id)
                if pending is None or pending["data"] is None:
                    raise SlackApiError("file_not_found")
                if len(pending["data"]) != pending["length"]:
                    self.emu.problems.append(
                        f"files.completeUploadExternal: {file_id} announced {pending['length']} bytes,"
                        f" {len(pending['data'])} arrived"
                    )
                    raise SlackApiError("invalid_arguments")
            for item in items:
                file_id = str(item["id"])
                pending = self._pending.pop(file_id)
                name = pending["filename"]
                file = self._file_object(
                    file_id,
                    name,
                    title=str(item.get("title") or name),
                    user=BOT_USER_ID,
                    size=len(pending["data"]),
                    channels=[channel] if channel else [],
                )
                self._files[file_id] = file
                self._content[file_id] = pending["data"]
                done.append(file)
            if channel is not None:
                self.emu._post(
                    channel,
                    str(args.get("initial_comment") or ""),
                    None,
                    args.get("thread_ts") or None,
                    files=[dict(f) for f in done],
                )
            return {"files": [dict(f) for f in done]}

    # ---- a person's file (Block Kit file_input) and files.info -----------------------------
    def user_upload(self, user: str, name: str, data: bytes) -> JSON:
        """A file `user` picked in a modal's file_input: stored, shared nowhere; its object as
        the submitted view's state carries it. Downloading it needs the bot token, as on Slack."""
        with self.emu._lock:
            file_id = self.emu._new_id("F")
            file = self._file_object(
                file_id, name, title=name, user=user, size=len(data), channels=[]
            )
            self._files[file_id] = file
            self._content[file_id] = data
            self._private.add(file_id)
            return dict(file)

    def _file_object(
        self, file_id: str, name: str, *, title: str, user: str, size: int, channels: list[str]
    ) -> JSON:
        """A file object as Slack's Web API returns it (its URLs served by the emulator)."""
        mimetype, filetype = _mimetype(name)
        url = f"{self.emu.base_url}{FILES_PATH}{file_id}/{name}"
        return {
            "id": file_id,
            "created": int(self.emu.clock()),
            "name": name,
            "title": title,
            "mimetype": mimetype,
            "filetype": filetype,
            "user": user,
            "size": size,
            "url_private": url,
            "url_private_download": url,
            "channels": channels,
        }

    def info(self, args: JSON) -> JSON:
        """`files.info` (``file``): the file object."""
        with self.emu._lock:
            file = self._files.get(str(args.get("file") or ""))
            if file is None:
                raise SlackApiError("file_not_found")
            return {"file": dict(file)}

    # ---- for tests and the playground -----------------------------------------------------
    def content(self, file_id: str) -> bytes | None:
        """The bytes of a completed upload."""
        with self.emu._lock:
            return self._content.get(file_id)

    def files(self) -> list[JSON]:
        """Every completed upload's file object, oldest first."""
        with self.emu._lock:
            return [dict(f) for f in self._files.values()]

    def download(self, path: str, token: str | None = None) -> tuple[int, bytes, str]:
        """`GET /files/<id>/<name>`: (status, bytes, content type). A person's file needs the
        bot token (``Authorization: Bearer``), as url_private_download does on Slack."""
        file_id = path[len(FILES_PATH) :].split("/", 1)[0]
        with self.emu._lock:
            file = self._files.get(file_id)
            data = self._content.get(file_id)
            private = file_id in self._private
        if file is None or data is None:
            return 404, b"not found", "text/plain"
        if private and token != self.emu.bot_token:
            return 403, b"not authorized", "text/plain"
        return 200, data, str(file["mimetype"])
