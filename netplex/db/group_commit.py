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

Feed revisions are numbered by the leader, which reads the head once per
batch and writes it once before the commit: SQLite writers are serialised
(a thread lock plus a ``flock`` across worker processes), so no other
writer can interleave.
"""

from __future__ import annotations

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


@dataclass
class GroupCommitter:
    """Runs queued jobs in shared transactions; one leader at a time.

    ``run_batch(conn, jobs)`` is the database-specific part: it must run every
    job (setting ``result`` or ``error``) inside the connection's open
    transaction and return whether to commit it. The committer begins and
    ends that transaction and serialises leaders through ``enter``/``leave``
    (the cross-process lock).
    """

    engine: Engine
    run_batch: Callable[[Connection, list[Job]], bool]
    enter: Callable[[], None] = lambda: None
    leave: Callable[[], None] = lambda: None
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _queue: deque[Job] = field(default_factory=deque)
    _leading: bool = False
    #: Kept open between batches: a pool checkout (and its reset) per commit
    #: cost as much as the statements of a small write.
    _conn: Connection | None = None

    def submit(self, job: Job) -> None:
        """Return once ``job`` has run and its batch committed (or failed)."""
        with self._cond:
            self._queue.append(job)
        while True:
            with self._cond:
                while not job.done and self._leading:
                    self._cond.wait()
                if job.done:
                    return
                self._leading = True
            try:
                self._lead()
            finally:
                with self._cond:
                    self._leading = False
                    self._cond.notify_all()

    def _take_batch(self) -> list[Job]:
        with self._cond:
            return [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.engine.connect()
        return self._conn

    def close(self) -> None:
        """Close the kept connection (call when no leader is running)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _lead(self) -> None:
        # The batch is taken only once the cross-process lock is ours: jobs
        # that arrive while another process writes join this batch.
        batch: list[Job] = []
        try:
            self.enter()
            try:
                batch = self._take_batch()
                self._commit(batch)
            finally:
                self.leave()
        except BaseException as exc:
            # No lock, or the commit failed: nothing of the batch is stored.
            batch = batch or self._take_batch()
            for job in batch:
                if job.error is None:
                    job.result = None
                    job.error = exc
                job.done = True
            if not isinstance(exc, Exception):
                raise
            return
        for job in batch:
            job.done = True

    def _commit(self, batch: list[Job]) -> None:
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
        except BaseException:
            # Whatever broke, the next leader starts on a fresh connection.
            self._conn = None
            conn.close()
            raise
