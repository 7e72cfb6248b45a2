"""Keeps request secrets (a reset-password's new password) out of plaintext storage.

With BOT_SECRET_KEY the secret is stored encrypted (Fernet; the key comes from the setting
through scrypt with a random salt kept in the database) in the request row, and erased
when the request ends: the column is nulled, and `Store.erase_freed` zeroes the freed
space and empties the -wal, where the page that held it would otherwise survive. Without a
key the secret lives only in the memory of the process that took it; a restart then ends
such a request with a clear message, and while another process shares the database the
request runs where its secret lives (see approvals).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from bot.store import Store

#: scrypt cost: 2**15 × 8 × 128 bytes = 32 MiB and tens of ms, once per process that seals
#: or opens a secret
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SALT_KEY = "secret_key_salt"


def derive_fernet_key(setting: str, salt: bytes) -> bytes:
    """BOT_SECRET_KEY → a Fernet key (scrypt, salted)."""
    raw = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(setting.encode())
    return base64.urlsafe_b64encode(raw)


def _legacy_fernet_key(setting: str) -> bytes:
    """How keys were made before the salted KDF: requests sealed then still open."""
    return base64.urlsafe_b64encode(hashlib.sha256(setting.encode()).digest())


class SecretBox:
    """Seal and open small secret dicts."""

    def __init__(self, key: str | None, salt: bytes | None = None) -> None:
        self._key = key or None
        self._salt = salt
        self._made: MultiFernet | None = None  # derived on first use: most processes never seal
        self._memory: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @property
    def _fernet(self) -> MultiFernet | None:
        """The keys (None without BOT_SECRET_KEY); scrypt runs once, at the first seal or open."""
        if self._key is None:
            return None
        with self._lock:
            if self._made is None:
                fernets = [Fernet(derive_fernet_key(self._key, self._salt))] if self._salt else []
                fernets.append(Fernet(_legacy_fernet_key(self._key)))
                self._made = MultiFernet(fernets)
            return self._made

    @classmethod
    def for_store(cls, key: str | None, store: Store) -> SecretBox:
        """The box of a bot on `store`: the salt is made once and shared by its processes."""
        if not key:
            return cls(None)
        salt = store.meta_default(SALT_KEY, secrets.token_hex(16))
        return cls(key, bytes.fromhex(salt))

    @property
    def memory_only(self) -> bool:
        """True without BOT_SECRET_KEY: secrets never leave this process."""
        return self._key is None

    def seal(self, request_id: str, secret: dict[str, Any]) -> bytes | None:
        """Returns what to store in the database (None when kept in memory only)."""
        fernet = self._fernet
        if fernet is None:
            with self._lock:
                self._memory[request_id] = dict(secret)
            return None
        return fernet.encrypt(json.dumps(secret).encode())

    def open(self, request_id: str, sealed: bytes | None) -> dict[str, Any] | None:
        """The secret, or None if it is gone (erased, or lost with a restart)."""
        fernet = self._fernet if sealed is not None else None
        if sealed is not None and fernet is not None:
            try:
                return dict(json.loads(fernet.decrypt(sealed)))
            except InvalidToken:
                return None
        with self._lock:
            found = self._memory.get(request_id)
        return dict(found) if found is not None else None

    def forget(self, request_id: str) -> None:
        with self._lock:
            self._memory.pop(request_id, None)
