"""Whether the server answers: one warning per outage, and a wake-up for the feed watcher when it is back."""

from __future__ import annotations

import logging
import threading

from netplex.agent.stats import StatsBook
from netplex.client import ConnectionFailed

__all__ = ["ServerHealth"]

LOG = logging.getLogger(__name__)


class ServerHealth:
    """Every server call of the agent reports here how it went (from any thread)."""

    def __init__(self, server_url: str, stats: StatsBook) -> None:
        self.server_url = server_url
        self._stats = stats
        self._down = False
        #: Set when a call succeeds after failures (or on stop): wakes the feed
        #: watcher out of its backoff so it is back on the feed at once.
        self.back = threading.Event()

    def error(self, what: str, exc: Exception) -> None:
        with self._stats.update() as st:
            st.server_errors += 1
            first = not self._down
            self._down = True
        if first:
            hint = (f" (is the server running at {self.server_url}? start it with "
                    "'netplex server' or fix --server)" if isinstance(exc, ConnectionFailed) else "")
            LOG.warning("%s failed: %s%s; the data plane is left as it is, retrying",
                        what, exc, hint)
        else:
            LOG.debug("%s failed again: %s", what, exc)

    def ok(self) -> None:
        with self._stats.update():
            was_down, self._down = self._down, False
        if was_down:
            LOG.info("server reachable again")
            self.back.set()
