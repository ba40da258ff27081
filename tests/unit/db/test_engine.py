from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import select

from netplex.db.engine import Database
from netplex.db.models import Change, Network
from netplex.errors import RetryRequest


def test_changes_get_gapless_revisions_in_commit_order(db_url: str) -> None:
    db = Database(db_url)
    seen: list[int] = []
    db.commit_listeners.append(seen.append)

    def work(i: int) -> None:
        def fn(txn):  # type: ignore[no-untyped-def]
            net = Network(name=f"n{i}", project_id="p")
            txn.session.add(net)
            txn.session.flush()
            txn.record("network", net.id, "create", {"name": f"n{i}"})
            txn.record("network", net.id, "update", {"name": f"n{i}"})

        db.transaction(fn)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.read() as s:
        revs = [r for (r,) in s.execute(select(Change.revision).order_by(Change.revision))]
    assert revs == list(range(1, 41))
    assert db.head_revision() == 40
    assert sorted(seen)[-1] == 40
    db.dispose()


def test_rollback_writes_no_change_and_retry_reruns(db_url: str) -> None:
    db = Database(db_url, max_retries=3)
    calls = []

    def fn(txn):  # type: ignore[no-untyped-def]
        calls.append(1)
        txn.record("network", "x", "create", None)
        if len(calls) < 3:
            raise RetryRequest()
        return "ok"

    assert db.transaction(fn) == "ok"
    assert len(calls) == 3
    assert db.head_revision() == 1

    def boom(txn):  # type: ignore[no-untyped-def]
        txn.session.add(Network(name="x", project_id="p"))
        txn.record("network", "y", "create", None)
        raise ValueError("no")

    with pytest.raises(ValueError):
        db.transaction(boom)
    assert db.head_revision() == 1
    with db.read() as s:
        assert s.execute(select(Network)).first() is None
    db.dispose()


def test_transaction_async_commits_records_and_rolls_back(db_url: str) -> None:
    """Awaited transactions: same feed, same rollback, on both databases
    (SQLite through the writer thread, PostgreSQL through a worker thread)."""
    db = Database(db_url, max_retries=0)
    seen: list[int] = []
    db.commit_listeners.append(seen.append)

    def good(i: int):  # type: ignore[no-untyped-def]
        def fn(txn):  # type: ignore[no-untyped-def]
            net = Network(name=f"n{i}", project_id="p")
            txn.session.add(net)
            txn.session.flush()
            txn.record("network", net.id, "create", None)
            return net.id

        return fn

    def bad(txn):  # type: ignore[no-untyped-def]
        txn.session.add(Network(name="bad", project_id="p"))
        txn.session.flush()
        txn.record("network", "bad", "create", None)
        raise RetryRequest(ValueError("refused"))

    async def main() -> list[object]:
        calls = [db.transaction_async(good(i)) for i in range(10)]
        return await asyncio.gather(*calls, db.transaction_async(bad), return_exceptions=True)

    out = asyncio.run(main())
    assert isinstance(out[-1], RetryRequest) and len(set(out[:-1])) == 10
    with db.read() as s:
        assert sorted(s.execute(select(Network.name)).scalars()) == sorted(f"n{i}" for i in range(10))
        revs = list(s.execute(select(Change.revision).order_by(Change.revision)).scalars())
    assert revs == list(range(1, 11)) and max(seen) == 10
    db.dispose()
