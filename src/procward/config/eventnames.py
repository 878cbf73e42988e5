"""Supervisor 4.3's event type names and their parents (for ``events=`` and subscription matching)."""

from __future__ import annotations

# name -> parent name ("" for the root). Abstract names are valid subscriptions too.
EVENT_TYPES: dict[str, str] = {
    "EVENT": "",
    "PROCESS_STATE": "EVENT",
    "PROCESS_STATE_STOPPED": "PROCESS_STATE",
    "PROCESS_STATE_EXITED": "PROCESS_STATE",
    "PROCESS_STATE_STARTING": "PROCESS_STATE",
    "PROCESS_STATE_STOPPING": "PROCESS_STATE",
    "PROCESS_STATE_BACKOFF": "PROCESS_STATE",
    "PROCESS_STATE_FATAL": "PROCESS_STATE",
    "PROCESS_STATE_RUNNING": "PROCESS_STATE",
    "PROCESS_STATE_UNKNOWN": "PROCESS_STATE",
    "PROCESS_COMMUNICATION": "EVENT",
    "PROCESS_COMMUNICATION_STDOUT": "PROCESS_COMMUNICATION",
    "PROCESS_COMMUNICATION_STDERR": "PROCESS_COMMUNICATION",
    "PROCESS_LOG": "EVENT",
    "PROCESS_LOG_STDOUT": "PROCESS_LOG",
    "PROCESS_LOG_STDERR": "PROCESS_LOG",
    "REMOTE_COMMUNICATION": "EVENT",
    "SUPERVISOR_STATE_CHANGE": "EVENT",
    "SUPERVISOR_STATE_CHANGE_RUNNING": "SUPERVISOR_STATE_CHANGE",
    "SUPERVISOR_STATE_CHANGE_STOPPING": "SUPERVISOR_STATE_CHANGE",
    "TICK": "EVENT",
    "TICK_5": "TICK",
    "TICK_60": "TICK",
    "TICK_3600": "TICK",
    "PROCESS_GROUP": "EVENT",
    "PROCESS_GROUP_ADDED": "PROCESS_GROUP",
    "PROCESS_GROUP_REMOVED": "PROCESS_GROUP",
}


# procward's own event types. They are not under EVENT: a listener written for Supervisor that subscribes
# to EVENT must never receive a type it does not know, so these go only to listeners that name them.
PROCWARD_EVENT_TYPES: dict[str, str] = {
    "PROCWARD_HEALTH": "",
    "PROCWARD_HEALTH_HEALTHY": "PROCWARD_HEALTH",
    "PROCWARD_HEALTH_UNHEALTHY": "PROCWARD_HEALTH",
    "PROCWARD_PROCESS_READY": "",
    "PROCWARD_MEMORY_LIMIT": "",
    "PROCWARD_FILE_CHANGED": "",
}
EVENT_TYPES.update(PROCWARD_EVENT_TYPES)


def ancestry(name: str) -> tuple[str, ...]:
    """The type and each of its parents up to EVENT."""
    chain = []
    while name:
        chain.append(name)
        name = EVENT_TYPES.get(name, "")
    return tuple(chain)
