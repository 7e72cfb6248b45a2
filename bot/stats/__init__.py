"""`/device stats`: a picture of the fleet, posted to the requester as a PNG chart.

The command acks and the work runs on its own thread (as `/device export` does, through
bot/background.py): one progress message in the requester's DM with the bot, edited in
place, becomes the text summary; the chart follows it as a file (Slack's external upload,
`SlackOut.upload`).

Where the numbers come from, in one pass:

- Chrome OS: chromeosdevices.list, 300 a page, `projection=BASIC` (every field needed is a
  basic one) with a partial response of exactly those fields: `CHROME_FIELDS`.
- Android: the bot's local device index (the raw AMAPI JSON in `android_raw`, refreshed by
  its job every INDEX_SYNC_INTERVAL), so no Google call at all; the summary says how old
  the index is.

The result (counts and PNG) is kept for STATS_CACHE_SECONDS: a request within that time
makes no Google call, and requests that arrive while a pass is running wait for it
instead of starting their own.

What is counted: statuses over every device; Chrome OS versions and auto-update expiry over
the devices in service (ACTIVE and DISABLED); Android versions and patch levels over the
devices in hand (ACTIVE, DISABLED, LOST); "not synced in 30 days" over the ACTIVE devices
(Chrome `lastSync`, Android `lastStatusReportTime`; none at all counts as not synced).

One module per idea: `counts` (what is counted, and the pass that counts it), `chart` (the
PNG), `summary` (the same numbers in words), `cache` (the overview kept a while) and
`command` (the sub-command and its background run).
"""

from bot.stats.command import register

__all__ = ["register"]
