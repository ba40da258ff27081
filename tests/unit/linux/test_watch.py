"""LineWatcher: a child process's lines reach the callback; one bad line does not end the watching."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from netplex.linux.watch import LineWatcher, link_monitor_argv


def _until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_every_line_reaches_the_callback_even_after_one_that_fails() -> None:
    lines: list[str] = []

    def on_line(line: str) -> None:
        if line.startswith("bad"):
            raise ValueError(line)
        lines.append(line)

    w = LineWatcher([sys.executable, "-c", "print('one'); print('bad'); print('two')"], on_line)
    w.start()
    _until(lambda: not w.alive() and len(lines) == 2)
    assert lines == ["one\n", "two\n"]
    w.stop()  # after it exited on its own: nothing to do, no error


def test_stop_ends_a_command_that_runs_on() -> None:
    w = LineWatcher([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
                    lambda _: None)
    w.start()
    assert w.alive()
    w.stop()
    assert not w.alive()
    w.stop()  # idempotent


def test_link_monitor_argv_names_the_namespace() -> None:
    assert link_monitor_argv("ns1") == ["ip", "-n", "ns1", "-o", "monitor", "link"]
    assert link_monitor_argv(None) == ["ip", "-o", "monitor", "link"]
