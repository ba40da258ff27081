"""Open vSwitch backend, OVSDB side: the replica read into observed state, and plans turned into one transaction.

Pure functions of the replica (:mod:`netplex.linux.ovsdb`); :mod:`netplex.agent.openvswitch` sends them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from netplex.agent.kernel import is_kernel_op
from netplex.agent.model import (
    OvsBridgeState,
    OvsPortState,
)
from netplex.agent.ops import (
    AddFlows,
    AddOvsPort,
    AddPatchPorts,
    DelFlows,
    DelOvsPort,
    EnsureOvsBridge,
    EnsureTag,
    Op,
)
from netplex.agent.ovs_plan import DEAD_VLAN
from netplex.linux.ovsdb import Replica

_NET_ID_KEY = "netplex-net-id"
#: Operations that go to OVSDB (the rest are kernel ops or flows).
_OVSDB_OPS = (EnsureOvsBridge, AddPatchPorts, AddOvsPort, DelOvsPort, EnsureTag)

#: The OVSDB tables and columns the backend reads (all it monitors).
OVSDB_COLUMNS: Mapping[str, Sequence[str]] = {
    "Open_vSwitch": ["bridges", "next_cfg", "cur_cfg"],
    "Bridge": ["name", "ports", "datapath_type", "fail_mode"],
    "Port": ["name", "tag", "other_config", "interfaces", "protected"],
    "Interface": ["name", "ofport", "external_ids", "type", "options"],
}


#: Port uuid -> (its row, its first Interface row, its bridge, what they made): lets a
#: conversion reuse the states of rows that did not change (rows are replaced, never
#: mutated, so identity says "unchanged").
PortCache = dict[str, tuple[Mapping[str, Any], Mapping[str, Any], str, OvsPortState]]

_NO_IFACE: Mapping[str, Any] = {}


def ovs_state_from_replica(replica: Replica, cache: PortCache | None = None,
                           ) -> tuple[dict[str, OvsBridgeState], dict[str, OvsPortState]]:
    """Bridges and ports (each with its first Interface) from the monitored rows.

    A Port no bridge refers to is left out (OVSDB removes it at the next commit).
    ``cache`` (updated in place) skips rebuilding ports whose rows are the same
    objects as last time: on a host with 1,000 ports most passes change a few.
    """
    bridges: dict[str, OvsBridgeState] = {}
    port_bridge: dict[str, str] = {}
    for b in replica.rows("Bridge").values():
        name = b.get("name", "")
        bridges[name] = OvsBridgeState(name=name, datapath_type=ovsdb_scalar(b.get("datapath_type")) or "",
                                       fail_mode=ovsdb_scalar(b.get("fail_mode")) or "")
        for puuid in _as_list(b.get("ports", [])):
            port_bridge[puuid] = name
    ifaces = replica.rows("Interface")
    ports: dict[str, OvsPortState] = {}
    fresh: PortCache = {}
    for puuid, p in replica.rows("Port").items():
        bridge = port_bridge.get(puuid)
        if bridge is None:
            continue
        iface = next((ifaces[u] for u in _as_list(p.get("interfaces", [])) if u in ifaces), _NO_IFACE)
        hit = cache.get(puuid) if cache is not None else None
        if hit is not None and hit[0] is p and hit[1] is iface and hit[2] == bridge:
            state = hit[3]
        else:
            ofport = ovsdb_scalar(iface.get("ofport"))
            other_config = p.get("other_config") or {}
            state = OvsPortState(
                name=p["name"], bridge=bridge, tag=ovsdb_scalar(p.get("tag")),
                net_id=other_config.get(_NET_ID_KEY) if isinstance(other_config, dict) else None,
                iface_id=(iface.get("external_ids") or {}).get("iface-id"),
                ofport=ofport if isinstance(ofport, int) else None,
                type=iface.get("type") or "",
                peer=(iface.get("options") or {}).get("peer"),
                protected=ovsdb_scalar(p.get("protected")) is True,
            )
        ports[state.name] = state
        fresh[puuid] = (p, iface, bridge, state)
    if cache is not None:
        cache.clear()
        cache.update(fresh)
    return bridges, ports


def advance_flows(flows: Mapping[str, frozenset[int]],
                  ops: Iterable[Op]) -> dict[str, frozenset[int]]:
    """Pure: our cookies per bridge once ``ops`` (AddFlows/DelFlows) applied without error."""
    out = {b: set(c) for b, c in flows.items()}
    for op in ops:
        if isinstance(op, AddFlows):
            out.setdefault(op.bridge, set()).update(f.cookie for f in op.flows)
        elif isinstance(op, DelFlows):
            out.setdefault(op.bridge, set()).difference_update(op.cookies)
    return {b: frozenset(c) for b, c in out.items()}


# --- OVSDB transactions (built purely from the replica) ----------------------------


class OpRefused(ValueError):
    """An operation that cannot be expressed against the replica (no such bridge/port)."""


@dataclass
class OvsdbTxn:
    """The RFC 7047 operations of a list of :class:`Op`, built against a replica.

    ``owner[i]`` is the index (in the caller's list) of the op that produced
    ``operations[i]``; ``must_match[i]`` says the operation names an existing
    row by uuid, so a result ``count`` of 0 means the row went away after the
    replica was read (that op did not happen, the others did).
    """

    operations: list[dict[str, Any]] = field(default_factory=list)
    owner: list[int] = field(default_factory=list)
    must_match: list[bool] = field(default_factory=list)
    #: Ops refused while building (never sent): index -> reason.
    refused: dict[int, str] = field(default_factory=dict)

    @classmethod
    def build(cls, replica: Replica, ops: Sequence[Op]) -> OvsdbTxn:
        txn = cls()
        view = _TxnView(replica)
        for i, op in enumerate(ops):
            before = len(txn.operations)
            try:
                for operation, must in view.operations(op):
                    txn.operations.append(operation)
                    txn.owner.append(i)
                    txn.must_match.append(must)
            except OpRefused as exc:
                del txn.operations[before:], txn.owner[before:], txn.must_match[before:]
                txn.refused[i] = str(exc)
        return txn


class _TxnView:
    """Names -> rows as the transaction being built leaves them (replica + earlier ops)."""

    def __init__(self, replica: Replica) -> None:
        self.bridges: dict[str, list[str]] = {
            b["name"]: ["uuid", u] for u, b in replica.rows("Bridge").items()}
        bridge_of = {p: b["name"] for b in replica.rows("Bridge").values()
                     for p in _as_list(b.get("ports", []))}
        self.ports: dict[str, tuple[list[str], str]] = {
            p["name"]: (["uuid", u], bridge_of[u])
            for u, p in replica.rows("Port").items() if u in bridge_of}
        self.ifaces: dict[str, list[str]] = {
            i["name"]: ["uuid", u] for u, i in replica.rows("Interface").items()}
        self._n = itertools.count()

    def _named(self, kind: str) -> tuple[str, list[str]]:
        name = f"{kind}{next(self._n)}"
        return name, ["named-uuid", name]

    def operations(self, op: Op) -> list[tuple[dict[str, Any], bool]]:
        match op:
            case EnsureOvsBridge(name, dp, fail_mode):
                return self._ensure_bridge(name, dp, fail_mode)
            case AddPatchPorts(intbr, int_p, physbr, phy_p):
                return (self._ensure_port(intbr, int_p, {"type": "patch"}, {"peer": phy_p}, {})
                        + self._ensure_port(physbr, phy_p, {"type": "patch"}, {"peer": int_p}, {}))
            case AddOvsPort(bridge, name, tag, net_id):
                return self._ensure_port(bridge, name, {}, {}, {"tag": tag},
                                         {_NET_ID_KEY: net_id})
            case DelOvsPort(bridge, name):
                return self._del_port(bridge, name)
            case EnsureTag(name, tag, net_id):
                have = self.ports.get(name)
                if have is None:
                    raise OpRefused(f"no port named {name}")
                # Dead (4095) ports are protected, live ones not: see the module docstring.
                return self._set_port(have[0], {"tag": tag, "protected": tag == DEAD_VLAN},
                                      {_NET_ID_KEY: net_id})
        raise TypeError(f"not an OVSDB operation: {op}")

    def _ensure_bridge(self, name: str, dp: str, fail_mode: str) -> list[tuple[dict[str, Any], bool]]:
        ref = self.bridges.get(name)
        row = {"datapath_type": dp, "fail_mode": fail_mode}
        if ref is not None:
            return [(_update("Bridge", ref, row), True)]
        # What ovs-vsctl add-br does: the bridge, its internal port and interface.
        iname, iref = self._named("iface")
        pname, pref = self._named("port")
        bname, bref = self._named("bridge")
        self.bridges[name] = bref
        self.ports[name] = (pref, name)
        self.ifaces[name] = iref
        return [
            ({"op": "insert", "table": "Interface", "uuid-name": iname,
              "row": {"name": name, "type": "internal"}}, False),
            ({"op": "insert", "table": "Port", "uuid-name": pname,
              "row": {"name": name, "interfaces": iref}}, False),
            ({"op": "insert", "table": "Bridge", "uuid-name": bname,
              "row": {"name": name, "ports": pref, **row}}, False),
            ({"op": "mutate", "table": "Open_vSwitch", "where": [],
              "mutations": [["bridges", "insert", ["set", [bref]]]]}, False),
        ]

    def _ensure_port(self, bridge: str, name: str, iface_row: dict[str, Any],
                     iface_options: dict[str, str], port_row: dict[str, Any],
                     port_other: Mapping[str, str | None] | None = None,
                     ) -> list[tuple[dict[str, Any], bool]]:
        """``--may-exist add-port bridge name`` plus setting columns/keys of the Port and Interface."""
        bref = self.bridges.get(bridge)
        if bref is None:
            raise OpRefused(f"no bridge named {bridge}")
        have = self.ports.get(name)
        if have is not None:
            if have[1] != bridge:
                raise OpRefused(f"port {name} already exists on bridge {have[1]}")
            out = self._set_port(have[0], port_row, port_other or {})
            iref = self.ifaces.get(name)
            if iref is not None and (iface_row or iface_options):
                if iface_row:
                    out.append((_update("Interface", iref, iface_row), True))
                out += _set_keys("Interface", iref, "options", iface_options)
            return out
        iname, iref = self._named("iface")
        pname, pref = self._named("port")
        self.ports[name] = (pref, bridge)
        self.ifaces[name] = iref
        irow = {"name": name, **iface_row}
        if iface_options:
            irow["options"] = ["map", [list(kv) for kv in sorted(iface_options.items())]]
        prow: dict[str, Any] = {"name": name, "interfaces": iref, **port_row}
        keys = {k: v for k, v in (port_other or {}).items() if v is not None}
        if keys:
            prow["other_config"] = ["map", [list(kv) for kv in sorted(keys.items())]]
        return [
            ({"op": "insert", "table": "Interface", "uuid-name": iname, "row": irow}, False),
            ({"op": "insert", "table": "Port", "uuid-name": pname, "row": prow}, False),
            ({"op": "mutate", "table": "Bridge", "where": _where(bref),
              "mutations": [["ports", "insert", ["set", [pref]]]]}, True),
        ]

    def _set_port(self, pref: list[str], row: dict[str, Any],
                  keys: Mapping[str, str | None]) -> list[tuple[dict[str, Any], bool]]:
        out = [(_update("Port", pref, row), True)] if row else []
        return out + _set_keys("Port", pref, "other_config", keys)

    def _del_port(self, bridge: str, name: str) -> list[tuple[dict[str, Any], bool]]:
        """``--if-exists del-port bridge name``: the Port and its Interface go with the reference."""
        have = self.ports.get(name)
        if have is None:
            return []
        if have[1] != bridge:
            raise OpRefused(f"bridge {bridge} does not have a port {name}")
        bref = self.bridges[bridge]
        del self.ports[name]
        self.ifaces.pop(name, None)
        return [({"op": "mutate", "table": "Bridge", "where": _where(bref),
                  "mutations": [["ports", "delete", ["set", [have[0]]]]]}, True)]


def _where(ref: list[str]) -> list[Any]:
    return [["_uuid", "==", ref]]


def _update(table: str, ref: list[str], row: Mapping[str, Any]) -> dict[str, Any]:
    return {"op": "update", "table": table, "where": _where(ref), "row": dict(row)}


def _set_keys(table: str, ref: list[str], column: str,
              keys: Mapping[str, str | None]) -> list[tuple[dict[str, Any], bool]]:
    """Set (or, for None, remove) single keys of a map column, leaving the others alone.

    A map "insert" mutation keeps an existing key's value, hence delete first.
    """
    if not keys:
        return []
    mutations: list[Any] = [[column, "delete", ["set", sorted(keys)]]]
    put = sorted((k, v) for k, v in keys.items() if v is not None)
    if put:
        mutations.append([column, "insert", ["map", [list(kv) for kv in put]]])
    return [({"op": "mutate", "table": table, "where": _where(ref), "mutations": mutations}, True)]


# --- the imperative shell -------------------------------------------------------


def cur_cfg(replica: Replica) -> int:
    row = next(iter(replica.rows("Open_vSwitch").values()), None)
    cur = ovsdb_scalar(row.get("cur_cfg")) if row else None
    return cur if isinstance(cur, int) else 0


def executor_of(op: Op) -> str:
    """Which executor runs ``op``: ovsdb, kernel, or flows (which also refuses strangers)."""
    if isinstance(op, _OVSDB_OPS):
        return "ovsdb"
    return "kernel" if is_kernel_op(op) else "flows"


def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def ovsdb_scalar(v: Any) -> Any:
    """OVSDB optional column: [] means unset, a bare value is the value."""
    if isinstance(v, list):
        return v[0] if v else None
    return v


