"""Open vSwitch backend: an integration bridge, local VLAN tags, kernel VXLAN, provider bridges.

Design (and why):

* **Integration bridge** ``br-int`` with ``datapath_type=netdev`` (the kernel
  datapath does not work on these hosts) and ``fail_mode=secure``: without a
  controller, a secure bridge forwards only what our flows allow, so nothing
  passes before the agent has programmed it (standalone would start as a
  learning switch that mixes every untagged port). Our table 0 is
  ``priority=0 NORMAL`` plus the drop rules below; VLAN isolation is then
  done by the NORMAL action over access ports.
* **Local VLAN per network**: each network with a port on this host gets a tag
  1..4094 (lowest free). It is stored in OVSDB itself, on every Port we tag:
  ``tag=<n>`` and ``other_config:netplex-net-id=<network id>``. After an agent
  restart :meth:`OvsBackend.observe` reads the tags back, so the same network
  keeps the same tag and nothing is re-tagged (no traffic disturbance). A tag
  exists only while a port of the network is on the bridge, so freeing it
  needs no bookkeeping either.
* **VM ports** are added to ``br-int`` by the compute side with
  ``external_ids:iface-id=<port id>``; the agent finds them by iface-id and sets
  the tag. Ports with an iface-id the server does not bind here (deleted,
  admin down, network not buildable) are "dead": tag 4095 and
  ``protected=true``. VLAN 4095 alone does not isolate (OVS's NORMAL action
  switches it like any VLAN, so dead ports would reach each other) and no
  other port carries it untagged: protected ports never forward to each
  other, so a dead port reaches nobody. Neutron drops a dead port's traffic
  with a ``priority=10,in_port=<ofport>`` flow instead; with the flag, dead
  and live are one OVSDB column each, so wiring a freshly bound port is one
  OVSDB transaction and no OpenFlow change (a burst of 1,000 bindings used
  to need an ``ovs-ofctl`` run per pass just to lift the drop flows).
  Until the agent sees a new port it is an untagged (trunk) port that the
  NORMAL action may flood to; the compute side should plug with ``tag=4095``
  and ``protected=true`` to close that window (:mod:`netplex.vif.plugins.ovs`
  does).
* **VXLAN** uses the same kernel ``vxlan-<vni>`` device and L2pop FDB code as
  the Linux bridge backend (:mod:`netplex.agent.l2pop`), added to ``br-int`` as
  an access port of the network's local tag. Why not OVS ``type=vxlan`` ports:
  with the userspace datapath, OVS tunnels need the underlay IP on an OVS
  bridge (OVS does its own routing/ARP for the outer header), i.e. taking over
  the host's underlay NIC; and they would need a second, flow-based L2pop
  implementation. The kernel device keeps one L2pop implementation for both
  backends, works against Linux bridge hosts unchanged (same VNI, port 4789)
  and leaves the underlay alone. Packets cross from the kernel device into
  the netdev datapath over AF_PACKET.
* **Provider networks** (flat, vlan) via ``bridge_mappings`` physnet -> an
  existing OVS bridge (created by the operator with its uplink NIC in it). The
  agent links it to ``br-int`` with a patch pair ``int-<br>``/``phy-<br>`` and
  translates tags as Neutron does: on the physical bridge, frames from br-int
  with the local tag are stripped (flat) or re-tagged with the provider VLAN
  (vlan); on br-int, untagged (flat) or provider-tagged (vlan) frames from the
  physical bridge get the local tag. Everything else arriving over the patch
  ports is dropped.

Flows are identified by cookie (see :class:`netplex.agent.ops.Flow`), so the
diff of desired against installed flows is a set difference of cookies.

How the shell talks to Open vSwitch (and why), so that a burst of 1,000
ports costs a few passes of tens of milliseconds:

* **OVSDB over one kept connection** (:class:`netplex.linux.ovsdb.OvsdbClient`)
  that monitors just the columns read here (:data:`OVSDB_COLUMNS`). Reading
  OVSDB is a look at that replica (after an ``echo`` round trip, so changes
  committed by others a moment ago are in it), where each ``ovs-vsctl``
  run read the whole database (40-90 ms with 1,000 ports). Writes are
  transactions on the same connection, built from the replica by
  :class:`OvsdbTxn`; an operation that cannot apply (no such port/bridge)
  is refused before sending, one OVSDB refuses is dropped and the rest sent
  again, a failed commit is bisected.
* **"ACTIVE" still means wired.** Like ``ovs-vsctl``, each transaction also
  increments ``Open_vSwitch:next_cfg``, and :meth:`OvsBackend.apply` returns
  only once ovs-vswitchd has set ``cur_cfg`` to it (seen in the replica):
  ports are opened and numbered. If it does not catch up in time, the ops
  are reported as failed, so the next pass reads everything again. (Not
  waiting for re-tags, and reporting their ports once ``cur_cfg`` catches
  up, was tried: with ovs-vswitchd, the server and the agent sharing two
  CPUs the extra passes cost more than the overlap saved - a burst of
  1,000 went from ~150 to 210-290 ms p50.)
* **No OVSDB, no plan.** Until the connection is (re)established and the
  replica re-filled, :meth:`OvsBackend.observe` raises and the agent retries
  the pass later: nothing is ever planned from an empty replica. After an
  ovsdb-server restart the client reconnects by itself.
* **Event passes** (:meth:`OvsBackend.observe_since`) read OVSDB from the
  replica (the compute side plugs ports) and take flows and the kernel
  VXLAN devices/FDB from the previous pass's snapshot plus the operations
  it applied (:func:`advance_flows`, :func:`netplex.agent.kernel.advance`):
  the agent is the only writer of flows with its cookie prefix and of
  ``vxlan-*`` devices. Full passes (first, every resync, after any error)
  still dump the flows and list the devices, which catches anybody else's
  drift.
* **Flows**: one ``ovs-ofctl bundle`` per bridge per pass (adds and deletes
  together, atomically), with ports given by number (from the replica) so
  ovs-ofctl needs no port-name table: ~12 ms instead of ~30 ms per run on a
  bridge with 1,000 ports.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netplex.agent.backend_api import ApplyResult, Backend, BackendKind, Baseline, PortStatus, SettingsError
from netplex.agent.kernel import advance, apply_kernel, is_kernel_op
from netplex.agent.l2pop import plan_stale_vxlan, plan_vxlan
from netplex.agent.model import (
    HostDesired,
    NetworkSpec,
    OvsBridgeState,
    OvsObserved,
    OvsPortState,
    vxlan_name,
)
from netplex.agent.monitor import DeviceMonitor, DeviceNews, OvsdbMonitor
from netplex.agent.ops import (
    FLOW_COOKIE_MASK,
    FLOW_COOKIE_PREFIX,
    AddFlows,
    AddOvsPort,
    AddPatchPorts,
    DelFlows,
    DelOvsPort,
    EnsureOvsBridge,
    EnsureTag,
    Flow,
    Op,
    Plan,
)
from netplex.linux import ovs
from netplex.linux.ip import observe_linux
from netplex.linux.ovsdb import OvsdbClient, OvsdbError, Replica, TransactionError

if TYPE_CHECKING:
    from netplex.agent.settings import AgentSettings


__all__ = [
    "DEAD_VLAN",
    "OVSDB_COLUMNS",
    "OpRefused",
    "OvsBackend",
    "OvsConfig",
    "OvsdbTxn",
    "advance_flows",
    "ovs_state_from_replica",
    "patch_port_names",
    "plan_openvswitch",
    "port_status_openvswitch",
]

#: Tag of ports that must not forward (Neutron's DEAD_VLAN_TAG).
DEAD_VLAN = 4095
_MAX_TAG = 4094
_NET_ID_KEY = "netplex-net-id"
LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class OvsConfig:
    """Options with Neutron's names (``[ovs] integration_bridge, bridge_mappings, local_ip``)."""

    integration_bridge: str = "br-int"
    datapath_type: str = "netdev"
    bridge_mappings: Mapping[str, str] = field(default_factory=dict)
    local_ip: str | None = None
    udp_port: int = 4789

    @classmethod
    def from_config(cls, cfg: Any) -> OvsConfig:
        """Build from a :class:`netplex.config.Config` (sections ``ovs``, ``vxlan``)."""
        return cls(
            integration_bridge=cfg.get("ovs", "integration_bridge"),
            datapath_type=cfg.get("ovs", "datapath_type"),
            bridge_mappings=dict(cfg.get("ovs", "bridge_mappings")),
            local_ip=cfg.get("ovs", "local_ip") or cfg.get("vxlan", "local_ip") or None,
            udp_port=int(cfg.get("vxlan", "udp_dstport")),
        )


