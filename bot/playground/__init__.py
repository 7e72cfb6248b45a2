"""The playground: a local Slack emulator and (later) a small Slack in a web page."""
