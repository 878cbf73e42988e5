"""A process group: the processes of one [program:x], [group:x], listener pool or fcgi program."""

from __future__ import annotations

from procward.config.model import GroupConfig, ProcessConfig
from procward.core.process.fcgi import FcgiSocket
from procward.core.process.lifecycle import Process
from procward.core.runtime import Runtime
from procward.core.states import STOPPED_STATES


class ProcessGroup:
    """Members in priority order (start order); stop order is the reverse."""

    def __init__(self, config: GroupConfig, rt: Runtime) -> None:
        self.config = config
        self.socket = FcgiSocket(config.fcgi) if config.fcgi is not None else None
        self.processes: dict[str, Process] = {
            p.name: Process(p, config.name, rt, stdin_socket=self.socket)
            for p in sorted(config.processes, key=lambda c: (c.priority, c.name))
        }

    @property
    def name(self) -> str:
        """The group name."""
        return self.config.name

    def add(self, config: ProcessConfig, rt: Runtime) -> Process:
        """A new member (update added or changed it); the members stay in start order."""
        process = Process(config, self.name, rt, stdin_socket=self.socket)
        self.processes[config.name] = process
        self.processes = dict(sorted(self.processes.items(), key=lambda item: (item[1].config.priority, item[0])))
        return process

    def in_start_order(self) -> list[Process]:
        """Members, lowest priority number first."""
        return list(self.processes.values())

    def unstopped(self) -> list[Process]:
        """Members not yet in a stopped state."""
        return [p for p in self.processes.values() if p.state not in STOPPED_STATES]

    async def aclose(self) -> None:
        """Release every member's resources, its tasks awaited (the group is being removed)."""
        for process in self.processes.values():
            await process.aclose()
        if self.socket is not None:
            self.socket.close()
