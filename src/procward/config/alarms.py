"""Alarm options: ``[supervisord] alarm_*`` (channels, rate limits) and a program's ``alarm_events`` and
``max_tries_if_coredumped``. ``alarm_mail`` alone is enough, as in meetbill/supervise's config."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from procward.config import values as v
from procward.config.model import AlarmConfig, AlarmEvent
from procward.config.probes import positive_seconds

if TYPE_CHECKING:
    from procward.config.reader import SectionReader

SUPERVISORD_OPTIONS = frozenset({
    "alarm_events", "alarm_command", "alarm_webhook", "alarm_webhook_format", "alarm_mail", "alarm_mail_from",
    "alarm_sendmail", "alarm_smtp", "alarm_smtp_starttls", "alarm_smtp_username", "alarm_smtp_password",
    "alarm_interval", "alarm_batch", "alarm_flapping", "alarm_timeout", "alarm_queue",
    "alarm_alertmanager", "alarm_alertmanager_resend",
})
PROGRAM_OPTIONS = frozenset({"alarm_events", "max_tries_if_coredumped"})
SENDMAIL = "/usr/sbin/sendmail -t -i"  # as superlance's crashmail
ALL = frozenset(AlarmEvent) - {AlarmEvent.TEST}
_ADDRESS = re.compile(r"^[^@\s,;<>\"']+@[^@\s,;<>\"']+$")


def events(text: str) -> frozenset[AlarmEvent]:
    """``fatal, exit, flapping, unhealthy, memory, recovered``, ``all`` or ``none``."""
    words = {w.strip().lower() for w in text.replace(",", " ").split()}
    if words == {"all"}:
        return ALL
    if words in ({"none"}, set()):
        return frozenset()
    known = {e.value for e in AlarmEvent} - {AlarmEvent.TEST}
    if bad := sorted(words - known):
        raise ValueError(f"unknown alarm event {bad[0]!r} (expected {', '.join(sorted(known))}, all or none)")
    return frozenset(AlarmEvent(w) for w in words)


def _recipients(text: str) -> tuple[str, ...]:
    found = tuple(w for w in text.replace(",", " ").split() if w)
    for address in found:
        if not _ADDRESS.match(address):
            raise ValueError(f"not a mail address: {address!r}")
    return found


def _flapping(text: str) -> tuple[int, float]:
    restarts, sep, window = text.partition("/")
    if not sep or not restarts.strip().isdigit() or int(restarts) < 1:
        raise ValueError(f"expected RESTARTS/SECONDS (5/60), got {text!r}")
    return int(restarts), positive_seconds(window)


def _url(text: str) -> str:
    text = text.strip()
    if not text.startswith(("http://", "https://")) or len(text) < 10:
        raise ValueError(f"expected an http:// or https:// URL, got {text!r}")
    return text


def _urls(text: str) -> tuple[str, ...]:
    return tuple(_url(word) for word in text.replace(",", " ").split())


def _webhook_format(text: str) -> str:
    if text.strip().lower() not in ("json", "slack"):
        raise ValueError(f"expected json or slack, got {text!r}")
    return text.strip().lower()


def read(r: SectionReader) -> AlarmConfig | None:
    """The daemon-wide alarm settings; None when no channel is configured (nothing is watched then)."""
    command = (r.text("alarm_command") or "").strip() or None
    webhook = r.get("alarm_webhook", _url, None)
    mail = r.get("alarm_mail", _recipients, v.NONE)
    alertmanager: tuple[str, ...] = r.get("alarm_alertmanager", _urls, ())
    if not (command or webhook or mail or alertmanager):
        for option in sorted(SUPERVISORD_OPTIONS - {"alarm_command", "alarm_webhook", "alarm_mail"}):
            if r.text(option) is not None:
                raise r.error(option, "no alarm channel is configured: set alarm_mail, alarm_command, "
                                      "alarm_webhook or alarm_alertmanager")
        return None
    flap_restarts, flap_window = r.get("alarm_flapping", _flapping, (5, 60.0))
    smtp = r.get("alarm_smtp", v.inet_address, None)
    return AlarmConfig(
        events=r.get("alarm_events", events, ALL), command=command, webhook=webhook,
        slack=r.get("alarm_webhook_format", _webhook_format, "json") == "slack",
        mail=mail, mail_from=(r.text("alarm_mail_from") or "").strip(),
        sendmail=(r.text("alarm_sendmail") or SENDMAIL).strip(),
        smtp=None if smtp is None else (smtp[0] or "127.0.0.1", smtp[1]),
        smtp_starttls=r.get("alarm_smtp_starttls", v.boolean, True),
        smtp_user=r.text("alarm_smtp_username"), smtp_password=r.text("alarm_smtp_password"),
        interval=r.get("alarm_interval", positive_seconds, 60.0), batch=r.get("alarm_batch", positive_seconds, 2.0),
        flap_restarts=flap_restarts, flap_window=flap_window,
        timeout=r.get("alarm_timeout", positive_seconds, 10.0),
        queue=r.get("alarm_queue", lambda s: v.integer(s, minimum=1), 100),
        alertmanager=alertmanager, alertmanager_resend=r.get("alarm_alertmanager_resend", positive_seconds, 60.0),
    )
