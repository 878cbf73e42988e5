"""The one exception hierarchy shared by every layer."""

from __future__ import annotations


class ProcwardError(Exception):
    """Base of every error procward raises on purpose."""


class OutputClosed(ProcwardError):
    """Standard output's reader went away (``procward ctl tail -f x | head``): the command ends quietly."""


class ConfigError(ProcwardError):
    """A configuration problem, located by file, line, section and option when known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        section: str | None = None,
        option: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.section = section
        self.option = option
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        if self.section:
            # An absurd section name (100,000 characters) must not make an unreadable error line.
            section = self.section if len(self.section) <= 80 else self.section[:60] + "..."
            where += f"[{section}] "
        if self.option:
            where += f"{self.option}: "
        return where + self.message
