"""Rolling restarts with the real client: numprocs=4 behind a health check, at least 3 ready at every
moment; a new process that never becomes ready stops the roll with the old ones still running."""

from __future__ import annotations

import threading
from pathlib import Path

from support import rpc_client, wait_until

POOL = """
    [program:pool]
    command=sh -c 'trap "rm -f %(here)s/ready.%(process_num)s; exit 0" TERM; sleep 0.3; test -e %(here)s/broken || touch %(here)s/ready.%(process_num)s; while :; do sleep 0.05; done'
    process_name=%(program_name)s_%(process_num)s
    numprocs=4
    startsecs=0
    healthcheck=exec test -e %(here)s/ready.%(process_num)s
    healthcheck_interval=0.1
    healthcheck_retries=1
    healthcheck_timeout=1
    healthcheck_action=report
    """



def healthy(sock: str) -> int:
    infos = rpc_client(sock).supervisor.getAllProcessInfo()
    return sum(1 for i in infos if i["statename"] == "RUNNING" and i["health"] == "healthy")


def test_rolling_restart_keeps_three_of_four_ready(daemon, tmp_path: Path) -> None:
    d = daemon(POOL)
    wait_until(lambda: healthy(d.sock) == 4, what="four healthy", timeout=20)
    before = {i["name"]: i["pid"] for i in d.rpc().supervisor.getAllProcessInfo()}
    seen: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():  # a sampler, not a wait: the roll's own call bounds it
            seen.append(healthy(d.sock))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        run = d.ctl("restart", "--rolling", "pool")
    finally:
        stop.set()
        sampler.join(timeout=30)
    assert run.returncode == 0, run.stdout
    assert run.stdout.splitlines() == [f"pool:pool_{n}: restarted" for n in range(4)]
    after = {i["name"]: i["pid"] for i in d.rpc().supervisor.getAllProcessInfo()}
    assert all(after[name] != pid for name, pid in before.items())
    assert len(seen) > 10
    assert min(seen) >= 3, seen


def test_roll_stops_at_a_process_that_never_becomes_ready(daemon, tmp_path: Path) -> None:
    d = daemon(POOL)
    wait_until(lambda: healthy(d.sock) == 4, what="four healthy", timeout=20)
    before = {i["name"]: i["pid"] for i in d.rpc().supervisor.getAllProcessInfo()}
    (tmp_path / "broken").write_text("")  # the new code never gets ready
    run = d.ctl("restart", "--rolling", "pool")
    assert run.returncode == 1
    assert "pool:pool_0 did not become ready" in run.stdout
    assert "not restarted, still running: pool:pool_1, pool:pool_2, pool:pool_3" in run.stdout
    after = {i["name"]: i["pid"] for i in d.rpc().supervisor.getAllProcessInfo()}
    assert [after[f"pool_{n}"] == before[f"pool_{n}"] for n in range(4)] == [False, True, True, True]
    assert healthy(d.sock) == 3
    assert "Traceback" not in d.log_text()
