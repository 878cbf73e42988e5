"""A test program: numbered non-ASCII lines on stdout and stderr every 50 ms, or (``echo``) stdin echoed back."""

import itertools
import sys
import time

if sys.argv[1:] == ["echo"]:
    for line in sys.stdin:
        print("echo:", line.strip(), flush=True)
else:
    for i in itertools.count():
        print("out é", i, flush=True)
        print("err ü", i, file=sys.stderr, flush=True)
        time.sleep(0.05)
