"""Engines, transactions and retries; the change feed is appended at commit.

One :class:`Database` per process. Write work goes through
:meth:`Database.transaction`, which runs a function in a fresh
:class:`Txn`, retries it when the backend reports a conflict (SQLite
"database is locked", PostgreSQL serialization failures and deadlocks,
unique-key races, or an explicit :class:`RetryRequest`), and on success
appends the changes the function recorded to the feed *in the same
transaction*.

Why the feed write is serialised: revisions must become visible in order,
or a watcher that has read revision N+1 could later miss N. Every writer
that has changes bumps the single ``feed_head`` row just before commit; on
PostgreSQL that row lock is held until commit, on SQLite the whole write is
already serialised. The lock is taken last, so it is held only for the
commit itself.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import anyio.to_thread
import orjson
from sqlalchemy import Connection, Engine, Table, bindparam, create_engine, event, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from netplex.db.base import utcnow
from netplex.db.group_commit import GroupCommitter, Job
from netplex.db.models import Change, FeedHead
from netplex.db.prepared import Prepared
from netplex.errors import RetryRequest

LOG = logging.getLogger(__name__)
T = TypeVar("T")

_FEED_HEAD = cast(Table, FeedHead.__table__)
_BUMP_HEAD = (
    update(_FEED_HEAD)
    .where(_FEED_HEAD.c.id == 1)
    .values(revision=_FEED_HEAD.c.revision + bindparam("n"))
    .returning(_FEED_HEAD.c.revision)
)
_INSERT_CHANGE = Prepared(
    insert(cast(Table, Change.__table__)),
    keys=["revision", "resource", "resource_id", "action", "body", "created_at"],
)
_READ_HEAD = Prepared(select(_FEED_HEAD.c.revision).where(_FEED_HEAD.c.id == 1))
_SET_HEAD = Prepared(update(_FEED_HEAD).where(_FEED_HEAD.c.id == 1).values(revision=bindparam("head")))
_NOTIFY = text("SELECT pg_notify('netplex_feed', :rev)")

def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


#: JSON columns (profiles, pools, feed bodies) through orjson: listing 10,000
#: ports decodes 40,000 of them, and the stdlib codec was a third of the time.
_JSON_CODEC: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}

#: PostgreSQL SQLSTATEs that mean "run the transaction again".
_PG_RETRY_STATES = {"40001", "40P01", "55P03"}


def normalize_url(url: str) -> str:
    """Accept Neutron-style URLs (``postgresql://``) and pick our drivers."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


@dataclass
class ChangeRecord:
    resource: str
    resource_id: str
    action: str
    body: dict[str, Any] | None


@dataclass
class Txn:
    """What a transaction function receives: the session plus feed/commit hooks."""

    #: Opens the ORM session on first use: hot paths that run only
    #: :mod:`prepared` statements on :attr:`conn` never pay for one.
    _open_session: Callable[[], Session]
    changes: list[ChangeRecord] = field(default_factory=list)
    _after_commit: list[Callable[[], None]] = field(default_factory=list)
    #: The feed revision of this transaction's last change, once appended.
    revision: int | None = None
    _conn: Connection | None = None
    _session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = self._open_session()
        return self._session

    def flush(self) -> None:
        """Flush the session's pending ORM changes, if a session was opened,
        so that statements on :attr:`conn` see them."""
        if self._session is not None:
            self._session.flush()

    def _finish(self, *, commit: bool) -> None:
        """Flush and end the session, if one was opened."""
        session = self._session
        if session is None:
            return
        try:
            if commit:
                session.commit()
        finally:
            session.close()

    @property
    def conn(self) -> Connection:
        """The transaction's connection (for Core and :mod:`prepared` statements)."""
        if self._conn is None:
            self._conn = self.session.connection()
        return self._conn

    def record(self, resource: str, resource_id: str, action: str, body: dict[str, Any] | None) -> None:
        """Append a change to the feed when (and only if) this transaction commits."""
        self.changes.append(ChangeRecord(resource, resource_id, action, body))

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the transaction has committed (never on rollback).

        After :meth:`Database.transaction_async` it runs on the event loop:
        keep it short and non-blocking."""
        self._after_commit.append(fn)


def _savepoint_session(**kwargs: Any) -> Session:
    return Session(join_transaction_mode="create_savepoint", **kwargs)


class Database:
    """Engines and transaction helpers for one database URL."""

    def __init__(self, url: str, *, max_retries: int = 10, echo: bool = False) -> None:
        self.url = normalize_url(url)
        u = make_url(self.url)
        self.is_sqlite = u.get_backend_name() == "sqlite"
        self.is_postgres = u.get_backend_name() == "postgresql"
        self.max_retries = max_retries
        #: Called with the new head revision after each commit that wrote changes.
        self.commit_listeners: list[Callable[[int], None]] = []
        if self.is_sqlite:
            if u.database and u.database != ":memory:":
                Path(u.database).parent.mkdir(parents=True, exist_ok=True)
            self.write_engine = self._sqlite_engine(echo, immediate=True)
            self.read_engine = self._sqlite_engine(echo, immediate=False)
            # Threads of this process share commits (group commit), processes
            # (api_workers > 1) take turns on a flock: both hand over at once,
            # where SQLite's busy handler would sleep in steps of up to 100 ms.
            self._lock_path = f"{u.database}.writelock"
            self._lock_fd: int | None = None
            self._group: GroupCommitter | None = GroupCommitter(
                self.write_engine,
                self._run_sqlite_batch,
                enter=self._flock,
                leave=self._unflock,
                on_commit=self._batch_committed,
            )
        else:
            self.write_engine = create_engine(self.url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True)
            self.read_engine = self.write_engine
            self._group = None
        self._write_sessions = sessionmaker(self.write_engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)

    def _sqlite_engine(self, echo: bool, *, immediate: bool) -> Engine:
        memory = ":memory:" in self.url or self.url.endswith("sqlite://")
        kwargs: dict[str, Any] = {"echo": echo, **_JSON_CODEC}
        if memory:
            raise ValueError("in-memory SQLite cannot be shared between engines; use a file")
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        kwargs["pool_size"] = 16
        kwargs["max_overflow"] = 16
        engine = create_engine(self.url, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event decide how transactions start.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql(begin)

        return engine

    def dispose(self) -> None:
        if self.is_sqlite and self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        if self._group is not None:
            self._group.close()
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()

    # -- reads -----------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session: a consistent snapshot, never blocks writers."""
        with self._read_sessions() as session, session.begin():
            yield session

    @contextmanager
    def read_conn(self) -> Iterator[Connection]:
        """Like :meth:`read` without an ORM session (for :mod:`prepared` statements)."""
        with self.read_engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read session whose every statement sees the same committed state.

        SQLite read transactions already are snapshots; PostgreSQL's default
        READ COMMITTED is not, so the transaction is made REPEATABLE READ.
        """
        with self._read_sessions() as session, session.begin():
            if self.is_postgres:
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield session

    # -- writes ----------------------------------------------------------

    def transaction(self, fn: Callable[[Txn], T]) -> T:
        """Run ``fn`` in a write transaction, retrying on conflicts."""
        attempt = 0
        while True:
            try:
                return self._run_once(fn)
            except Exception as exc:
                attempt += 1
                delay = self._retry_delay(exc, attempt)
                if delay is None:
                    raise
                time.sleep(delay)

    def _retry_delay(self, exc: BaseException, attempt: int) -> float | None:
        """How long to wait before try number ``attempt + 1`` after ``exc``; None: give up."""
        if not isinstance(exc, Exception) or not self._is_retriable(exc) or attempt > self.max_retries:
            return None
        LOG.debug("retrying transaction (attempt %d) after %r", attempt, exc)
        return random.uniform(0, 0.002 * 2 ** min(attempt, 6))

    async def transaction_async(self, fn: Callable[[Txn], T]) -> T:
        """:meth:`transaction`, awaited on the running event loop.

        On SQLite the job goes to the group committer's writer thread
        directly (no worker thread per call); elsewhere :meth:`transaction`
        runs in a worker thread. ``fn`` runs off the loop either way.
        """
        group = self._group
        if group is None:
            return await anyio.to_thread.run_sync(self.transaction, fn)
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            job = Job(fn, future=loop.create_future())
            await group.submit_async(job)
            if job.error is None:
                txn = cast(Txn, job.txn)
                for hook in txn._after_commit:
                    hook()
                return cast(T, job.result)
            attempt += 1
            delay = self._retry_delay(job.error, attempt)
            if delay is None:
                raise job.error
            await asyncio.sleep(delay)

    def _flock(self) -> None:
        if self._lock_fd is None:
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    def _unflock(self) -> None:
        assert self._lock_fd is not None
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _run_once(self, fn: Callable[[Txn], T]) -> T:
        if self._group is not None:
            job = Job(fn)
            self._group.submit(job)
            if job.error is not None:
                raise job.error
            result = cast(T, job.result)
            txn = cast(Txn, job.txn)
        else:
            with self._write_sessions() as session:
                txn = Txn(lambda: session, _session=session)
                with session.begin():
                    result = fn(txn)
                    session.flush()
                    if txn.changes:
                        txn.revision = self._append_changes(txn)
            if txn.revision is not None:
                self._notify_listeners(txn.revision)
        for hook in txn._after_commit:
            hook()
        return result

    def _run_sqlite_batch(self, conn: Connection, jobs: list[Job]) -> bool:
        """Each job in a SAVEPOINT of ``conn``'s transaction (see :mod:`group_commit`)."""
        start = head = int(_READ_HEAD.scalar(conn))
        if len(jobs) == 1:
            # Alone in the batch: its failure rolls back the whole transaction.
            try:
                self._run_job(conn, jobs[0], head, Session)
            except Exception as exc:
                jobs[0].error = exc
                return False
            head = jobs[0].txn.revision or head
        else:
            # Savepoints by hand on the driver's cursor (SQLAlchemy's cost more
            # than SQLite's); a session a job opens nests its own savepoint, so
            # a failed flush rolls back no further than that job.
            cursor = conn.connection.cursor()
            for job in jobs:
                cursor.execute("SAVEPOINT netplex_job")
                try:
                    self._run_job(conn, job, head, _savepoint_session)
                except Exception as exc:
                    cursor.execute("ROLLBACK TO netplex_job")
                    job.error = exc
                    job.txn = None
                finally:
                    cursor.execute("RELEASE netplex_job")
                if job.error is None:
                    head = job.txn.revision or head
        if head != start:
            _SET_HEAD.execute(conn, {"head": head})
        return True

    def _run_job(self, conn: Connection, job: Job, head: int, session_type: Callable[..., Session]) -> None:
        txn = Txn(lambda: session_type(bind=conn, expire_on_commit=False), _conn=conn)
        job.txn = txn
        try:
            job.result = job.fn(txn)
            txn._finish(commit=True)
        except BaseException:
            txn._finish(commit=False)
            raise
        if txn.changes:
            self._insert_changes(conn, txn, head + 1)
            txn.revision = head + len(txn.changes)

    def _batch_committed(self, jobs: list[Job]) -> None:
        revisions = [job.txn.revision for job in jobs if job.txn is not None and job.txn.revision is not None]
        if revisions:
            self._notify_listeners(max(revisions))

    def _notify_listeners(self, head: int) -> None:
        for listener in self.commit_listeners:
            try:
                listener(head)
            except Exception:  # a broken listener must not undo a commit
                LOG.exception("commit listener failed")

    def _append_changes(self, txn: Txn) -> int:
        n = len(txn.changes)
        conn = txn.session.connection()
        head = int(conn.execute(_BUMP_HEAD, {"n": n}).scalar_one())
        self._insert_changes(conn, txn, head - n + 1)
        if self.is_postgres:
            conn.execute(_NOTIFY, {"rev": str(head)})
        return head

    @staticmethod
    def _insert_changes(conn: Connection, txn: Txn, first: int) -> None:
        now = utcnow()
        _INSERT_CHANGE.executemany(
            conn,
            [
                {
                    "revision": first + i,
                    "resource": c.resource,
                    "resource_id": c.resource_id,
                    "action": c.action,
                    "body": c.body,
                    "created_at": now,
                }
                for i, c in enumerate(txn.changes)
            ],
        )

    @staticmethod
    def _is_retriable(exc: BaseException) -> bool:
        if isinstance(exc, RetryRequest | IntegrityError):
            return True
        if isinstance(exc, OperationalError) and "locked" in str(exc.orig).lower():
            return True
        if isinstance(exc, DBAPIError):
            state = getattr(exc.orig, "sqlstate", None)
            return state in _PG_RETRY_STATES
        return False

    def head_revision(self) -> int:
        # Polled every 50 ms by each SQLite server process: no ORM session.
        with self.read_conn() as conn:
            return int(_READ_HEAD.scalar(conn))


def null_pool_engine(url: str) -> Engine:
    """A throwaway engine (migrations, one-shot CLI commands)."""
    u = make_url(normalize_url(url))
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        # First start: the data directory may not exist yet.
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(u, poolclass=NullPool)
