"""The sandbox's devices: Chrome and Android JSON as Google returns it, indexed for look-ups.

`Fleet` (bot.sandbox.fleet) is these devices plus the state around them (commands, clock,
licences, org units, test hooks). Exact serial look-ups go through a dict and prefix searches
(serial, user, asset id) through sorted lists and bisect, counted in `index_lookups`; a full
scan is counted in `scans`, so tests can assert which one a query used.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator
from typing import Any

Json = dict[str, Any]


class Devices:
    """The generated Chrome and Android devices, their indexes and look-ups."""

    def __init__(self, enterprise: str) -> None:
        self.lock = threading.RLock()
        self.enterprise = enterprise
        self.version = 0

        self.chrome: dict[str, Json] = {}
        self.chrome_order: list[str] = []
        self._serial: dict[str, str] = {}
        self._serial_sorted: list[tuple[str, str]] = []
        self._user_sorted: list[tuple[str, str]] = []
        self._asset_sorted: list[tuple[str, str]] = []
        self._pos: dict[str, int] = {}

        self.android: dict[str, Json] = {}
        self.android_order: list[str] = []
        self._android_serial: dict[str, str] = {}

        self.index_lookups = 0  # counts indexed look-ups (tests assert the index is used)
        self.scans = 0  # counts full-fleet scans

    def touch(self) -> None:
        """Record that the fleet changed (invalidates cached list results)."""
        self.version += 1

    def add_chrome(self, devices: Iterator[Json]) -> None:
        """Store generated Chrome devices and build their indexes."""
        for d in devices:
            device_id = d["deviceId"]
            self.chrome[device_id] = d
            self.chrome_order.append(device_id)
            self._serial[d["serialNumber"].upper()] = device_id
        self._pos = {k: i for i, k in enumerate(self.chrome_order)}
        self._serial_sorted = sorted(self._serial.items())
        self._user_sorted = sorted(
            (d["annotatedUser"].lower(), k) for k, d in self.chrome.items() if "annotatedUser" in d
        )
        self._asset_sorted = sorted(
            (d["annotatedAssetId"].lower(), k)
            for k, d in self.chrome.items()
            if "annotatedAssetId" in d
        )

    def add_android(self, devices: Iterator[Json]) -> None:
        """Store generated Android devices and index their serials."""
        for d in devices:
            name = d["name"]
            self.android[name] = d
            self.android_order.append(name)
            self._android_serial[d["hardwareInfo"]["serialNumber"].upper()] = name

    # ------------------------------------------------------------------ Chrome look-ups

    def chrome_get(self, device_id: str) -> Json | None:
        """The Chrome device with this deviceId, or None."""
        return self.chrome.get(device_id)

    def chrome_by_serial(self, serial: str) -> Json | None:
        """Exact (case-insensitive) serial look-up through the index."""
        with self.lock:
            self.index_lookups += 1
            did = self._serial.get(serial.upper())
            return self.chrome[did] if did else None

    def chrome_position(self, device_id: str) -> int:
        """A Chrome device's place in the fleet's natural (generation) order."""
        return self._pos.get(device_id, 1 << 62)

    def chrome_serial_prefix(self, prefix: str) -> list[str]:
        """deviceIds whose serial starts with `prefix` (case-insensitive), via bisect."""
        return self._prefix(self._serial_sorted, prefix.upper())

    def chrome_user_prefix(self, prefix: str) -> list[str]:
        """deviceIds whose annotatedUser starts with `prefix` (case-insensitive)."""
        return self._prefix(self._user_sorted, prefix.lower())

    def chrome_asset_prefix(self, prefix: str) -> list[str]:
        """deviceIds whose annotatedAssetId starts with `prefix` (case-insensitive)."""
        return self._prefix(self._asset_sorted, prefix.lower())

    def _prefix(self, index: list[tuple[str, str]], prefix: str) -> list[str]:
        self.index_lookups += 1
        out: list[str] = []
        i = bisect.bisect_left(index, (prefix, ""))
        while i < len(index) and index[i][0].startswith(prefix):
            out.append(index[i][1])
            i += 1
        return out

    def iter_chrome(self) -> Iterator[Json]:
        """Every Chrome device in generation order (a full scan: counted)."""
        self.scans += 1
        chrome = self.chrome
        return (chrome[k] for k in self.chrome_order)

    def chrome_by_status(self, status: str, *, skip: int = 0) -> Json:
        """The first (after `skip`) Chrome device in `status`; KeyError if none."""
        with self.lock:
            for d in self.iter_chrome():
                if d["status"] == status:
                    if skip == 0:
                        return d
                    skip -= 1
            raise KeyError(status)

    def chrome_device(self, ref: str) -> Json:
        """A Chrome device by deviceId or serial; KeyError if unknown."""
        with self.lock:
            d = self.chrome.get(ref) or self.chrome_by_serial(ref)
            if d is None:
                raise KeyError(ref)
            return d

    def reindex_chrome(self, device_id: str, key: str, old: str | None, new: str | None) -> None:
        """Keep the user / asset-id prefix indexes in step with a patch."""
        index = {"annotatedUser": self._user_sorted, "annotatedAssetId": self._asset_sorted}.get(
            key
        )
        if index is None:
            return
        if old:
            i = bisect.bisect_left(index, (old.lower(), device_id))
            if i < len(index) and index[i] == (old.lower(), device_id):
                del index[i]
        if new:
            bisect.insort(index, (new.lower(), device_id))

    # ------------------------------------------------------------------ Android look-ups

    def android_get(self, name: str) -> Json | None:
        """The Android device with this resource name, or None."""
        return self.android.get(name)

    def android_by_serial(self, serial: str) -> Json | None:
        """Exact (case-insensitive) hardwareInfo.serialNumber look-up through the index."""
        with self.lock:
            self.index_lookups += 1
            name = self._android_serial.get(serial.upper())
            return self.android.get(name) if name else None

    def android_where(
        self,
        *,
        api_min: int | None = None,
        api_max: int | None = None,
        mode: str | None = None,
        ownership: str | None = None,
        state: str | None = "ACTIVE",
        skip: int = 0,
    ) -> Json:
        """The first (after `skip`) Android device matching every given criterion; KeyError if none."""
        with self.lock:
            for name in self.android_order:
                d = self.android[name]
                if api_min is not None and d["apiLevel"] < api_min:
                    continue
                if api_max is not None and d["apiLevel"] > api_max:
                    continue
                if mode and d["managementMode"] != mode:
                    continue
                if ownership and d["ownership"] != ownership:
                    continue
                if state and d["state"] != state:
                    continue
                if skip == 0:
                    return d
                skip -= 1
            raise KeyError((api_min, api_max, mode, ownership, state))

    def android_device(self, ref: str) -> Json:
        """An Android device by name, short id or serial; KeyError if unknown."""
        with self.lock:
            d = (
                self.android.get(ref)
                or self.android.get(f"{self.enterprise}/devices/{ref}")
                or self.android_by_serial(ref)
            )
            if d is None:
                raise KeyError(ref)
            return d

    def remove_android(self, name: str) -> None:
        """Delete an Android device (after WIPE / RELINQUISH_OWNERSHIP / devices.delete)."""
        with self.lock:
            d = self.android.pop(name, None)
            if d is not None:
                self._android_serial.pop(d["hardwareInfo"]["serialNumber"].upper(), None)
                self.android_order.remove(name)
                self.touch()

    def _key(self, ref: str) -> str:
        """A device ref → its state key (Chrome deviceId or Android name)."""
        with self.lock:
            if ref in self.chrome or ref in self.android:
                return ref
            try:
                return self.android_device(ref)["name"]
            except KeyError:
                return self.chrome_device(ref)["deviceId"]
