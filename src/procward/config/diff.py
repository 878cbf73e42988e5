"""Old vs new configuration -> the groups ``supervisorctl reread``/``update`` would touch."""

from __future__ import annotations

from dataclasses import dataclass

from procward.config.model import Config, GroupConfig


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    """Group names added, changed and removed, each sorted."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]

    @property
    def empty(self) -> bool:
        """True when nothing differs."""
        return not (self.added or self.changed or self.removed)


def diff(active: dict[str, GroupConfig], new: Config) -> ConfigDiff:
    """Compare the active groups with a freshly read configuration.

    As in Supervisor the unit is the group: any change to any of its processes (including the
    merged [supervisord] environment) makes the whole group "changed".
    """
    wanted = {g.name: g for g in new.groups}
    added = sorted(name for name in wanted if name not in active)
    removed = sorted(name for name in active if name not in wanted)
    changed = sorted(name for name, cfg in wanted.items() if name in active and active[name] != cfg)
    return ConfigDiff(tuple(added), tuple(changed), tuple(removed))
