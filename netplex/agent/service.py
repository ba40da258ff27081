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

import dataclasses
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from netplex.agent import backends
from netplex.agent.api import FeedCompacted, HostState, HttpServerApi, ServerApi
from netplex.agent.cache import HostCache
from netplex.agent.model import HostDesired
from netplex.agent.monitor import DeviceMonitor, DeviceNews
from netplex.agent.reconcile import Backend, Baseline, PortStatus, ReconcileResult, reconcile
from netplex.agent.settings import AgentSettings
from netplex.client import ApiError, ClientError, ConnectionFailed

__all__ = ["AgentError", "AgentService", "AgentStats", "Backoff", "MonitorFactory"]

LOG = logging.getLogger(__name__)

#: Port status on the server -> up? (BUILD, ERROR, ...: neither, always reported.)
_STATUS_UP = {"ACTIVE": True, "DOWN": False}
#: The longest the worker sleeps without a reason (it re-checks its timers then).
_IDLE = 60.0

#: Makes the device monitor of a host from where to send news (default: the backend's).
MonitorFactory = Callable[[Callable[[DeviceNews], None]], DeviceMonitor]


class AgentError(RuntimeError):
    """The agent cannot work with this server at all (retrying would not help)."""

    def __init__(self, message: str, hint: str) -> None:
        self.hint = hint
        super().__init__(message)


class Backoff:
    """Capped exponential backoff with jitter: 0.5 s, 1 s, 2 s ... ``cap``."""

    def __init__(self, base: float = 0.5, cap: float = 10.0) -> None:
        self.base, self.cap = base, cap
        self.failures = 0

    def next(self) -> float:
        delay = min(self.cap, self.base * (2 ** self.failures))
        self.failures += 1
        return delay * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        self.failures = 0


# --- events on the worker's queue ---------------------------------------------


@dataclass(frozen=True)
class _Changes:
    changes: tuple[Any, ...]


@dataclass(frozen=True)
class _Device:
    why: str
    #: The device concerned; None: any device may have changed.
    device: str | None = None


@dataclass(frozen=True)
class _Resync:
    why: str
    #: The server's feed went backwards: accept an older snapshot.
    reset: bool = False


@dataclass(frozen=True)
class _Reported:
    """A reporter thread finished a device-status call (``error`` None: success)."""

    changes: Mapping[str, bool]
    error: Exception | None = None


class _Stop:
    pass


_Event = _Changes | _Device | _Resync | _Reported | _Stop


