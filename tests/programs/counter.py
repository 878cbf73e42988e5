"""Numbered 100-byte lines on stdout as fast as asked: counter.py BURST PAUSE (sleep PAUSE every BURST lines)."""

import itertools
import sys
import time

burst, pause = int(sys.argv[1]), float(sys.argv[2])
pad = "x" * 90
for n in itertools.count():
    sys.stdout.write(f"{n:08d} {pad}\n")
    sys.stdout.flush()
    if n % burst == burst - 1:
        time.sleep(pause)
