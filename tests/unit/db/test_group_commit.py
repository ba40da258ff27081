"""Group commit (SQLite): shared commits, isolated failures, ordered feed."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from sqlalchemy import select

from netplex.db.engine import Database, Txn
from netplex.db.group_commit import GroupCommitter, Job
from netplex.db.models import Change, Network


def _in_parallel(n: int, work: Any) -> None:
    start = threading.Barrier(n)

    def run(i: int) -> None:
        start.wait()
        work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_failing_job_rolls_back_only_itself_when_batched(sqlite_url: str) -> None:
    db = Database(sqlite_url, max_retries=0)
    gate = threading.Event()
    outcomes: dict[int, Any] = {}

    # Hold the leader inside the first job so the others queue into one batch.
    def slow_first(txn: Txn) -> None:
        gate.wait(5)
        txn.session.add(Network(name="first", project_id="p"))
        txn.record("network", "first", "create", None)

    def job(i: int) -> None:
        def fn(txn: Txn) -> str:
            txn.session.add(Network(name=f"n{i}", project_id="p"))
            txn.session.flush()
            txn.record("network", f"n{i}", "create", None)
            if i % 3 == 0:
                raise ValueError(f"job {i} refuses")
            return f"ok {i}"

        try:
            outcomes[i] = db.transaction(fn)
        except ValueError as exc:
            outcomes[i] = exc

    group = db._group
    assert group is not None
    first = threading.Thread(target=db.transaction, args=(slow_first,))
    first.start()
    while not (group._leading and not group._queue):
        threading.Event().wait(0.001)
    threads = [threading.Thread(target=job, args=(i,)) for i in range(9)]
    for t in threads:
        t.start()
    while len(group._queue) < 9:
        threading.Event().wait(0.001)
    gate.set()
    first.join()
    for t in threads:
        t.join()

    assert {i for i, o in outcomes.items() if isinstance(o, ValueError)} == {0, 3, 6}
    assert all(outcomes[i] == f"ok {i}" for i in (1, 2, 4, 5, 7, 8))
    with db.read() as s:
        names = set(s.execute(select(Network.name)).scalars())
        feed = [(r, rid) for r, rid in s.execute(select(Change.revision, Change.resource_id).order_by(Change.revision))]
    assert names == {"first"} | {f"n{i}" for i in (1, 2, 4, 5, 7, 8)}
    # Gapless revisions, none for the rolled-back jobs.
    assert [r for r, _ in feed] == list(range(1, 8))
    assert {rid for _, rid in feed} == names
    assert db.head_revision() == 7
    db.dispose()


def test_concurrent_writers_get_gapless_revisions_and_after_commit_hooks(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    hooks: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        def fn(txn: Txn) -> None:
            txn.record("network", f"n{i}", "create", {"i": i})
            txn.after_commit(lambda: (lock.acquire(), hooks.append(i), lock.release()))

        for _ in range(20):
            db.transaction(fn)

    _in_parallel(8, work)
    with db.read() as s:
        revs = list(s.execute(select(Change.revision).order_by(Change.revision)).scalars())
    assert revs == list(range(1, 161))
    assert sorted(hooks) == sorted(i for i in range(8) for _ in range(20))
    db.dispose()


def test_lock_failure_fails_the_whole_batch_and_nothing_stays_queued() -> None:
    ran: list[int] = []

    def run_batch(conn: Any, jobs: list[Job]) -> bool:
        for job in jobs:
            job.result = job.fn(None)
        return True

    def broken_lock() -> None:
        raise OSError("no lock for you")

    committer = GroupCommitter(engine=None, run_batch=run_batch, enter=broken_lock)  # type: ignore[arg-type]
    job = Job(lambda _: ran.append(1))
    committer.submit(job)
    assert job.done and isinstance(job.error, OSError)
    assert ran == [] and not committer._queue


def test_retriable_conflict_in_batch_is_retried_alone(sqlite_url: str) -> None:
    """Two jobs insert the same key: one wins, the other's retry then sees it."""
    db = Database(sqlite_url)
    results: list[str] = []

    def work(i: int) -> None:
        def fn(txn: Txn) -> str:
            s = txn.session
            if s.get(Network, "shared-id") is not None:
                return "saw it"
            s.add(Network(id="shared-id", name=f"n{i}", project_id="p"))
            s.flush()
            return "made it"

        results.append(db.transaction(fn))

    _in_parallel(6, work)
    assert sorted(results) == ["made it"] + ["saw it"] * 5
    db.dispose()


