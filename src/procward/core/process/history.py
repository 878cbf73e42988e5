"""A process's recent past, for the process page: its last state changes and its last exits. Bounded
lists (a few hundred bytes a process), written by the state machine, read by the web page; not carried
across a reexec (the counters are)."""

from __future__ import annotations

STATES_KEPT = 40
EXITS_KEPT = 20


class History:
    """The last state changes (time, state) and exits (time, code, signal, seconds it ran), oldest first."""

    __slots__ = ("exits", "states")

    def __init__(self) -> None:
        self.states: list[tuple[float, str]] = []
        self.exits: list[tuple[float, int, int, float]] = []

    def entered(self, when: float, state: str) -> None:
        """The process entered ``state`` at ``when`` (Unix time)."""
        self.states.append((when, state))
        if len(self.states) > STATES_KEPT:
            del self.states[0]

    def ended(self, when: float, code: int, signal: int, ran: float) -> None:
        """A run ended at ``when``: its exit code (-1 for a signal), the signal, and how long it ran."""
        self.exits.append((when, code, signal, ran))
        if len(self.exits) > EXITS_KEPT:
            del self.exits[0]
