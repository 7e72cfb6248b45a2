"""Looking devices up: help, find, info, history, requests, and the search modal."""

from __future__ import annotations

from slack_bolt import App

from bot import blocks
from bot.commands import Commands, Invocation, Subcommand
from bot.roles import Role
from bot.services import Services


def register(app: App, svc: Services, commands: Commands) -> None:
    """Add the look-up sub-commands."""

    def help_command(inv: Invocation) -> None:
        """Every sub-command with an example."""
        inv.reply("device-bot help", blocks.help_blocks(commands.all()))

    commands.add(
        Subcommand("help", help_command, "/device help", "List every sub-command", "/device help", Role.NONE)
    )
