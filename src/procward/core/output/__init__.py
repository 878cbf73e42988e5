"""A child's output: the pipes read from the loop, the log files they go to (rotated, tailed), the
line formats, the extra targets (files, syslog) and capture mode. Knows nothing of processes."""
