"""Group commit for SQLite: concurrent write transactions share one commit.

SQLite allows one writer at a time, and a commit costs as much as the rest
of a small write (it writes every touched page to the WAL). With threads
each taking the write lock in turn, the lock holder also fights the other
request threads for the GIL, so the lock is held far longer than the SQL
needs. Here the first waiting thread becomes the *leader*: once it holds
the cross-process lock it takes every queued job (so jobs that queued while
another process was writing join in), runs each in its own SAVEPOINT on
one kept connection, and commits once. A job that raises only rolls back
its own savepoint; the others still commit. A job alone in its batch runs
without a savepoint. Followers sleep until the leader marks their job done.

An event loop must not lead (it would block every request of the process),
so jobs submitted from one (:meth:`GroupCommitter.submit_async`) are led by
a writer thread of the committer's own, and come back to their loop with one
``call_soon_threadsafe`` per batch: no worker-thread hop per request, and
one wake-up of the loop for a whole batch instead of one per job.

Feed revisions are numbered by the leader, which reads the head once per
batch and writes it once before the commit: SQLite writers are serialised
(a thread lock plus a ``flock`` across worker processes), so no other
writer can interleave.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

#: A batch is bounded so a long queue cannot starve the first caller's reply.
MAX_BATCH = 64


@dataclass(eq=False)
class Job:
    """One caller's transaction function and, once run, its outcome."""

    #: Called by the batch runner with whatever transaction handle it builds.
    fn: Callable[[Any], Any]
    #: The handle the runner built (the engine keeps its after-commit hooks there).
    txn: Any = None
    done: bool = False
    result: Any = None
    error: BaseException | None = None
    #: Held until the caller's thread must wake: its job is done, or it leads next.
    #: None for a job awaited on an event loop (:attr:`future`).
    _wake: threading.Lock | None = None
    _owner: threading.Thread = field(default_factory=threading.current_thread)
    #: Set for jobs submitted with :meth:`GroupCommitter.submit_async`.
    future: asyncio.Future[None] | None = None

    def __post_init__(self) -> None:
        if self.future is None:
            self._wake = threading.Lock()
            self._wake.acquire()


@dataclass
class GroupCommitter:
    """Runs queued jobs in shared transactions; one leader at a time.

    ``run_batch(conn, jobs)`` is the database-specific part: it must run every
    job (setting ``result`` or ``error``) inside the connection's open
    transaction and return whether to commit it. After a commit the leader
    calls ``on_commit(jobs)``. The committer begins and ends the transaction
    and serialises leaders across processes through ``enter``/``leave``.

    Only threads that have something to do are woken: the callers whose jobs
    a batch finished, and the caller at the head of the queue, which leads
    next (waking every waiter on each commit cost more GIL hand-offs than the
    commit itself).
    """

    engine: Engine
    run_batch: Callable[[Connection, list[Job]], bool]
    enter: Callable[[], None] = lambda: None
    leave: Callable[[], None] = lambda: None
    on_commit: Callable[[list[Job]], None] = lambda jobs: None
    _mutex: threading.Lock = field(default_factory=threading.Lock)
    _queue: deque[Job] = field(default_factory=deque)
    _leading: bool = False
    #: Kept open between batches: a pool checkout (and its reset) per commit
    #: cost as much as the statements of a small write.
    _conn: Connection | None = None
    #: Leads for jobs awaited on event loops; started on first use.
    _writer: threading.Thread | None = None
    _writer_go: threading.Event = field(default_factory=threading.Event)
    _closing: bool = False

    def submit(self, job: Job) -> None:
        """Return once ``job`` has run and its batch committed (or failed)."""
        assert job._wake is not None, "an awaited job goes through submit_async"
        with self._mutex:
            self._queue.append(job)
            lead = not self._leading
            self._leading = True
        if not lead:
            job._wake.acquire()
            if job.done:
                return
        # This thread leads until its own job is done (a batch is bounded, so
        # that may take more than one), then hands over to the queue's head.
        while True:
            try:
                self._lead()
            except BaseException:
                self._hand_over()
                raise
            if job.done:
                self._hand_over()
                return

    async def submit_async(self, job: Job) -> None:
        """Like :meth:`submit`, awaited on the running event loop; ``job`` must
        have been made with ``future=loop.create_future()``. The writer thread
        runs it; cancelling the wait does not cancel the job."""
        assert job.future is not None
        with self._mutex:
            if self._closing:
                raise RuntimeError("the group committer is closed")
            self._queue.append(job)
            wake = not self._leading
            self._leading = True
        if wake:
            self._start_writer()
        await job.future

    def _start_writer(self) -> None:
        """Hand the lead to the writer thread (the caller has set ``_leading``)."""
        if self._writer is None:
            with self._mutex:
                if self._writer is None:
                    self._writer = threading.Thread(target=self._write_loop, name="group-commit",
                                                    daemon=True)
                    self._writer.start()
        self._writer_go.set()

    def _write_loop(self) -> None:
        while True:
            self._writer_go.wait()
            self._writer_go.clear()
            if self._closing:
                return
            while True:
                try:
                    self._lead()
                except BaseException:  # noqa: BLE001 - _lead failed the batch's jobs already
                    pass
                with self._mutex:
                    if not self._queue:
                        self._leading = False
                        break

    def _hand_over(self) -> None:
        with self._mutex:
            if not self._queue:
                self._leading = False
                return
            head = self._queue[0]
        if head._wake is not None:
            head._wake.release()
        else:
            self._start_writer()

    def _take_batch(self) -> list[Job]:
        with self._mutex:
            return [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.engine.connect()
        return self._conn

    def close(self) -> None:
        """Stop the writer thread and close the kept connection (call when no
        leader is running)."""
        with self._mutex:
            self._closing = True
        writer = self._writer
        if writer is not None:
            self._writer_go.set()
            writer.join(timeout=10)
            self._writer = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _lead(self) -> None:
        # The batch is taken only once the cross-process lock is ours: jobs
        # that arrive while another process writes join this batch.
        batch: list[Job] = []
        committed = False
        try:
            self.enter()
            try:
                batch = self._take_batch()
                committed = self._commit(batch)
            finally:
                self.leave()
        except BaseException as exc:
            # No lock, or the commit failed: nothing of the batch is stored.
            batch = batch or self._take_batch()
            for job in batch:
                if job.error is None:
                    job.result = None
                    job.error = exc
            self._finish(batch)
            if not isinstance(exc, Exception):
                raise
            return
        if committed:
            self.on_commit(batch)
        self._finish(batch)

    @staticmethod
    def _finish(batch: list[Job]) -> None:
        me = threading.current_thread()
        awaited: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for job in batch:
            job.done = True
            if job.future is not None:
                awaited.setdefault(job.future.get_loop(), []).append(job.future)
            elif job._owner is not me:
                assert job._wake is not None
                job._wake.release()
        for loop, futures in awaited.items():
            try:
                loop.call_soon_threadsafe(_resolve, futures)
            except RuntimeError:
                pass  # the loop is closed: nobody is waiting any more

    def _commit(self, batch: list[Job]) -> bool:
        conn = self._connection()
        try:
            trans = conn.begin()
            try:
                keep = self.run_batch(conn, batch)
            except BaseException:
                trans.rollback()
                raise
            if keep:
                trans.commit()
            else:
                trans.rollback()
            return keep
        except BaseException:
            # Whatever broke, the next leader starts on a fresh connection.
            self._conn = None
            conn.close()
            raise


def _resolve(futures: list[asyncio.Future[None]]) -> None:
    for fut in futures:
        if not fut.done():
            fut.set_result(None)
