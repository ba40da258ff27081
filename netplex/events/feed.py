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
import signal
import threading
from dataclasses import dataclass
from types import FrameType
from typing import Any

import orjson
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


#: Compactions run in this process (by any Feed): shared pages read before one
#: are dropped, so a poll behind the new mark gets its 410 at once.
_COMPACTIONS = [0]


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

        mark = self.db.transaction(fn)
        _COMPACTIONS[0] += 1
        return mark


class FeedNotifier:
    """Lets asyncio watchers sleep until the feed head passes a revision.

    One shared wake-up per batch of commits: commits only record the newest
    head (from any thread); a single callback scheduled on the loop then
    wakes every watcher at once by setting one :class:`asyncio.Event` and
    starting a new one. No lock is held while waiting, so a cancelled
    long-poll (shutdown, client gone) just stops waiting: no traceback.
    """

    MIN_GATHER = 0.03
    GATHER_PER_WAITER = 0.0003
    MAX_GATHER = 0.3

    def __init__(self, db: Database) -> None:
        self.db = db
        self._waiters = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._moved: asyncio.Event | None = None
        self._latest = 0
        #: Bumped on every wake-up: a page read in an older generation may be stale.
        self.generation = 0
        #: Set by :meth:`stop`: parked polls answer at once.
        self.closing = False
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._scheduled = False
        self._stop = threading.Event()
        self._listen_thread: threading.Thread | None = None

    @property
    def latest(self) -> int:
        return self._latest

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._moved = asyncio.Event()
        self._latest = self.db.head_revision()
        self.db.commit_listeners.append(self._on_commit)
        target = self._listen if self.db.is_postgres else self._poll_head
        self._listen_thread = threading.Thread(target=target, name="feed-listen", daemon=True)
        self._listen_thread.start()
        self._hook_exit_signals()

    def _hook_exit_signals(self) -> None:
        """Answer parked long-polls as soon as the server is told to stop.

        uvicorn waits ``timeout_graceful_shutdown`` for running requests
        before the lifespan shutdown (:meth:`stop`) runs, then cancels them:
        a poll parked for 25 s would be cut off (an error log) instead of
        answered. So we chain onto its SIGTERM/SIGINT handler (installed
        with ``signal.signal`` before the lifespan starts; main thread only,
        as in each worker process) and close the polls first.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        loop = self._loop
        assert loop is not None
        self._prev_handlers: dict[int, Any] = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            prev = signal.getsignal(sig)
            self._prev_handlers[sig] = prev

            def handler(signum: int, frame: FrameType | None, prev: Any = prev) -> None:
                if not loop.is_closed():
                    loop.call_soon_threadsafe(self.close_polls)
                if callable(prev):
                    prev(signum, frame)
                elif prev == signal.SIG_DFL:  # nobody else listens: do what the signal would
                    signal.signal(signum, signal.SIG_DFL)
                    signal.raise_signal(signum)

            signal.signal(sig, handler)

    async def stop(self) -> None:
        self._stop.set()
        for sig, prev in getattr(self, "_prev_handlers", {}).items():
            if threading.current_thread() is threading.main_thread():
                signal.signal(sig, prev)
        if self._on_commit in self.db.commit_listeners:
            self.db.commit_listeners.remove(self._on_commit)
        self.close_polls()

    def close_polls(self) -> None:
        """(Loop thread.) Answer every parked long-poll now and every later one at once."""
        self.closing = True
        self._wake()

    def _on_commit(self, head: int) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with self._pending_lock:
            if head <= self._pending:
                return
            self._pending = head
            if self._scheduled:
                return  # the scheduled wake-up will see this head too
            self._scheduled = True
        try:
            loop.call_soon_threadsafe(self._schedule_advance)
        except RuntimeError:  # loop closed meanwhile (shutdown)
            pass

    def _schedule_advance(self) -> None:
        """Wake after a short gathering delay that grows with the parked polls.

        Every wake-up costs one HTTP answer and one new poll per follower, so
        with many followers commits are gathered: a page then carries all of
        them. 10 followers wait ~33 ms, 100 ~60 ms, 1,000 or more 300 ms."""
        assert self._loop is not None
        delay = min(self.MAX_GATHER, self.MIN_GATHER + self._waiters * self.GATHER_PER_WAITER)
        self._loop.call_later(delay, self._advance)

    def _advance(self) -> None:
        with self._pending_lock:
            head = self._pending
            self._scheduled = False
        if head > self._latest:
            self._latest = head
            self._wake()

    def _wake(self) -> None:
        self.generation += 1
        moved, self._moved = self._moved, asyncio.Event()
        if moved is not None:
            moved.set()

    async def wait_beyond(self, revision: int, timeout: float) -> None:
        """Return when the head may be past ``revision`` (or after ``timeout``)."""
        moved = self._moved
        if self._latest > revision or self.closing or moved is None:
            return
        self._waiters += 1
        try:
            await asyncio.wait_for(moved.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters -= 1


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


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a shared read's error as seen: every waiter may have gone already."""
    if not task.cancelled():
        task.exception()


class SharedPages:
    """Feed pages read and encoded once and shared by every poll asking the same question.

    All followers parked on revision R wake together when the head moves;
    the first asks the database for the page after R, the others await the
    same result (a future), and all send the same encoded bytes. A page is
    reused only within the notifier's generation it was read in: any newer
    commit starts a new generation, so no follower is served a page older
    than the head it was woken for. The database is read once per
    (generation, question), not once per follower.
    """

    #: Questions kept per generation; beyond this the cache starts over (bounded memory).
    MAX_ENTRIES = 4096

    def __init__(self, feed: Feed, notifier: FeedNotifier) -> None:
        self.feed = feed
        self.notifier = notifier
        self._gen: tuple[int, int] = (-1, -1)
        self._pages: dict[tuple[Any, ...], asyncio.Future[tuple[bytes, int, bool]]] = {}

    async def page(self, after: int, limit: int, resources: frozenset[str] | None = None
                   ) -> tuple[bytes, int, bool]:
        """(body JSON, head, has changes) for the changes after ``after``;
        raises :class:`FeedCompacted` like :meth:`Feed.read_after`."""
        gen = (self.notifier.generation, _COMPACTIONS[0])
        if gen != self._gen or len(self._pages) >= self.MAX_ENTRIES:
            self._gen, self._pages = gen, {}
        key = (after, limit, resources)
        task = self._pages.get(key)
        if task is None:
            # A task of its own, not the asking request's: a poll cancelled
            # meanwhile (client gone, shutdown) does not fail the others.
            task = asyncio.ensure_future(asyncio.to_thread(self._read, after, limit, resources))
            task.add_done_callback(_retrieve)
            self._pages[key] = task
        return await asyncio.shield(task)

    def _read(self, after: int, limit: int, resources: frozenset[str] | None) -> tuple[bytes, int, bool]:
        page = self.feed.read_after(after, limit, set(resources) if resources else None)
        body = orjson.dumps({"changes": page.changes, "revision": page.head, "compacted": page.compacted})
        return body, page.head, bool(page.changes)
