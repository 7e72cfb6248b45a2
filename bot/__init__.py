"""device-bot: act on managed Chrome OS and Android devices from Slack."""
