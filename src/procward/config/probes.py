"""Health checks and hooks: procward's ``healthcheck*`` options, and Go supervisord's
``liveness_check_*``, ``pre_start_hook`` and ``pre_stop_hook``, read into one model (HealthCheck,
Script) so status, events, metrics and the web page show both spellings the same way.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from procward.config import values as v
from procward.config.model import HealthAction, HealthCheck, HealthKind, Script

if TYPE_CHECKING:
    from procward.config.reader import SectionReader

OPTIONS = frozenset({
    "healthcheck", "healthcheck_interval", "healthcheck_timeout", "healthcheck_retries",
    "healthcheck_start_period", "healthcheck_action",
    "liveness_check_script", "liveness_check_initial_delay", "liveness_check_period", "liveness_check_timeout",
    "liveness_check_success_threshold", "liveness_check_failure_threshold", "liveness_check_failure_action",
    "liveness_check_success_action", "pre_start_hook", "pre_stop_hook", "hook_timeout",
})
_HTTP_HEADER = ("-H", "--header")
_HTTP_DATA = ("-d", "--data")
_HTTP_TLS = ("--key-file", "--cert-file", "--ca-file")


def read(r: SectionReader) -> dict[str, Any]:
    """The ProcessConfig fields for health checks and hooks ."""
    return {
        "healthcheck": _healthcheck(r) or _liveness(r),
        "pre_start_hook": _optional_script(r, "pre_start_hook"),
        "pre_stop_hook": _optional_script(r, "pre_stop_hook"),
        "hook_timeout": r.get("hook_timeout", positive_seconds, 60.0),
    }


def seconds(text: str) -> float:
    """A number of seconds >= 0."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"expected a number of seconds, got {text!r}") from None
    if value < 0:
        raise ValueError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """A number of seconds > 0."""
    value = seconds(text)
    if value <= 0:
        raise ValueError(f"expected a number of seconds > 0, got {text!r}")
    return value


def script(r: SectionReader, option: str, spec: str, *, bare_command: bool) -> Script:
    """``http://url [-H 'K: V'] [-d data]``, ``tcp://host:port``, ``exec <command>``, and with
    ``bare_command`` (Go's options) any other text, ``script://`` optional, as a shell command."""
    spec = spec.strip()
    if spec.startswith("https://"):
        raise r.error(option, "https is not probed (the daemon keeps OpenSSL out): check the plain-HTTP port, "
                              "or run 'curl -fsS https://...' as a command")
    if spec.startswith("http://"):
        return _http(r, option, spec)
    if spec.startswith("tcp://"):
        try:
            host, port = v.inet_address(spec[6:])
        except ValueError:
            raise r.error(option, f"expected tcp://host:port, got {spec!r}") from None
        return Script(kind=HealthKind.TCP, target=f"{host or '127.0.0.1'}:{port}")
    if spec.startswith("exec ") or bare_command:
        command = spec[5:].strip() if spec.startswith("exec ") else spec.removeprefix("script://").strip()
        if command:
            return Script(kind=HealthKind.EXEC, target=command)
    expected = "http://host:port/path, tcp://host:port or " + ("a command" if bare_command else "'exec <command>'")
    raise r.error(option, f"expected {expected}, got {spec!r}")


def _http(r: SectionReader, option: str, spec: str) -> Script:
    """Go's curl-like form: the URL, then -H/--header and -d/--data (a POST body, @file read at each run)."""
    try:
        url, *args = shlex.split(spec)
    except ValueError as exc:
        raise r.error(option, f"cannot split {spec!r}: {exc}") from None
    headers: list[tuple[str, str]] = []
    data = ""
    while args:
        flag = args.pop(0)
        if flag in _HTTP_TLS:
            raise r.error(option, f"{flag} is for https, which is not probed")
        if flag not in _HTTP_HEADER + _HTTP_DATA or not args:
            raise r.error(option, f"unknown or incomplete option {flag!r} (expected -H 'Name: value' or -d data)")
        value = args.pop(0)
        if flag in _HTTP_DATA:
            data = value
            continue
        name, sep, text = value.partition(":")
        if not sep or not name.strip() or any(c in value for c in "\r\n"):
            raise r.error(option, f"expected -H 'Name: value', got {value!r}")
        headers.append((name.strip(), text.strip()))
    return Script(kind=HealthKind.HTTP, target=url, headers=tuple(headers), data=data)


def _optional_script(r: SectionReader, option: str) -> Script | None:
    text = r.text(option)
    return script(r, option, text, bare_command=True) if text and text.strip() else None


def _healthcheck(r: SectionReader) -> HealthCheck | None:
    spec = r.text("healthcheck")
    if spec is None or not spec.strip():
        return None
    if r.text("liveness_check_script"):
        raise r.error("liveness_check_script", "set healthcheck or liveness_check_script, not both")
    return HealthCheck(
        probe=script(r, "healthcheck", spec, bare_command=False),
        interval=r.get("healthcheck_interval", positive_seconds, 10.0),
        timeout=r.get("healthcheck_timeout", positive_seconds, 5.0),
        retries=r.get("healthcheck_retries", lambda s: v.integer(s, minimum=1), 3),
        start_period=r.get("healthcheck_start_period", seconds, 0.0),
        action=r.get("healthcheck_action", v.choice(HealthAction), HealthAction.RESTART),
    )


def _liveness(r: SectionReader) -> HealthCheck | None:
    """Go supervisord's liveness check, with Go's defaults (first probe after 60 s, then every 60 s, 30 s
    each, 3 failures). ``_failure_action`` is restart, stop, or a script run instead of either."""
    spec = r.text("liveness_check_script")
    if spec is None or not spec.strip():
        return None
    action, on_unhealthy = HealthAction.RESTART, None
    failure = (r.text("liveness_check_failure_action") or "restart").strip()
    if failure.lower() in (HealthAction.RESTART, HealthAction.STOP):
        action = HealthAction(failure.lower())
    elif failure:
        action, on_unhealthy = HealthAction.REPORT, script(r, "liveness_check_failure_action", failure,
                                                           bare_command=True)
    return HealthCheck(
        probe=script(r, "liveness_check_script", spec, bare_command=True),
        interval=r.get("liveness_check_period", positive_seconds, 60.0),
        timeout=r.get("liveness_check_timeout", positive_seconds, 30.0),
        retries=r.get("liveness_check_failure_threshold", lambda s: v.integer(s, minimum=1), 3),
        successes=r.get("liveness_check_success_threshold", lambda s: v.integer(s, minimum=1), 1),
        initial_delay=r.get("liveness_check_initial_delay", seconds, 60.0),
        action=action, on_healthy=_optional_script(r, "liveness_check_success_action"), on_unhealthy=on_unhealthy,
    )

