"""``procward service install|uninstall|status``: the daemon as a system service.

With systemd (``/run/systemd/system`` exists and ``systemctl`` is on PATH): a ``Type=notify`` unit, where
procward itself says READY=1 (core/daemon/systemd.py), then ``systemctl daemon-reload`` and ``enable --now``.
Without it: an LSB init script (start, stop, restart, reload, status; chkconfig and LSB headers),
enabled with ``update-rc.d`` or ``chkconfig`` where one exists. Refuses, with one line, when not root
(for the system's directories), when the service exists (unless ``--force``), or when the configuration
does not load.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence

from procward.config.build import load
from procward.config.model import Config
from procward.core.daemon.run import pidfile_holder
from procward.errors import ConfigError

UNIT_DIR = "/etc/systemd/system"
INIT_DIR = "/etc/init.d"

UNIT = """\
[Unit]
Description=procward process supervisor ({conf})
Documentation=https://github.com/procward/procward
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={exec} -n -c {conf}
ExecReload=/bin/kill -HUP $MAINPID
# procward stops its programs itself (stopsignal, stopwaitsecs, killasgroup); systemd signals procward
# only, then kills what is left after TimeoutStopSec.
KillMode=mixed
TimeoutStopSec={stop_timeout}
Restart=on-failure
LimitNOFILE={nofile}
WatchdogSec=60

[Install]
WantedBy=multi-user.target
"""

INIT_SCRIPT = """\
#!/bin/bash
# chkconfig: 2345 95 05
# description: procward process supervisor ({conf})
### BEGIN INIT INFO
# Provides:          {name}
# Required-Start:    $remote_fs $network $syslog
# Required-Stop:     $remote_fs $network $syslog
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: procward process supervisor
# Description:       procward ({conf}), a supervisord-compatible process supervisor
### END INIT INFO

DAEMON=({exec_words})
CONF={conf_sh}
PIDFILE={pidfile_sh}
STOP_TIMEOUT={stop_timeout}

# A zombie has exited (it only waits for its parent to collect it): it is not running.
alive() {{
    if [ -r "/proc/$1/stat" ]; then
        [ "$(sed 's/.*) //; s/ .*//' "/proc/$1/stat" 2>/dev/null)" != Z ]
    else
        kill -0 "$1" 2>/dev/null
    fi
}}

running() {{
    [ -s "$PIDFILE" ] && alive "$(cat "$PIDFILE")"
}}

case "$1" in
    start)
        if running; then echo "{name} is already running (pid $(cat "$PIDFILE"))"; exit 0; fi
        "${{DAEMON[@]}}" -c "$CONF" || exit 1
        echo "{name} started"
        ;;
    stop)
        if ! running; then echo "{name} is not running"; exit 0; fi
        pid=$(cat "$PIDFILE")
        kill -TERM "$pid"
        for _ in $(seq $((STOP_TIMEOUT * 10))); do
            # Gone, a zombie, or its pidfile removed (the daemon's last act): stopped.
            if ! alive "$pid" || [ ! -s "$PIDFILE" ]; then echo "{name} stopped"; exit 0; fi
            sleep 0.1
        done
        echo "{name} did not stop within $STOP_TIMEOUT s"; exit 1
        ;;
    restart)
        "$0" stop && "$0" start
        ;;
    reload|force-reload)
        running || {{ echo "{name} is not running"; exit 7; }}
        kill -HUP "$(cat "$PIDFILE")" && echo "{name} reloading"
        ;;
    status)
        if running; then echo "{name} is running (pid $(cat "$PIDFILE"))"; exit 0; fi
        echo "{name} is not running"; exit 3
        ;;
    *)
        echo "usage: $0 {{start|stop|restart|reload|status}}"; exit 2
        ;;
