"""A program for the S7 benchmark: numbered lines to stdout at a fixed rate, for a fixed time.

Usage: writer.py SECONDS BYTES_PER_SECOND
"""

import os
import sys
import time

seconds, rate = float(sys.argv[1]), int(sys.argv[2])
line_size = 100
per_tick = max(1, rate // line_size // 100)  # 100 writes a second
pad = "x" * (line_size - 12)
n = 0
start = time.monotonic()
tick = 0
while time.monotonic() - start < seconds:
    chunk = "".join(f"{n + i:010d} {pad}\n" for i in range(per_tick))
    n += per_tick
    data = chunk.encode()
    while data:
        data = data[os.write(1, data):]
    tick += 1
    delay = start + tick / 100 - time.monotonic()
    if delay > 0:
        time.sleep(delay)
