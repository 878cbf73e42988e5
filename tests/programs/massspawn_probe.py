"""Drives procward.core.massspawn in a process of its own (a child subreaper, as the daemon is) and prints
what happened as JSON: every request's outcome and which processes carrying a request's token are alive.

Usage: massspawn_probe.py SCENARIO CONF
  cancel  - 20 requests; the 5th is called off before the helpers run
  kill    - 40 requests; the helpers are SIGKILLed as soon as they exist
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import sys
import time

from procward.config.build import BuildOptions, load
from procward.core import tree
from procward.core.exits import ExitWatcher, become_subreaper
from procward.core.massspawn import MassSpawner
from procward.core.spawn import Spawned, SpawnError, child_environment


def _carrying(tokens: set[str]) -> list[int]:
    """Every process of the machine carrying one of ``tokens`` (a scan of /proc, not the children
    lists, which may miss a process that is being re-parented)."""
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and tree.token_of(int(entry)) in tokens]


def _parent(pid: int) -> int:
    return int(tree.stat_fields(pid)[1])


def _is_helper(pid: int) -> bool:
    """A child of this probe's that carries no token: a helper (the programs are the helpers' children)."""
    try:
        return _parent(pid) == os.getpid() and tree.token_of(pid) is None
    except OSError:
        return False


async def main(scenario: str, conf: str) -> dict[str, object]:
    assert become_subreaper()
    config = load(conf, BuildOptions(host_checks=False)).groups[0].processes[0]
    loop = asyncio.get_running_loop()
    exits = ExitWatcher(loop)
    exits.install()
    spawner = MassSpawner(loop, exits)
    count = 20 if scenario == "cancel" else 40
    outcomes: dict[int, str] = {}
    tokens = [tree.new_token() for _ in range(count)]
    requests = []
    spawner.begin(count)
    for i, token in enumerate(tokens):
        env = functools.partial(child_environment, config, "g", None, {tree.ENV_VAR: token})

        def done(outcome: Spawned | SpawnError, i: int = i) -> None:
            outcomes[i] = f"pid {outcome.pid}" if isinstance(outcome, Spawned) else f"error {outcome}"

        requests.append(spawner.add(config, env, token, done))
    if scenario == "cancel":
        requests[4].cancel()
    spawner.launch()
    await asyncio.sleep(0)  # the helpers are forked from the loop
    helpers = [int(e) for e in os.listdir("/proc") if e.isdigit() and _is_helper(int(e))]
    if scenario == "kill":
        for pid in helpers:
            os.kill(pid, signal.SIGKILL)
    await asyncio.wait_for(spawner.wait(), 30)
    # A killed program's exit is collected by the watcher: give it a moment (bounded) to be gone.
    delivered = {int(o.split()[1]) for o in outcomes.values() if o.startswith("pid ")}
    deadline = time.monotonic() + 10
    while True:
        unwanted = [pid for pid in _carrying(set(tokens)) if pid not in delivered]
        if not unwanted or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    report = {"helpers": len(helpers), "outcomes": outcomes, "unwanted_alive": unwanted,
              "delivered_ours": sum(_parent(pid) == os.getpid() for pid in delivered)}
    for pid in delivered:
        os.killpg(pid, signal.SIGKILL)
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
