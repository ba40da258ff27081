"""Port up/down to the server: only what it does not show yet, sent off the worker's thread.

A port's up/down is sent when it differs from the status the server shows
(as seen on the feed) and from what we last sent. While the agent runs, the
:class:`Reporter` threads do the sending, so the worker starts the next pass
while the server commits the statuses (under load the two take about as
long as each other); two calls may be in flight, never two for the same
port. A failed report is taken back and sent again after a backoff.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from netplex.agent.api import ServerApi
from netplex.agent.backoff import Backoff
from netplex.agent.cache import HostCache
from netplex.agent.events import Reported
from netplex.agent.health import ServerHealth
from netplex.agent.reconcile import PortStatus
from netplex.agent.stats import StatsBook
from netplex.client import ClientError

__all__ = ["Reporter", "StatusReports"]

LOG = logging.getLogger(__name__)

#: Port status on the server -> up? (BUILD, ERROR, ...: neither, always reported.)
_STATUS_UP = {"ACTIVE": True, "DOWN": False}


class Reporter:
    """Sends device status from its own threads; merges what piles up meanwhile.

    Up to ``senders`` calls are in flight: with one, a port wired while a call
    was under way waited for it (half a server round trip on average, the
    largest share of the agent's part of a bind burst). A port is never in
    two calls at once, so the server sees each port's reports in order.
    """

    def __init__(self, api_factory: Callable[[], ServerApi],
                 send: Callable[[ServerApi, Mapping[str, bool]], None],
                 done: Callable[[Reported], None], stop: threading.Event,
                 senders: int = 2) -> None:
        self._api_factory, self._send, self._done, self._stop = api_factory, send, done, stop
        self._pending: dict[str, bool] = {}
        self._in_flight: set[str] = set()
        self._cond = threading.Condition()
        self.threads = [threading.Thread(target=self._run, name=f"agent-reporter-{i}", daemon=True)
                        for i in range(senders)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def submit(self, changes: Mapping[str, bool]) -> None:
        with self._cond:
            self._pending.update(changes)  # the latest state of a port wins
            self._cond.notify()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _take(self) -> dict[str, bool]:
        """(Lock held.) The pending reports of ports not in a call right now."""
        batch = {pid: up for pid, up in self._pending.items() if pid not in self._in_flight}
        for pid in batch:
            del self._pending[pid]
        self._in_flight |= batch.keys()
        return batch

    def _run(self) -> None:
        api = self._api_factory()
        try:
            while not self._stop.is_set():
                with self._cond:
                    batch = self._take()
                    while not batch and not self._stop.is_set():
                        self._cond.wait(1.0)
                        batch = self._take()
                if batch:
                    self._done(self._call(api, batch))
        finally:
            api.close()

    def _call(self, api: ServerApi, batch: dict[str, bool]) -> Reported:
        try:
            self._send(api, batch)
        except ClientError as exc:
            return Reported(batch, exc)
        finally:
            with self._cond:
                self._in_flight -= batch.keys()
                self._cond.notify_all()  # reports held back for these ports may go now
        return Reported(batch, None)


class StatusReports:
    """The worker's side of reporting: what the server shows, what to send, what came of it.

    Worker thread only. Without a :attr:`reporter` (before the agent runs, or
    a one-off :meth:`AgentService.resync_now`) it sends on the worker's own
    ``api``.
    """

    def __init__(self, host: str, cache: HostCache, api: Callable[[], ServerApi],
                 health: ServerHealth, stats: StatsBook, clock: Callable[[], float]) -> None:
        self._host = host
        self._cache = cache
        self._api = api
        self._health = health
        self._stats = stats
        self._clock = clock
        #: What we last sent per port (up?), as far as the server may not show it yet.
        self.sent: dict[str, bool] = {}
        #: When to try again after a failed report; None: at the next batch.
        self.due: float | None = None
        self._backoff = Backoff(0.5, 10.0)
        self.reporter: Reporter | None = None

    def forget_sent(self, port_ids: set[str]) -> None:
        """A port whose server status moved away from what we sent gets re-reported.

        (An old change arriving after our report causes one harmless repeat.)"""
        for pid in port_ids:
            sent = self.sent.get(pid)
            port = self._cache.ports.get(pid)
            if sent is None or port is None:
                continue
            if port.get("status") != ("ACTIVE" if sent else "DOWN"):
                self.sent.pop(pid, None)

    def report_if_due(self, status: Mapping[str, PortStatus], now: float) -> None:
        if self.due is None or now >= self.due:
            self.report(status)

    def report(self, status: Mapping[str, PortStatus]) -> None:
        """Send up/down for ports whose state (``status``: the last pass's) the server does not show.

        ``sent`` is updated at hand-off; a failed report is taken back (:meth:`reported`).
        """
        changes: dict[str, bool] = {}
        for pid in [p for p in self.sent if p not in status]:
            del self.sent[pid]
        for pid, st in status.items():
            port = self._cache.ports.get(pid)
            if port is None or port.get("binding:host_id") != self._host:
                continue
            # What the server shows: what we last sent (the feed may not have
            # echoed it yet), else the status on the feed.
            shown = self.sent.get(pid, _STATUS_UP.get(str(port.get("status"))))
            if shown != st.up:
                changes[pid] = st.up
        self.due = None
        if not changes:
            return
        self.sent.update(changes)
        if self.reporter is not None:
            self.reporter.submit(changes)
            return
        try:
            self.send(self._api(), changes)
        except ClientError as exc:
            self.reported(Reported(changes, exc))
        else:
            self.reported(Reported(changes, None))

    def send(self, api: ServerApi, changes: Mapping[str, bool]) -> None:
        """One device-status call (any thread)."""
        up = [pid for pid, v in changes.items() if v]
        down = [pid for pid, v in changes.items() if not v]
        api.device_status(self._host, up, down)
        LOG.info("reported %d port(s) up, %d down", len(up), len(down))

    def reported(self, ev: Reported) -> None:
        """What came of a report (the worker's side of a finished call)."""
        if ev.error is None:
            self._health.ok()
            self._backoff.reset()
            with self._stats.update() as st:
                st.reports += 1
            return
        self._health.error("device-status", ev.error)
        for pid, up in ev.changes.items():
            if self.sent.get(pid) == up:
                del self.sent[pid]  # not shown by the server after all: send again
        self.due = self._clock() + self._backoff.next()
