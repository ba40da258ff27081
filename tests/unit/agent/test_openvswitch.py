"""OvsBackend's shell without a real OVS: replica -> OvsObserved, event passes, transactions."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from netplex.agent import openvswitch
from netplex.agent.model import FdbEntry, HostDesired, LinkState, LinuxObserved, OvsObserved
from netplex.agent.openvswitch import OvsBackend, _numbered_ports
from netplex.agent.ops import (
    AddFdb,
    AddFlows,
    AddOvsPort,
    AddPatchPorts,
    AddVxlan,
    DelFlows,
    DelOvsPort,
    EnsureOvsBridge,
    EnsureTag,
    Flow,
    Op,
)
from netplex.agent.ovs_plan import OvsConfig
from netplex.agent.ovs_txn import OvsdbTxn, advance_flows, ovs_state_from_replica
from netplex.agent.reconcile import Baseline
from netplex.linux.ovsdb import OvsdbError, OvsdbUnavailable, Replica, TransactionError

BR = "b0000000-0000-0000-0000-000000000000"
P_TAP, P_INT, P_VX = ("p1000000-0000-0000-0000-000000000000", "p2000000-0000-0000-0000-000000000000",
                      "p3000000-0000-0000-0000-000000000000")
I_TAP, I_INT, I_VX = ("i1000000-0000-0000-0000-000000000000", "i2000000-0000-0000-0000-000000000000",
                      "i3000000-0000-0000-0000-000000000000")
P_ORPHAN = "p9000000-0000-0000-0000-000000000000"


def replica(version: int = 1) -> Replica:
    """br-int with a VM port, its own internal port and a VXLAN port; plus an orphan Port row."""
    return Replica({
        "Open_vSwitch": {"o": {"bridges": BR, "next_cfg": 4, "cur_cfg": 4}},
        "Bridge": {BR: {"name": "br-int", "ports": [P_TAP, P_INT, P_VX], "datapath_type": "netdev",
                        "fail_mode": "secure"}},
        "Port": {
            P_TAP: {"name": "tapabc", "tag": 3, "other_config": {"netplex-net-id": "net-a"},
                    "interfaces": I_TAP},
            P_INT: {"name": "br-int", "tag": [], "other_config": {}, "interfaces": I_INT},
            P_VX: {"name": "vxlan-5", "tag": 3, "other_config": {"netplex-net-id": "net-a"},
                   "interfaces": I_VX},
            P_ORPHAN: {"name": "ghost", "tag": [], "other_config": {}, "interfaces": []},
        },
        "Interface": {
            I_TAP: {"name": "tapabc", "ofport": 7, "external_ids": {"iface-id": "port-1"},
                    "type": "", "options": {}},
            I_INT: {"name": "br-int", "ofport": 65534, "external_ids": {}, "type": "internal",
                    "options": {}},
            I_VX: {"name": "vxlan-5", "ofport": [], "external_ids": {}, "type": "", "options": {}},
        },
    }, version)


def test_replica_becomes_bridges_and_ports() -> None:
    bridges, ports = ovs_state_from_replica(replica())
    assert bridges["br-int"].datapath_type == "netdev" and bridges["br-int"].fail_mode == "secure"
    assert set(ports) == {"tapabc", "br-int", "vxlan-5"}  # the orphan Port row is not on a bridge
    tap = ports["tapabc"]
    assert (tap.bridge, tap.tag, tap.net_id, tap.iface_id, tap.ofport) == ("br-int", 3, "net-a",
                                                                           "port-1", 7)
    assert ports["br-int"].tag is None and ports["br-int"].type == "internal"
    assert ports["vxlan-5"].ofport is None  # [] = not numbered (yet)


def test_advance_flows_plays_our_own_flow_ops() -> None:
    keep, gone = Flow("br-int", 0, "", "NORMAL"), Flow("br-int", 10, "in_port=7", "drop")
    new = Flow("br-phys1", 4, "in_port=phy-br-phys1,dl_vlan=3", "strip_vlan,NORMAL")
    flows = {"br-int": frozenset({keep.cookie, gone.cookie})}
    ops: list[Op] = [DelFlows("br-int", (gone.cookie,)), AddFlows("br-phys1", (new,)),
                     EnsureTag("tapabc", 3, "net-a")]
    assert advance_flows(flows, ops) == {"br-int": frozenset({keep.cookie}),
                                         "br-phys1": frozenset({new.cookie})}
    assert advance_flows(flows, []) == flows


def test_numbered_ports_only_when_every_name_is_known() -> None:
    lines = ["flow add cookie=0x1,priority=3,in_port=int-br-phys1,dl_vlan=100 actions=NORMAL",
             "flow add cookie=0x2,priority=10,in_port=7 actions=drop",
             "flow delete cookie=0x3/-1"]
    assert _numbered_ports(lines, {"int-br-phys1": 2}) == [
        "flow add cookie=0x1,priority=3,in_port=2,dl_vlan=100 actions=NORMAL", *lines[1:]]
    assert _numbered_ports(lines, {}) is None


# --- transactions built from the replica ------------------------------------------


def test_txn_names_rows_by_uuid_and_sets_single_map_keys() -> None:
    txn = OvsdbTxn.build(replica(), [EnsureTag("tapabc", 5, "net-b"), EnsureTag("tapabc", 4095, None)])
    assert not txn.refused and txn.owner == [0, 0, 1, 1] and all(txn.must_match)
    update, keys, dead, dead_keys = txn.operations
    assert dead["row"] == {"tag": 4095, "protected": True}
    assert update == {"op": "update", "table": "Port", "where": [["_uuid", "==", ["uuid", P_TAP]]],
                      "row": {"tag": 5, "protected": False}}
    # A map "insert" keeps an existing key's value: delete the key first.
    assert keys["mutations"] == [["other_config", "delete", ["set", ["netplex-net-id"]]],
                                 ["other_config", "insert", ["map", [["netplex-net-id", "net-b"]]]]]
    assert dead_keys["mutations"] == [["other_config", "delete", ["set", ["netplex-net-id"]]]]


def test_txn_builds_on_its_own_earlier_operations() -> None:
    ops: list[Op] = [EnsureOvsBridge("br-x", "netdev", "secure"), AddOvsPort("br-x", "vxlan-9", 2, "n"),
                     DelOvsPort("br-int", "vxlan-5")]
    txn = OvsdbTxn.build(Replica({"Bridge": replica().rows("Bridge"), "Port": replica().rows("Port"),
                                  "Interface": replica().rows("Interface")}), ops)
    assert not txn.refused
    tables = [(o["op"], o["table"]) for o in txn.operations]
    assert tables == [("insert", "Interface"), ("insert", "Port"), ("insert", "Bridge"),
                      ("mutate", "Open_vSwitch"),
                      ("insert", "Interface"), ("insert", "Port"), ("mutate", "Bridge"),
                      ("mutate", "Bridge")]
    bridge = txn.operations[2]
    assert bridge["row"]["fail_mode"] == "secure" and bridge["row"]["datapath_type"] == "netdev"
    # The new port goes on the bridge inserted two operations before (by its uuid-name).
    assert txn.operations[6]["where"] == [["_uuid", "==", ["named-uuid", bridge["uuid-name"]]]]
    assert txn.operations[5]["row"]["tag"] == 2
    assert txn.operations[7]["mutations"] == [["ports", "delete", ["set", [["uuid", P_VX]]]]]
    assert txn.owner == [0, 0, 0, 0, 1, 1, 1, 2]


def with_phys_bridge() -> Replica:
    rep = replica()
    tables = dict(rep.tables)
    tables["Bridge"] = {**rep.rows("Bridge"), "bp": {"name": "br-phys1", "ports": [],
                                                     "datapath_type": "netdev", "fail_mode": []}}
    return Replica(tables)


def test_txn_refuses_what_ovs_vsctl_would_and_skips_what_is_already_gone() -> None:
    ops: list[Op] = [EnsureTag("nope", 1, "n"), AddOvsPort("br-nope", "x", 1, "n"),
                     AddOvsPort("br-phys1", "tapabc", 1, "n"), DelOvsPort("br-int", "gone"),
                     DelOvsPort("br-phys1", "tapabc"), EnsureOvsBridge("br-int", "netdev", "secure")]
    txn = OvsdbTxn.build(with_phys_bridge(), ops)
    assert set(txn.refused) == {0, 1, 2, 4}
    assert "no port named nope" in txn.refused[0] and "no bridge named br-nope" in txn.refused[1]
    assert "already exists on bridge br-int" in txn.refused[2]
    assert "does not have a port tapabc" in txn.refused[4]
    # del-port of a port that is not there is a no-op (--if-exists); the bridge exists: update.
    assert txn.owner == [5] and txn.operations[0]["op"] == "update"


def test_patch_ports_set_type_and_peer() -> None:
    txn = OvsdbTxn.build(with_phys_bridge(), [AddPatchPorts("br-int", "int-br-phys1", "br-phys1",
                                                         "phy-br-phys1")])
    ifaces = [o["row"] for o in txn.operations if o["op"] == "insert" and o["table"] == "Interface"]
    assert ifaces == [{"name": "int-br-phys1", "type": "patch",
                       "options": ["map", [["peer", "phy-br-phys1"]]]},
                      {"name": "phy-br-phys1", "type": "patch",
                       "options": ["map", [["peer", "int-br-phys1"]]]}]


# --- the backend with a fake OVSDB connection ---------------------------------------


class FakeDb:
    """Stands in for OvsdbClient: a fixed replica; ``answer`` decides each transact."""

    def __init__(self, rep: Replica,
                 answer: Callable[[Sequence[Mapping[str, Any]]], list[Any]] | None = None) -> None:
        self.rep = rep
        self.connections = 1
        self.transactions: list[list[Mapping[str, Any]]] = []
        self.answer = answer or (lambda ops: [{"count": 1} for _ in ops[:-1]]
                                 + [{"rows": [{"next_cfg": 5}]}])
        self.cur_cfg_reached = True
        self.echoes = 0

    def replica(self, timeout: float | None = None) -> Replica:
        return self.rep

    def snapshot(self, timeout: float | None = None) -> Replica:
        self.echoes += 1
        return self.rep

    def transact(self, ops: Sequence[Mapping[str, Any]], timeout: float | None = None) -> list[Any]:
        self.transactions.append(list(ops))
        return self.answer(ops)

    def wait_for(self, predicate: Callable[[Replica], bool], timeout: float | None = None) -> Replica:
        if not self.cur_cfg_reached:
            raise OvsdbError("timed out after 10s")
        return self.rep

    def close(self) -> None:
        pass


def backend_with(db: FakeDb) -> OvsBackend:
    b = OvsBackend(OvsConfig(local_ip="10.99.0.1"), "unix:/nonexistent/db.sock", Path("/nonexistent"))
    b._db = db  # type: ignore[assignment]
    return b


def test_event_pass_takes_flows_and_vxlan_from_the_baseline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_io(*args: object, **kw: object) -> None:
        raise AssertionError("an event pass must not dump flows or list links")

    monkeypatch.setattr(openvswitch.ovs, "dump_flow_cookies", no_io)
    monkeypatch.setattr(openvswitch, "observe_linux", no_io)
    normal = Flow("br-int", 0, "", "NORMAL")
    vx = LinkState(name="vxlan-5", index=9, kind="vxlan", up=True)
    base = OvsObserved(flows={"br-int": frozenset({normal.cookie})},
                       linux=LinuxObserved(links={"vxlan-5": vx}, fdb={"vxlan-5": frozenset()}))
    drop = Flow("br-int", 10, "in_port=7", "drop")
    applied: tuple[Op, ...] = (AddFlows("br-int", (drop,)), AddVxlan("vxlan-6", 6, "10.99.0.1", 4789, 1450),
                               AddFdb("vxlan-5", "00:00:00:00:00:00", "10.99.0.2"))
    got = backend_with(FakeDb(replica())).observe_since(Baseline(base, applied), HostDesired("h1"), ())
    assert got.flows == {"br-int": frozenset({normal.cookie, drop.cookie})}
    assert set(got.linux.links) == {"vxlan-5", "vxlan-6"}
    assert got.linux.fdb["vxlan-5"] == {FdbEntry("00:00:00:00:00:00", "10.99.0.2")}
    assert got.ports["tapabc"].ofport == 7  # OVSDB itself from the replica


def test_event_pass_dumps_a_managed_bridge_the_baseline_never_saw(monkeypatch: pytest.MonkeyPatch) -> None:
    dumped: list[str] = []

    def dump(mgmt: str, prefix: int, mask: int) -> frozenset[int]:
        dumped.append(mgmt)
        return frozenset({42})

    monkeypatch.setattr(openvswitch.ovs, "dump_flow_cookies", dump)
    got = backend_with(FakeDb(replica())).observe_since(Baseline(OvsObserved()), HostDesired("h1"), ())
    assert dumped == ["unix:/nonexistent/br-int.mgmt"] and got.flows == {"br-int": frozenset({42})}


def test_port_changes_bump_next_cfg_and_wait_for_vswitchd() -> None:
    db = FakeDb(replica())
    add = AddOvsPort("br-int", "vxlan-9", 7, "net-b")
    res = backend_with(db).apply([add])
    assert not res.errors and res.applied == 1
    (ops,) = db.transactions
    assert ops[-2] == {"op": "mutate", "table": "Open_vSwitch", "where": [],
                       "mutations": [["next_cfg", "+=", 1]]}
    db.cur_cfg_reached = False
    res = backend_with(db).apply([add, EnsureTag("nope", 1, None)])
    assert [op for op, _ in res.errors] == [add, EnsureTag("nope", 1, None)]
    assert "ovs-vswitchd did not apply" in res.errors[0][1]


def test_an_operation_ovsdb_names_is_dropped_and_the_rest_committed() -> None:
    def answer(ops: Sequence[Mapping[str, Any]]) -> list[Any]:
        for i, o in enumerate(ops):
            if o.get("row", {}).get("tag") == 13:
                raise TransactionError(i, "constraint violation", "tag 13 is unlucky")
        return [{"count": 1} for _ in ops[:-1]] + [{"rows": [{"next_cfg": 5}]}]

    db = FakeDb(replica(), answer)
    ops: list[Op] = [EnsureTag("tapabc", 5, "n"), EnsureTag("vxlan-5", 13, "n"), EnsureTag("br-int", 6, "n")]
    res = backend_with(db).apply(ops)
    assert [op for op, _ in res.errors] == [ops[1]] and "unlucky" in res.errors[0][1]
    assert len(db.transactions) == 2 and res.applied == 2


def test_a_failed_commit_is_bisected() -> None:
    def answer(ops: Sequence[Mapping[str, Any]]) -> list[Any]:
        if any(o.get("row", {}).get("tag") == 13 for o in ops):
            raise TransactionError(None, "referential integrity violation", "")
        return [{"count": 1} for _ in ops[:-1]] + [{"rows": [{"next_cfg": 5}]}]

    db = FakeDb(replica(), answer)
    ops: list[Op] = [EnsureTag("tapabc", 5, "n"), EnsureTag("br-int", 6, "n"),
                     EnsureTag("vxlan-5", 13, "n"), EnsureTag("tapabc", 7, "n")]
    res = backend_with(db).apply(ops)
    assert [op for op, _ in res.errors] == [ops[2]] and res.applied == 3


def test_a_row_gone_meanwhile_fails_only_its_op() -> None:
    def answer(ops: Sequence[Mapping[str, Any]]) -> list[Any]:
        return ([{"count": 0 if o.get("row", {}).get("tag") == 6 else 1} for o in ops[:-1]]
                + [{"rows": [{"next_cfg": 5}]}])

    ops: list[Op] = [EnsureTag("tapabc", 5, "n"), EnsureTag("br-int", 6, "n")]
    res = backend_with(FakeDb(replica(), answer)).apply(ops)
    assert [op for op, _ in res.errors] == [ops[1]] and "gone" in res.errors[0][1]


def test_no_connection_fails_every_op_without_planning_from_nothing() -> None:
    class Down(FakeDb):
        def replica(self, timeout: float | None = None) -> Replica:
            raise OvsdbUnavailable("no OVSDB connection")

        snapshot = replica

    b = backend_with(Down(Replica()))
    with pytest.raises(OvsdbUnavailable):
        b.observe()
    res = b.apply([EnsureTag("tapabc", 5, "n"), EnsureTag("br-int", 6, "n")])
    assert len(res.errors) == 2 and res.applied == 0


def test_building_a_backend_opens_no_connection() -> None:
    b = OvsBackend(OvsConfig(), "unix:/nonexistent/db.sock", Path("/nonexistent"))
    assert b._db is None
    b.close()  # idempotent, also before first use


def test_conversion_cache_reuses_unchanged_ports_and_rebuilds_changed_ones() -> None:
    cache: openvswitch.PortCache = {}
    first = ovs_state_from_replica(replica(), cache)
    assert set(cache) == {P_TAP, P_INT, P_VX}
    again = ovs_state_from_replica(replica(), cache)  # equal rows, new objects: rebuilt, equal
    assert again == first
    rep = replica(2)
    same = ovs_state_from_replica(rep, cache)
    assert same[1]["tapabc"] is cache[P_TAP][3]
    tables = {t: dict(rows) for t, rows in rep.tables.items()}
    tables["Port"][P_TAP] = {**tables["Port"][P_TAP], "tag": 9}  # an update replaces the row
    _, ports = ovs_state_from_replica(Replica(tables, 3), cache)
    assert ports["tapabc"].tag == 9 and ports["vxlan-5"] is same[1]["vxlan-5"]
    del tables["Port"][P_VX]
    _, ports = ovs_state_from_replica(Replica(tables, 4), cache)
    assert "vxlan-5" not in ports and P_VX not in cache


def test_only_passes_for_device_news_wait_for_an_echo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Feed-driven event passes read the replica as it is; a pass for a device the
    monitor named first makes sure the replica has seen what was just committed."""
    monkeypatch.setattr(openvswitch.ovs, "dump_flow_cookies", lambda *a: frozenset())
    db = FakeDb(replica())
    backend = backend_with(db)
    base = Baseline(OvsObserved(flows={"br-int": frozenset()}))
    backend.observe_since(base, HostDesired("h1"), ())
    assert db.echoes == 0
    backend.observe_since(base, HostDesired("h1"), ("tapabc",))
    assert db.echoes == 1