def patch_port_names(phys_bridge: str) -> tuple[str, str]:
    """(port on br-int, port on the physical bridge), at most 15 characters each."""
    return f"int-{phys_bridge}"[:15], f"phy-{phys_bridge}"[:15]


def _problem(net: NetworkSpec, cfg: OvsConfig, observed: OvsObserved) -> str | None:
    t = net.network_type
    if t == "vxlan":
        return None if cfg.local_ip else "VXLAN is not enabled on this host (no local_ip)"
    if t in ("flat", "vlan"):
        physnet = net.physical_network or ""
        br = cfg.bridge_mappings.get(physnet)
        if br is None:
            return f"physical network {physnet!r} is not in bridge_mappings"
        if br not in observed.bridges:
            return f"mapped OVS bridge {br!r} does not exist"
        if t == "vlan" and not net.segmentation_id:
            return "vlan network without segmentation_id"
        return None
    if t == "local":
        return None
    return f"network type {t!r} is not supported by the Open vSwitch backend"


def _existing_tags(observed: OvsObserved, intbr: str) -> dict[str, int]:
    """network id -> local tag, as recorded on br-int's ports (the persisted allocation)."""
    votes: dict[str, Counter[int]] = {}
    for p in observed.ports.values():
        if p.bridge == intbr and p.net_id and p.tag and 1 <= p.tag <= _MAX_TAG:
            votes.setdefault(p.net_id, Counter())[p.tag] += 1
    out: dict[str, int] = {}
    taken: set[int] = set()
    for net_id in sorted(votes):
        # Most ports win; ties go to the lowest tag. A tag already claimed by
        # another network (only after manual tinkering) is not reused.
        for tag, _ in sorted(votes[net_id].items(), key=lambda kv: (-kv[1], kv[0])):
            if tag not in taken:
                out[net_id] = tag
                taken.add(tag)
                break
    return out


