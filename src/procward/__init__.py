"""procward: a supervisord-compatible process supervisor on an asyncio core."""

__version__ = "0.1.0"
# What getSupervisorVersion answers: supervisorctl and plugins compare against Supervisor's numbers.
SUPERVISOR_COMPAT_VERSION = "4.3.0"
# XML-RPC API version; supervisorctl 4.3 refuses to talk to anything else (exit 5).
API_VERSION = "3.0"
