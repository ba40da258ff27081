"""Port status to the server: the reporter threads."""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping
from typing import Any, cast

from netplex.agent.api import ServerApi
from netplex.agent.events import Reported
from netplex.agent.reporter import Reporter

from .fakes import wait_for


class _Api:
    """Where the reporter's own connection would be (``send`` below does the talking)."""

    def close(self) -> None:
        pass


def test_reports_overlap_but_never_for_the_same_port() -> None:
    stop = threading.Event()
    started: queue.Queue[dict[str, bool]] = queue.Queue()
    release = threading.Event()
    done: list[Reported] = []

    def send(_: Any, changes: Mapping[str, bool]) -> None:
        started.put(dict(changes))
        release.wait(5)

    reporter = Reporter(lambda: cast(ServerApi, _Api()), send, done.append, stop)
    reporter.start()
    try:
        reporter.submit({"a": True})
        assert started.get(timeout=5) == {"a": True}
        reporter.submit({"a": False, "b": True})
        # b goes out while the first call is still under way; a waits for it.
        assert started.get(timeout=5) == {"b": True}
        assert started.empty()
        release.set()
        assert started.get(timeout=5) == {"a": False}
        wait_for(lambda: len(done) == 3)
        assert all(r.error is None for r in done)
    finally:
        stop.set()
        release.set()
        reporter.wake()
