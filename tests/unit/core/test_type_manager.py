"""The type manager on a real database: provider and project segments, fallback,
release, dynamic segments, the segments API, MTU, and concurrency."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from netplex import config as config_mod
from netplex.config import Config, ConfigError
from netplex.core import segments as segments_api
from netplex.core.segments_model import Segment
from netplex.core.segments_model import SegmentRequest as R
from netplex.core.type_manager import TypeManager
from netplex.db.engine import Database, Txn
from netplex.db.models import Network, NetworkSegment, SegmentAllocation, Subnet
from netplex.drivers.types.local import LocalTypeDriver
from netplex.drivers.types.vlan import VlanTypeDriver
from netplex.errors import (
    FlatNetworkInUse,
    InvalidInput,
    NetworkNotFound,
    NoNetworkAvailable,
    SegmentationIdInUse,
    SegmentInUse,
    SegmentNotFound,
    TunnelIdInUse,
)
from tests.unit.core.segment_pools import free_count, reap_orphaned_allocations

T = TypeVar("T")

CONF = """
[ml2]
type_drivers = local,flat,vlan,vxlan,gre,geneve
project_network_types = vlan,vxlan
[ml2_type_flat]
flat_networks = physnet1,physnet2
[ml2_type_vlan]
network_vlan_ranges = physnet1:100:109,physnet2
[ml2_type_vxlan]
vni_ranges = 1000:1004
[ml2_type_gre]
tunnel_id_ranges = 1:100
[ml2_type_geneve]
vni_ranges = 1:100
"""


def load(text: str = CONF) -> Config:
    return config_mod.load(text=text)


def manager(text: str = CONF) -> TypeManager:
    tm = TypeManager(load(text))
    tm.initialize()
    return tm


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


def run(db: Database, fn: Callable[[Session], T]) -> T:
    def body(txn: Txn) -> T:
        return fn(txn.session)

    return db.transaction(body)


def add_network(s: Session) -> str:
    net = Network(name="n", project_id="p")
    s.add(net)
    s.flush()
    return net.id


def create(db: Database, tm: TypeManager, requests: list[R] | None = None,
           *, external: bool = False) -> list[Segment]:
    """Create a network with segments in one transaction (as the network service does)."""
    return run(db, lambda s: tm.create_network_segments(s, add_network(s), requests,
                                                        external=external))


def delete_network(db: Database, tm: TypeManager, network_id: str) -> None:
    def fn(s: Session) -> None:
        tm.release_network_segments(s, network_id)
        s.delete(s.get(Network, network_id))

    run(db, fn)


def count(db: Database, model: Any) -> int:
    return run(db, lambda s: s.execute(select(func.count()).select_from(model)).scalar_one())


# -- loading and configuration --------------------------------------------------


def test_drivers_come_from_entry_points_named_in_config() -> None:
    tm = manager()
    assert list(tm.drivers) == ["local", "flat", "vlan", "vxlan", "gre", "geneve"]
    assert tm.project_network_types == ["vlan", "vxlan"]
    assert tm.external_network_type is None
    assert tm.drivers["vlan"].pools == {"physnet1": [(100, 109)], "physnet2": [(1, 4094)]}  # type: ignore[attr-defined]
    legacy = manager("[ml2]\ntype_drivers = local,vxlan\ntenant_network_types = vxlan\n")
    assert legacy.project_network_types == ["vxlan"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[ml2]\ntype_drivers = local,nope\n", "no type driver named 'nope'"),
        ("[ml2]\ntype_drivers = local,vlan,local\n", "local listed more than once"),
        ("[ml2]\ntype_drivers = local\nproject_network_types = vxlan\n",
         "[ml2] project_network_types = vxlan is invalid: no type driver for 'vxlan'"),
        ("[ml2]\ntype_drivers = local,vlan\nproject_network_types = vlan,vlan\n",
         "vlan listed more than once"),
        ("[ml2]\ntype_drivers = local\nexternal_network_type = flat\n",
         "[ml2] external_network_type = 'flat' is invalid"),
        ("[ml2]\nphysical_network_mtus = physnet1:big\n",
         "[ml2] physical_network_mtus = 'physnet1:big' is invalid"),
        ("[ml2_type_vlan]\nnetwork_vlan_ranges = physnet1:5:3\n",
         "[ml2_type_vlan] network_vlan_ranges = 'physnet1:5:3' is invalid"),
        ("[ml2_type_vxlan]\nvni_ranges = 1:16777216\n",
         "[ml2_type_vxlan] vni_ranges = '1:16777216' is invalid"),
    ],
)
def test_bad_configuration_stops_start_up_naming_option_and_value(
    text: str, needle: str
) -> None:
    with pytest.raises(ConfigError) as err:
        TypeManager(load(text))
    assert needle in str(err.value)


def test_drivers_can_be_injected() -> None:
    tm = TypeManager(load("[ml2]\nproject_network_types = vlan\n"), {
        "local": LocalTypeDriver(),
        "vlan": VlanTypeDriver({"network_vlan_ranges": ["physnet9:1:2"]}),
    })
    assert set(tm.drivers) == {"local", "vlan"}
    with pytest.raises(ConfigError, match="serves network type 'local'"):
        TypeManager(load(), {"vlan": LocalTypeDriver()})


# -- validation -------------------------------------------------------------------


def test_validate_provider_request() -> None:
    tm = manager()
    assert tm.validate_provider_request({"name": "x"}) is None
    unset = dict.fromkeys(("provider:network_type", "provider:physical_network",
                           "provider:segmentation_id"))
    assert tm.validate_provider_request(unset) is None
    assert tm.validate_provider_request(
        {"provider:network_type": "vlan", "provider:physical_network": "physnet1",
         "provider:segmentation_id": "42"},
    ) == [R("vlan", "physnet1", 42)]
    assert tm.validate_provider_request(
        {"segments": [
            {"provider:network_type": "vxlan", "provider:segmentation_id": 7},
            {"provider:network_type": "vlan", "provider:physical_network": "physnet2"},
            {"provider:network_type": "vlan", "provider:physical_network": "physnet2"},
        ]},
    ) == [R("vxlan", None, 7), R("vlan", "physnet2"), R("vlan", "physnet2")]


@pytest.mark.parametrize(
    ("attrs", "needle"),
    [
        ({"provider:network_type": "vlan", "segments": [{"provider:network_type": "local"}]},
         "Segments and provider values cannot both be set"),
        ({"provider:network_type": "token-ring"}, "network_type value 'token-ring' not supported"),
        ({"provider:physical_network": "physnet1"}, "network_type required"),
        ({"provider:network_type": "vlan", "provider:physical_network": "physnet1",
          "provider:segmentation_id": "abc"}, "'abc' is not an integer"),
        ({"provider:network_type": "vlan", "provider:physical_network": "physnet1",
          "provider:segmentation_id": True}, "is not an integer"),
        ({"provider:network_type": "vlan", "provider:physical_network": "nowhere",
          "provider:segmentation_id": 5}, "physical_network 'nowhere' unknown"),
        ({"provider:network_type": "flat"}, "physical_network required for flat"),
        ({"provider:network_type": "local", "provider:segmentation_id": 3}, "prohibited"),
        ({"provider:network_type": "vxlan", "provider:segmentation_id": 16777216},
         "out of range"),
        ({"segments": [{"provider:network_type": "flat", "provider:physical_network": "physnet1"},
                       {"provider:network_type": "flat",
                        "provider:physical_network": "physnet1"}]},
         "Duplicate segment entry in request"),
        ({"segments": [{"provider:network_type": "local", "mtu": 5}]},
         "Unrecognized attribute(s) 'mtu'"),
        ({"segments": {"provider:network_type": "local"}}, "must be a list"),
    ],
)
def test_invalid_provider_requests_are_400(attrs: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidInput) as err:
        manager().validate_provider_request(attrs)
    assert err.value.status == 400
    assert needle in str(err.value)


# -- project segments: exact fallback ----------------------------------------------


def test_project_networks_fall_back_type_by_type_then_503(db: Database) -> None:
    tm = manager(CONF.replace("physnet1:100:109,physnet2", "physnet1:100:109"))
    vlans = [create(db, tm)[0] for _ in range(10)]
    assert {(s.network_type, s.physical_network) for s in vlans} == {("vlan", "physnet1")}
    assert sorted(s.segmentation_id or 0 for s in vlans) == list(range(100, 110))
    vxlans = [create(db, tm)[0] for _ in range(5)]
    assert sorted((s.network_type, s.segmentation_id) for s in vxlans) == [
        ("vxlan", i) for i in range(1000, 1005)
    ]
    networks, segment_rows = count(db, Network), count(db, NetworkSegment)
    with pytest.raises(NoNetworkAvailable) as err:
        create(db, tm)
    assert err.value.status == 503
    # The failed create wrote nothing (its network row rolled back with it).
    assert (count(db, Network), count(db, NetworkSegment)) == (networks, segment_rows)
    assert count(db, SegmentAllocation) == 15

    delete_network(db, tm, vlans[3].network_id)
    again = create(db, tm)[0]
    assert (again.network_type, again.segmentation_id) == ("vlan", vlans[3].segmentation_id)


def test_external_and_local_project_networks(db: Database) -> None:
    tm = manager(CONF.replace("[ml2]\n", "[ml2]\nexternal_network_type = gre\n"))
    assert create(db, tm, external=True)[0].network_type == "gre"
    assert create(db, tm)[0].network_type == "vlan"
    assert create(db, manager(), external=True)[0].network_type == "vlan"

    local = manager("[ml2]\nproject_network_types = local\n")
    segs = [create(db, local)[0] for _ in range(3)]
    assert {(s.network_type, s.physical_network, s.segmentation_id) for s in segs} == {
        ("local", None, None)
    }
    assert count(db, SegmentAllocation) == 3  # the gre and the two vlans above
    # One query for many networks; unknown ids map to no segments.
    ids = [seg.network_id for seg in segs] + ["no-such-network"]
    got = run(db, lambda s: local.get_segments_for_networks(s, ids))
    assert got == {**{seg.network_id: [seg] for seg in segs}, "no-such-network": []}


# -- provider segments ----------------------------------------------------------------


def test_provider_and_multi_segment_networks(db: Database) -> None:
    tm = manager()
    segs = create(db, tm, [R("vxlan", None, 5000), R("vlan", "physnet1", 7),
                           R("flat", "physnet2"), R("vlan", "physnet2")])
    assert [(s.network_type, s.segment_index) for s in segs] == [
        ("vxlan", 0), ("vlan", 1), ("flat", 2), ("vlan", 3)]
    assert segs[3].segmentation_id is not None
    assert segs[2].segmentation_id is None
    stored = run(db, lambda s: tm.get_segments(s, segs[0].network_id))
    assert stored == segs
    net: dict[str, Any] = {"provider:network_type": None}
    tm.extend_network_dict(net, stored)
    assert net == {"segments": [s.as_provider_dict() for s in segs]}
    assert net["segments"][2] == {"provider:network_type": "flat",
                                  "provider:physical_network": "physnet2",
                                  "provider:segmentation_id": None}


def test_taken_provider_segments_are_409_and_nothing_leaks(db: Database) -> None:
    tm = manager()
    cases = [
        (R("vlan", "physnet1", 105), SegmentationIdInUse),
        (R("vxlan", None, 1002), TunnelIdInUse),
        (R("flat", "physnet1"), FlatNetworkInUse),
    ]

    def free() -> dict[str, int]:
        return run(db, lambda s: {t: free_count(tm, s, t) for t in ("vlan", "vxlan")})

    for taken, error in cases:
        create(db, tm, [taken])
        before = free()
        rows = count(db, SegmentAllocation)
        # The first two segments are reserved before the third one fails.
        with pytest.raises(error) as err:
            create(db, tm, [R("vlan", "physnet1"), R("vxlan"), taken])
        assert getattr(err.value, "status", None) == 409
        assert free() == before
        assert count(db, SegmentAllocation) == rows

    # Nothing is left behind even when the caller swallows the error and commits.
    def swallow(s: Session) -> None:
        net = add_network(s)
        with pytest.raises(SegmentationIdInUse):
            tm.create_network_segments(s, net, [R("vlan", "physnet1", 101),
                                                R("vlan", "physnet1", 105)])

    rows, segment_rows = count(db, SegmentAllocation), count(db, NetworkSegment)
    run(db, swallow)
    assert (count(db, SegmentAllocation), count(db, NetworkSegment)) == (rows, segment_rows)


def test_release_network_segments_frees_everything_once(db: Database) -> None:
    tm = manager()
    free = run(db, lambda s: free_count(tm, s, "vlan", "physnet1"))
    segs = create(db, tm, [R("vlan", "physnet1"), R("gre", None, 99999)])
    run(db, lambda s: tm.allocate_dynamic_segment(s, segs[0].network_id, "vlan", "physnet2"))
    assert run(db, lambda s: free_count(tm, s, "vlan", "physnet1")) == free - 1
    assert count(db, SegmentAllocation) == 3
    delete_network(db, tm, segs[0].network_id)
    assert count(db, SegmentAllocation) == 0
    assert count(db, NetworkSegment) == 0
    assert run(db, lambda s: free_count(tm, s, "vlan", "physnet1")) == free
    run(db, lambda s: tm.release_network_segments(s, segs[0].network_id))  # already gone

    # A raw delete (the cascade) leaves allocations behind; the reaper finds them.
    kept = create(db, tm, [R("vlan", "physnet1", 101)])[0]
    lost = create(db, tm, [R("vlan", "physnet1", 102)])[0]
    run(db, lambda s: s.execute(delete(Network).where(Network.id == lost.network_id)))
    assert count(db, NetworkSegment) == 1
    assert run(db, reap_orphaned_allocations) == 1
    assert run(db, lambda s: s.execute(select(SegmentAllocation.segment_id)).scalars().all()) == [
        kept.id]


# -- dynamic segments ------------------------------------------------------------------


def test_dynamic_segments_are_reused_and_released(db: Database) -> None:
    tm = manager()
    static = create(db, tm, [R("vxlan", None, 4242)])[0]
    net = static.network_id
    dyn = run(db, lambda s: tm.allocate_dynamic_segment(s, net, "vlan", "physnet1"))
    assert dyn.is_dynamic and dyn.physical_network == "physnet1"
    assert 100 <= (dyn.segmentation_id or 0) <= 109
    assert run(db, lambda s: tm.allocate_dynamic_segment(s, net, "vlan", "physnet1")) == dyn
    other = run(db, lambda s: tm.allocate_dynamic_segment(s, net, "vlan", "physnet2"))
    assert other.id != dyn.id
    # Static views do not show dynamic segments.
    assert run(db, lambda s: tm.get_segments(s, net)) == [static]
    assert len(run(db, lambda s: tm.get_segments(s, net, include_dynamic=True))) == 3
    net_dict: dict[str, Any] = {}
    tm.extend_network_dict(net_dict, run(db, lambda s: tm.get_segments(s, net,
                                                                        include_dynamic=True)))
    assert net_dict["provider:segmentation_id"] == 4242

    run(db, lambda s: tm.release_dynamic_segment(s, dyn.id))
    run(db, lambda s: tm.release_dynamic_segment(s, dyn.id))  # idempotent
    assert count(db, SegmentAllocation) == 2
    with pytest.raises(InvalidInput, match="not a dynamic segment"):
        run(db, lambda s: tm.release_dynamic_segment(s, static.id))
    with pytest.raises(NetworkNotFound):
        run(db, lambda s: tm.allocate_dynamic_segment(s, "missing", "vlan", "physnet1"))


# -- the segments API -----------------------------------------------------------------


def test_segments_api_create_update_delete(db: Database) -> None:
    tm = manager()
    first = create(db, tm, [R("vlan", "physnet1", 100)])[0]
    net = first.network_id
    body = run(db, lambda s: segments_api.create_segment(s, tm, {
        "network_id": net, "network_type": "vlan", "physical_network": "physnet2",
        "segmentation_id": 300, "name": "rack2", "description": "second rack",
    }))
    assert {k: body[k] for k in ("network_id", "network_type", "physical_network",
                                 "segmentation_id", "name", "description",
                                 "revision_number")} == {
        "network_id": net, "network_type": "vlan", "physical_network": "physnet2",
        "segmentation_id": 300, "name": "rack2", "description": "second rack",
        "revision_number": 0,
    }
    assert set(body) == set(segments_api.SEGMENT_FIELDS)
    assert body["created_at"].endswith("Z")
    with pytest.raises(SegmentationIdInUse):
        run(db, lambda s: segments_api.create_segment(s, tm, {
            "network_id": net, "network_type": "vlan", "physical_network": "physnet2",
            "segmentation_id": 300}))
    with pytest.raises(NetworkNotFound):
        run(db, lambda s: segments_api.create_segment(s, tm, {
            "network_id": "nope", "network_type": "local"}))
    listed = run(db, lambda s: segments_api.list_segments(s, network_ids=[net]))
    assert [(d["id"], d["segmentation_id"]) for d in listed] == [(first.id, 100),
                                                                  (body["id"], 300)]
    updated = run(db, lambda s: segments_api.update_segment(s, body["id"], {"name": "r2"}))
    assert (updated["name"], updated["revision_number"]) == ("r2", 1)
    with pytest.raises(InvalidInput, match="read-only"):
        run(db, lambda s: segments_api.update_segment(s, body["id"], {"segmentation_id": 5}))

    def with_subnet(s: Session) -> str:
        sub = Subnet(network_id=net, ip_version=4, cidr="10.0.0.0/24", segment_id=body["id"])
        s.add(sub)
        s.flush()
        return sub.id

    subnet_id = run(db, with_subnet)
    with pytest.raises(SegmentInUse, match="subnets"):
        run(db, lambda s: segments_api.delete_segment(s, tm, body["id"]))
    run(db, lambda s: s.delete(s.get(Subnet, subnet_id)))
    run(db, lambda s: segments_api.delete_segment(s, tm, body["id"]))
    with pytest.raises(SegmentNotFound):
        run(db, lambda s: segments_api.get_segment(s, body["id"]))
    with pytest.raises(SegmentInUse, match="last segment"):
        run(db, lambda s: segments_api.delete_segment(s, tm, first.id))
    assert count(db, SegmentAllocation) == 1


# -- MTU and the provider view ------------------------------------------------------------


def test_network_mtu_is_the_smallest_segment_mtu() -> None:
    tm = manager(CONF + "[DEFAULT]\nglobal_physnet_mtu = 9000\n"
                 "[ml2]\npath_mtu = 1500\nphysical_network_mtus = physnet1:1400\n")

    def seg(t: str, physnet: str | None = None) -> Segment:
        return Segment("s", "n", t, physnet, None)

    assert tm.network_mtu([seg("vlan", "physnet2")]) == 9000
    assert tm.network_mtu([seg("vlan", "physnet1")]) == 1400
    assert tm.network_mtu([seg("vxlan")]) == 1500 - 20 - 30
    assert tm.network_mtu([seg("gre")]) == 1500 - 20 - 22
    assert tm.network_mtu([seg("vlan", "physnet2"), seg("geneve")]) == 1450
    assert tm.network_mtu([seg("local")]) == 9000
    assert tm.network_mtu([]) == 9000
    assert tm.network_mtu([seg("unknown")]) == 0
    v6 = manager(CONF + "[ml2]\noverlay_ip_version = 6\n")
    assert v6.network_mtu([seg("vxlan")]) == 1500 - 40 - 30


def test_extend_network_dict_single_and_none() -> None:
    tm = manager()
    net: dict[str, Any] = {"segments": "stale"}
    tm.extend_network_dict(net, [Segment("s", "n", "vlan", "physnet1", 5)])
    assert net == {"provider:network_type": "vlan", "provider:physical_network": "physnet1",
                   "provider:segmentation_id": 5}
    empty: dict[str, Any] = {}
    tm.extend_network_dict(empty, [])
    assert empty == dict.fromkeys(("provider:network_type", "provider:physical_network",
                                   "provider:segmentation_id"))


# -- concurrency ------------------------------------------------------------------------------

RACE_CONF = """
[ml2]
project_network_types = vlan,vxlan
[ml2_type_vlan]
network_vlan_ranges = physnet1:1:12
[ml2_type_vxlan]
vni_ranges = 1:12
"""
POOL = 24


def _churn(db: Database, tm: TypeManager, rounds: int) -> dict[str, int]:
    """Create project and provider networks, deleting some; counts what happened."""
    n = dict.fromkeys(("project", "deleted", "unavailable", "provider", "in_use"), 0)
    for i in range(rounds):
        if i % 4 == 3:
            # Provider requests for ids every worker wants: one wins each.
            try:
                create(db, tm, [R("vlan", "physnet1", 1000 + i)])
                n["provider"] += 1
            except SegmentationIdInUse:
                n["in_use"] += 1
            continue
        try:
            segs = create(db, tm)
        except NoNetworkAvailable:
            n["unavailable"] += 1
            continue
        n["project"] += 1
        if i % 3 == 0:
            delete_network(db, tm, segs[0].network_id)
            n["deleted"] += 1
    return n


def _check_totals(db: Database, results: list[dict[str, int]], rounds: int) -> None:
    """The 503s are exactly the project creates that found both pools full."""
    _check_ledger(db)
    tm = manager(RACE_CONF)
    total = {k: sum(r[k] for r in results) for k in results[0]}
    project_live = run(db, lambda s: s.execute(
        select(func.count()).select_from(NetworkSegment)
        .where(NetworkSegment.segmentation_id <= 12)).scalar_one())
    provider_live = run(db, lambda s: s.execute(
        select(func.count()).select_from(NetworkSegment)
        .where(NetworkSegment.segmentation_id > 12)).scalar_one())
    provider_attempts = len(results) * len(range(3, rounds, 4))
    assert provider_live == total["provider"] == len(range(3, rounds, 4))
    assert total["in_use"] == provider_attempts - provider_live
    assert project_live == total["project"] - total["deleted"]
    assert total["project"] + total["unavailable"] == len(results) * rounds - provider_attempts
    # The workloads want more than the pools hold, so they must end full.
    assert total["unavailable"] > 0
    assert project_live == POOL
    assert run(db, lambda s: free_count(tm, s, "vlan") + free_count(tm, s, "vxlan")) == 0


def _check_ledger(db: Database) -> None:
    """Every allocation belongs to exactly one live segment and vice versa."""
    def fn(s: Session) -> None:
        allocs = s.execute(select(SegmentAllocation.network_type,
                                  SegmentAllocation.physical_network,
                                  SegmentAllocation.segmentation_id,
                                  SegmentAllocation.segment_id)).all()
        segs = s.execute(select(NetworkSegment.id, NetworkSegment.network_type,
                                NetworkSegment.physical_network,
                                NetworkSegment.segmentation_id)).all()
        by_id = {seg.id: seg for seg in segs}
        assert len(by_id) == len(segs) == len(allocs)
        for a in allocs:
            seg = by_id[a.segment_id]
            assert (seg.network_type, seg.physical_network or "", seg.segmentation_id) == (
                a.network_type, a.physical_network, a.segmentation_id)
        keys = [(seg.network_type, seg.physical_network, seg.segmentation_id) for seg in segs]
        assert len(keys) == len(set(keys))

    run(db, fn)


def test_threads_churning_networks_never_share_an_id(db: Database) -> None:
    tm = manager(RACE_CONF)
    results: list[dict[str, int]] = []
    threads = [threading.Thread(target=lambda: results.append(_churn(db, tm, 16)))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6
    _check_totals(db, results, 16)


def _process_worker(url: str, rounds: int, out: Any) -> None:
    db = Database(url)
    try:
        out.put(_churn(db, manager(RACE_CONF), rounds))
    finally:
        db.dispose()


def test_server_processes_churning_networks_never_share_an_id(db_url: str) -> None:
    """Four processes (as four API servers would) on one database."""
    # fork starts children in milliseconds and exercises the reseeding of the
    # random module that keeps forked servers from probing the same ids; it
    # is only safe while no other thread could hold a lock, else spawn.
    method = "fork" if threading.active_count() == 1 else "spawn"
    ctx = multiprocessing.get_context(method)
    out = ctx.Queue()
    procs = [ctx.Process(target=_process_worker, args=(db_url, 14, out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    db = Database(db_url)
    try:
        _check_totals(db, results, 14)
    finally:
        db.dispose()
