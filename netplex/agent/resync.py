"""Full resyncs: load a host-state snapshot, replace the cache, reconcile everything.

One runs at start, every ``resync_interval``, after ``410 FeedCompacted``,
after the feed went backwards, and when a change widens this host's scope (a
port bound here on a network the cache never saw). A failed one is retried
with backoff while the agent keeps working from its cache.

Safety rules:

* **No snapshot, no reconcile.** A failed or malformed answer never
  replaces the cache: during a server outage or restart the agent keeps
  working from its last good state, so nothing is torn down.
* **Stale snapshots are refused.** A snapshot older than the revision the
  cache already reached (a lagging server) is ignored. If the server's feed
  went *backwards* (a different database), the snapshot is accepted as the
  new truth, except that one removing every local port is refused and
  logged (and so are later ones saying the same, until a snapshot lists
  local ports again): restarting the agent is the explicit way to accept it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from netplex.agent.api import HostState, ServerApi
from netplex.agent.backoff import Backoff
from netplex.agent.cache import HostCache
from netplex.agent.events import Resync
from netplex.agent.feed import FeedWatcher
from netplex.agent.health import ServerHealth
from netplex.agent.passes import PassRunner
from netplex.agent.reporter import StatusReports
from netplex.agent.stats import StatsBook
from netplex.client import ClientError

__all__ = ["Resyncs"]

LOG = logging.getLogger(__name__)


class Resyncs:
    """When the next full resync is due, and running it. Worker thread only."""

    def __init__(self, host: str, resync_interval: float, *, cache: HostCache,
                 api: Callable[[], ServerApi], health: ServerHealth, feed: FeedWatcher,
                 passes: PassRunner, reports: StatusReports, stats: StatsBook,
                 clock: Callable[[], float]) -> None:
        self._host = host
        self._interval = resync_interval
        self._cache = cache
        self._api = api
        self._health = health
        self._feed = feed
        self._passes = passes
        self._reports = reports
        self._stats = stats
        self._clock = clock
        #: The resync asked for and not done yet.
        self.pending: Resync | None = None
        #: When to try ``pending`` again after a failure; None: at once.
        self.due: float | None = None
        self.backoff = Backoff(0.5, 10.0)
        #: When the next periodic resync is due.
        self.next_periodic = 0.0
        self._distrust_empty = False

    def request(self, ev: Resync) -> None:
        """Ask for ``ev`` (a reset wins over a plain one already asked for)."""
        if self.pending is None or ev.reset:
            self.pending = ev

    def run_if_due(self, now: float) -> bool:
        """The pending (or periodic) resync when its time has come; True if one was done."""
        if self.pending is None and now >= self.next_periodic:
            self.pending = Resync("periodic")
        if self.pending is not None and (self.due is None or now >= self.due):
            if self.full_sync(self.pending):
                return True
            self.due = now + self.backoff.next()
            # Keep working from the cache meanwhile (it is as good as the feed).
        return False

    def full_sync(self, why: Resync) -> bool:
        """Snapshot, replace the cache, reconcile unconditionally. False if not done."""
        start = self._clock()
        try:
            state = self._api().host_state(self._host)
        except ClientError as exc:
            self._health.error(f"host-state ({why.why})", exc)
            return False
        fetched = self._clock() - start
        self._health.ok()
        if not self.acceptable(state, why):
            # Keep the cache and the data plane; the watcher continues where it was.
            self.pending, self.due = None, None
            self.next_periodic = self._clock() + self._interval
            self._feed.release(max(self._cache.revision, state.revision) if not why.reset
                               else state.revision)
            return True
        self._cache.load(state)
        self._reports.sent.clear()
        self.pending, self.due = None, None
        self.backoff.reset()
        self.next_periodic = self._clock() + self._interval
        self._feed.release(state.revision)
        local = len(self._cache.local_port_ids())
        LOG.info("full resync (%s): revision %d, %d network(s), %d port(s) (%d local), "
                 "%d agent(s)", why.why, state.revision, len(state.networks), len(state.ports),
                 local, len(state.agents))
        self._passes.run(self._cache.desired(), full=True)
        self._reports.report(self._passes.status)
        elapsed = self._clock() - start
        with self._stats.update() as st:
            st.resyncs += 1
            st.last_resync_seconds = elapsed
            st.last_snapshot_seconds = fetched
            st.revision = self._cache.revision
        return True

    def acceptable(self, state: HostState, why: Resync) -> bool:
        """Whether a valid snapshot may replace the cache (see the module docstring)."""
        if not self._cache.loaded:
            return True
        if state.revision < self._cache.revision and not why.reset:
            LOG.warning("ignoring a snapshot at revision %d, older than ours (%d): lagging server",
                        state.revision, self._cache.revision)
            return False
        local_now = self._cache.local_port_ids()
        local_new = {str(p.get("id")) for p in state.ports
                     if p.get("binding:host_id") == self._host}
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
