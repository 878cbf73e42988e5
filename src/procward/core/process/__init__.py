"""One supervised process: its state machine (lifecycle), spawning and exits, restart arithmetic,
what it leaves behind, its stdin, readiness (sd_notify socket, health checks, monitors) and counters."""
