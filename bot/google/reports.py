"""Admin activity through the Admin SDK Reports API (admin/reports_v1): `activities.list`.

The bot reads the Admin console's audit log to learn what was done to devices outside it.
Every call goes through Executor.execute.
Reference: https://developers.google.com/workspace/admin/reports/v1/reference/activities/list
"""

from __future__ import annotations

from typing import Any

from bot.errors import ValidationError
from bot.google import discovery
from bot.google.client import Executor
from bot.google.results import Page
from bot.google.transport import ServiceFactory

_LIST = discovery.method(discovery.REPORTS, "activities.list")
#: activities.list maxResults bounds, from the discovery document
MAX_RESULTS = int(_LIST["parameters"]["maxResults"]["maximum"])
APPLICATIONS = frozenset(discovery.enum(discovery.REPORTS, "activities.list?applicationName"))

REPORTS_FORBIDDEN_HINT = (
    "Check that the service account has domain-wide delegation for the scope "
    "https://www.googleapis.com/auth/admin.reports.audit.readonly and that "
    "GOOGLE_ADMIN_EMAIL is an admin allowed to read the audit log (Reports)."
)


class ReportsApi:
    """The Reports API calls the bot makes: one page of an application's activities."""

    def __init__(self, services: ServiceFactory, executor: Executor) -> None:
        self.services = services
        self.executor = executor

    def list_activities(
        self,
        *,
        start_time: str,
        end_time: str,
        application: str = "admin",
        user_key: str = "all",
        event_name: str | None = None,
        page_token: str | None = None,
        max_results: int = MAX_RESULTS,
    ) -> Page:
        """One page of activities.list between two RFC 3339 times (newest first)."""
        if application not in APPLICATIONS:
            raise ValidationError(f"Unknown Reports application {application!r}", field="app")
        if not 1 <= max_results <= MAX_RESULTS:
            raise ValidationError(
                f"max_results must be from 1 to {MAX_RESULTS}, got {max_results}",
                field="max_results",
            )
        params: dict[str, Any] = {
            "userKey": user_key,
            "applicationName": application,
            "startTime": start_time,
            "endTime": end_time,
            "maxResults": max_results,
        }
        if event_name:
            params["eventName"] = event_name
        if page_token:
            params["pageToken"] = page_token
        request = self.services.resource("activities").list(**params)
        answer = self.executor.execute(
            request, mutation=False, what=f"read the {application} audit log"
        )
        return Page(list(answer.get("items") or []), answer.get("nextPageToken") or None)
