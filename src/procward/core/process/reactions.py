"""What a process does about its health and its scripts, through its public interface only: events
published in its name, the configured action on a health verdict (restart, stop, a script), and hooks and
action scripts run in the program's environment."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from procward.config.model import HealthAction, Script
from procward.core.events import Event
from procward.core.process import health as probes
from procward.core.process.counters import RestartReason
from procward.core.process.health import Health
from procward.core.spawn import child_environment

if TYPE_CHECKING:
    from procward.core.process.lifecycle import Process

log = logging.getLogger(__name__)


def publish(process: Process, name: str, detail: str = "") -> None:
    """A procward event about ``process`` (PROCWARD_HEALTH_*, PROCWARD_PROCESS_READY)."""
    payload = f"processname:{process.name} groupname:{process.group} pid:{process.pid}"
    process.rt.bus.publish(Event(name, payload + (f"\n{detail}" if detail else "")))


def on_health(process: Process, health: Health, reason: str) -> None:
    """The health monitor's verdict changed: tell the waiters, publish it, act as configured."""
    process.changes.notify()
    check = process.config.healthcheck
    if health == Health.HEALTHY:
        log.info("health: %s is healthy", process.namespec)
        publish(process, "PROCWARD_HEALTH_HEALTHY")
        publish(process, "PROCWARD_PROCESS_READY")
    elif health == Health.UNHEALTHY:
        log.warning("health: %s is unhealthy (%s)", process.namespec, reason)
        publish(process, "PROCWARD_HEALTH_UNHEALTHY", reason)
        if check is not None and check.action == HealthAction.RESTART:
            process.restart(f"unhealthy: {reason}", RestartReason.HEALTH_CHECK)
        elif check is not None and check.action == HealthAction.STOP:
            log.warning("stopping %s: unhealthy (%s)", process.namespec, reason)
            process.stop()
    script = check and (check.on_healthy if health == Health.HEALTHY else
                        check.on_unhealthy if health == Health.UNHEALTHY else None)
    if script:
        process.tasks.start(run_script(process, script, f"{health} action"), f"{health} action")


async def run_script(process: Process, script: Script, what: str) -> str | None:
    """Run a hook or an action script in the program's environment, bounded by hook_timeout; why it
    failed, or None."""
    log.info("%s: running %s: %s", process.namespec, what, script.target)
    env = child_environment(process.config, process.group, process.rt.serverurl, {})
    reason = await probes.run(script, process.config.hook_timeout, process.rt.exits, env)
    if reason is not None:
        log.warning("%s: %s failed: %s", process.namespec, what, reason)
    return reason
