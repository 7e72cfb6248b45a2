"""The files a Chrome device uploads for a command: a screenshot, a logs archive, a support packet.

Real files (a PNG, a `.tar.gz`, a `.zip`), so a test can open what the bot fetched.
"""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
import zlib


def _png(width: int = 320, height: int = 200) -> bytes:
    """A real PNG (8-bit RGB): a kiosk screen of stripes, as a screenshot would look."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = []
    for y in range(height):
        band = (y * 6) // height
        colour = bytes(((40 + band * 30) % 256, (90 + band * 20) % 256, 160))
        rows.append(b"\x00" + colour * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


def _archive(kind: str, names: dict[str, str]) -> bytes:
    """A real `.tar.gz` (kind "tar.gz") or `.zip` holding `names` (file name → text)."""
    out = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, text in names.items():
                archive.writestr(name, text)
        return out.getvalue()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, text in names.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


SCREENSHOT = _png()
LOGS = _archive(
    "tar.gz",
    {
        "var/log/messages": "sandbox: kiosk app started\nsandbox: network online\n",
        "var/log/chrome/chrome": "sandbox: session running\n",
    },
)
SUPPORT_PACKET = _archive("zip", {"support_packet/system_logs.txt": "sandbox support packet\n"})
