"""What look-ups show, as Block Kit: pure builder functions from domain objects to blocks.

One module per thing shown: a device's card (`device`), help (`help`), search results and
pickers (`search`), a device's history (`history`), pending requests (`pending`), and how
actions read in words (`words`). Every user- or device-supplied string goes through
`esc()`; lists are paged or cut with a note so a message stays within Slack's limits
(50 blocks, 3000 characters a section).
"""