def allocate_tags(desired_nets: Sequence[NetworkSpec], observed: OvsObserved,
                  intbr: str) -> tuple[dict[str, int], list[str]]:
    """Local tags for ``desired_nets``: keep recorded ones, give new networks the lowest free.

    Returns (network id -> tag, network ids that got none because 1..4094 are used up).
    """
    existing = _existing_tags(observed, intbr)
    wanted = {n.network_id for n in desired_nets}
    tags = {nid: tag for nid, tag in existing.items() if nid in wanted}
    # A tag still carried by any port (say, the VXLAN port of a network that is
    # being removed in this same pass) is only reused in a later pass, so two
    # networks never share a tag even for the milliseconds between operations.
    used = set(tags.values()) | {p.tag for p in observed.ports.values()
                                 if p.bridge == intbr and p.tag}
    free = (t for t in range(1, _MAX_TAG + 1) if t not in used)
    exhausted: list[str] = []
    for net in desired_nets:
        if net.network_id not in tags:
            tag = next(free, None)
            if tag is None:
                exhausted.append(net.network_id)
            else:
                tags[net.network_id] = tag
    return tags, exhausted


def _provider_flows(net: NetworkSpec, tag: int, intbr: str, physbr: str) -> list[Flow]:
    int_p, phy_p = patch_port_names(physbr)
    if net.network_type == "flat":
        return [
            Flow(physbr, 4, f"in_port={phy_p},dl_vlan={tag}", "strip_vlan,NORMAL"),
            Flow(intbr, 3, f"in_port={int_p},vlan_tci=0x0000/0x1fff",
                 f"mod_vlan_vid:{tag},NORMAL"),
        ]
    seg = net.segmentation_id
    return [
        Flow(physbr, 4, f"in_port={phy_p},dl_vlan={tag}", f"mod_vlan_vid:{seg},NORMAL"),
        Flow(intbr, 3, f"in_port={int_p},dl_vlan={seg}", f"mod_vlan_vid:{tag},NORMAL"),
    ]


