"""Segment-pool benchmark: start-up and allocation cost against pool size.

Run: ``.venv/bin/python bench/segments.py [--db URL] [--allocations N]``

For each pool (VXLAN with 10, 10^4, 10^6 and 16,777,215 VNIs, and VLAN on
10 physnets x 4094 ids) it prints, on a fresh database:

* start-up: building the TypeManager from the configuration (entry points,
  range parsing) and ``initialize()``; no database work is needed;
* first allocation: the first network's transaction, connection included;
* allocation: N networks, one transaction each (network row + project
  segment + commit), mean and 95th percentile; "alloc" is the segment
  allocation alone, inside the transaction;
* the same with the pool already 90% allocated (at most 100,000 random
  ids, inserted in bulk), where free ids are rarer and probes miss.

Progress goes to stderr, the markdown table to stdout. Default database: a
fresh SQLite file per pool in a temporary directory. With ``--db`` a
PostgreSQL URL is reused and its segment tables emptied between pools.
"""

from __future__ import annotations

import argparse
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from netplex import config as config_mod
from netplex.core.type_manager import TypeManager
from netplex.db import migration
from netplex.db.engine import Database, Txn
from netplex.db.models import Network, NetworkSegment, SegmentAllocation


@dataclass(frozen=True)
class Pool:
    label: str
    network_type: str
    config: str
    #: (physnet, first, last) of the project ranges, for prefilling.
    ranges: tuple[tuple[str, int, int], ...]

    @property
    def size(self) -> int:
        return sum(last - first + 1 for _, first, last in self.ranges)


def vxlan(n: int) -> Pool:
    return Pool(
        f"vxlan 1:{n}", "vxlan",
        f"[ml2]\nproject_network_types = vxlan\n[ml2_type_vxlan]\nvni_ranges = 1:{n}\n",
        (("", 1, n),),
    )


VLAN_10 = Pool(
    "vlan 10 physnets x 4094", "vlan",
    "[ml2]\nproject_network_types = vlan\n[ml2_type_vlan]\nnetwork_vlan_ranges = "
    + ",".join(f"physnet{i}" for i in range(10)) + "\n",
    tuple((f"physnet{i}", 1, 4094) for i in range(10)),
)

POOLS = [vxlan(10), vxlan(10**4), vxlan(10**6), vxlan(2**24 - 1), VLAN_10]

PREFILL_CAP = 100_000


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def create_network(db: Database, tm: TypeManager) -> tuple[float, float]:
    """One network with a project segment; (transaction seconds, allocation seconds)."""
    inner = 0.0

    def fn(txn: Txn) -> None:
        nonlocal inner
        s: Session = txn.session
        net = Network(name="bench", project_id="bench")
        s.add(net)
        s.flush()
        t0 = time.perf_counter()
        tm.create_network_segments(s, net.id, None)
        inner = time.perf_counter() - t0

    t0 = time.perf_counter()
    db.transaction(fn)
    return time.perf_counter() - t0, inner


def measure(db: Database, tm: TypeManager, n: int) -> tuple[list[float], list[float]]:
    txn_times, alloc_times = [], []
    for _ in range(n):
        t, a = create_network(db, tm)
        txn_times.append(t)
        alloc_times.append(a)
    return txn_times, alloc_times


def prefill(db: Database, pool: Pool) -> int:
    """Allocate 90% of the pool (capped) at random, in bulk; returns how many."""
    want = min(int(pool.size * 0.9), PREFILL_CAP)
    rnd = random.Random(42)
    picks = rnd.sample(range(pool.size), want)
    rows = []
    for offset in picks:
        for physnet, first, last in pool.ranges:
            if offset <= last - first:
                rows.append({"network_type": pool.network_type, "physical_network": physnet,
                             "segmentation_id": first + offset, "segment_id": "prefill"})
                break
            offset -= last - first + 1

    def fn(txn: Txn) -> None:
        for i in range(0, len(rows), 10_000):
            txn.session.execute(insert(SegmentAllocation), rows[i : i + 10_000])

    db.transaction(fn)
    return want


