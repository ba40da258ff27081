"""The feed's read side: shared wake-ups, shared pages, clean cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from netplex.db.engine import Database
from netplex.events.feed import Feed, FeedCompacted, FeedNotifier, FeedPage, SharedPages


def commit(db: Database, n: int = 1) -> None:
    def fn(txn: Any) -> None:
        for i in range(n):
            txn.record("port", f"p{i}", "create", {"id": f"p{i}"})

    db.transaction(fn)


class CountingFeed(Feed):
    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.reads = 0

    def read_after(self, after: int, limit: int = 1000, resources: set[str] | None = None) -> FeedPage:
        self.reads += 1
        return super().read_after(after, limit, resources)


@pytest.fixture
def db(db_url: str) -> Any:
    database = Database(db_url)
    yield database
    database.dispose()


async def _parked_followers(db: Database, n: int) -> tuple[CountingFeed, list[bytes]]:
    feed = CountingFeed(db)
    notifier = FeedNotifier(db)
    await notifier.start()
    pages = SharedPages(feed, notifier)
    try:
        head = notifier.latest

        async def follower() -> bytes:
            while True:
                body, _head, has = await pages.page(head, 1000)
                if has:
                    return body
                await notifier.wait_beyond(head, 5.0)

        tasks = [asyncio.create_task(follower()) for _ in range(n)]
        await asyncio.sleep(0.2)  # all parked
        reads_parked = feed.reads
        await asyncio.to_thread(commit, db, 3)
        bodies = await asyncio.wait_for(asyncio.gather(*tasks), 10)
        feed.reads -= reads_parked
        return feed, bodies
    finally:
        await notifier.stop()


def test_one_read_per_commit_batch_whatever_the_number_of_followers(db: Database) -> None:
    feed, bodies = asyncio.run(_parked_followers(db, 200))
    # 200 followers woken by one commit of 3 changes: the page is read once
    # (the gathering delay may split a batch at most once more), and all
    # get the very same encoded bytes.
    assert feed.reads <= 2
    assert len({id(b) for b in bodies}) <= 2
    page = orjson.loads(bodies[0])
    assert [c["id"] for c in page["changes"]] == ["p0", "p1", "p2"]


def test_compacted_is_shared_and_raised(db: Database) -> None:
    commit(db, 5)
    Feed(db).compact(retain=1)

    async def main() -> None:
        notifier = FeedNotifier(db)
        await notifier.start()
        try:
            pages = SharedPages(Feed(db), notifier)
            for _ in range(2):
                with pytest.raises(FeedCompacted):
                    await pages.page(0, 10)
        finally:
            await notifier.stop()

    asyncio.run(main())


def test_cancelled_wait_is_clean_and_close_answers_parked_polls(db: Database) -> None:
    async def main() -> None:
        notifier = FeedNotifier(db)
        await notifier.start()
        try:
            w = asyncio.create_task(notifier.wait_beyond(notifier.latest, 30))
            await asyncio.sleep(0.05)
            w.cancel()  # what uvicorn does to a request at the shutdown deadline
            with pytest.raises(asyncio.CancelledError):
                await w
            parked = [asyncio.create_task(notifier.wait_beyond(notifier.latest, 30)) for _ in range(50)]
            await asyncio.sleep(0.05)
            notifier.close_polls()
            await asyncio.wait_for(asyncio.gather(*parked), 2)
            # Once closing, a new wait returns at once.
            await asyncio.wait_for(notifier.wait_beyond(notifier.latest, 30), 1)
        finally:
            await notifier.stop()

    asyncio.run(main())


def test_cancelled_reader_does_not_fail_the_other_waiters(db: Database) -> None:
    commit(db, 2)

    async def main() -> None:
        notifier = FeedNotifier(db)
        await notifier.start()
        try:
            pages = SharedPages(Feed(db), notifier)
            first = asyncio.create_task(pages.page(0, 10))
            second = asyncio.create_task(pages.page(0, 10))
            await asyncio.sleep(0)
            first.cancel()
            _body, head, has = await second
            assert has and head == 2
        finally:
            await notifier.stop()

    asyncio.run(main())
