"""The host agent: register, snapshot, reconcile, watch the feed, report ports up/down.

Threads with explicit hand-off (no asyncio: the backends and the REST client
are synchronous, and a reconcile pass is CPU + subprocess work anyway):

::

    heartbeat thread ── POST agent-report every report_interval ──> server
    watcher thread   ── GET /changes (long-poll) ──┐
    device monitors  ── "tap appeared" ────────────┼──> queue ──> worker (the only
    (ip monitor / the OVSDB connection)            │              owner of cache,
    timers (resync, retries, device re-check) ─────┘              backend, statuses)
    reporter threads <── up/down to send ── worker;  ── POST device-status ──> server

The worker is the only thread that touches the cache, the data plane and the
status bookkeeping, so none of those needs a lock; other threads only put
events on a queue (the reporter gets its work through its own small queue,
so the next pass does not wait for the server to commit the last statuses;
two calls may be in flight, never two for the same port).
The worker takes a batch: everything already queued (events that waited
while the last pass ran have waited long enough), or else the first event
to come plus whatever arrives within ``coalesce`` (10 ms), and does at most
one reconcile pass for the whole batch - 100 ports bound in a burst cost a
few passes, not 100. While a device monitor runs, an event-driven pass
starts from what the previous pass left and re-reads only the devices that
others may have changed (see :mod:`netplex.agent.reconcile`); the first
pass, every full resync and any pass after an error or a monitor restart
read everything.

The parts, one module each: :mod:`~netplex.agent.events` (the queue and its
batches), :mod:`~netplex.agent.heartbeat` (register + heartbeat),
:mod:`~netplex.agent.feed` (the watcher), :mod:`~netplex.agent.devices` (the
device monitor), :mod:`~netplex.agent.passes` (reconcile passes),
:mod:`~netplex.agent.resync` (full resyncs), :mod:`~netplex.agent.reporter`
(port status), :mod:`~netplex.agent.health` (server outages). This module
builds them and runs the worker loop.

Safety rules (why the code is shaped like this):

* **No snapshot, no reconcile.** Until a valid host-state snapshot has been
  loaded the data plane is not touched, and a failed or malformed answer
  never replaces the cache: during a server outage or restart the agent
  keeps working from its last good state, so nothing is torn down. Failed
  calls are retried with capped exponential backoff.
* **Stale snapshots are refused.** A snapshot older than the revision the
  cache already reached (a lagging server) is ignored. If the server's feed
  went *backwards* (a different database), the snapshot is accepted as the
  new truth, except that one removing every local port is refused and
  logged (and so are later ones saying the same, until a snapshot lists
  local ports again): restarting the agent is the explicit way to accept it.
* **Events are hints, the resync is truth.** A pass is skipped when the
  desired state computed from the cache did not change, but a full resync
  (snapshot + unconditional pass, which also repairs kernel drift) runs every
  ``resync_interval``, after ``410 FeedCompacted``, and when a change widens
  this host's scope (a port bound here on a network the cache never saw).
* **Restart is idempotent.** The backends re-read everything, so after a
  SIGKILL the first pass of a new agent plans nothing for ports that are right.
* **Only changes are reported.** A port's up/down is sent when it differs
  from the status the server shows (as seen on the feed) and from what we
  last sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from netplex.agent import backends
from netplex.agent.api import HttpServerApi, ServerApi
from netplex.agent.backoff import Backoff
from netplex.agent.cache import HostCache
from netplex.agent.devices import DeviceWatch, MonitorFactory
from netplex.agent.events import Changes, Device, Event, EventQueue, Reported, Resync, Stop
from netplex.agent.feed import FeedWatcher
from netplex.agent.health import ServerHealth
from netplex.agent.heartbeat import AgentError, Registration
from netplex.agent.monitor import DeviceNews
from netplex.agent.passes import PassRunner
from netplex.agent.reconcile import Backend
from netplex.agent.reporter import Reporter, StatusReports
from netplex.agent.resync import Resyncs
from netplex.agent.settings import AgentSettings
from netplex.agent.stats import AgentStats, StatsBook

__all__ = ["AgentError", "AgentService", "AgentStats", "Backoff", "MonitorFactory"]

LOG = logging.getLogger(__name__)

#: The longest the worker sleeps without a reason (it re-checks its timers then).
_IDLE = 60.0


class AgentService:
    """One host agent. :meth:`run` blocks; :meth:`start`/:meth:`stop` run it in a thread.

    :param api_factory: makes a :class:`ServerApi`; called once per thread
        (worker, watcher, heartbeat, reporters), so each has its own connections.
    :param backend: the data plane; default :func:`netplex.agent.backends.build_backend`.
    :param monitors: start device monitors (off in unit tests). Without a
        running monitor every pass reads the whole data plane.
    :param monitor_factory: makes the monitor (default: ``backend.device_monitor``).
    """

    def __init__(self, settings: AgentSettings,
                 api_factory: Callable[[], ServerApi] | None = None,
                 backend: Backend | None = None, *, monitors: bool = True,
                 clock: Callable[[], float] = time.monotonic,
                 monitor_factory: MonitorFactory | None = None) -> None:
        self.settings = settings
        self._api_factory = api_factory or (
            lambda: HttpServerApi(settings.server_url, settings.agent_token or None))
        self.backend = backend or backends.build_backend(settings)
        # A backend we built is ours to close (the OVS one holds an OVSDB connection).
        self._owns_backend = backend is None
        self._ran = False
        self._clock = clock
        self._api: ServerApi | None = None
        self._stop = threading.Event()
        #: Set once the first snapshot has been reconciled (tests and the lab wait on it).
        self.ready = threading.Event()
        self._stats = StatsBook()
        self.cache = HostCache(settings.host)
        self.events = EventQueue(self._stop, settings.coalesce)
        self.health = ServerHealth(settings.server_url, self._stats)
        self.registration = Registration(settings, self._api_factory, self.health, self._stop)
        self.registered = self.registration.registered
        self.feed = FeedWatcher(self._api_factory, self.events.put, self._stop, self.health,
                                settings.poll_timeout)
        # The backend is asked for its monitor only when one is started (test backends have none).
        self.devices = DeviceWatch(monitor_factory or (lambda notify: self.backend.device_monitor(notify)),
                                   self._device_news, enabled=monitors, clock=clock,
                                   recheck=settings.device_recheck)
        self.passes = PassRunner(self.backend, device_recheck=settings.device_recheck,
                                 watched=self.devices.watched, stats=self._stats, clock=clock)
        self.reports = StatusReports(settings.host, self.cache, lambda: self.api, self.health,
                                     self._stats, clock)
        self.resyncs = Resyncs(settings.host, settings.resync_interval, cache=self.cache,
                               api=lambda: self.api, health=self.health, feed=self.feed,
                               passes=self.passes, reports=self.reports, stats=self._stats,
                               clock=clock)
        self._threads: list[threading.Thread] = []
        self._runner: threading.Thread | None = None
        self._error: BaseException | None = None

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def api(self) -> ServerApi:
        """The worker's own connection to the server."""
        if self._api is None:
            self._api = self._api_factory()
        return self._api

    def start(self) -> AgentService:
        """Run in a background thread (tests, bench, lab in-process use)."""
        self._runner = threading.Thread(target=self._run_guarded, name="agent", daemon=True)
        self._runner.start()
        return self

    def _run_guarded(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # noqa: BLE001 - surfaced by stop()/wait_ready()
            self._error = exc
            LOG.exception("agent stopped by an unexpected error")
            self.ready.set()

    def wait_ready(self, timeout: float) -> bool:
        ok = self.ready.wait(timeout)
        if self._error is not None:
            raise RuntimeError(f"agent failed: {self._error}") from self._error
        return ok

    def stop(self, timeout: float = 5.0) -> None:
        """Stop all threads. The data plane is left exactly as it is."""
        self._stop.set()
        self.feed.wake()
        self.health.back.set()
        self.events.put(Stop())
        if self.reports.reporter is not None:
            self.reports.reporter.wake()
        self.devices.stop()
        if self._runner is not None and self._runner is not threading.current_thread():
            self._runner.join(timeout)
        for t in self._threads:
            t.join(0.2)  # the watcher may sit in a long-poll; it is a daemon thread
        if not self._ran:
            self._close_backend()  # else run() does, on the worker, after its last pass

    def _close_backend(self) -> None:
        close = getattr(self.backend, "close", None)
        if self._owns_backend and callable(close):
            close()

    def resync_now(self, why: str = "requested") -> bool:
        """One full resync on the caller's thread (CLI tools, benchmark); not while running."""
        if self._runner is not None and self._runner.is_alive():
            raise RuntimeError("resync_now() is for an agent that is not running")
        return self.resyncs.full_sync(Resync(why))

    def stats(self) -> AgentStats:
        return self._stats.snapshot()

    def run(self) -> None:
        """Register, load the first snapshot, then serve until :meth:`stop`."""
        self._ran = True
        try:
            self._serve()
        finally:
            self._close_backend()

    def _serve(self) -> None:
        s = self.settings
        kind = backends.backend_kind(s.mechanism)
        LOG.info("agent %s (%s) for host %s, server %s%s", kind.binary, kind.agent_type, s.host,
                 s.server_url, f", netns {s.netns}" if s.netns else "")
        backoff = Backoff(0.5, 10.0)
        while not self._stop.is_set() and not self.registration.report(self.api, start_flag=True):
            self._stop.wait(backoff.next())
        self._spawn(self.registration.heartbeat, "heartbeat")
        if self.devices.enabled:
            # Before the first pass: a device plugged meanwhile is then an event.
            self.devices.start()
        while not self._stop.is_set() and not self.resyncs.full_sync(Resync("start")):
            self._stop.wait(self.resyncs.backoff.next())
        if self._stop.is_set():
            return
        self.ready.set()
        self._spawn(self.feed.watch, "watcher")
        reporter = Reporter(self._api_factory, self.reports.send, self.events.put, self._stop)
        self.reports.reporter = reporter
        reporter.start()
        self._threads += reporter.threads
        while not self._stop.is_set():
            batch = self.events.next_batch(self._until_next_deadline())
            if any(isinstance(ev, Stop) for ev in batch):
                break
            self.process(batch)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=f"agent-{name}", daemon=True)
        self._threads.append(t)
        t.start()

    def _device_news(self, news: DeviceNews) -> None:
        self.events.put(Device(news.why, news.device))

    # --- the worker ---------------------------------------------------------------------------

    def _until_next_deadline(self) -> float:
        now = self._clock()
        due = [self.resyncs.next_periodic,
               *(d for d in (self.passes.due, self.resyncs.due, self.reports.due) if d is not None)]
        return max(0.0, min(min(due) - now, _IDLE))

    def process(self, batch: Sequence[Event]) -> None:
        """Handle one batch of events (and any timer that is due): at most one pass."""
        changes = [c for ev in batch if isinstance(ev, Changes) for c in ev.changes]
        for ev in batch:
            if isinstance(ev, Resync):
                self.resyncs.request(ev)
            elif isinstance(ev, Device):
                self.passes.device_news(ev)
            elif isinstance(ev, Reported):
                self.reports.reported(ev)
        if changes:
            _, widen, touched = self.cache.apply_all(changes)
            with self._stats.update() as st:
                st.changes += len(changes)
                st.revision = self.cache.revision
            if widen:
                self.resyncs.request(Resync("a port was bound here on a network new to this host"))
            self.reports.forget_sent(touched)
        if self.devices.check():
            self.passes.look_at_everything()  # news may have been missed meanwhile
        now = self._clock()
        if self.resyncs.run_if_due(now):
            return
        self.passes.run_if_needed(self.cache.desired(), now)
        self.reports.report_if_due(self.passes.status, now)
