"""Reading one section of a supervisord-format file: each option expanded (``%(here)s``, ``%(ENV_X)s``,
``%(program_name)s``...), parsed, and every error located at its file, line, section and option. The one
reader every part of the builder uses (Supervisor's options, procward's, Go supervisord's)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from procward.config import values as v
from procward.config.expand import expand
from procward.config.ini import IniDocument, Option
from procward.config.model import Where
from procward.errors import ConfigError

T = TypeVar("T")


@dataclass(slots=True)
class SectionReader:
    """Reads one section's options: expand, parse, and locate every error."""

    doc: IniDocument
    section: str
    expansions: dict[str, object]
    kind: str
    # The section's options over [DEFAULT]'s (configparser's fallback), merged once: a process
    # section is asked for ~50 options, most of them absent.
    options: dict[str, Option] = field(init=False)

    def __post_init__(self) -> None:
        own = self.doc.sections[self.section].options
        self.options = {**self.doc.defaults, **own} if self.doc.defaults else own

    @property
    def where(self) -> Where:
        sec = self.doc.sections[self.section]
        return Where(file=sec.file, line=sec.line)

    def raw(self, option: str) -> Option | None:
        return self.options.get(option)

    def error(self, option: str | None, message: str, opt: Option | None = None) -> ConfigError:
        opt = opt or (self.raw(option) if option else None)
        line = opt.line if opt else self.where.line
        file = opt.file if opt else self.where.file
        return ConfigError(message, file=file, line=line, section=self.section, option=option)

    def text(self, option: str, default: str | None = None, *, do_expand: bool = True,
             extra: Mapping[str, object] | None = None) -> str | None:
        opt = self.options.get(option)
        if opt is None:
            return default
        value = opt.value.replace("%(here)s", os.path.dirname(opt.file)) if "%(here)s" in opt.value else opt.value
        if not do_expand:
            return value
        expansions = dict(self.expansions, **extra) if extra else self.expansions
        return expand(value, expansions, where=opt, section=self.section, option=option)

    def get(self, option: str, parse: Callable[[str], T], default: T, **kw: Mapping[str, object]) -> T:
        if option not in self.options:  # most are absent; answering here is 15% of reading 1000 programs
            return default
        text = self.text(option, **kw)  # type: ignore[arg-type]
        assert text is not None  # present, so text() returns its value
        try:
            return parse(text)
        except ValueError as exc:
            raise self.error(option, str(exc)) from None

    def required(self, option: str, parse: Callable[[str], T], what: str,
                 extra: Mapping[str, object] | None = None) -> T:
        text = self.text(option, extra=extra)
        if text is None or not text.strip():
            raise self.error(option, f"missing required option (expected {what})")
        try:
            return parse(text)
        except ValueError as exc:
            raise self.error(option, str(exc)) from None

    def name(self, raw: str) -> str:
        """A section's name (program, group, node) checked as a process name."""
        try:
            return v.process_name(raw)
        except ValueError as exc:
            raise self.error(None, f"bad section name: {exc}") from None

    def unknown_options(self, known: frozenset[str]) -> list[str]:
        """A warning for each option of the section not in ``known``."""
        sec = self.doc.sections[self.section]
        return [f"{opt.file}:{opt.line}: [{self.section}] unknown option {name!r} ignored"
                for name, opt in sec.options.items() if name not in known]
