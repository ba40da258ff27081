"""The change feed, read side: catch-up reads, waiting for news, compaction.

Writers append in :mod:`netplex.db.engine` (same transaction as the
change, gapless revisions in commit order). Here:

* :meth:`Feed.read_after` returns entries with ``revision > after``; a
  reader whose ``after`` is older than what was compacted gets
  :class:`FeedCompacted` and must resync from a snapshot.
* :class:`FeedNotifier` wakes waiting watchers when the head moves: at
  once for commits made by this process (a commit listener), and through
  PostgreSQL ``LISTEN netplex_feed`` for commits made by other servers on
  the same database. On SQLite, where several API worker processes may
  share the file, a thread reads the one-row head every 50 ms instead.
  Watchers also re-check on a short timer, so a lost notification only
  delays, never loses, an entry.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update

from netplex.db.engine import Database
from netplex.db.models import Change, FeedHead
from netplex.errors import NetplexError

LOG = logging.getLogger(__name__)


class FeedCompacted(NetplexError):
    """The requested revision is older than the retained feed: resync from a snapshot."""

    status = 410
    message = (
        "Changes after revision {after} are no longer retained (compacted up to {compacted}); resync from a snapshot."
    )


@dataclass(frozen=True)
class FeedPage:
    changes: list[dict[str, Any]]
    #: The head when the page was read; a caller with no changes may resume from it.
    head: int
    compacted: int


class Feed:
    def __init__(self, db: Database) -> None:
        self.db = db

    def head(self) -> tuple[int, int]:
        with self.db.read() as s:
            row = s.execute(select(FeedHead.revision, FeedHead.compacted).where(FeedHead.id == 1)).one()
            return int(row[0]), int(row[1])

    def read_after(self, after: int, limit: int = 1000, resources: set[str] | None = None) -> FeedPage:
        with self.db.read() as s:
            head, compacted = s.execute(select(FeedHead.revision, FeedHead.compacted).where(FeedHead.id == 1)).one()
            if after < compacted:
                raise FeedCompacted(after=after, compacted=compacted)
            stmt = (
                select(Change.revision, Change.resource, Change.resource_id, Change.action, Change.body)
                .where(Change.revision > after)
                .order_by(Change.revision)
                .limit(limit)
            )
            if resources:
                stmt = stmt.where(Change.resource.in_(sorted(resources)))
            rows = s.execute(stmt).all()
        changes = [
            {"revision": int(r), "resource": res, "id": rid, "action": act, "body": body}
            for r, res, rid, act, body in rows
        ]
        # With a resource filter a page may be short although more exists; the
        # reported head lets the caller skip past entries it does not want.
        # (PostgreSQL reads each statement at a fresh snapshot, so entries
        # past the head we read may show up: never report less than those.)
        last = changes[-1]["revision"] if changes else 0
        reported_head = max(int(head), last) if len(rows) < limit else last
        return FeedPage(changes, reported_head, int(compacted))

    def compact(self, retain: int) -> int:
        """Drop entries older than the newest ``retain``; returns the new compacted mark."""

        def fn(txn: Any) -> int:
            s = txn.session
            head, compacted = s.execute(select(FeedHead.revision, FeedHead.compacted).where(FeedHead.id == 1)).one()
            mark = max(int(compacted), int(head) - retain)
            if mark > compacted:
                s.execute(delete(Change).where(Change.revision <= mark))
                s.execute(update(FeedHead).where(FeedHead.id == 1).values(compacted=mark))
            return mark

        return self.db.transaction(fn)


class FeedNotifier:
    """Lets asyncio watchers sleep until the feed head passes a revision."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cond: asyncio.Condition | None = None
        self._latest = 0
        self._stop = threading.Event()
        self._listen_thread: threading.Thread | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._cond = asyncio.Condition()
        self._latest = self.db.head_revision()
        self.db.commit_listeners.append(self._on_commit)
        target = self._listen if self.db.is_postgres else self._poll_head
        self._listen_thread = threading.Thread(target=target, name="feed-listen", daemon=True)
        self._listen_thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._on_commit in self.db.commit_listeners:
            self.db.commit_listeners.remove(self._on_commit)

    def _on_commit(self, head: int) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._advance(head)))

    async def _advance(self, head: int) -> None:
        assert self._cond is not None
        async with self._cond:
            if head > self._latest:
                self._latest = head
            self._cond.notify_all()

    async def wait_beyond(self, revision: int, timeout: float) -> None:
        """Return when the head may be past ``revision`` (or after ``timeout``)."""
        assert self._cond is not None
        if self._latest > revision:
            return
        async with self._cond:
            try:
                await asyncio.wait_for(self._cond.wait_for(lambda: self._latest > revision), timeout)
            except TimeoutError:
                pass

    def _poll_head(self) -> None:
        """SQLite has no NOTIFY: other worker processes' commits are seen by
        reading the one-row head every 50 ms (microseconds of work)."""
        last = self._latest
        while not self._stop.wait(0.05):
            try:
                head = self.db.head_revision()
            except Exception:
                LOG.debug("feed head poll failed", exc_info=True)
                continue
            if head > last:
                last = head
                self._on_commit(head)

    def _listen(self) -> None:
        """PostgreSQL LISTEN loop: other servers' commits reach our watchers."""
        import psycopg
        from sqlalchemy.engine import make_url

        u = make_url(self.db.url)
        conninfo = u.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute("LISTEN netplex_feed")
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            try:
                                self._on_commit(int(note.payload))
                            except ValueError:
                                continue
            except Exception:
                LOG.exception("feed LISTEN connection failed; reconnecting")
                self._stop.wait(1.0)
