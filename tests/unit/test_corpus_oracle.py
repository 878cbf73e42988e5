"""Every real-world config of the corpus means to procward what Supervisor 4.3's own parser makes of it.

The oracle is supervisor.options.ServerOptions from PyPI. Both parsers are neutralised the same way
for configs written for other machines (INDEX.md): directories need not exist, unknown users map to
uid 0, and every %(ENV_X)s the file names gets a dummy value.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from procward.config.build import BuildOptions, load
from procward.config.values import LogTarget
from procward.errors import ConfigError

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "supervisord-configs"
FILES = sorted(CORPUS.glob("*.conf")) if CORPUS.is_dir() else []


def _dummy_env(text: str) -> dict[str, str]:
    env = {}
    for name in set(re.findall(r"%\(ENV_(\w+)\)s", text)):
        if name in os.environ:
            continue
        upper = name.upper()
        if upper.startswith("ENABLE") or any(w in upper for w in ("ENABLE", "AUTOSTART", "AUTORESTART")):
            env[name] = "true"
        elif "PORT" in upper:
            env[name] = "9001"
        elif upper.endswith("LEVEL"):
            env[name] = "info"
        elif "USER" in upper:
            env[name] = "root"
        elif upper.endswith("_FILE"):
            env[name] = "/tmp/dummy.file"
        elif re.search(rf"%\(ENV_{name}\)s/", text):
            env[name] = "/tmp"
        elif re.search(r"(NUM|COUNT|WORKERS|SECS|RETRIES|PRIORITY|DELAY|AGE|MAX)", upper):
            env[name] = "1"
        else:
            env[name] = "dummy"
    return env


def _prepare(src: Path, tmp: Path) -> Path:
    text = src.read_text(encoding="utf-8", errors="replace")
    main = tmp / "main.conf"
    if re.search(r"^\s*\[supervisord\]", text, re.M):
        shutil.copy(src, main)
    else:
        shutil.copy(src, tmp / "snippet.conf")
        main.write_text("[supervisord]\n[include]\nfiles = snippet.conf\n")
    return main


def _oracle(main: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from supervisor import datatypes, options

    monkeypatch.setattr(datatypes, "existing_dirpath", lambda v: os.path.expanduser(v))
    monkeypatch.setattr(datatypes, "existing_directory", lambda v: os.path.expanduser(v))
    monkeypatch.setattr(options, "existing_dirpath", lambda v: os.path.expanduser(v))
    monkeypatch.setattr(options, "existing_directory", lambda v: os.path.expanduser(v))

    def name_to_uid(name: str) -> int:
        try:
            return datatypes.name_to_uid(name)
        except ValueError:
            return 0

    monkeypatch.setattr(options, "name_to_uid", name_to_uid)
    monkeypatch.setattr(options.ServerOptions, "import_spec", lambda self, spec: (lambda *a: None))
    opts = options.ServerOptions()
    opts.configfile = str(main)
    opts.process_config(do_usage=False)
    return opts


def _target(value: Any) -> str:
    from supervisor.datatypes import Automatic

    if value is Automatic:
        return "auto"
    return "none" if value is None else str(value)


def _ours(target: Any) -> str:
    if target == LogTarget.AUTO:
        return "auto"
    return "none" if target == LogTarget.NONE else str(target)


def _restart(value: Any) -> str:
    from supervisor.datatypes import RestartUnconditionally

    if value is False:
        return "false"
    return "true" if value is RestartUnconditionally else "unexpected"


def _sv_view(opts: Any) -> dict[str, Any]:
    view = {}
    for group in opts.process_group_configs:
        procs = {}
        for p in group.process_configs:
            procs[p.name] = {
                "command": p.command, "priority": p.priority, "autostart": p.autostart,
                "autorestart": _restart(p.autorestart),
                "startsecs": p.startsecs, "startretries": p.startretries, "exitcodes": list(p.exitcodes),
                "stopsignal": int(p.stopsignal), "stopwaitsecs": p.stopwaitsecs, "stopasgroup": p.stopasgroup,
                "killasgroup": p.killasgroup, "redirect_stderr": p.redirect_stderr,
                "environment": dict(p.environment or {}), "directory": p.directory, "umask": p.umask,
                "stdout": _target(p.stdout_logfile), "stderr": _target(p.stderr_logfile),
                "stdout_maxbytes": p.stdout_logfile_maxbytes, "stdout_backups": p.stdout_logfile_backups,
                "stdout_syslog": p.stdout_syslog, "serverurl": p.serverurl,
            }
        view[group.name] = {"priority": group.priority, "processes": procs}
    return view


def _pw_view(config: Any) -> dict[str, Any]:
    view = {}
    for group in config.groups:
        procs = {}
        for p in group.processes:
            procs[p.name] = {
                "command": p.command, "priority": p.priority, "autostart": p.autostart,
                "autorestart": p.autorestart.value, "startsecs": p.startsecs, "startretries": p.startretries,
                "exitcodes": list(p.exitcodes), "stopsignal": p.stopsignal, "stopwaitsecs": p.stopwaitsecs,
                "stopasgroup": p.stopasgroup, "killasgroup": p.killasgroup, "redirect_stderr": p.redirect_stderr,
                "environment": dict(p.environment), "directory": p.directory, "umask": p.umask,
                "stdout": _ours(p.stdout.target), "stderr": _ours(p.stderr.target),
                "stdout_maxbytes": p.stdout.maxbytes, "stdout_backups": p.stdout.backups,
                "stdout_syslog": p.stdout.syslog, "serverurl": p.serverurl,
            }
        view[group.name] = {"priority": group.priority, "processes": procs}
    return view


@pytest.mark.skipif(not FILES, reason="shared corpus not present beside the repository")
@pytest.mark.parametrize("src", FILES, ids=[f.name[:40] for f in FILES])
def test_corpus_file_means_the_same(src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """procward accepts exactly the configs Supervisor accepts, with the same groups, processes and options."""
    main = _prepare(src, tmp_path)
    env = _dummy_env(src.read_text(encoding="utf-8", errors="replace"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    try:
        expected = _sv_view(_oracle(main, monkeypatch))
    except ValueError:
        # Supervisor refuses the file: the agreement is that procward refuses it too (a pass, not a skip).
        with pytest.raises(ConfigError):
            load(str(main), BuildOptions(host_checks=False))
        return
    ours = _pw_view(load(str(main), BuildOptions(host_checks=False)))
    assert ours == expected


def test_corpus_is_present() -> None:
    """The corpus is found where CI puts shared/ (so the oracle test above is not silently skipped)."""
    if os.environ.get("CI") != "true":
        pytest.skip("only enforced in CI, where shared/ sits beside the clone")
    assert len(FILES) >= 100
