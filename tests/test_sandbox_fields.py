"""The sandbox's partial responses (`fields=`) and MEIDs, through googleapiclient over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from bot.sandbox import Sandbox, fields
from bot.sandbox.api import ApiError
from bot.sandbox.testing import directory

CUSTOMER = "my_customer"


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    sandbox = Sandbox(chrome=700, android=0, seed=5).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="module")
def admin(sb: Sandbox) -> Any:
    return directory(sb.url)


def test_the_guides_meid_export_pages_through_meids_only(sb: Sandbox, admin: Any) -> None:
    """`fields=nextPageToken,chromeosdevices(meid)`, as the Directory guide exports MEIDs."""
    meids: list[str] = []
    token = None
    pages = 0
    while True:
        kw = {"pageToken": token} if token else {}
        page = (
            admin.chromeosdevices()
            .list(
                customerId=CUSTOMER,
                maxResults=300,
                fields="nextPageToken,chromeosdevices(meid)",
                **kw,
            )
            .execute()
        )
        pages += 1
        assert set(page) <= {"nextPageToken", "chromeosdevices"}
        for device in page["chromeosdevices"]:
            assert set(device) <= {"meid"}  # a device without a modem is {}
            if device:
                meids.append(device["meid"])
        token = page.get("nextPageToken")
        if not token:
            break
    assert pages == 3
    expected = [d["meid"] for d in sb.fleet.iter_chrome() if d.get("meid")]
    assert 50 < len(expected) < 700 and sorted(meids) == sorted(expected)
    assert all(len(m) == 14 for m in meids)


def test_nested_selection_and_a_device_get(sb: Sandbox, admin: Any) -> None:
    device = next(d for d in sb.fleet.iter_chrome() if len(d.get("recentUsers") or []) > 1)
    got = (
        admin.chromeosdevices()
        .get(
            customerId=CUSTOMER,
            deviceId=device["deviceId"],
            fields="serialNumber,recentUsers(email)",
        )
        .execute()
    )
    assert got == {
        "serialNumber": device["serialNumber"],
        "recentUsers": [{"email": u["email"]} for u in device["recentUsers"]],
    }


def test_a_malformed_selector_is_a_400(admin: Any) -> None:
    for bad in ("chromeosdevices(meid", "chromeosdevices()", "a,,b", "a//b"):
        with pytest.raises(HttpError) as exc:
            admin.chromeosdevices().list(customerId=CUSTOMER, fields=bad).execute()
        error = json.loads(exc.value.content)["error"]
        assert error["code"] == 400 and error["message"].startswith("Invalid field selection")


def test_basic_projection_omits_the_full_only_fields(sb: Sandbox, admin: Any) -> None:
    basic = admin.chromeosdevices().list(customerId=CUSTOMER, projection="BASIC").execute()
    full = admin.chromeosdevices().list(customerId=CUSTOMER, projection="FULL").execute()
    assert any("recentUsers" in d for d in full["chromeosdevices"])
    for d in basic["chromeosdevices"]:
        assert not set(d) & {"recentUsers", "lastKnownNetwork", "activeTimeRanges", "cpuInfo"}
        assert {"deviceId", "serialNumber", "status"} <= set(d)


def test_parse_and_select() -> None:
    selector = fields.parse("nextPageToken, items(a/b,c(d)),items/e")
    assert selector == {
        "nextPageToken": None,
        "items": {"a": {"b": None}, "c": {"d": None}, "e": None},
    }
    body = {
        "nextPageToken": "t",
        "other": 1,
        "items": [{"a": {"b": 1, "x": 2}, "c": [{"d": 3, "y": 4}]}],
    }
    assert fields.select(body, selector) == {
        "nextPageToken": "t",
        "items": [{"a": {"b": 1}, "c": [{"d": 3}]}],
    }
    assert fields.apply(body, None) is body
    assert fields.apply(body, "items(*)") == {"items": body["items"]}
    with pytest.raises(ApiError):
        fields.parse("items(a))")