def fresh_database(base_url: str | None, workdir: Path, label: str) -> str:
    if base_url is None:
        url = f"sqlite:///{workdir / (label.replace(' ', '_') + '.sqlite')}"
        migration.upgrade(url)
        return url
    migration.upgrade(base_url)
    db = Database(base_url)

    def wipe(txn: Txn) -> None:
        for model in (SegmentAllocation, NetworkSegment, Network):
            txn.session.execute(delete(model))

    db.transaction(wipe)
    db.dispose()
    return base_url


def bench_pool(pool: Pool, base_url: str | None, workdir: Path, n: int) -> dict[str, str]:
    log(f"== {pool.label} ({pool.size:,} ids)")
    url = fresh_database(base_url, workdir, pool.label)
    cfg = config_mod.load(text=pool.config)

    t0 = time.perf_counter()
    tm = TypeManager(cfg)
    tm.initialize()
    startup = time.perf_counter() - t0
    log(f"   start-up {ms(startup)} ms")

    db = Database(url)
    try:
        first_txn, _ = create_network(db, tm)
        log(f"   first allocation {ms(first_txn)} ms")
        count = min(n, pool.size - 1)
        txn_times, alloc_times = measure(db, tm, count)
        log(f"   {count} allocations: alloc mean {ms(statistics.mean(alloc_times))} ms")

        fresh_database(base_url, workdir, pool.label + "_full")
        db.dispose()
        db = Database(url if base_url else
                      f"sqlite:///{workdir / (pool.label.replace(' ', '_') + '_full.sqlite')}")
        filled = prefill(db, pool)
        log(f"   prefilled {filled:,} ids")
        full_count = min(n, pool.size - filled)
        full_txn, full_alloc = measure(db, tm, full_count)
        log(f"   {full_count} allocations at 90%: alloc mean "
            f"{ms(statistics.mean(full_alloc))} ms")
        t0 = time.perf_counter()
        exhausted = pool.size - filled - full_count == 0
        if exhausted:
            try:
                create_network(db, tm)
            except Exception as exc:  # NoNetworkAvailable is the point
                log(f"   pool exhausted: {type(exc).__name__}")
        exhaust = time.perf_counter() - t0
    finally:
        db.dispose()
    return {
        "pool": pool.label,
        "ids": f"{pool.size:,}",
        "start-up ms": ms(startup),
        "first alloc ms": ms(first_txn),
        "alloc ms mean / p95": f"{ms(statistics.mean(alloc_times))} / {ms(p95(alloc_times))}",
        "txn ms mean": ms(statistics.mean(txn_times)),
        "90% full: alloc ms mean / p95": (
            f"{ms(statistics.mean(full_alloc))} / {ms(p95(full_alloc))}"
        ),
        "503 ms (when exhausted)": ms(exhaust) if exhausted else "-",
    }


def table(rows: list[dict[str, str]]) -> str:
    heads = list(rows[0])
    out = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
    out += ["| " + " | ".join(r[h] for h in heads) + " |" for r in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--db", help="PostgreSQL URL to reuse (default: fresh SQLite files)")
    parser.add_argument("--allocations", type=int, default=200, help="allocations per pool")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="netplex-bench-") as tmp:
        run: Callable[[Pool], dict[str, str]] = lambda p: bench_pool(  # noqa: E731
            p, args.db, Path(tmp), args.allocations)
        for pool in POOLS:
            rows.append(run(pool))
    backend = "PostgreSQL" if args.db else f"SQLite {sqlite3.sqlite_version}"
    print(f"Segment pools, {backend}, Python {platform.python_version()}, "
          f"{args.allocations} allocations per pool, one transaction each:\n")
    print(table(rows))
    log(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
