"""Alarm channels: a command (JSON on stdin, PROCWARD_ALARM_* in its environment), a webhook (JSON POST,
or Slack's ``{"text": ...}``), and mail (``sendmail -t -i`` as superlance's crashmail does, or SMTP with
STARTTLS). Each attempt is bounded by ``timeout``; a failed one is retried twice with backoff; failures
are logged at most once a minute per channel, with a count.

The command and sendmail run as the daemon's other helpers do (spawned, reaped through their pidfd);
webhooks and SMTP run in a worker thread with the standard library, imported at the first alarm.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import TYPE_CHECKING

from procward.config.model import AlarmConfig, HealthKind, Script
from procward.core.exits import ExitWatcher
from procward.core.process import health

if TYPE_CHECKING:
    from email.message import EmailMessage

log = logging.getLogger(__name__)
RETRY_DELAYS = (1.0, 3.0)  # seconds before the second and third attempts
FAILURE_LOG_EVERY = 60.0


class Sender:
    """Sends one message (a list of alarms) through every configured channel."""

    def __init__(self, config: AlarmConfig, exits: ExitWatcher) -> None:
        self.config = config
        self._exits = exits
        self._last_failure_log: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def channels(self) -> list[str]:
        """The configured channels, by name."""
        c = self.config
        return [name for name, on in (("command", c.command), ("webhook", c.webhook), ("mail", c.mail)) if on]

    async def send(self, alarms: list[dict[str, object]], *, dropped: int) -> dict[str, bool]:
        """Deliver one message (alarms as dicts) everywhere; channel -> delivered."""
        channels = self.channels()
        outcomes = await asyncio.gather(*(self._attempts(name, alarms, dropped) for name in channels))
        return dict(zip(channels, outcomes, strict=True))

    async def _attempts(self, channel: str, alarms: list[dict[str, object]], dropped: int) -> bool:
        for attempt in range(len(RETRY_DELAYS) + 1):
            try:
                reason = await asyncio.wait_for(self._once(channel, alarms, dropped), self.config.timeout)
            except TimeoutError:
                reason = f"no answer within {self.config.timeout:g}s"
            except OSError as exc:
                reason = exc.strerror or str(exc)
            if reason is None:
                return True
            self._log_failure(channel, reason)
            if attempt < len(RETRY_DELAYS):
                await asyncio.sleep(RETRY_DELAYS[attempt])
        return False

    def _log_failure(self, channel: str, reason: str) -> None:
        now = time.monotonic()
        if now - self._last_failure_log.get(channel, -FAILURE_LOG_EVERY) >= FAILURE_LOG_EVERY:
            more = self._unlogged.pop(channel, 0)
            log.warning("alarms: %s failed: %s%s", channel, reason,
                        f" ({more} more failures not logged)" if more else "")
            self._last_failure_log[channel] = now
        else:
            self._unlogged[channel] = self._unlogged.get(channel, 0) + 1

    async def _once(self, channel: str, alarms: list[dict[str, object]], dropped: int) -> str | None:
        c = self.config
        if channel == "command":
            first = alarms[0]
            env = {f"PROCWARD_ALARM_{key.upper()}": str(first[key]) for key in
                   ("event", "program", "group", "host", "detail", "exit", "suppressed")}
            env["PROCWARD_ALARM_COUNT"] = str(len(alarms))
            env["PROCWARD_ALARM_DROPPED"] = str(dropped)
            body = json.dumps({"alarms": alarms, "dropped": dropped})
            return await health.run(Script(kind=HealthKind.EXEC, target=c.command or "", data=body), c.timeout,
                                    self._exits, env=_with_path(env))
        if channel == "webhook":
            payload = {"text": text(alarms, dropped)} if c.slack else {"alarms": alarms, "dropped": dropped}
            return await asyncio.to_thread(post_json, c.webhook or "", json.dumps(payload).encode(), c.timeout)
        message = _mail(c, alarms, dropped)
        if c.smtp is None:
            return await health.run(Script(kind=HealthKind.EXEC, target=c.sendmail, data=message.as_string()),
                                    c.timeout, self._exits)
        return await asyncio.to_thread(_smtp, c, message)


def _with_path(env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **env}


def subject(alarms: list[dict[str, object]]) -> str:
    """``[procward] host: web fatal`` (``and N more`` for a batch)."""
    first = alarms[0]
    more = f" and {len(alarms) - 1} more" if len(alarms) > 1 else ""
    return f"[procward] {first['host']}: {first['program']} {first['event']}{more}"


def text(alarms: list[dict[str, object]], dropped: int) -> str:
    """The message an operator reads: one block per alarm."""
    blocks = []
    for a in alarms:
        lines = [f"{a['program']} {a['event']} on {a['host']} at "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(float(a['time'])))}"]  # type: ignore[arg-type]
        for label, key in (("why", "detail"), ("exit", "exit"), ("restarts in window", "restarts_in_window"),
                           ("suppressed since the last alarm", "suppressed")):
            if a[key]:
                lines.append(f"{label}: {a[key]}")
        if a["uptime"]:
            lines.append(f"uptime: {float(a['uptime']):.0f}s")  # type: ignore[arg-type]
        for stream in ("stdout", "stderr"):
            if a[stream]:
                lines += [f"--- last lines of {stream} ---", str(a[stream])]
        blocks.append("\n".join(lines))
    if dropped:
        blocks.append(f"({dropped} alarm messages were dropped: the delivery queue was full)")
    return "\n\n".join(blocks) + "\n"


def _mail(c: AlarmConfig, alarms: list[dict[str, object]], dropped: int) -> EmailMessage:
    from email.message import EmailMessage

    message = EmailMessage()
    message["To"] = ", ".join(c.mail)
    message["From"] = c.mail_from or f"procward@{alarms[0]['host']}"
    message["Subject"] = subject(alarms)
    message.set_content(text(alarms, dropped))
    return message


def post_json(url: str, body: bytes, timeout: float) -> str | None:
    """POST ``body`` (in a worker thread); None on a 2xx answer, else why not."""
    import urllib.error  # imported on first use: most configurations send no webhook
    import urllib.request

    request = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 - the configured webhook
                                     headers={"Content-Type": "application/json", "User-Agent": "procward-alarm"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - http(s) only (config)
            status = int(answer.status)
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        return str(exc.reason)
    except (OSError, ValueError) as exc:
        return str(exc) or type(exc).__name__
    return None if 200 <= status < 300 else f"HTTP {status}"


def _smtp(c: AlarmConfig, message: EmailMessage) -> str | None:
    """Send ``message`` over SMTP (in a worker thread); None when accepted, else why not."""
    import smtplib

    host, port = c.smtp or ("127.0.0.1", 25)
    try:
        with smtplib.SMTP(host, port, timeout=c.timeout) as server:
            if c.smtp_starttls:
                server.starttls()
            if c.smtp_user and c.smtp_password:
                server.login(c.smtp_user, c.smtp_password)
            server.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        return str(exc) or type(exc).__name__
    return None
