"""/metrics' own text writer against prometheus_client's generate_latest, the oracle: byte for byte the
same exposition for the same families (label escaping, label order, number formats, counters, info)."""

from __future__ import annotations

import dataclasses
import math

from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from procward.http.metrics import Family, _Collector, _Figures, _LibraryCollector, _Snapshot, render_text, text
from procward.protocol import ProcessState


def oracle(families: list[Family]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_LibraryCollector(families))
    return generate_latest(registry)


def test_tricky_values_and_numbers() -> None:
    families = [
        Family("t_info", "info", "an info", ("version",), [(('1.0 "beta"\\n',), 1.0)]),
        Family("t_plain", "gauge", "help with \\ backslash\nand newline", rows=[((), 3.0)]),
        Family("t_count", "counter", "a counter", ("b", "a"), [(("x", "y"), 2), (("é\\", 'q"'), 0.5)]),
        Family("t_numbers", "gauge", "numbers", ("k",), [(("int",), 7), (("big",), 1.5e20), (("neg",), -1),
                                                        (("inf",), math.inf), (("nan",), math.nan),
                                                        (("small",), 1e-7), (("zero",), 0)]),
        Family("t_empty", "gauge", "no rows", ("k",)),
    ]
    assert text(families) == oracle(families)


def test_a_daemons_families() -> None:
    figures = [_Figures(name, "g" if i else name, state, 1700000000.5 + i, (("exit", i), ("manual", 1)), (i, 2 * i),
                        -1 if i % 2 else 0, 9 if i % 2 else 0, i, None if i % 3 else 1.0, bool(i % 2), bool(i),
                        None, (10 * i, 0))
               for i, (name, state) in enumerate([("web", ProcessState.RUNNING), ("worker_0", ProcessState.FATAL),
                                                  ("odd\\name", ProcessState.BACKOFF)])]
    snapshot = _Snapshot(1700000000.0, 1, figures, [("pool", 2, 1)], [(("supervisor.getState", "ok"), 5)], 3, True,
                         [(("webhook", "fatal", "delivered"), 2)])
    families = list(_Collector(snapshot).families())
    assert text(families) == oracle(families)
    assert b'procward_process_state{group="g",name="worker_0",state="FATAL"} 1.0' in text(families)


def test_lines_kept_between_scrapes_are_still_exact() -> None:
    figures = [_Figures(f"p{i}", f"p{i}", ProcessState.RUNNING, 1700000000.0 + i, (), (0, i), 0, 0, 0, None, True,
                        True, None, (i, 0)) for i in range(5)]
    first = _Snapshot(1700000000.0, 1, figures, [], [], 0, True, [])
    body, kept = render_text(first, {})
    assert body == oracle(list(_Collector(first).families()))
    again, kept = render_text(first, kept)  # every process from the kept lines
    assert again == body
    changed = [*figures[:2], dataclasses.replace(figures[2], state=ProcessState.EXITED, exit_code=3), *figures[3:]]
    second = _Snapshot(1700000000.0, 1, changed[:4], [], [], 1, True, [])  # one changed, one gone
    body, kept = render_text(second, kept)
    assert body == oracle(list(_Collector(second).families()))
    assert len(kept) == 4
