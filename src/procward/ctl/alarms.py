"""``procward ctl alarm``: test the alarm channels, silence or resume a program's alarms, show the state.
procward's own command (supervisorctl has no alarms); it calls the ``procward.*`` methods."""

from __future__ import annotations

import json
import xmlrpc.client

from procward.ctl.controller import BaseController, Exit
from procward.protocol import Faults


class AlarmCommands(BaseController):
    """The ``alarm`` command (not in ``help``'s list, which stays supervisorctl's: ``help alarm`` works)."""

    def do_alarm(self, arg: str) -> None:
        args = arg.split()
        as_json = "--json" in args
        args = [a for a in args if a != "--json"]
        if not args or args[0] not in ("test", "silence", "resume", "status") or \
                (args[0] in ("silence", "resume")) != (len(args) > 1):
            self._usage("alarm needs test, status, or silence/resume with names", self.help_alarm)
            return
        if not self.upcheck():
            return
        api = self.server().procward
        try:
            if args[0] == "test":
                self._show_test(api.testAlarm(), as_json)
            elif args[0] == "status":
                state = api.getAlarmState()
                self.output(json.dumps(state, sort_keys=True) if as_json else
                            f"channels: {', '.join(state['channels']) or 'none'}\n"
                            f"silenced: {', '.join(state['silenced']) or 'none'}\n"
                            f"sent: {state['sent']}  failed: {state['failed']}  dropped: {state['dropped']}")
            else:
                method = api.silenceAlarms if args[0] == "silence" else api.resumeAlarms
                for name in args[1:]:
                    self._silence(method, name, args[0])
        except xmlrpc.client.Fault as exc:
            if exc.faultCode == Faults.UNKNOWN_METHOD:
                self._fail_with("this daemon has no alarms (not procward, or an older one)")
                return
            self._fail_with(f"Error: {exc.faultString}")

    def _silence(self, method: object, name: str, verb: str) -> None:
        try:
            specs = method(name)  # type: ignore[operator]
        except xmlrpc.client.Fault as exc:
            if exc.faultCode != Faults.BAD_NAME:
                raise
            self.output(f"{name}: ERROR (no such process)")
            self.exitstatus = Exit.GENERIC
            return
        for spec in specs:
            self.output(f"{spec}: alarms {'silenced' if verb == 'silence' else 'resumed'}")

    def _show_test(self, results: dict[str, bool], as_json: bool) -> None:
        if as_json:
            self.output(json.dumps(results, sort_keys=True))
        for channel, ok in sorted(results.items()):
            if not as_json:
                self.output(f"{channel}: {'delivered' if ok else 'FAILED (see the daemon log)'}")
            if not ok:
                self.exitstatus = Exit.GENERIC

    def help_alarm(self) -> None:
        self.output("alarm test\t\tSend a test alarm through every configured channel")
        self.output("alarm status\t\tChannels, silenced processes, delivery counts")
        self.output("alarm silence <name>\tSilence the alarms of a process, a group, or *")
        self.output("alarm resume <name>\tTurn them back on")
