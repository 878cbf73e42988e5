"""procward's update: a dry run with the options that changed, and an update that restarts only the
processes whose own configuration changed (supervisord replaces the whole group)."""

from __future__ import annotations

from support import wait_until

GROUP = """
    [program:a]
    command=sleep {a}
    startsecs=0

    [program:b]
    command=sleep 300
    startsecs=0

    [group:g]
    programs=a,b

    [program:pool]
    command=sleep 300
    process_name=%(program_name)s_%(process_num)s
    numprocs={n}
    startsecs=0
    {extra}
    """



def pids(d) -> dict[str, int]:
    return {f"{i['group']}:{i['name']}": i["pid"] for i in d.rpc().supervisor.getAllProcessInfo()}


def test_dry_run_then_precise_update(daemon) -> None:
    d = daemon(GROUP.format(a=300, n=4, extra=""))
    for name in ("g:a", "g:b", *(f"pool:pool_{n}" for n in range(4))):
        d.wait_state(name, "RUNNING")
    before = pids(d)
    d.write(GROUP.format(a=301, n=6, extra="[program:new]\n    command=sleep 300\n    startsecs=0"))

    dry = d.ctl("update", "--dry-run")
    assert dry.returncode == 0, dry.stdout
    assert dry.stdout.splitlines() == ["+ new (group added)", "~ g:a (command)", "+ pool:pool_4 (numprocs 4 -> 6)",
                                       "+ pool:pool_5 (numprocs 4 -> 6)"]
    assert pids(d) == before  # nothing applied

    done = d.ctl("update", "--precise")
    assert done.returncode == 0, done.stdout
    assert done.stdout == dry.stdout
    for name in ("g:a", "new:new", "pool:pool_4", "pool:pool_5"):
        d.wait_state(name, "RUNNING")
    after = pids(d)
    assert after["g:a"] != before["g:a"]
    assert {k: after[k] for k in before if k != "g:a"} == {k: v for k, v in before.items() if k != "g:a"}
    assert d.ctl("update", "--dry-run").stdout == "no changes\n"
    d.wait_log("update: g:a changed (command)")


def test_removed_processes_and_a_bad_file(daemon) -> None:
    d = daemon(GROUP.format(a=300, n=4, extra=""))
    for n in range(4):
        d.wait_state(f"pool:pool_{n}", "RUNNING")
    before = pids(d)
    d.write(GROUP.format(a=300, n=2, extra=""))
    done = d.ctl("update", "--precise")
    assert done.stdout.splitlines() == ["- pool:pool_2 (numprocs 4 -> 2)", "- pool:pool_3 (numprocs 4 -> 2)"]
    assert pids(d) == {k: v for k, v in before.items() if k not in ("pool:pool_2", "pool:pool_3")}

    d.write(GROUP.format(a="x", n=2, extra="startsecs=ten"))
    bad = d.ctl("update", "--precise")
    assert bad.returncode == 1
    assert "ERROR: CANT_REREAD" in bad.stdout
    assert "startsecs" in bad.stdout
    assert pids(d) == {k: v for k, v in before.items() if k not in ("pool:pool_2", "pool:pool_3")}


def test_rolling_update_replaces_changed_processes_one_at_a_time(daemon, tmp_path) -> None:
    pool = """
        [program:pool]
        command=sh -c 'trap "rm -f %(here)s/ready.%(process_num)s; exit 0" TERM; sleep 0.2; touch %(here)s/ready.%(process_num)s; while :; do sleep 0.05; done' {version}
        process_name=%(program_name)s_%(process_num)s
        numprocs=3
        startsecs=0
        healthcheck=exec test -e %(here)s/ready.%(process_num)s
        healthcheck_interval=0.1
        healthcheck_retries=1
        healthcheck_action=report
        """
    d = daemon(pool.format(version="v1"))
    wait_until(lambda: sum(i["health"] == "healthy" for i in d.rpc().supervisor.getAllProcessInfo()) == 3,
               what="three healthy", timeout=20)
    d.write(pool.format(version="v2"))
    done = d.ctl("update", "--precise", "--rolling")
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines() == [f"~ pool:pool_{n} (command)" for n in range(3)]
    log = d.log_text()
    for n in range(2):  # each replaced only once the one before it was healthy again
        replaced = log.index(f"update: pool:pool_{n} changed")
        healthy = log.index(f"health: pool:pool_{n} is healthy", replaced)
        assert log.index(f"update: pool:pool_{n + 1} changed") > healthy