def plan_openvswitch(desired: HostDesired, observed: OvsObserved, cfg: OvsConfig) -> Plan:
    """Pure: the operations that make ``observed`` match ``desired`` (see module docstring)."""
    intbr = cfg.integration_bridge
    ops: list[Op] = []
    problems: dict[str, str] = {}
    flows: list[Flow] = [Flow(intbr, 0, "", "NORMAL")]

    br = observed.bridges.get(intbr)
    if br is None or br.datapath_type != cfg.datapath_type or br.fail_mode != "secure":
        ops.append(EnsureOvsBridge(intbr, cfg.datapath_type, "secure"))

    phys_bridges = sorted({b for b in cfg.bridge_mappings.values() if b in observed.bridges})
    for physbr in phys_bridges:
        int_p, phy_p = patch_port_names(physbr)
        ip_, pp = observed.ports.get(int_p), observed.ports.get(phy_p)
        if (ip_ is None or ip_.bridge != intbr or ip_.peer != phy_p
                or pp is None or pp.bridge != physbr or pp.peer != int_p):
            ops.append(AddPatchPorts(intbr, int_p, physbr, phy_p))
        flows += [
            Flow(intbr, 2, f"in_port={int_p}", "drop"),
            Flow(physbr, 0, "", "NORMAL"),
            Flow(physbr, 2, f"in_port={phy_p}", "drop"),
        ]

    buildable = []
    for net in desired.active_networks():
        why = _problem(net, cfg, observed)
        if why is None:
            buildable.append(net)
        else:
            problems[net.network_id] = why
    tags, exhausted = allocate_tags(buildable, observed, intbr)
    for nid in exhausted:
        problems[nid] = "no free local VLAN tag on this host (1..4094 all used)"

    port_ops: list[Op] = []
    live: set[str] = set()  # names of br-int ports that must forward
    keep_vxlan: set[str] = set()
    stale_ovs: list[Op] = []
    by_iface = observed.port_by_iface_id(intbr)
    for net in buildable:
        tag = tags.get(net.network_id)
        if tag is None:
            continue
        if net.network_type == "vxlan":
            assert cfg.local_ip is not None and net.segmentation_id
            dev = vxlan_name(net.segmentation_id)
            keep_vxlan.add(dev)
            live.add(dev)
            vx_ops, fresh = plan_vxlan(net, desired.remotes_of(net.network_id),
                                       observed.linux, cfg.local_ip, cfg.udp_port)
            have = observed.ports.get(dev)
            if have is not None and (fresh or have.bridge != intbr):
                # A recreated device is a new ifindex: re-add the port so that
                # ovs-vswitchd reopens it instead of holding the old one.
                ops.append(DelOvsPort(have.bridge, dev))
                have = None
            ops += vx_ops
            if have is None:
                port_ops.append(AddOvsPort(intbr, dev, tag, net.network_id))
            elif have.tag != tag or have.net_id != net.network_id:
                port_ops.append(EnsureTag(dev, tag, net.network_id))
        elif net.network_type in ("flat", "vlan"):
            physbr = cfg.bridge_mappings[net.physical_network or ""]
            flows += _provider_flows(net, tag, intbr, physbr)
        for port in desired.ports_of(net.network_id):
            have = by_iface.get(port.port_id)
            if have is None or not port.admin_state_up:
                continue
            live.add(have.name)
            if have.tag != tag or have.net_id != net.network_id or have.protected:
                port_ops.append(EnsureTag(have.name, tag, net.network_id))

    for p in sorted(observed.ports.values(), key=lambda p: p.name):
        if p.bridge != intbr or p.name in live:
            continue
        if p.name.startswith("vxlan-") and p.iface_id is None:
            stale_ovs.append(DelOvsPort(intbr, p.name))
        elif p.iface_id:
            # A VM port the server does not (or no longer) want wired here.
            if p.tag != DEAD_VLAN or p.net_id is not None or not p.protected:
                port_ops.append(EnsureTag(p.name, DEAD_VLAN, None))
    ops += port_ops

    managed = [intbr, *phys_bridges]
    want: dict[str, dict[int, Flow]] = {b: {} for b in managed}
    for f in flows:
        want[f.bridge][f.cookie] = f
    # Only flows with our cookie prefix are ours to diff (observe() already
    # filters; checking again keeps the pure core safe with any observer).
    ours = {b: {c for c in observed.flows.get(b, ()) if c & FLOW_COOKIE_MASK == FLOW_COOKIE_PREFIX}
            for b in managed}
    for b in managed:
        have_cookies = ours[b]
        add = [f for c, f in sorted(want[b].items()) if c not in have_cookies]
        if add:
            ops.append(AddFlows(b, tuple(add)))
    for b in managed:
        have_cookies = ours[b]
        gone = tuple(sorted(c for c in have_cookies if c not in want[b]))
        if gone:
            ops.append(DelFlows(b, gone))
    ops += stale_ovs
    ops += plan_stale_vxlan(observed.linux, keep_vxlan)
    return Plan(ops=tuple(ops), problems=problems)


