"""Hundreds of children exiting while the loop is busy (a mass stop) fill the loop's wakeup socket with
SIGCHLD bytes: every exit is still collected, and nothing is printed on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent("""\
    import asyncio, json, subprocess, time
    from procward.core.exits import ExitWatcher

    def zombie(pid):
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"

    async def main():
        loop = asyncio.get_running_loop()
        exits = ExitWatcher(loop)
        exits.install()
        # Exits one or two milliseconds apart, each its own SIGCHLD (signals that come together merge),
        # while the loop runs none of its callbacks.
        children = [subprocess.Popen(["sleep", f"{1 + i * 0.002:.3f}"]) for i in range(700)]
        collected = []
        for child in children:
            exits.watch(child.pid, collected.append)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(zombie(child.pid) for child in children):
            time.sleep(0.02)  # the loop is blocked here: the signals pile up in its wakeup socket
        deadline = time.monotonic() + 20
        while len(collected) < len(children) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for child in children:
            child.returncode = 0  # collected by the watcher, not by subprocess
        print(json.dumps({"collected": len(collected), "exited": sum(s.code == 0 for s in collected)}))

    asyncio.run(main())
""")


def test_a_flood_of_exits_is_collected_without_a_word_on_stderr() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout) == {"collected": 700, "exited": 700}
    assert done.stderr == ""  # was one "Exception ignored when trying to write to the signal wakeup fd" per signal
