"""Go supervisord's dialect of supervisord.conf, rewritten into the document before it is read: its
``[program-default]`` section and the misspelled options its ``init`` template writes."""

from __future__ import annotations

from procward.config.ini import IniDocument


def program_defaults(doc: IniDocument) -> None:
    """Go supervisord's [program-default]: its options for every [program:x] that does not set them (a
    bad value is reported at the [program-default] line it came from)."""
    defaults = doc.sections.get("program-default")
    if defaults is None:
        return
    for name, section in doc.sections.items():
        if name.startswith("program:"):
            for option, value in defaults.options.items():
                section.options.setdefault(option, value)


# Go supervisord's `init` template writes these names; its own code reads the real ones (its #251).
GO_SPELLINGS = {"logfilemaxbytes": "logfile_maxbytes", "logfilebackups": "logfile_backups"}


def go_spellings(doc: IniDocument) -> list[str]:
    """Read Go's template spellings in [supervisord] as the real options, warning with the right name."""
    options = doc.sections["supervisord"].options
    warnings = []
    for wrong, right in GO_SPELLINGS.items():
        option = options.pop(wrong, None)
        if option is None:
            continue
        if right in options:
            warnings.append(f"{option.file}:{option.line}: [supervisord] {wrong} ignored: {right} is set too")
            continue
        options[right] = option
        warnings.append(f"{option.file}:{option.line}: [supervisord] read {wrong} (Go supervisord's template) as "
                        f"{right}; write {right}")
    return warnings
