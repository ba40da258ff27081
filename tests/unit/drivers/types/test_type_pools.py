"""Segment pools on a real database: exact reservation, allocation, release, no leaks.

Each test needs a fresh database per backend, so related checks share a test.
"""

from __future__ import annotations

import random
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from netplex.core.segments_model import Segment
from netplex.core.segments_model import SegmentRequest as R
from netplex.core.type_api import UNLIMITED, TypeDriver
from netplex.db.engine import Database
from netplex.db.models import SegmentAllocation
from netplex.drivers.types.flat import FlatTypeDriver
from netplex.drivers.types.gre import GreTypeDriver
from netplex.drivers.types.pool import claim_allocation, first_free_id
from netplex.drivers.types.vlan import VlanTypeDriver
from netplex.drivers.types.vxlan import VxlanTypeDriver
from netplex.errors import (
    FlatNetworkInUse,
    NoNetworkAvailable,
    SegmentationIdInUse,
    TunnelIdInUse,
)

from .conftest import ctx, run


def rows(db: Database) -> int:
    return run(db, lambda s: s.execute(select(func.count()).select_from(SegmentAllocation))
               .scalar_one())


def allocate(db: Database, driver: TypeDriver) -> Segment | None:
    """One project allocation in its own transaction, as a Segment (None: exhausted)."""

    def fn(s: Session) -> Segment | None:
        c = ctx(s)
        found = driver.allocate_project_segment(c)
        if found is None:
            return None
        return Segment(c.segment_id, c.network_id, driver.network_type,
                       found.physical_network, found.segmentation_id)

    return run(db, fn)


def reserve(db: Database, driver: TypeDriver, req: R) -> Segment:
    def fn(s: Session) -> Segment:
        c = ctx(s)
        found = driver.reserve_provider_segment(c, req)
        return Segment(c.segment_id, c.network_id, driver.network_type,
                       found.physical_network, found.segmentation_id)

    return run(db, fn)


def release(db: Database, driver: TypeDriver, seg: Segment) -> None:
    run(db, lambda s: driver.release_segment(ctx(s, seg.id), seg))


def test_first_free_id_matches_brute_force(db: Database) -> None:
    rnd = random.Random(7)
    taken = set(rnd.sample(range(1, 301), 200)) | set(range(40, 120)) | {1, 2, 3}

    def check(s: Session) -> None:
        for sid in sorted(taken):
            assert claim_allocation(s, "vxlan", "", sid, "x")
        assert not claim_allocation(s, "vxlan", "", 40, "y")
        cases = [(1, 300), (1, 1), (40, 119), (40, 120), (300, 300), (299, 400), (5, 4)]
        for _ in range(60):
            a, b = sorted(rnd.sample(range(1, 320), 2))
            cases.append((a, b))
        for first, last in cases:
            expected = next((i for i in range(first, last + 1) if i not in taken), None)
            assert first_free_id(s, "vxlan", "", first, last) == expected, (first, last)

    run(db, check)


def test_pool_hands_out_each_id_once_and_release_frees_only_its_own(db: Database) -> None:
    vlan = VlanTypeDriver({"network_vlan_ranges": ["physnet1:1:10", "physnet2:20:24"]})
    assert run(db, lambda s: vlan.count_free(s)) == 15
    got = [allocate(db, vlan) for _ in range(15)]
    keys = {(g.physical_network, g.segmentation_id) for g in got if g is not None}
    assert keys == {("physnet1", i) for i in range(1, 11)} | {("physnet2", i) for i in range(20, 25)}
    assert allocate(db, vlan) is None
    assert run(db, lambda s: vlan.count_free(s)) == 0
    with pytest.raises(NoNetworkAvailable):
        reserve(db, vlan, R("vlan", "physnet2"))

    first = next(g for g in got if g is not None and g.physical_network == "physnet2")
    release(db, vlan, first)
    assert run(db, lambda s: vlan.count_free(s, "physnet2")) == 1
    second = allocate(db, vlan)
    assert second is not None
    assert (second.physical_network, second.segmentation_id) == (
        first.physical_network, first.segmentation_id)
    # A late, repeated release of the first segment must not free the id
    # the second segment now holds.
    release(db, vlan, first)
    assert run(db, lambda s: vlan.count_free(s)) == 0
    assert rows(db) == 15
    release(db, vlan, second)
    assert rows(db) == 14


