"""Alarms: which process events become alarms (batching, rate limits, flapping) and the channels that
carry them (command, webhook, mail)."""