esac
"""


LSB_NOT_RUNNING = 3
LSB_UNKNOWN = 4


class InstallError(Exception):
    """One line for the operator."""


def main(argv: Sequence[str]) -> int:
    """Entry point of ``procward service``; 0, or 2 with one line on stderr."""
    p = argparse.ArgumentParser(prog="procward service", description="install procward as a system service")
    p.add_argument("action", choices=("install", "uninstall", "status"))
    p.add_argument("-c", "--configuration", metavar="FILE", required=True)
    p.add_argument("--name", default="procward", help="the service's name (default procward)")
    p.add_argument("--init", choices=("auto", "systemd", "sysv"), default="auto")
    p.add_argument("--dest", metavar="DIR", help="where the unit or script goes (default: the system's)")
    p.add_argument("--force", action="store_true", help="replace an existing service")
    p.add_argument("--no-start", action="store_true", help="write it, do not enable or start it")
    args = p.parse_args(argv)
    try:
        return _run(args)
    except InstallError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    systemd = args.init == "systemd" or (args.init == "auto" and _has_systemd())
    dest = args.dest or (UNIT_DIR if systemd else INIT_DIR)
    path = os.path.join(dest, f"{args.name}.service" if systemd else args.name)
    manage = args.dest is None and not args.no_start
    if args.action == "status":
        return _status(args.name, path, os.path.abspath(args.configuration), systemd=systemd)
    if args.dest is None and os.geteuid() != 0:
        raise InstallError(f"writing {dest} needs root (or give --dest DIR)")
    if args.action == "uninstall":
        return _uninstall(args.name, path, systemd=systemd, manage=manage)
    conf = os.path.abspath(args.configuration)
    try:
        config = load(conf)
    except ConfigError as exc:
        raise InstallError(f"the configuration does not load: {exc}") from None
    if os.path.exists(path) and not args.force:
        raise InstallError(f"{path} exists already; --force replaces it")
    text = (UNIT if systemd else INIT_SCRIPT).format(**_fields(config, conf, args.name))
    try:
        os.makedirs(dest, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(path, 0o644 if systemd else 0o755)
    except OSError as exc:
        raise InstallError(f"cannot write {path}: {exc.strerror}") from None
    print(f"wrote {path}")
    if manage:
        _enable(args.name, systemd=systemd)
    return 0


def _status(name: str, path: str, conf: str, *, systemd: bool) -> int:
    """LSB status codes, as the init script answers: 0 running, 3 not running, 4 unknown (the configuration,
    which names the pidfile, does not load, or the pidfile's lock cannot be tested)."""
    print(f"{name}: {'installed at ' + path if os.path.exists(path) else 'not installed'}")
    if systemd and shutil.which("systemctl"):
        subprocess.run(["systemctl", "--no-pager", "status", name], check=False)
    try:
        pidfile = load(conf).supervisord.pidfile
    except ConfigError as exc:
        print(f"{name}: status unknown: the configuration does not load: {exc}")
        return LSB_UNKNOWN
    try:
        pid = pidfile_holder(pidfile)
    except FileNotFoundError:
        pid = None  # a daemon that stopped cleanly removed it
    except OSError as exc:
        print(f"{name}: status unknown: cannot test the lock of {pidfile}: {exc.strerror}")
        return LSB_UNKNOWN
    if pid is None:
        print(f"{name}: not running (no procward holds {pidfile})")
        return LSB_NOT_RUNNING
    print(f"{name}: running (pid {pid})")
    return 0


def _fields(config: Config, conf: str, name: str) -> dict[str, object]:
    waits = [p.stopwaitsecs for g in config.groups for p in g.processes]
    found = shutil.which("procward")
    words = [found] if found else [sys.executable, "-m", "procward"]
    return {"conf": conf, "name": name, "exec": " ".join(words), "exec_words": " ".join(map(shlex.quote, words)),
            "conf_sh": shlex.quote(conf), "pidfile_sh": shlex.quote(config.supervisord.pidfile),
            "stop_timeout": max(waits, default=10) + 30, "nofile": max(config.supervisord.minfds, 1024)}


def _has_systemd() -> bool:
    return os.path.isdir("/run/systemd/system") and shutil.which("systemctl") is not None


def _enable(name: str, *, systemd: bool) -> None:
    if systemd:
        commands = [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", name]]
    elif shutil.which("update-rc.d"):
        commands = [["update-rc.d", name, "defaults"], [os.path.join(INIT_DIR, name), "start"]]
    elif shutil.which("chkconfig"):
        commands = [["chkconfig", "--add", name], [os.path.join(INIT_DIR, name), "start"]]
    else:
        commands = [[os.path.join(INIT_DIR, name), "start"]]
    for command in commands:
        done = subprocess.run(command, check=False)
        if done.returncode != 0:
            raise InstallError(f"{' '.join(command)} failed (exit {done.returncode})")


def _uninstall(name: str, path: str, *, systemd: bool, manage: bool) -> int:
    if not os.path.exists(path):
        raise InstallError(f"{path} does not exist: nothing to uninstall")
    if manage:
        if systemd:
            subprocess.run(["systemctl", "disable", "--now", name], check=False)
        else:
            subprocess.run([path, "stop"], check=False)
            for tool in (["update-rc.d", "-f", name, "remove"], ["chkconfig", "--del", name]):
                if shutil.which(tool[0]):
                    subprocess.run(tool, check=False)
    os.unlink(path)
    if manage and systemd:
        subprocess.run(["systemctl", "daemon-reload"], check=False)
    print(f"removed {path}")
    return 0
