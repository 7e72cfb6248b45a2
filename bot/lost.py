"""Lost devices (SPEC §6): announce, watch for check-ins, resolve. (Being built.)"""

from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.commands import Commands
from bot.jobs import JobSpec
from bot.services import Services


def on_request_finished(svc: Services, request: Any, state: str) -> None:
    """Hook called when any request ends: lost mode / lost-disable / found."""


def jobs(svc: Services) -> list[JobSpec]:
    return []


def register(app: App, svc: Services, commands: Commands) -> None:
    """No listeners yet."""
