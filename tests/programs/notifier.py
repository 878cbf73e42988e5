"""A Type=notify program for the tests: READY=1 after a delay, optional STATUS and WATCHDOG pings.

Usage: notifier.py DELAY [--status TEXT] [--watchdog-pings N]
Sends READY=1 (and STATUS) after DELAY seconds, then WATCHDOG=1 N times at a third of WATCHDOG_USEC,
then goes silent and sleeps (a hung program, for the watchdog test).
"""

import os
import socket
import sys
import time


def notify(message: str) -> None:
    address = os.environ["NOTIFY_SOCKET"]
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), address)


args = sys.argv[1:]
time.sleep(float(args[0]))  # the program's start-up work
status = args[args.index("--status") + 1] if "--status" in args else ""
notify("READY=1" + (f"\nSTATUS={status}" if status else ""))
pings = int(args[args.index("--watchdog-pings") + 1]) if "--watchdog-pings" in args else 0
interval = int(os.environ.get("WATCHDOG_USEC", "3000000")) / 3e6
for _ in range(pings):
    time.sleep(interval)
    notify("WATCHDOG=1")
while True:
    time.sleep(3600)
