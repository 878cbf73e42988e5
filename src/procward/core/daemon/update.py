"""``procward.update``: apply a re-read configuration touching only what changed.

supervisord's ``update`` replaces a whole group when anything in it changed. Here the unit is the
process: in a ``[group:x]`` where only program ``a`` changed, ``b`` keeps running; a ``numprocs`` change
from 4 to 6 starts two processes and touches none of the four. A change to the group itself (its
priority, an event listener pool, an fcgi socket) still replaces the group. The plan says, for each
change, which options differ, and can be asked for without applying it (a dry run).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from procward.config.model import Config, GroupConfig, GroupKind, ProcessConfig
from procward.core.daemon.rolling import RollStopped, ready_limit, wait_ready
from procward.core.daemon.supervisor import Supervisor
from procward.core.events import Event
from procward.core.states import RUNNING_STATES, STOPPED_STATES

log = logging.getLogger(__name__)


@dataclass(slots=True)
class GroupChange:
    """What changed in one group that stays."""

    name: str
    added: list[str] = field(default_factory=list)  # process names
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)  # process name -> options that differ
    whole: list[str] = field(default_factory=list)  # group options that differ: the group is replaced
    why: dict[str, str] = field(default_factory=dict)  # added or removed process name -> "numprocs 2 -> 3"


@dataclass(slots=True)
class Plan:
    """Groups added and removed, and per-process changes in the groups that stay."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[GroupChange] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The XML-RPC answer."""
        return {"added": self.added, "removed": self.removed,
                "changed": [dataclasses.asdict(change) for change in self.changed]}


def differing(old: Any, new: Any) -> list[str]:
    """The compared fields of two config dataclasses that differ (an option's name for each)."""
    return [f.name for f in dataclasses.fields(old) if f.compare and getattr(old, f.name) != getattr(new, f.name)]


def plan(active: dict[str, GroupConfig], new: Config) -> Plan:
    """What applying ``new`` to the ``active`` groups would do."""
    wanted = {g.name: g for g in new.groups}
    result = Plan(added=sorted(set(wanted) - set(active)), removed=sorted(set(active) - set(wanted)))
    for name in sorted(set(wanted) & set(active)):
        old, fresh = active[name], wanted[name]
        if old == fresh:
            continue
        change = GroupChange(name)
        change.whole = [f for f in differing(old, fresh) if f != "processes"]
        if fresh.kind != GroupKind.PROGRAM:
            change.whole = change.whole or ["processes"]  # pools and fcgi sockets are replaced whole
        before = {p.name: p for p in old.processes}
        after = {p.name: p for p in fresh.processes}
        change.added = sorted(set(after) - set(before))
        change.removed = sorted(set(before) - set(after))
        counts = (Counter(p.program for p in old.processes), Counter(p.program for p in fresh.processes))
        for process_name in change.added + change.removed:
            program = (after.get(process_name) or before[process_name]).program
            if counts[0][program] and counts[1][program] and counts[0][program] != counts[1][program]:
                change.why[process_name] = f"numprocs {counts[0][program]} -> {counts[1][program]}"
        change.changed = {n: differing(before[n], after[n]) for n in sorted(set(before) & set(after))
                          if before[n] != after[n]}
        result.changed.append(change)
    return result


async def apply(sup: Supervisor, todo: Plan, *, rolling: bool = False) -> None:
    """Carry ``todo`` out on ``sup`` (its ``parsed`` configuration is the new one). With ``rolling``, the
    changed processes of a group are replaced one at a time, each ready before the next (RollStopped
    at the first that is not, the others left as they were)."""
    try:
        await _apply(sup, todo, rolling=rolling)
    finally:
        sup.release_sockets()  # after, not between: a replaced program's socket stays open throughout


async def _apply(sup: Supervisor, todo: Plan, *, rolling: bool) -> None:
    for name in todo.removed:
        await _stop(sup, name)
        await sup.remove_group(name)
    for change in todo.changed:
        if change.whole:
            log.info("update: %s changed (%s): replaced", change.name, ", ".join(change.whole))
            await _stop(sup, change.name)
            await sup.remove_group(change.name)
            sup.add_group_by_name(change.name)
        else:
            await _per_process(sup, change, rolling=rolling)
    for name in todo.added:
        sup.add_group_by_name(name)


async def _stop(sup: Supervisor, name: str) -> None:
    for process in reversed(sup.groups[name].in_start_order()):
        if process.state in RUNNING_STATES:
            process.stop()
    for process in sup.groups[name].in_start_order():
        await process.wait_state(STOPPED_STATES)


async def _per_process(sup: Supervisor, change: GroupChange, *, rolling: bool) -> None:
    group = sup.groups[change.name]
    config = sup.parsed.group(change.name)
    assert config is not None
    fresh = {p.name: p for p in config.processes}
    group.config = config
    if rolling:
        names = list(change.changed)
        for index, name in enumerate(names):
            await _replace(sup, change, name, fresh)
            process = group.processes[name]
            if process.config.autostart and not await wait_ready(process, ready_limit(process)):
                sup.bus.publish(Event("PROCWARD_GROUP_CHANGED", f"groupname:{change.name}\n"))
                left = ", ".join(f"{change.name}:{n}" for n in names[index + 1:]) or "none"
                raise RollStopped(f"{change.name}:{name} did not become ready: rolling update stopped; "
                                  f"not replaced yet: {left}")
        change = dataclasses.replace(change, changed={})
    for name in [*change.removed, *change.changed]:
        process = group.processes[name]
        if process.state in RUNNING_STATES:
            process.stop()
            await process.wait_state(STOPPED_STATES)
        sup.cron.remove(process)
        del group.processes[name]
        await process.aclose()
        what = f"changed ({', '.join(change.changed[name])})" if name in change.changed else "removed"
        log.info("update: %s:%s %s", change.name, name, what)
    for name in [*change.changed, *change.added]:
        process = group.add(fresh[name], sup.rt)
        sup.cron.add(process)
        if process.config.autostart:
            sup.start_process(process)
    sup.bus.publish(Event("PROCWARD_GROUP_CHANGED", f"groupname:{change.name}\n"))


async def _replace(sup: Supervisor, change: GroupChange, name: str, fresh: dict[str, ProcessConfig]) -> None:
    """One changed process: stopped, replaced by its new configuration, started if autostart."""
    group = sup.groups[change.name]
    old = group.processes.pop(name)
    if old.state in RUNNING_STATES:
        old.stop()
        await old.wait_state(STOPPED_STATES)
    sup.cron.remove(old)
    await old.aclose()
    log.info("update: %s:%s changed (%s)", change.name, name, ", ".join(change.changed[name]))
    process = group.add(fresh[name], sup.rt)
    sup.cron.add(process)
    if process.config.autostart:
        sup.start_process(process)
