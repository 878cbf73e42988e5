"""Read supervisord-dialect INI files into sections whose options remember file and line.

The rules are those of Supervisor 4.3's parser (Python's RawConfigParser with
``inline_comment_prefixes=(';', '#')`` and ``strict=False``): full-line comments start with ``#`` or ``;``,
an inline comment needs whitespace before its ``;``/``#``, indented lines continue the previous value,
option names are lower-cased, and a section seen twice merges with the last value winning. What this
reader adds is the location of every option, so that errors can name file and line, and three refusals
Supervisor does not make: a line that opens a section header without closing it, a process section
([program:x], [group:x], ...) written twice (merging two copies is never what was meant), and a
repeated option, which is warned about naming both lines (the later one wins, as in Supervisor).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from procward.config.expand import expand
from procward.errors import ConfigError

_SECTION = re.compile(r"\[(?P<header>.+)\]")
_OPTION = re.compile(r"(?P<option>.*?)\s*(?P<vi>=|:)\s*(?P<value>.*)$")
_INLINE_PREFIXES = (";", "#")
_LINE_PREFIXES = ("#", ";")
DEFAULT_SECTION = "DEFAULT"
# Sections whose duplication is a copy-paste mistake rather than an override.
_PROCESS_PREFIXES = ("program:", "eventlistener:", "fcgi-program:", "group:")


@dataclass(slots=True)
class Option:
    """One option's raw value and where it was written."""

    value: str
    file: str
    line: int


@dataclass(slots=True)
class Section:
    """A section and its options; ``file``/``line`` are where it first appeared."""

    name: str
    file: str
    line: int
    options: dict[str, Option] = field(default_factory=dict)


@dataclass(slots=True)
class IniDocument:
    """Every section read from a main file and the files it includes, in reading order."""

    main_file: str
    sections: dict[str, Section] = field(default_factory=dict)
    defaults: dict[str, Option] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def get(self, section: str, option: str) -> Option | None:
        """The option of a section, falling back to [DEFAULT] as configparser does."""
        found = self.sections[section].options.get(option)
        return found if found is not None else self.defaults.get(option)


def _strip_comment(line: str) -> tuple[str, bool]:
    """Return the line without its comment, and whether it had one (mirrors configparser)."""
    if line.strip().startswith(_LINE_PREFIXES):
        return "", True
    cut = len(line)
    for prefix in _INLINE_PREFIXES:
        index = line.find(prefix)
        while index != -1:
            if index == 0 or line[index - 1].isspace():
                cut = min(cut, index)
                break
            index = line.find(prefix, index + 1)
    return line[:cut].strip(), cut != len(line)


def _lines(path: str) -> Iterator[tuple[int, str]]:
    try:
        with open(path, encoding="utf-8", newline=None) as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"file is not valid UTF-8 ({exc.reason} at byte {exc.start})", file=path) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", file=path) from exc
    yield from enumerate(text.split("\n"), start=1)


def parse_file(path: str, doc: IniDocument) -> list[str]:
    """Merge one file into ``doc``; return the names of the sections this file created."""
    created: list[str] = []
    current: dict[str, Option] | None = None
    section_name = ""
    optname: str | None = None
    parts: list[str] = []
    indent_level = 0

    def flush() -> None:
        if current is not None and optname is not None and optname in current:
            option = current[optname]
            option.value = "\n".join(parts).rstrip()
            if "\0" in option.value:
                # exec, open and the environment all end a string at NUL: the value cannot mean anything.
                raise ConfigError("value contains a NUL byte, which no command, path or environment can carry",
                                  file=path, line=option.line, section=section_name, option=optname)

    for number, raw in _lines(path):
        value, had_comment = _strip_comment(raw)
        if not value:
            if not had_comment and optname is not None:
                parts.append("")
            continue
        indent = len(raw) - len(raw.lstrip())
        if current is not None and optname is not None and indent > indent_level:
            parts.append(value)
            continue
        indent_level = indent
        header = _SECTION.match(value)
        if not header and value.startswith("["):
            # configparser would read "[program:x" as an option "[program" of the previous section.
            raise ConfigError(f"section header without a closing ']': {value!r}", file=path, line=number)
        if header:
            flush()
            section_name, optname = header.group("header"), None
            if section_name == DEFAULT_SECTION:
                current = doc.defaults
            elif section_name in doc.sections:
                earlier = doc.sections[section_name]
                if earlier.file == path and section_name.startswith(_PROCESS_PREFIXES):
                    raise ConfigError(f"the section is written twice in this file (lines {earlier.line} "
                                      f"and {number}); merge them or rename one", file=path, line=number,
                                      section=section_name)
                current = earlier.options
            else:
                doc.sections[section_name] = Section(section_name, path, number)
                current = doc.sections[section_name].options
                created.append(section_name)
            continue
        if current is None:
            raise ConfigError(f"option line before any [section] header: {raw.strip()!r}", file=path,
                              line=number)
        match = _OPTION.match(value)
        if not match or not match.group("option"):
            raise ConfigError(f"expected 'name = value' or a [section] header, got {raw.strip()!r}",
                              file=path, line=number, section=section_name)
        flush()
        optname = match.group("option").rstrip().lower()
        previous = current.get(optname)
        if previous is not None and previous.file == path:
            doc.warnings.append(f"{path}:{number}: [{section_name}] {optname} is set twice (lines "
                                f"{previous.line} and {number}); the later value wins, as in Supervisor")
        current[optname] = Option(match.group("value").strip(), path, number)
        parts = [current[optname].value]
    flush()
    return created