def port_status_openvswitch(desired: HostDesired, observed: OvsObserved,
                            cfg: OvsConfig, converged: bool = False) -> dict[str, PortStatus]:
    """Pure: a port is up when it is on br-int with its network's recorded tag.

    :param converged: ``observed`` was taken *before* a plan that then applied
        without error, so tags are right by construction; only presence counts.
    """
    intbr = cfg.integration_bridge
    tags = _existing_tags(observed, intbr)
    by_iface = observed.port_by_iface_id(intbr)
    out: dict[str, PortStatus] = {}
    for port in desired.ports:
        net = desired.network(port.network_id)
        why = _problem(net, cfg, observed)
        have = by_iface.get(port.port_id)
        tag = tags.get(net.network_id)
        if why is not None:
            out[port.port_id] = PortStatus(False, why)
        elif not port.admin_state_up:
            out[port.port_id] = PortStatus(False, "admin_state_up is false")
        elif have is None:
            out[port.port_id] = PortStatus(False, f"no port with iface-id on {intbr}")
        elif not converged and (
                tag is None or have.tag != tag or have.net_id != net.network_id):
            out[port.port_id] = PortStatus(False, f"{have.name} not tagged for its network")
        elif not have.ofport or have.ofport < 0:
            out[port.port_id] = PortStatus(False, f"{have.name} has no OpenFlow port")
        else:
            out[port.port_id] = PortStatus(True)
    return out


