"""The audit chain's key and anchors as values: what the store needs to open a database
and what `bot.audit` chains, anchors and verifies with. No database access here."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.errors import SettingsError

KEY_FILE_SUFFIX = ".audit-key"
ANCHOR_FILE_SUFFIX = ".audit-anchors"


@dataclass(frozen=True)
class AuditKey:
    """The HMAC key of the chain and where it came from (never the key itself in words)."""

    secret: bytes
    source: str  # "AUDIT_KEY" or the key file's path
    generated: bool = False  # a key file the bot made, not a setting

    def mac(self, data: str) -> str:
        return hmac.new(self.secret, data.encode(), hashlib.sha256).hexdigest()

    @property
    def check(self) -> str:
        """A value stored in the database that tells whether a key is the one in use."""
        return self.mac("device-bot audit key check")

    def __repr__(self) -> str:
        return f"AuditKey(source={self.source!r})"


def derive_key(setting: str, source: str, generated: bool = False) -> AuditKey:
    """AUDIT_KEY (or a key file's content) → the 32-byte HMAC key (HKDF-SHA256)."""
    secret = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"device-bot audit chain v1"
    ).derive(setting.encode())
    return AuditKey(secret, source, generated)


def key_file_for(database: Path) -> Path:
    return Path(str(database) + KEY_FILE_SUFFIX)


def anchor_file_for(database: Path) -> Path:
    return Path(str(database) + ANCHOR_FILE_SUFFIX)


def load_key(setting: str | None, database: Path, *, create: bool) -> AuditKey | None:
    """The audit key: AUDIT_KEY when set; else the key file beside the database (made,
    readable by this user only, when `create`); None when there is neither."""
    if setting:
        return derive_key(setting, "AUDIT_KEY")
    path = key_file_for(database)
    if not path.exists() and create:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # never replaces a key another process made first
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    if not path.exists():
        return None
    return derive_key(path.read_text().strip(), str(path), generated=True)


class AuditKeyMismatch(SettingsError):
    """The database's audit chain was written with another key."""

    def __init__(self, key: AuditKey) -> None:
        super().__init__(
            "AUDIT_KEY" if key.source == "AUDIT_KEY" else "AUDIT_KEY (unset)",
            "the audit log in this database is chained with another key; start with the key it"
            f" was written with (this one came from {key.source})",
        )


def adopt_key(key: AuditKey, stored_check: str) -> None:
    """At start-up: the key must be the one the chain was written with."""
    if stored_check != key.check:
        raise AuditKeyMismatch(key)


def legacy_boundary(key: AuditKey, seq: int, head: str) -> dict[str, Any]:
    """Where the unkeyed (schema 1) events end, sealed with the key (migration m002)."""
    boundary: dict[str, Any] = {"seq": seq, "head": head}
    boundary["mac"] = key.mac(legacy_text(boundary))
    return boundary


def legacy_text(boundary: dict[str, Any]) -> str:
    return f"legacy|{boundary['seq']}|{boundary['head']}"


@dataclass(frozen=True)
class Anchor:
    """The chain's head at a moment, MACed: what is kept outside the database."""

    seq: int
    hash: str
    at: str
    mac: str

    @staticmethod
    def text(seq: int, hash_: str, at: str) -> str:
        return f"anchor|{seq}|{hash_}|{at}"

    def line(self) -> str:
        return json.dumps({"seq": self.seq, "hash": self.hash, "at": self.at, "mac": self.mac})