def _expand_include_pattern(pattern: str, option: Option, expansions: dict[str, str]) -> str:
    return expand(pattern, expansions, where=option, section="include", option="files")


def read(main_file: str, expansions: dict[str, str]) -> IniDocument:
    """Read ``main_file`` and, recursively, the files its ``[include]`` sections name.

    Supervisor follows only the main file's ``[include]``; procward also follows includes in included
    files (a conf.d that includes more), refusing a cycle. A glob that matches the including file itself
    is skipped, as re-reading it changes nothing.
    """
    main_file = os.path.abspath(main_file)
    doc = IniDocument(main_file=main_file)
    section_files: dict[str, list[str]] = {}
    _read_recursive(main_file, doc, expansions, chain=[], section_files=section_files)
    return doc


def _read_recursive(
    path: str,
    doc: IniDocument,
    expansions: dict[str, str],
    *,
    chain: list[str],
    section_files: dict[str, list[str]],
) -> None:
    doc.files.append(path)
    includes_before = doc.sections.pop("include", None)
    before = {name: dict(sec.options) for name, sec in doc.sections.items()}
    created = parse_file(path, doc)
    _check_cross_file_duplicates(path, doc, before, created, section_files)
    include = doc.sections.pop("include", None)
    if includes_before is not None:
        doc.sections["include"] = includes_before
    if include is None:
        return
    files_opt = include.options.get("files")
    if files_opt is None:
        raise ConfigError("no 'files' setting (expected space-separated globs of files to include)",
                          file=path, line=include.line, section="include")
    import glob  # here: only an [include] needs it

    here = os.path.dirname(path)
    local = dict(expansions, here=here)
    patterns = _expand_include_pattern(files_opt.value.replace("%(here)s", here), files_opt, local).split()
    for pattern in patterns:
        full = os.path.join(here, pattern)
        matches = sorted(glob.glob(full))
        if not matches:
            doc.warnings.append(f'{files_opt.file}:{files_opt.line}: no file matches include "{full}"')
            continue
        for match in matches:
            match = os.path.abspath(match)
            if match == path:
                continue
            if match in chain:
                cycle = " -> ".join([*chain, path, match])
                raise ConfigError(f"include cycle: {cycle}", file=files_opt.file, line=files_opt.line,
                                  section="include", option="files")
            if not os.access(match, os.R_OK) or os.path.isdir(match):
                raise ConfigError(f"included file {match} is not a readable file", file=files_opt.file,
                                  line=files_opt.line, section="include", option="files")
            _read_recursive(match, doc, expansions, chain=[*chain, path], section_files=section_files)



def _check_cross_file_duplicates(
    path: str,
    doc: IniDocument,
    before: dict[str, dict[str, Option]],
    created: list[str],
    section_files: dict[str, list[str]],
) -> None:
    """Two files defining the same [program:x] is an error naming both (Supervisor merges silently)."""
    for name in created:
        section_files.setdefault(name, []).append(path)
    for name, options_before in before.items():
        if not name.startswith(_PROCESS_PREFIXES):
            continue
        section = doc.sections[name]
        touched = [opt for key, opt in section.options.items()
                   if opt.file == path and options_before.get(key) is not opt]
        if touched and section.file != path:
            raise ConfigError(
                f"[{name}] is defined in two files: {section.file}:{section.line} and {path}:{touched[0].line}"
                " (rename one, or remove the copy)",
                file=path, line=touched[0].line, section=name,
            )