# --- reading the replica, advancing a baseline (pure) ----------------------------

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
        bridges[name] = OvsBridgeState(name=name, datapath_type=_scalar(b.get("datapath_type")) or "",
                                       fail_mode=_scalar(b.get("fail_mode")) or "")
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
            ofport = _scalar(iface.get("ofport"))
            other_config = p.get("other_config") or {}
            state = OvsPortState(
                name=p["name"], bridge=bridge, tag=_scalar(p.get("tag")),
                net_id=other_config.get(_NET_ID_KEY) if isinstance(other_config, dict) else None,
                iface_id=(iface.get("external_ids") or {}).get("iface-id"),
                ofport=ofport if isinstance(ofport, int) else None,
                type=iface.get("type") or "",
                peer=(iface.get("options") or {}).get("peer"),
                protected=_scalar(p.get("protected")) is True,
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

_OVSDB_OPS = (EnsureOvsBridge, AddPatchPorts, AddOvsPort, DelOvsPort, EnsureTag)


class OvsBackend(Backend[OvsObserved]):
    """The Open vSwitch data plane of one host.

    :param db_socket: OVSDB remote, ``unix:/path/db.sock`` (or ``tcp:HOST:PORT``).
    :param rundir: where ovs-vswitchd puts ``<bridge>.mgmt`` (OVS_RUNDIR).
    :param netns: namespace of the host, for the kernel VXLAN devices.
    :param timeout: seconds to wait for OVSDB (connection, answers) and for
        ovs-vswitchd to apply a transaction.

    Keeps no host state between calls (tags live in OVSDB), so a new instance
    after an agent restart picks up exactly where the old one stopped. It does
    keep one OVSDB connection with a monitored replica (:mod:`netplex.linux.ovsdb`),
    opened on first use; :meth:`close` ends it (it is also closed when the
    backend is garbage-collected).
    """

    name = "openvswitch"

    def __init__(self, config: OvsConfig, db_socket: str, rundir: Path,
                 netns: str | None = None, timeout: float = 10.0) -> None:
        self.config = config
        self.db_socket = db_socket
        self.rundir = Path(rundir)
        self.netns = netns
        self.timeout = timeout
        self._db: OvsdbClient | None = None
        self._lock = threading.Lock()
        self._converted: tuple[int, int, dict[str, OvsBridgeState], dict[str, OvsPortState]] | None = None
        self._port_cache: PortCache = {}

    @classmethod
    def for_instance(cls, config: OvsConfig, instance: ovs.OvsInstance) -> OvsBackend:
        """Backend for a private :class:`~netplex.linux.ovs.OvsInstance` (lab, tests)."""
        return cls(config, instance.db_socket, instance.workdir, instance.netns)

    def mgmt(self, bridge: str) -> str:
        return f"unix:{self.rundir / f'{bridge}.mgmt'}"

    @property
    def db(self) -> OvsdbClient:
        """The OVSDB connection (opened on first use, so building a backend costs nothing)."""
        with self._lock:
            if self._db is None:
                self._db = OvsdbClient(self.db_socket, OVSDB_COLUMNS, timeout=self.timeout).start()
                # The connection thread refers to the client only, so an
                # unreachable backend is collected and its connection closed.
                weakref.finalize(self, self._db.close)
            return self._db

    def close(self) -> None:
        """Close the OVSDB connection (a later call opens a new one). Idempotent."""
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()

    def device_monitor(self, notify: Callable[[DeviceNews], None]) -> DeviceMonitor:
        """VM ports' Interface rows changing, told by this backend's own OVSDB connection."""
        return OvsdbMonitor(self.db, notify)

    # --- observe ---------------------------------------------------------------

    def _ovsdb_state(self, fresh: bool = True) -> tuple[dict[str, OvsBridgeState], dict[str, OvsPortState]]:
        """Bridges and ports from the replica (raises OvsdbUnavailable when out of sync);
        ``fresh``: after an echo round trip, so it holds what others committed just before."""
        db = self.db
        replica = db.snapshot() if fresh else db.replica()
        cached = self._converted
        if cached is not None and cached[:2] == (db.connections, replica.version):
            return cached[2], cached[3]
        bridges, ports = ovs_state_from_replica(replica, self._port_cache)
        self._converted = (db.connections, replica.version, bridges, ports)
        return bridges, ports

    def _managed(self, bridges: Collection[str]) -> list[str]:
        managed = [self.config.integration_bridge, *self.config.bridge_mappings.values()]
        return [b for b in dict.fromkeys(managed) if b in bridges]

    def observe(self) -> OvsObserved:
        bridges, ports = self._ovsdb_state()
        flows = {b: ovs.dump_flow_cookies(self.mgmt(b), FLOW_COOKIE_PREFIX, FLOW_COOKIE_MASK)
                 for b in self._managed(bridges)}
        linux = observe_linux(self.netns, vxlan_only=True)
        return OvsObserved(bridges=bridges, ports=ports, flows=flows, linux=linux)

    def observe_since(self, baseline: Baseline[OvsObserved], desired: HostDesired,
                      devices: Collection[str]) -> OvsObserved:
        """OVSDB from the replica (others plug ports); flows and VXLAN devices from the baseline.

        Only the agent writes flows with our cookie prefix and the ``vxlan-*``
        devices and their FDB, so the baseline plus what it applied is what is
        there. A managed bridge the baseline has no flows for (the operator
        just created it) is dumped.

        The replica is taken as it is, without the ``echo`` round trip that
        makes it include what others committed a moment ago, unless the device
        monitor named ``devices``: a VM port plugged just before this pass also
        makes the monitor report it, and the pass for that report waits for it.
        """
        prev = baseline.observed
        if not isinstance(prev, OvsObserved):
            return self.observe()
        bridges, ports = self._ovsdb_state(fresh=bool(devices))
        flows = advance_flows(prev.flows, baseline.applied)
        for b in self._managed(bridges):
            if b not in flows:
                flows[b] = ovs.dump_flow_cookies(self.mgmt(b), FLOW_COOKIE_PREFIX, FLOW_COOKIE_MASK)
        linux = advance(prev.linux, baseline.applied)
        return OvsObserved(bridges=bridges, ports=ports, flows=flows, linux=linux)

    def plan(self, desired: HostDesired, observed: OvsObserved) -> Plan:
        return plan_openvswitch(desired, observed, self.config)

    def port_status(self, desired: HostDesired, observed: OvsObserved,
                    converged: bool = False) -> dict[str, PortStatus]:
        return port_status_openvswitch(desired, observed, self.config, converged)

    # --- apply -------------------------------------------------------------------

    def apply(self, ops: Sequence[Op]) -> ApplyResult:
        """Run ``ops`` in order: consecutive OVSDB changes in one transaction, consecutive
        kernel changes in one iproute2 batch, flow changes in one OpenFlow bundle each."""
        applied = 0
        errors: list[tuple[Op, str]] = []
        for kind, group in itertools.groupby(ops, key=_executor):
            run = list(group)
            start = time.monotonic()
            res = (self._apply_ovsdb(run) if kind == "ovsdb"
                   else apply_kernel(self.netns, run) if kind == "kernel"
                   else self._apply_flows(run))
            LOG.debug("openvswitch: %d %s op(s) in %.0f ms", len(run), kind,
                      (time.monotonic() - start) * 1000)
            applied += res.applied
            errors += res.errors
        return ApplyResult(applied=applied, errors=tuple(errors))

    def _apply_ovsdb(self, ops: Sequence[Op]) -> ApplyResult:
        failed = self._transact(list(ops))
        errors = tuple((ops[i], failed[i]) for i in sorted(failed))
        return ApplyResult(applied=len(ops) - len(errors), errors=errors)

    def _transact(self, ops: list[Op]) -> dict[int, str]:
        """Run ``ops`` as one OVSDB transaction and wait for ovs-vswitchd; errors by index.

        An operation OVSDB refuses aborts the transaction (nothing changed) and
        is named in the answer, so it is dropped and the rest tried again; a
        failed commit names none, and the halves are tried instead (a few more
        transactions rather than one per op). When ovs-vswitchd does not catch
        up, or the connection drops, every op sent is reported: the next pass
        reads everything again and plans what is still missing.
        """
        failed: dict[int, str] = {}
        queue: list[list[int]] = [list(range(len(ops)))]
        while queue:
            todo = [i for i in queue.pop(0) if i not in failed]
            if not todo:
                continue
            sub_failed, refusal = self._transact_once([ops[i] for i in todo])
            failed |= _reindex(sub_failed, todo)
            if refusal is None:
                continue
            if refusal.index is not None:
                queue.insert(0, todo)  # again, without the op OVSDB named
                continue
            todo = [i for i in todo if i not in failed]
            if len(todo) == 1:
                failed[todo[0]] = str(refusal)
            elif todo:
                mid = len(todo) // 2
                queue[0:0] = [todo[:mid], todo[mid:]]
        return failed

    def _transact_once(self, ops: list[Op]) -> tuple[dict[int, str], TransactionError | None]:
        """One try: (errors by index, the refusal when OVSDB aborted the whole transaction).

        When the refusal names an operation, its op is among the errors already.
        """
        try:
            replica = self.db.replica()
        except OvsdbError as exc:
            return dict.fromkeys(range(len(ops)), f"{type(exc).__name__}: {exc}"), None
        txn = OvsdbTxn.build(replica, ops)
        failed = dict(txn.refused)
        if not txn.operations:
            return failed, None
        # As ovs-vsctl does: bump next_cfg; ovs-vswitchd sets cur_cfg to it once
        # it has applied the change (ports opened, ofports assigned).
        tail: list[dict[str, Any]] = [{"op": "mutate", "table": "Open_vSwitch", "where": [],
                                       "mutations": [["next_cfg", "+=", 1]]},
                                      {"op": "select", "table": "Open_vSwitch", "where": [],
                                       "columns": ["next_cfg"]}]
        try:
            results = self.db.transact([*txn.operations, *tail])
        except TransactionError as exc:
            if exc.index is not None and exc.index < len(txn.owner):
                failed[txn.owner[exc.index]] = str(exc)
                return failed, exc
            return failed, TransactionError(None, exc.error, exc.details)
        except OvsdbError as exc:
            return failed | dict.fromkeys(txn.owner, f"{type(exc).__name__}: {exc}"), None
        for i, (res, must) in enumerate(zip(results, txn.must_match, strict=False)):
            if must and isinstance(res, dict) and res.get("count") == 0:
                failed.setdefault(txn.owner[i], "row gone before the transaction committed")
        try:
            next_cfg = results[-1]["rows"][0]["next_cfg"]
            self.db.wait_for(lambda r: _cur_cfg(r) >= next_cfg)
        except (OvsdbError, LookupError, TypeError) as exc:
            why = f"ovs-vswitchd did not apply the change: {type(exc).__name__}: {exc}"
            for i in txn.owner:
                failed.setdefault(i, why)
        return failed, None

    def _apply_flows(self, ops: Sequence[Op]) -> ApplyResult:
        """One OpenFlow bundle per bridge for the consecutive flow ops of a pass.

        Adds and deletes of a bridge go in the same bundle, so a re-tag (one
        flow out, another in) is atomic; an ovs-ofctl run costs ~12 ms
        whatever it carries, so fewer runs is most of the gain. Ports named
        in matches are sent as their OpenFlow numbers from the replica when
        all are known (see :func:`netplex.linux.ovs.ofctl_bundle`).
        """
        errors: list[tuple[Op, str]] = []
        per_bridge: dict[str, list[Op]] = {}
        for op in ops:
            if isinstance(op, AddFlows | DelFlows):
                per_bridge.setdefault(op.bridge, []).append(op)
            else:
                errors.append((op, f"TypeError: not an Open vSwitch operation: {op}"))
        ofports = self._ofports() if per_bridge else {}
        for bridge, bops in per_bridge.items():
            lines: list[str] = []
            for op in bops:
                if isinstance(op, AddFlows):
                    lines += [f"flow add {f.spec()}" for f in op.flows]
                elif isinstance(op, DelFlows):
                    lines += [f"flow delete cookie={c:#x}/-1" for c in op.cookies]
            numbered = _numbered_ports(lines, ofports)
            try:
                ovs.ofctl_bundle(self.mgmt(bridge), numbered or lines, names=numbered is None)
            except Exception as exc:  # noqa: BLE001 - recorded, retried next pass
                errors += [(op, f"{type(exc).__name__}: {exc}") for op in bops]
        return ApplyResult(applied=len(ops) - len(errors), errors=tuple(errors))

    def _ofports(self) -> dict[str, int]:
        """Port name -> OpenFlow port number, from the replica (empty if out of sync)."""
        try:
            replica = self.db.replica(timeout=0)
        except OvsdbError:
            return {}
        out: dict[str, int] = {}
        for row in replica.rows("Interface").values():
            ofport = _scalar(row.get("ofport"))
            if isinstance(ofport, int) and ofport > 0:
                out[row.get("name", "")] = ofport
        return out


_IN_PORT = re.compile(r"in_port=([^,\s]+)")


def _numbered_ports(lines: Sequence[str], ofports: Mapping[str, int]) -> list[str] | None:
    """``lines`` with ``in_port=<name>`` as ``in_port=<number>``; None if a name is unknown."""
    unknown = False

    def number(m: re.Match[str]) -> str:
        nonlocal unknown
        name = m.group(1)
        if name.isdigit():
            return m.group(0)
        if name not in ofports:
            unknown = True
            return m.group(0)
        return f"in_port={ofports[name]}"

    out = [_IN_PORT.sub(number, line) for line in lines]
    return None if unknown else out


def _reindex(failed: Mapping[int, str], positions: Sequence[int]) -> dict[int, str]:
    """Errors of a sub-list (by its index) -> errors by index in the full list."""
    return {positions[i]: why for i, why in failed.items()}


def _cur_cfg(replica: Replica) -> int:
    row = next(iter(replica.rows("Open_vSwitch").values()), None)
    cur = _scalar(row.get("cur_cfg")) if row else None
    return cur if isinstance(cur, int) else 0


def _executor(op: Op) -> str:
    """Which executor runs ``op``: ovsdb, kernel, or flows (which also refuses strangers)."""
    if isinstance(op, _OVSDB_OPS):
        return "ovsdb"
    return "kernel" if is_kernel_op(op) else "flows"


def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def _scalar(v: Any) -> Any:
    """OVSDB optional column: [] means unset, a bare value is the value."""
    if isinstance(v, list):
        return v[0] if v else None
    return v


class OvsKind(BackendKind):
    """Open vSwitch hosts (entry point ``openvswitch``)."""

    name = "openvswitch"
    agent_type = "Open vSwitch agent"
    binary = "netplex-openvswitch-agent"

    def local_ip(self, cfg: Any) -> str:
        # Neutron's OVS agent reads [ovs] local_ip; [vxlan] local_ip is the fallback here.
        return str(cfg.get("ovs", "local_ip") or super().local_ip(cfg))

    def validate(self, settings: AgentSettings) -> None:
        # ssl: would need key/certificate options the agent does not have.
        if not settings.ovs_db.startswith(("unix:", "tcp:")):
            raise SettingsError(f"OVSDB connection {settings.ovs_db!r} is not unix: or tcp:",
                                "pass --ovs-db unix:/path/to/db.sock")
        if settings.ovs_db.startswith("unix:") and not Path(settings.ovs_db[5:]).exists():
            raise SettingsError(
                f"OVSDB socket {settings.ovs_db[5:]} does not exist",
                "start ovsdb-server + ovs-vswitchd, or pass --ovs-db unix:PATH "
                "(and --ovs-rundir DIR) of the instance serving this host")

    def configurations(self, settings: AgentSettings) -> dict[str, Any]:
        return {"bridge_mappings": dict(settings.bridge_mappings),
                "integration_bridge": settings.integration_bridge,
                "datapath_type": settings.datapath_type}

    def build(self, settings: AgentSettings) -> OvsBackend:
        vxlan = "vxlan" in settings.tunnel_types
        return OvsBackend(OvsConfig(
            integration_bridge=settings.integration_bridge,
            datapath_type=settings.datapath_type,
            bridge_mappings=dict(settings.bridge_mappings),
            local_ip=(settings.local_ip or None) if vxlan else None,
            udp_port=settings.udp_port,
        ), db_socket=settings.ovs_db, rundir=settings.rundir, netns=settings.netns or None)
