"""The web UI: the server-rendered page, its actions, the live stream and the log views."""
