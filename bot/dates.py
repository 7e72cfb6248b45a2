"""Times as Slack shows them: date tokens in the reader's time zone, with a fallback text.

Google gives RFC 3339 stamps, the store epochs; both become `<!date^…|fallback>` tokens
(https://api.slack.com/reference/surfaces/formatting#date-formatting), whose fallback is
what a client that cannot format dates (a notification, an old client) shows.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.blocks import esc


def epoch_of(value: str | float | None) -> float | None:
    """An RFC 3339 time or an epoch as an epoch; None when it is missing or does not parse."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def utc_minute(epoch: float) -> str:
    """An epoch as plain text to the minute in UTC: `2024-05-01 09:30 UTC`."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def when(value: str | float | None, *, missing: str = "—") -> str:
    """A time as a Slack date token (`2024-05-01 09:30 UTC` as its fallback text).

    `missing` stands for no time at all; a value that is no time is shown as it is, escaped."""
    if value is None or value == "":
        return missing
    epoch = epoch_of(value)
    if epoch is None:
        return esc(value)
    return f"<!date^{int(epoch)}^{{date_short_pretty}} {{time}}|{utc_minute(epoch)}>"


def clock(epoch: float, same_day_as: float | None = None) -> str:
    """A time of day as a Slack date token; with the date when it is another day."""
    fallback = datetime.fromtimestamp(epoch, UTC).strftime("%H:%M UTC")
    if same_day_as is not None and int(epoch // 86400) == int(same_day_as // 86400):
        return f"<!date^{int(epoch)}^{{time}}|{fallback}>"
    return when(epoch)


def ago_words(seconds: float) -> str:
    """`just now`, `12 min ago`, `3 h ago`, `2 days ago`."""
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


def ago(value: str | float | None, now: float) -> str:
    """A time as Slack's relative date token (`{ago}`), with words as the fallback."""
    epoch = epoch_of(value)
    if epoch is None:
        return "never" if not value else esc(value)
    return f"<!date^{int(epoch)}^{{ago}}|{ago_words(max(0.0, now - epoch))}>"