@pytest.mark.parametrize("size", [1, 5])
def test_batch_of_one_and_many_store_the_same(sqlite_url: str, size: int) -> None:
    db = Database(sqlite_url)
    _in_parallel(size, lambda i: db.transaction(lambda txn: txn.session.add(Network(name=f"n{i}", project_id="p"))))
    with db.read() as s:
        assert len(s.execute(select(Network.id)).all()) == size
    db.dispose()


# --- jobs awaited on an event loop ------------------------------------------------


def test_awaited_and_threaded_jobs_share_batches_and_the_feed(sqlite_url: str) -> None:
    """Coroutines (led by the writer thread) and threads (leading themselves) mix:
    every job runs once, failures stay with their job, revisions are gapless."""
    db = Database(sqlite_url, max_retries=0)

    def make(name: str, fail: bool) -> Any:
        def fn(txn: Txn) -> str:
            txn.session.add(Network(name=name, project_id="p"))
            txn.session.flush()
            txn.record("network", name, "create", None)
            if fail:
                raise ValueError(name)
            return name

        return fn

    async def loop_side() -> list[Any]:
        calls = [db.transaction_async(make(f"a{i}", i % 4 == 0)) for i in range(40)]
        return await asyncio.gather(*calls, return_exceptions=True)

    thread_out: list[Any] = []

    def thread_side(i: int) -> None:
        for j in range(5):
            try:
                thread_out.append(db.transaction(make(f"t{i}-{j}", False)))
            except ValueError as exc:  # pragma: no cover - none of these fail
                thread_out.append(exc)

    threads = [threading.Thread(target=thread_side, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    loop_out = asyncio.run(loop_side())
    for t in threads:
        t.join()

    assert [type(o) for o in loop_out[::4]] == [ValueError] * 10
    assert [o for i, o in enumerate(loop_out) if i % 4] == [f"a{i}" for i in range(40) if i % 4]
    assert sorted(thread_out) == sorted(f"t{i}-{j}" for i in range(4) for j in range(5))
    with db.read() as s:
        names = set(s.execute(select(Network.name)).scalars())
        revs = list(s.execute(select(Change.revision).order_by(Change.revision)).scalars())
    assert names == {f"a{i}" for i in range(40) if i % 4} | set(thread_out)
    assert revs == list(range(1, len(names) + 1))
    group = db._group
    assert group is not None and not group._queue
    db.dispose()
    assert group._writer is None  # stopped by dispose


def test_awaited_job_is_retried_after_a_unique_key_race(sqlite_url: str) -> None:
    db = Database(sqlite_url)

    def fn(txn: Txn) -> str:
        s = txn.session
        if s.get(Network, "shared-id") is not None:
            return "saw it"
        s.add(Network(id="shared-id", name="n", project_id="p"))
        s.flush()
        return "made it"

    async def main() -> list[str]:
        return await asyncio.gather(*(db.transaction_async(fn) for _ in range(6)))

    assert sorted(asyncio.run(main())) == ["made it"] + ["saw it"] * 5
    db.dispose()


def test_cancelled_wait_leaves_the_job_to_finish(sqlite_url: str) -> None:
    """A request that goes away does not undo or wedge its transaction."""
    db = Database(sqlite_url)
    gate = threading.Event()

    def slow(txn: Txn) -> None:
        gate.wait(5)
        txn.session.add(Network(name="slow", project_id="p"))

    async def main() -> str:
        task = asyncio.ensure_future(db.transaction_async(slow))
        await asyncio.sleep(0.05)
        task.cancel()
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The committer is still usable afterwards.
        return await db.transaction_async(lambda txn: "next")

    assert asyncio.run(main()) == "next"
    with db.read() as s:
        assert list(s.execute(select(Network.name)).scalars()) == ["slow"]
    db.dispose()


def test_lock_failure_reaches_the_awaiting_coroutine() -> None:
    def run_batch(conn: Any, jobs: list[Job]) -> bool:  # pragma: no cover - never reached
        raise AssertionError("ran without the lock")

    def broken_lock() -> None:
        raise OSError("no lock for you")

    committer = GroupCommitter(engine=None, run_batch=run_batch, enter=broken_lock)  # type: ignore[arg-type]

    async def main() -> Job:
        job = Job(lambda _: None, future=asyncio.get_running_loop().create_future())
        await committer.submit_async(job)
        return job

    job = asyncio.run(main())
    assert job.done and isinstance(job.error, OSError)
    # The writer gives up the lead right after waking the loop.
    for _ in range(1000):
        if not committer._leading:
            break
        threading.Event().wait(0.001)
    assert not committer._queue and not committer._leading
    committer.close()
