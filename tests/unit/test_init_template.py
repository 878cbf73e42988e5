"""``procward init``: the template names every option procward reads, loads in procward, and means to
Supervisor 4.3's own parser what it means to procward (the oracle)."""

from __future__ import annotations

import importlib.resources
import re
import subprocess
import sys
from pathlib import Path

import pytest

from procward.commands.inittemplate import TEMPLATE
from procward.config.build import _KNOWN_OPTIONS, BuildOptions, load

ROOT = Path(__file__).resolve().parents[2]


def test_template_is_generated_from_the_reference() -> None:
    generated = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-init-template")], capture_output=True,
                               text=True, check=True, cwd=ROOT)
    assert "wrote" in generated.stderr
    assert (ROOT / "src" / "procward" / "commands/inittemplate.py").read_text().count("TEMPLATE = ") == 1
    from importlib import reload

    import procward.commands.inittemplate as module

    assert reload(module).TEMPLATE == TEMPLATE, "run scripts/gen-init-template and commit the result"


def test_every_option_is_in_the_template() -> None:
    named = {name.lower() for name in re.findall(r"^;?(\w+)=", TEMPLATE, re.MULTILINE)}
    missing = sorted(f"[{kind}] {option}" for kind, options in _KNOWN_OPTIONS.items() for option in options
                     if option not in named)
    assert not missing


def test_init_writes_a_file_both_parsers_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "supervisord.conf"
    run = subprocess.run([sys.executable, "-m", "procward", "init", "-o", str(conf)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    config = load(str(conf), BuildOptions())
    assert config.servers[0].file == "/tmp/supervisor.sock"
    assert config.supervisord.pidfile == "/tmp/supervisord.pid"
    assert not config.warnings

    from supervisor import options

    opts = options.ServerOptions()
    opts.configfile = str(conf)
    opts.process_config(do_usage=False)
    assert opts.pidfile == "/tmp/supervisord.pid"
    assert opts.configroot.supervisord.server_configs[0]["file"] == "/tmp/supervisor.sock"
    assert opts.process_group_configs == []

    again = subprocess.run([sys.executable, "-m", "procward", "init", "-o", str(conf)], capture_output=True,
                           text=True, timeout=60, check=False)
    assert again.returncode == 2
    assert "exists; --force replaces it" in again.stderr
    forced = subprocess.run([sys.executable, "-m", "procward", "init", "-o", str(conf), "--force"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert forced.returncode == 0


def block(text: str, header: str) -> set[str]:
    """The option names of a (commented) section of a template."""
    body = text.split(f"[{header}]", 1)[1].split("\n\n", 1)[0]
    return {name.lower() for name in re.findall(r"^;?(\w+)=", body, re.MULTILINE)}


def test_the_eventlistener_block_spells_out_what_echo_supervisord_conf_does() -> None:
    """Supervisor's own sample is the oracle: every option of its [eventlistener:x] block is in ours."""
    sample = (importlib.resources.files("supervisor") / "skel" / "sample.conf").read_text()  # echo_supervisord_conf
    theirs = block(sample, "eventlistener:theeventlistenername")
    assert len(theirs) > 25  # the oracle's block was found
    assert theirs <= block(TEMPLATE, "eventlistener:theeventlistenername")
