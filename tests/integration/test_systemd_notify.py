"""The daemon under a ``Type=notify`` unit: READY=1, RELOADING=1, STOPPING=1 and WATCHDOG=1 received on a
socket the test binds, as systemd would; the programs never see NOTIFY_SOCKET."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest
from support import wait_until


def test_sd_notify_messages(daemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    got: list[str] = []

    def until(text: str) -> None:
        while not any(text in m for m in got):
            got.append(sock.recv(4096).decode())

    try:
        d = daemon("""
            [program:env]
            command=sh -c 'env > %(here)s/env.txt; exec sleep 300'
            startsecs=0
            """)
        until("READY=1")
        ready = next(m for m in got if "READY=1" in m)
        assert f"MAINPID={d.proc.pid}" in ready
        wait_until(lambda: (tmp_path / "env.txt").exists() and (tmp_path / "env.txt").read_text(), what="env")
        env = (tmp_path / "env.txt").read_text()
        assert "NOTIFY_SOCKET" not in env
        assert "WATCHDOG_USEC" not in env
        got.clear()
        until("WATCHDOG=1")
        until("WATCHDOG=1")  # again: it beats
        got.clear()
        os.kill(d.proc.pid, signal.SIGHUP)
        until("RELOADING=1")
        assert "MONOTONIC_USEC=" in next(m for m in got if "RELOADING=1" in m)
        until("READY=1")
        got.clear()
        os.kill(d.proc.pid, signal.SIGTERM)
        until("STOPPING=1")
        assert d.proc.wait(timeout=30) == 0
    finally:
        sock.close()
