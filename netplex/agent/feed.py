"""The feed watcher: long-polls the change feed on its own thread and hands pages to the worker.

It never touches the cache. When the feed says the agent's view is no good
any more (``410``: compacted past our cursor; a revision below ours: the
server's database changed) it asks the worker for a full resync and waits
until the worker, having loaded a snapshot, gives it the new cursor
(:meth:`FeedWatcher.release`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from netplex.agent.api import FeedCompacted, ServerApi
from netplex.agent.backoff import Backoff
from netplex.agent.events import Changes, Event, Resync
from netplex.agent.health import ServerHealth
from netplex.client import ClientError

__all__ = ["FeedWatcher"]

LOG = logging.getLogger(__name__)


class FeedWatcher:
    """:meth:`watch` is the watcher thread's body; :meth:`release` is called by the worker."""

    def __init__(self, api_factory: Callable[[], ServerApi], put: Callable[[Event], None],
                 stop: threading.Event, health: ServerHealth, poll_timeout: float) -> None:
        self._api_factory = api_factory
        self._put = put
        self._stop = stop
        self._health = health
        self._poll_timeout = poll_timeout
        # Hand-off: after posting a resync the watcher waits for the new cursor.
        self._cursor_lock = threading.Lock()
        self._watch_from = 0
        self._resumed = threading.Event()
        self._resumed.set()

    def watch(self) -> None:
        """Long-poll the feed until the agent stops."""
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
                    page = api.changes(after, self._poll_timeout)
                except FeedCompacted:
                    LOG.warning("feed compacted past revision %d: full resync", after)
                    after = self._await_resync(Resync("feed compacted"))
                    continue
                except ClientError as exc:
                    self._health.back.clear()  # before the error: a success after it wakes us
                    self._health.error("watch", exc)
                    self._health.back.wait(backoff.next())
                    continue
                backoff.reset()
                self._health.ok()
                if page.revision < after:
                    LOG.warning("server feed went backwards (%d < %d): the server's database "
                                "changed; full resync", page.revision, after)
                    after = self._await_resync(Resync("feed reset", reset=True))
                    continue
                if page.changes:
                    self._put(Changes(tuple(page.changes)))
                after = max(after, page.revision)
        finally:
            api.close()

    def _await_resync(self, ev: Resync) -> int:
        """Ask the worker for a snapshot; wait until it gives the watcher a new cursor."""
        self._resumed.clear()
        self._put(ev)
        while not self._resumed.wait(1.0):
            if self._stop.is_set():
                break
        with self._cursor_lock:
            return self._watch_from

    def release(self, revision: int) -> None:
        """(Worker.) Watch on from ``revision``; ends a wait for a resync."""
        with self._cursor_lock:
            self._watch_from = revision
        self._resumed.set()

    def wake(self) -> None:
        """(Stopping.) End a wait for a resync now."""
        self._resumed.set()