class _Reporter:
    """Sends device status from its own threads; merges what piles up meanwhile.

    Up to ``senders`` calls are in flight: with one, a port wired while a call
    was under way waited for it (half a server round trip on average, the
    largest share of the agent's part of a bind burst). A port is never in
    two calls at once, so the server sees each port's reports in order.
    """

    def __init__(self, api_factory: Callable[[], ServerApi],
                 send: Callable[[ServerApi, Mapping[str, bool]], None],
                 done: Callable[[_Reported], None], stop: threading.Event,
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

    def _call(self, api: ServerApi, batch: dict[str, bool]) -> _Reported:
        try:
            self._send(api, batch)
        except ClientError as exc:
            return _Reported(batch, exc)
        finally:
            with self._cond:
                self._in_flight -= batch.keys()
                self._cond.notify_all()  # reports held back for these ports may go now
        return _Reported(batch, None)


@dataclass
class AgentStats:
    """Counters for logs, tests and the benchmark (read with :meth:`AgentService.stats`)."""

    passes: int = 0
    resyncs: int = 0
    changes: int = 0
    ops: int = 0
    apply_errors: int = 0
    reports: int = 0
    server_errors: int = 0
    last_pass_seconds: float = 0.0
    last_resync_seconds: float = 0.0
    #: Of that, reading the host-state snapshot from the server.
    last_snapshot_seconds: float = 0.0
    revision: int = 0
    local_ports: int = 0
    up: int = 0
    last_reasons: dict[str, str] = field(default_factory=dict)


class AgentService:
    """One host agent. :meth:`run` blocks; :meth:`start`/:meth:`stop` run it in a thread.

    :param api_factory: makes a :class:`ServerApi`; called once per thread
        (worker, watcher, heartbeat), so each has its own connections.
    :param backend: the data plane; default :meth:`AgentSettings.backend`.
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
        self.cache = HostCache(settings.host)
        self._clock = clock
        self._use_monitors = monitors
        self._monitor_factory = monitor_factory
        self._q: queue.Queue[_Event] = queue.Queue()
        self._stop = threading.Event()
        #: Set once the first snapshot has been reconciled (tests and the lab wait on it).
        self.ready = threading.Event()
        self.registered = threading.Event()
        self._api: ServerApi | None = None
        # Watcher hand-off: after posting a resync it waits for the new cursor.
        self._cursor_lock = threading.Lock()
        self._watch_from = 0
        self._resumed = threading.Event()
        self._resumed.set()
        # Worker-only state.
        self._desired: HostDesired | None = None
        self._status: dict[str, PortStatus] = {}
        #: Where the next event-driven pass starts (None: observe everything).
        self._baseline: Baseline | None = None
        #: Devices the monitor named since the last pass.
        self._devices: set[str] = set()
        self._sent: dict[str, bool] = {}
        self._need_pass = False
        self._pass_due: float | None = None
        self._pass_backoff = Backoff(0.5, 10.0)
        self._resync: _Resync | None = None
        self._resync_due: float | None = None
        self._sync_backoff = Backoff(0.5, 10.0)
        self._report_due: float | None = None
        self._report_backoff = Backoff(0.5, 10.0)
        self._reporter: _Reporter | None = None
        self._next_resync = 0.0
        self._distrust_empty = False
        self._server_down = False
        #: Set when a call succeeds after failures (or on stop): wakes the feed
        #: watcher out of its backoff so it is back on the feed at once.
        self._server_back = threading.Event()
        self._threads: list[threading.Thread] = []
        self._monitors: list[DeviceMonitor] = []
        self._monitor_checked = 0.0
        self._stats = AgentStats()
        self._stats_lock = threading.Lock()
        self._runner: threading.Thread | None = None
        self._error: BaseException | None = None

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def api(self) -> ServerApi:
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
        self._resumed.set()
        self._server_back.set()
        self._q.put(_Stop())
        if self._reporter is not None:
            self._reporter.wake()
        for m in self._monitors:
            m.stop()
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
        return self._full_sync(_Resync(why))

    def stats(self) -> AgentStats:
        with self._stats_lock:
            return dataclasses.replace(self._stats,
                                       last_reasons=dict(self._stats.last_reasons))

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
        while not self._stop.is_set() and not self._report(start_flag=True):
            self._stop.wait(backoff.next())
        self._spawn(self._heartbeat, "heartbeat")
        if self._use_monitors:
            # Before the first pass: a device plugged meanwhile is then an event.
            self._start_monitors()
        while not self._stop.is_set() and not self._full_sync(_Resync("start")):
            self._stop.wait(self._sync_backoff.next())
        if self._stop.is_set():
            return
        self.ready.set()
        self._spawn(self._watch, "watcher")
        self._reporter = _Reporter(self._api_factory, self._send_status, self._q.put, self._stop)
        self._reporter.start()
        self._threads += self._reporter.threads
        while not self._stop.is_set():
            batch = self._next_batch(self._until_next_deadline())
            if any(isinstance(ev, _Stop) for ev in batch):
                break
            self.process(batch)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=f"agent-{name}", daemon=True)
        self._threads.append(t)
        t.start()

    def _start_monitors(self) -> None:
        def notify(news: DeviceNews) -> None:
            self._q.put(_Device(news.why, news.device))

        mon = (self._monitor_factory or self.backend.device_monitor)(notify)
        self._monitor_checked = self._clock()
        try:
            mon.start()
            self._monitors = [mon]
        except OSError as exc:
            LOG.warning("cannot start device monitor %s (%s); devices are re-checked every %gs",
                        mon.name, exc, self.settings.device_recheck)

    def _devices_watched(self) -> bool:
        """Whether a running monitor tells us when VM devices change."""
        return bool(self._monitors) and all(m.alive() for m in self._monitors)

    def _check_monitors(self) -> None:
        """Restart a device monitor that died (e.g. ovsdb-server restarted), at most every 5 s."""
        if not self._use_monitors or self._clock() - self._monitor_checked < 5.0:
            return
        self._monitor_checked = self._clock()
        if not self._monitors or not all(m.alive() for m in self._monitors):
            for m in self._monitors:
                m.stop()
            LOG.info("restarting the device monitor")
            self._start_monitors()
            # Events may have been missed meanwhile: look at everything.
            self._need_pass, self._baseline = True, None

    # --- heartbeat -----------------------------------------------------------------------

    def _report(self, start_flag: bool, api: ServerApi | None = None) -> bool:
        try:
            agent = (api or self.api).report(backends.report_body(self.settings, start_flag))
        except ApiError as exc:
            if start_flag and exc.status in (401, 403):
                raise AgentError(f"the server refused the agent: {exc}",
                                 "set [DEFAULT] agent_auth_token to the server's value") from exc
            if start_flag and exc.status in (404, 405):
                raise AgentError(f"the server has no agent endpoints: {exc}",
                                 "point --server at a Netplex server (not a plain Neutron)"
                                 ) from exc
            self._server_error("agent report", exc)
            return False
        except ClientError as exc:
            self._server_error("agent report", exc)
            return False
        self._server_ok()
        if start_flag:
            LOG.info("registered with the server as agent %s (alive: %s)",
                     agent.get("id", "?"), agent.get("alive", "?"))
        self.registered.set()
        return True

    def _heartbeat(self) -> None:
        api = self._api_factory()
        try:
            while not self._stop.wait(self.settings.report_interval):
                self._report(start_flag=False, api=api)
        finally:
            api.close()

    # --- the feed watcher ------------------------------------------------------------------

    def _watch(self) -> None:
        """Long-poll the feed; hand changes to the worker. Never touches the cache."""
        api = self._api_factory()
        # A failed long-poll costs one refused connection, so retries stay
        # frequent: the agent must be back on the feed soon after the server.
        backoff = Backoff(0.5, 2.0)
        with self._cursor_lock:
            after = self._watch_from
        try:
            while not self._stop.is_set():
                with self._cursor_lock:
                    after = max(after, self._watch_from)
                try:
                    page = api.changes(after, self.settings.poll_timeout)
                except FeedCompacted:
                    LOG.warning("feed compacted past revision %d: full resync", after)
                    after = self._await_resync(_Resync("feed compacted"))
                    continue
                except ClientError as exc:
                    self._server_back.clear()  # before the error: a success after it wakes us
                    self._server_error("watch", exc)
                    self._server_back.wait(backoff.next())
                    continue
                backoff.reset()
                self._server_ok()
                if page.revision < after:
                    LOG.warning("server feed went backwards (%d < %d): the server's database "
                                "changed; full resync", page.revision, after)
                    after = self._await_resync(_Resync("feed reset", reset=True))
                    continue
                if page.changes:
                    self._q.put(_Changes(tuple(page.changes)))
                after = max(after, page.revision)
        finally:
            api.close()

    def _await_resync(self, ev: _Resync) -> int:
        """Ask the worker for a snapshot; wait until it gives the watcher a new cursor."""
        self._resumed.clear()
        self._q.put(ev)
        while not self._resumed.wait(1.0):
            if self._stop.is_set():
                break
        with self._cursor_lock:
            return self._watch_from

    # --- the worker ---------------------------------------------------------------------------

    def _next_batch(self, timeout: float) -> list[_Event]:
        batch: list[_Event] = []
        self._drain(batch)
        if batch:
            return batch  # they waited while the last pass ran: no point waiting more
        try:
            batch.append(self._q.get(timeout=max(0.0, timeout)))
        except queue.Empty:
            return []
        self._drain(batch)
        if self.settings.coalesce > 0 and any(isinstance(e, _Changes | _Device) for e in batch):
            self._stop.wait(self.settings.coalesce)
            self._drain(batch)
        return batch

    def _drain(self, batch: list[_Event]) -> None:
        while True:
            try:
                batch.append(self._q.get_nowait())
            except queue.Empty:
                return

    def _until_next_deadline(self) -> float:
        now = self._clock()
        due = [self._next_resync, *(d for d in (self._pass_due, self._resync_due,
                                                self._report_due) if d is not None)]
        return max(0.0, min(min(due) - now, _IDLE))

    def process(self, batch: Sequence[_Event]) -> None:
        """Handle one batch of events (and any timer that is due): at most one pass."""
        changes = [c for ev in batch if isinstance(ev, _Changes) for c in ev.changes]
        for ev in batch:
            if isinstance(ev, _Resync) and (self._resync is None or ev.reset):
                self._resync = ev
            elif isinstance(ev, _Device):
                LOG.debug("device event: %s", ev.why)
                self._need_pass = True
                if ev.device is None:
                    self._baseline = None
                else:
                    self._devices.add(ev.device)
            elif isinstance(ev, _Reported):
                self._reported(ev)
        if changes:
            _, widen, touched = self.cache.apply_all(changes)
            with self._stats_lock:
                self._stats.changes += len(changes)
                self._stats.revision = self.cache.revision
            if widen and self._resync is None:
                self._resync = _Resync("a port was bound here on a network new to this host")
            self._forget_sent(touched)
        self._check_monitors()
        now = self._clock()
        if self._resync is None and now >= self._next_resync:
            self._resync = _Resync("periodic")
        if self._resync is not None and (self._resync_due is None or now >= self._resync_due):
            if self._full_sync(self._resync):
                return
            self._resync_due = now + self._sync_backoff.next()
            # Keep working from the cache meanwhile (it is as good as the feed).
        if self._pass_due is not None and now >= self._pass_due:
            self._need_pass = True
        desired = self.cache.desired()
        if self._need_pass or (desired is not self._desired and desired != self._desired):
            self._reconcile(desired)
        if self._report_due is None or now >= self._report_due:
            self._report_status()

    def _forget_sent(self, port_ids: set[str]) -> None:
        """A port whose server status moved away from what we sent gets re-reported.

        (An old change arriving after our report causes one harmless repeat.)"""
        for pid in port_ids:
            sent = self._sent.get(pid)
            port = self.cache.ports.get(pid)
            if sent is None or port is None:
                continue
            if port.get("status") != ("ACTIVE" if sent else "DOWN"):
                self._sent.pop(pid, None)

    def _full_sync(self, why: _Resync) -> bool:
        """Snapshot, replace the cache, reconcile unconditionally. False if not done."""
        start = self._clock()
        try:
            state = self.api.host_state(self.settings.host)
        except ClientError as exc:
            self._server_error(f"host-state ({why.why})", exc)
            return False
        fetched = self._clock() - start
        self._server_ok()
        if not self._acceptable(state, why):
            # Keep the cache and the data plane; the watcher continues where it was.
            self._resync, self._resync_due = None, None
            self._next_resync = self._clock() + self.settings.resync_interval
            self._release_watcher(max(self.cache.revision, state.revision) if not why.reset
                                  else state.revision)
            return True
        self.cache.load(state)
        self._sent.clear()
        self._resync, self._resync_due = None, None
        self._sync_backoff.reset()
        self._next_resync = self._clock() + self.settings.resync_interval
        self._release_watcher(state.revision)
        local = len(self.cache.local_port_ids())
        LOG.info("full resync (%s): revision %d, %d network(s), %d port(s) (%d local), "
                 "%d agent(s)", why.why, state.revision, len(state.networks), len(state.ports),
                 local, len(state.agents))
        self._reconcile(self.cache.desired(), full=True)
        self._report_status()
        elapsed = self._clock() - start
        with self._stats_lock:
            self._stats.resyncs += 1
            self._stats.last_resync_seconds = elapsed
            self._stats.last_snapshot_seconds = fetched
            self._stats.revision = self.cache.revision
        return True

    def _acceptable(self, state: HostState, why: _Resync) -> bool:
        """Whether a valid snapshot may replace the cache (see the module docstring)."""
        if not self.cache.loaded:
            return True
        if state.revision < self.cache.revision and not why.reset:
            LOG.warning("ignoring a snapshot at revision %d, older than ours (%d): lagging server",
                        state.revision, self.cache.revision)
            return False
        local_now = self.cache.local_port_ids()
        local_new = {str(p.get("id")) for p in state.ports
                     if p.get("binding:host_id") == self.settings.host}
        if (why.reset or self._distrust_empty) and local_now and not local_new:
            # Once the server has come back with another database, an empty
            # answer stays suspect (also when its revisions later pass ours).
            self._distrust_empty = True
            LOG.error("the server's feed was reset and its snapshot has none of this host's "
                      "%d port(s); refusing to tear them down. Restart the agent to accept "
                      "the server's state.", len(local_now))
            return False
        if local_new:
            self._distrust_empty = False
        return True

    def _release_watcher(self, revision: int) -> None:
        with self._cursor_lock:
            self._watch_from = revision
        self._resumed.set()

    def _reconcile(self, desired: HostDesired, full: bool = False) -> ReconcileResult | None:
        """One pass; ``full`` (or no monitor to say which devices changed) reads everything."""
        now = self._clock()
        baseline = None if full or not self._devices_watched() else self._baseline
        try:
            res = reconcile(self.backend, desired, baseline, frozenset(self._devices))
        except Exception as exc:  # noqa: BLE001 - e.g. ovs-vswitchd down: retry later
            delay = self._pass_backoff.next()
            LOG.warning("reconcile failed (%s: %s); retrying in %.1fs", type(exc).__name__,
                        exc, delay)
            self._need_pass, self._pass_due, self._baseline = True, now + delay, None
            return None
        self._baseline = res.baseline
        self._devices.clear()
        self._desired = desired
        self._need_pass = False
        self._status = dict(res.ports)
        pending = {pid for pid, st in res.ports.items() if not st.up}
        if res.apply.errors:
            self._pass_due = self._clock() + self._pass_backoff.next()
        else:
            self._pass_backoff.reset()
            admin_up = {p.port_id for p in desired.ports if p.admin_state_up}
            problem_nets = set(res.plan.problems)
            waiting = {p.port_id for p in desired.ports if p.port_id in pending
                       and p.port_id in admin_up and p.network_id not in problem_nets}
            # A bound port without its device yet: the monitors usually tell us
            # first; the timer is the safety net.
            self._pass_due = (self._clock() + self.settings.device_recheck) if waiting else None
        kind = "full" if res.full else "event"
        phases = ", ".join(f"{k} {v * 1000:.0f}" for k, v in res.phases.items())
        if res.plan.ops:
            LOG.info("%s pass: %d operation(s) in %.0f ms (%s), %d error(s); ports up %d, down %d",
                     kind, len(res.plan.ops), res.seconds * 1000, phases, len(res.apply.errors),
                     len(res.up), len(res.down))
        else:
            LOG.debug("%s pass: nothing to do (%.0f ms: %s)", kind, res.seconds * 1000, phases)
        with self._stats_lock:
            st = self._stats
            st.passes += 1
            st.ops += len(res.plan.ops)
            st.apply_errors += len(res.apply.errors)
            st.last_pass_seconds = res.seconds
            st.local_ports = len(res.ports)
            st.up = len(res.up)
            st.last_reasons = {pid: s.reason for pid, s in res.ports.items() if not s.up}
        return res

    def _report_status(self) -> None:
        """Send up/down for ports whose state the server does not show yet.

        While the agent runs, sending is the reporter threads' job, so the
        worker starts the next pass while the server commits the statuses
        (under load the two take about as long as each other). ``_sent`` is
        updated at hand-off; a failed report is taken back (:meth:`_reported`).
        """
        host = self.settings.host
        changes: dict[str, bool] = {}
        for pid in [p for p in self._sent if p not in self._status]:
            del self._sent[pid]
        for pid, st in self._status.items():
            port = self.cache.ports.get(pid)
            if port is None or port.get("binding:host_id") != host:
                continue
            # What the server shows: what we last sent (the feed may not have
            # echoed it yet), else the status on the feed.
            shown = self._sent.get(pid, _STATUS_UP.get(str(port.get("status"))))
            if shown != st.up:
                changes[pid] = st.up
        self._report_due = None
        if not changes:
            return
        self._sent.update(changes)
        if self._reporter is not None:
            self._reporter.submit(changes)
            return
        try:
            self._send_status(self.api, changes)
        except ClientError as exc:
            self._reported(_Reported(changes, exc))
        else:
            self._reported(_Reported(changes, None))

    def _send_status(self, api: ServerApi, changes: Mapping[str, bool]) -> None:
        up = [pid for pid, v in changes.items() if v]
        down = [pid for pid, v in changes.items() if not v]
        api.device_status(self.settings.host, up, down)
        LOG.info("reported %d port(s) up, %d down", len(up), len(down))

    def _reported(self, ev: _Reported) -> None:
        """Worker side of a finished report."""
        if ev.error is None:
            self._server_ok()
            self._report_backoff.reset()
            with self._stats_lock:
                self._stats.reports += 1
            return
        self._server_error("device-status", ev.error)
        for pid, up in ev.changes.items():
            if self._sent.get(pid) == up:
                del self._sent[pid]  # not shown by the server after all: send again
        self._report_due = self._clock() + self._report_backoff.next()

    # --- server health logging ------------------------------------------------------------

    def _server_error(self, what: str, exc: Exception) -> None:
        with self._stats_lock:
            self._stats.server_errors += 1
            first = not self._server_down
            self._server_down = True
        if first:
            hint = (f" (is the server running at {self.settings.server_url}? start it with "
                    "'netplex server' or fix --server)" if isinstance(exc, ConnectionFailed) else "")
            LOG.warning("%s failed: %s%s; the data plane is left as it is, retrying",
                        what, exc, hint)
        else:
            LOG.debug("%s failed again: %s", what, exc)

    def _server_ok(self) -> None:
        with self._stats_lock:
            was_down, self._server_down = self._server_down, False
        if was_down:
            LOG.info("server reachable again")
            self._server_back.set()
