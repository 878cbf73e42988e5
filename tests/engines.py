"""The real fleet engines, started by the tests: Prometheus (and promtool) from Debian's packages, on a
free loopback port in a temporary directory, stopped by pid. Without them a test skips naming the
packages; in CI (CI=true) it fails, since scripts/test installs them there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from support import free_port, wait_until

PACKAGES = "needs Debian's prometheus package (apt-get install prometheus prometheus-alertmanager)"


def binary(name: str) -> str:
    """The path of ``name`` (prometheus, promtool, prometheus-alertmanager); skip or fail without it."""
    found = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} missing in CI: {PACKAGES}")
        pytest.skip(PACKAGES)
    return found


class Engine:
    """A Debian engine binary run on a loopback port in ``workdir``, its output in ``NAME.log``, ready once
    its ``/-/ready`` answers; stopped by pid."""

    def __init__(self, name: str, workdir: Path, argv: list[str], port: int) -> None:
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(lambda: self.get("/-/ready", raw=True), what=f"{name} ready", timeout=30)
        except BaseException:
            self.stop()
            raise

    def get(self, path: str, *, raw: bool = False) -> Any:
        """GET ``path``: its JSON, or its bytes with ``raw``; the engine's log when it has exited."""
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited: {(Path(self.log.name)).read_text()[-2000:]}")
        with urllib.request.urlopen(self.url + path, timeout=10) as answer:  # noqa: S310 - loopback test server
            body = answer.read()
        return body if raw else json.loads(body)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Prometheus(Engine):
    """A Prometheus server scraping ``targets`` (host:port of /metrics) every second."""

    def __init__(self, workdir: Path, targets: list[str], *, auth: tuple[str, str] | None = None,
                 rules: list[Path] | None = None) -> None:
        exe = binary("prometheus")
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        lines = ["global:", "  scrape_interval: 1s", "  evaluation_interval: 1s", "rule_files:"]
        lines += [f"  - {path}" for path in rules or []] or ["  []"]
        lines += ["scrape_configs:", "  - job_name: procward", "    static_configs:",
                  f"      - targets: {json.dumps(targets)}"]
        if auth:
            lines += ["    basic_auth:", f"      username: {auth[0]}", f"      password: {auth[1]}"]
        config = workdir / "prometheus.yml"
        config.write_text("\n".join(lines) + "\n")
        super().__init__("prometheus", workdir, [
            exe, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"], port)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector (each with ``metric`` and ``value``)."""
        answer = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def value(self, expr: str) -> float | None:
        """The single value of ``expr`` now (None while it has no sample)."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None


class Alertmanager(Engine):
    """An Alertmanager (no cluster) that routes every alert to a receiver that sends nothing."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        exe = binary("prometheus-alertmanager")
        workdir.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        config = workdir / "alertmanager.yml"
        config.write_text(textwrap.dedent("""\
            route:
              receiver: nowhere
              group_wait: 1s
              group_interval: 1s
            receivers:
              - name: nowhere
            """))
        super().__init__("alertmanager", workdir, [
            exe, f"--config.file={config}", f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"], port)

    def alerts(self, **labels: str) -> list[dict[str, Any]]:
        """The alerts it holds that are not resolved, with these labels."""
        found = self.get("/api/v2/alerts")
        return [a for a in found if all(a["labels"].get(k) == v for k, v in labels.items())]
