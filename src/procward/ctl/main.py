"""``procward ctl``: the supervisorctl-compatible client (delivered with the control-plane issue).

Until it lands, this says so plainly instead of pretending: the daemon already serves Supervisor's
XML-RPC API, so the real ``supervisorctl`` works against it unchanged.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

NOT_YET = 1


def main(argv: Sequence[str]) -> int:
    """Explain that procward ctl is not built yet and what to use meanwhile."""
    print("procward ctl is not available in this version yet. procward serves Supervisor's XML-RPC API, "
          "so use the real supervisorctl against it: supervisorctl -c <your supervisord.conf> "
          + " ".join(argv), file=sys.stderr)
    return NOT_YET
