"""The ``procward.*`` namespace: what procward adds to Supervisor's API (alarms). supervisorctl never
calls it; ``procward ctl`` does."""

from __future__ import annotations

from typing import Any

from procward.core.daemon import rolling, update
from procward.core.daemon.supervisor import Supervisor
from procward.core.process.lifecycle import Process
from procward.rpc.faults import Faults, RPCError, faults_for
from procward.rpc.registry import Registry


class ProcwardNamespace:
    """Alarm control for one Supervisor."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.sup = supervisor

    def _processes(self, name: str) -> list[Process]:
        """``*``, a group (``g`` or ``g:*``), or one process; BAD_NAME otherwise."""
        if name in ("*", "all"):
            return list(self.sup.all_processes())
        group = self.sup.groups.get(name.removesuffix(":*"))
        if group is not None and (name.endswith(":*") or name not in group.processes):
            return group.in_start_order()
        with faults_for(name):
            group, process = self.sup.lookup(name)
        return [process] if process is not None else group.in_start_order()

    def _specs(self, name: str) -> list[str]:
        return [p.namespec for p in self._processes(name)]

    async def silenceAlarms(self, name: str) -> list[str]:
        """Silence the alarms of a process, a group, or all ("*")

        @param string name  a process ('group:name'), a group, or '*'
        @return array result  the processes silenced
        """
        specs = self._specs(name)
        self.sup.silenced.update(specs)
        return specs

    async def resumeAlarms(self, name: str) -> list[str]:
        """Turn the alarms of a process, a group, or all ("*") back on

        @param string name  a process ('group:name'), a group, or '*'
        @return array result  the processes whose alarms are on again
        """
        specs = self._specs(name)
        self.sup.silenced.difference_update(specs)
        return specs

    async def testAlarm(self) -> dict[str, bool]:
        """Send a test alarm through every configured channel now

        @return struct result  channel name -> whether it was delivered
        """
        if self.sup.alarms is None:
            raise RPCError(Faults.FAILED, "no alarm channel is configured (alarm_mail, alarm_command, alarm_webhook)")
        return await self.sup.alarms.test()

    async def rollingRestart(self, name: str, within: int = 0) -> list[str]:
        """Restart the processes of a program or group one at a time, each ready before the next

        @param string name  a group, a program with numprocs > 1, or one process ('group:name')
        @param int within  seconds each may take to become ready (0: from its startsecs and health check)
        @return array result  the processes restarted; FAILED when one did not become ready (the rest
                              are left running, not restarted)
        """
        processes = self._processes(name)
        try:
            return await rolling.roll(processes, self.sup.start_process, float(within) or None)
        except rolling.RollStopped as exc:
            raise RPCError(Faults.FAILED, str(exc)) from None

    async def update(self, dry_run: bool = False, roll: bool = False) -> dict[str, Any]:
        """Re-read the configuration and apply it, restarting only the processes whose own options changed

        @param boolean dry_run  only say what would be done
        @param boolean roll  replace the changed processes of a group one at a time, each ready first
        @return struct result  added and removed groups, and per group the processes added, removed and
                               changed (with the options that differ), or "whole" when the group is replaced
        """
        with faults_for("update"):
            self.sup.reload_config()
        todo = update.plan({name: g.config for name, g in self.sup.groups.items()}, self.sup.parsed)
        if not dry_run:
            try:
                await update.apply(self.sup, todo, rolling=roll)
            except rolling.RollStopped as exc:
                raise RPCError(Faults.FAILED, str(exc)) from None
        return {**todo.as_dict(), "applied": not dry_run}

    async def reexec(self) -> bool:
        """Re-execute the daemon (its code possibly upgraded) keeping every program running

        @return boolean result  True: the switch follows this answer. FAILED when a process is STARTING or
                                STOPPING (try again), or when the new code or the configuration does not
                                load (the daemon keeps running as it is)
        """
        if why := await self.sup.reexec():
            raise RPCError(Faults.FAILED, why)
        return True

    async def getAlarmState(self) -> dict[str, Any]:
        """Channels, silenced processes and delivery counts

        @return struct result  channels, silenced, sent, failed, dropped
        """
        alarms = self.sup.alarms
        return {"channels": alarms.sender.channels() if alarms else [], "silenced": sorted(self.sup.silenced),
                "sent": alarms.sent if alarms else 0, "failed": alarms.failed if alarms else 0,
                "dropped": alarms.dropped if alarms else 0}


def register(registry: Registry, ns: ProcwardNamespace) -> None:
    """Add every procward.* method to ``registry``."""
    registry.add_namespace("procward", ns)