def test_provider_reservations_inside_and_outside_ranges(db: Database) -> None:
    vlan = VlanTypeDriver({"network_vlan_ranges": ["physnet1:100:102"]})
    assert reserve(db, vlan, R("vlan", "physnet1", 5)).segmentation_id == 5  # outside
    assert reserve(db, vlan, R("vlan", "physnet1", 101)).segmentation_id == 101  # inside
    with pytest.raises(SegmentationIdInUse) as err:
        reserve(db, vlan, R("vlan", "physnet1", 5))
    assert err.value.status == 409
    assert "vlan segmentation ID 5 on physical network physnet1 is in use" in str(err.value)
    # The project pool skips ids taken by provider networks.
    assert run(db, lambda s: vlan.count_free(s)) == 2
    pool = {allocate(db, vlan) for _ in range(2)}
    assert {p.segmentation_id for p in pool if p is not None} == {100, 102}
    assert allocate(db, vlan) is None
    assert rows(db) == 4  # the failed attempts wrote nothing

    flat = FlatTypeDriver({"flat_networks": ["physnet1", "physnet2"]})
    assert run(db, lambda s: flat.count_free(s)) == 2
    taken = reserve(db, flat, R("flat", "physnet1"))
    with pytest.raises(FlatNetworkInUse):
        reserve(db, flat, R("flat", "physnet1"))
    assert run(db, lambda s: flat.count_free(s)) == 1
    assert run(db, lambda s: flat.count_free(s, "physnet1")) == 0
    assert allocate(db, flat) is None  # projects never get a flat network
    release(db, flat, taken)
    assert run(db, lambda s: flat.count_free(s, "physnet1")) == 1
    assert run(db, lambda s: FlatTypeDriver().count_free(s)) == UNLIMITED


def test_shrinking_ranges_keeps_old_allocations_and_never_hands_out_outside(
    db: Database,
) -> None:
    wide = VxlanTypeDriver({"vni_ranges": ["1:40"]})
    held = [allocate(db, wide) for _ in range(30)]
    # Restart with a narrower range: no resync, no state about the old one.
    narrow = VxlanTypeDriver({"vni_ranges": ["11:20"]})
    in_narrow = sum(1 for h in held if h is not None and 11 <= (h.segmentation_id or 0) <= 20)
    assert run(db, lambda s: narrow.count_free(s)) == 10 - in_narrow
    fresh = []
    while (seg := allocate(db, narrow)) is not None:
        fresh.append(seg.segmentation_id)
    assert all(11 <= (sid or 0) <= 20 for sid in fresh)
    assert len(fresh) == 10 - in_narrow
    # Ids allocated under the old range are released the same way.
    for h in held:
        assert h is not None
        release(db, narrow, h)
    assert rows(db) == len(fresh)


def test_huge_ranges_cost_nothing_and_gre_keys_use_all_32_bits(db: Database) -> None:
    vxlan = VxlanTypeDriver({"vni_ranges": ["1:16777215"]})
    assert run(db, lambda s: vxlan.count_free(s)) == 16777215
    got = [allocate(db, vxlan) for _ in range(20)]
    assert len({g.segmentation_id for g in got if g is not None}) == 20
    assert rows(db) == 20
    gre = GreTypeDriver({"tunnel_id_ranges": ["4294967290:4294967295"]})
    assert reserve(db, gre, R("gre", None, 2**32 - 1)).segmentation_id == 2**32 - 1
    with pytest.raises(TunnelIdInUse, match="tunnel ID 4294967295 is in use"):
        reserve(db, gre, R("gre", None, 2**32 - 1))
    assert run(db, lambda s: gre.count_free(s)) == 5


def test_threads_never_get_the_same_id(db: Database) -> None:
    """Racing allocators (separate transactions) get distinct ids; the pool drains exactly."""
    vlan = VlanTypeDriver({"network_vlan_ranges": ["physnet1:1:40"]})
    results: list[int | None] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(6):
            seg = allocate(db, vlan)
            with lock:
                results.append(None if seg is None else seg.segmentation_id)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = [r for r in results if r is not None]
    assert len(got) == len(set(got)) == 40
    assert results.count(None) == 8 * 6 - 40
    assert rows(db) == 40
