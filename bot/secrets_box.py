"""Keeps request secrets (a reset-password's new password) out of plaintext storage.

With BOT_SECRET_KEY the secret is stored encrypted (Fernet, key derived from the setting)
in the request row and erased when the request ends. Without a key it lives only in this
process's memory; a restart then ends such a request with a clear message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from typing import Any

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    """Seal and open small secret dicts."""

    def __init__(self, key: str | None) -> None:
        self._fernet = (
            Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest())) if key else None
        )
        self._memory: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def seal(self, request_id: str, secret: dict[str, Any]) -> bytes | None:
        """Returns what to store in the database (None when kept in memory only)."""
        if self._fernet is None:
            with self._lock:
                self._memory[request_id] = dict(secret)
            return None
        return self._fernet.encrypt(json.dumps(secret).encode())

    def open(self, request_id: str, sealed: bytes | None) -> dict[str, Any] | None:
        """The secret, or None if it is gone (erased, or lost with a restart)."""
        if sealed is not None and self._fernet is not None:
            try:
                return dict(json.loads(self._fernet.decrypt(sealed)))
            except InvalidToken:
                return None
        with self._lock:
            found = self._memory.get(request_id)
        return dict(found) if found is not None else None

    def forget(self, request_id: str) -> None:
        with self._lock:
            self._memory.pop(request_id, None)
