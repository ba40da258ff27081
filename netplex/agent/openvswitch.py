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
  admin down, network not buildable) are "dead": tag 4095 plus a
  ``priority=10,in_port=<ofport> actions=drop`` flow, as Neutron does.
  Until the agent sees a new port it is an untagged (trunk) port that the
  NORMAL action may flood to; the compute side should plug with ``tag=4095``
  to close that window.
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
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netplex.agent.kernel import apply_kernel, is_kernel_op
from netplex.agent.l2pop import plan_stale_vxlan, plan_vxlan
from netplex.agent.model import (
    HostDesired,
    NetworkSpec,
    OvsBridgeState,
    OvsObserved,
    OvsPortState,
    vxlan_name,
)
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
from netplex.agent.reconcile import ApplyResult, Baseline, PortStatus
from netplex.linux import ovs
from netplex.linux.ip import observe_linux

__all__ = [
    "DEAD_VLAN",
    "OvsBackend",
    "OvsConfig",
    "patch_port_names",
    "plan_openvswitch",
    "port_status_openvswitch",
]

#: Tag of ports that must not forward (Neutron's DEAD_VLAN_TAG).
DEAD_VLAN = 4095
_MAX_TAG = 4094
_NET_ID_KEY = "netplex-net-id"
#: Ops per OVSDB transaction: ovs-vsctl reads the whole database for each one
#: (~40 ms with 1,000 ports), so a pass uses as few as it can.
_VSCTL_BATCH = 1000


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
            if have.tag != tag or have.net_id != net.network_id:
                port_ops.append(EnsureTag(have.name, tag, net.network_id))

    for p in sorted(observed.ports.values(), key=lambda p: p.name):
        if p.bridge != intbr or p.name in live:
            continue
        if p.name.startswith("vxlan-") and p.iface_id is None:
            stale_ovs.append(DelOvsPort(intbr, p.name))
        elif p.iface_id:
            # A VM port the server does not (or no longer) want wired here.
            if p.tag != DEAD_VLAN or p.net_id is not None:
                port_ops.append(EnsureTag(p.name, DEAD_VLAN, None))
            if p.ofport and p.ofport > 0:
                flows.append(Flow(intbr, 10, f"in_port={p.ofport}", "drop"))
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


# --- the imperative shell -------------------------------------------------------


def _vsctl_args(op: Op) -> list[str] | None:
    match op:
        case EnsureOvsBridge(name, dp, fail_mode):
            return ["--may-exist", "add-br", name, "--", "set", "Bridge", name,
                    f"datapath_type={dp}", f"fail_mode={fail_mode}"]
        case AddPatchPorts(intbr, int_p, physbr, phy_p):
            return ["--may-exist", "add-port", intbr, int_p, "--",
                    "set", "Interface", int_p, "type=patch", f"options:peer={phy_p}", "--",
                    "--may-exist", "add-port", physbr, phy_p, "--",
                    "set", "Interface", phy_p, "type=patch", f"options:peer={int_p}"]
        case AddOvsPort(bridge, name, tag, net_id):
            return ["--may-exist", "add-port", bridge, name, "--",
                    "set", "Port", name, f"tag={tag}", f"other_config:{_NET_ID_KEY}={net_id}"]
        case DelOvsPort(bridge, name):
            return ["--if-exists", "del-port", bridge, name]
        case EnsureTag(name, tag, None):
            return ["set", "Port", name, f"tag={tag}", "--",
                    "remove", "Port", name, "other_config", _NET_ID_KEY]
        case EnsureTag(name, tag, net_id):
            return ["set", "Port", name, f"tag={tag}", f"other_config:{_NET_ID_KEY}={net_id}"]
    return None


class OvsBackend:
    """The Open vSwitch data plane of one host.

    :param db_socket: OVSDB remote, ``unix:/path/db.sock``.
    :param rundir: where ovs-vswitchd puts ``<bridge>.mgmt`` (OVS_RUNDIR).
    :param netns: namespace of the host, for the kernel VXLAN devices.

    Stateless between calls (tags live in OVSDB), so a new instance after an
    agent restart picks up exactly where the old one stopped.
    """

    name = "openvswitch"

    def __init__(self, config: OvsConfig, db_socket: str, rundir: Path,
                 netns: str | None = None) -> None:
        self.config = config
        self.db_socket = db_socket
        self.rundir = Path(rundir)
        self.netns = netns

    @classmethod
    def for_instance(cls, config: OvsConfig, instance: ovs.OvsInstance) -> OvsBackend:
        """Backend for a private :class:`~netplex.linux.ovs.OvsInstance` (lab, tests)."""
        return cls(config, instance.db_socket, instance.workdir, instance.netns)

    def mgmt(self, bridge: str) -> str:
        return f"unix:{self.rundir / f'{bridge}.mgmt'}"

    # --- observe ---------------------------------------------------------------

    def observe(self) -> OvsObserved:
        rows = ovs.list_tables(self.db_socket, {
            "Bridge": ["name", "ports", "datapath_type", "fail_mode"],
            "Port": ["_uuid", "name", "tag", "other_config", "interfaces"],
            "Interface": ["_uuid", "name", "ofport", "external_ids", "type", "options"],
        })
        bridges_rows, port_rows, iface_rows = rows["Bridge"], rows["Port"], rows["Interface"]
        bridges: dict[str, OvsBridgeState] = {}
        port_bridge: dict[str, str] = {}
        for b in bridges_rows:
            bridges[b["name"]] = OvsBridgeState(
                name=b["name"], datapath_type=_scalar(b["datapath_type"]) or "",
                fail_mode=_scalar(b["fail_mode"]) or "")
            for puuid in _as_list(b["ports"]):
                port_bridge[puuid] = b["name"]
        ifaces = {i["_uuid"]: i for i in iface_rows}
        ports: dict[str, OvsPortState] = {}
        for p in port_rows:
            if p["_uuid"] not in port_bridge:
                continue
            iface_list = [ifaces[u] for u in _as_list(p["interfaces"]) if u in ifaces]
            iface = iface_list[0] if iface_list else {}
            ofport = _scalar(iface.get("ofport"))
            ports[p["name"]] = OvsPortState(
                name=p["name"], bridge=port_bridge[p["_uuid"]], tag=_scalar(p["tag"]),
                net_id=p["other_config"].get(_NET_ID_KEY),
                iface_id=(iface.get("external_ids") or {}).get("iface-id"),
                ofport=ofport if isinstance(ofport, int) else None,
                type=iface.get("type") or "",
                peer=(iface.get("options") or {}).get("peer"),
            )
        managed = [self.config.integration_bridge,
                   *(b for b in self.config.bridge_mappings.values())]
        flows = {b: ovs.dump_flow_cookies(self.mgmt(b), FLOW_COOKIE_PREFIX, FLOW_COOKIE_MASK)
                 for b in dict.fromkeys(managed) if b in bridges}
        linux = observe_linux(self.netns, vxlan_only=True)
        return OvsObserved(bridges=bridges, ports=ports, flows=flows, linux=linux)

    def observe_since(self, baseline: Baseline, desired: HostDesired,
                      devices: Collection[str]) -> OvsObserved:
        # Ports (and their ofports) come and go in OVSDB without us: read it all.
        return self.observe()

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
            res = (self._apply_ovsdb(run) if kind == "ovsdb"
                   else apply_kernel(self.netns, run) if kind == "kernel"
                   else self._apply_flows(run))
            applied += res.applied
            errors += res.errors
        return ApplyResult(applied=applied, errors=tuple(errors))

    def _apply_ovsdb(self, ops: Sequence[Op]) -> ApplyResult:
        errors: list[tuple[Op, str]] = []
        for i in range(0, len(ops), _VSCTL_BATCH):
            errors += self._transact([(op, _vsctl_args(op) or []) for op in ops[i:i + _VSCTL_BATCH]])
        return ApplyResult(applied=len(ops) - len(errors), errors=tuple(errors))

    def _transact(self, chunk: Sequence[tuple[Op, list[str]]]) -> list[tuple[Op, str]]:
        """Run ``chunk`` as one OVSDB transaction; the errors of the ops that failed.

        A failed transaction changed nothing, so the culprits are found by
        running each half again (in order): a few more transactions, where
        one per op would cost ~40 ms each on a host with 1,000 ports.
        """
        args: list[str] = []
        for _, a in chunk:
            args += [*(["--"] if args else []), *a]
        try:
            ovs.vsctl(self.db_socket, *args)
        except ovs.OvsError as exc:
            if len(chunk) == 1:
                return [(chunk[0][0], str(exc))]
            mid = len(chunk) // 2
            return self._transact(chunk[:mid]) + self._transact(chunk[mid:])
        return []

    def _apply_flows(self, ops: Sequence[Op]) -> ApplyResult:
        applied = 0
        errors: list[tuple[Op, str]] = []
        for op in ops:
            try:
                if isinstance(op, AddFlows):
                    ovs.ofctl_bundle(self.mgmt(op.bridge), [f"flow add {f.spec()}" for f in op.flows])
                elif isinstance(op, DelFlows):
                    ovs.ofctl_bundle(self.mgmt(op.bridge),
                                     [f"flow delete cookie={c:#x}/-1" for c in op.cookies])
                else:
                    raise TypeError(f"not an Open vSwitch operation: {op}")
                applied += 1
            except Exception as exc:  # noqa: BLE001 - recorded, retried next pass
                errors.append((op, f"{type(exc).__name__}: {exc}"))
        return ApplyResult(applied=applied, errors=tuple(errors))


def _executor(op: Op) -> str:
    """Which executor runs ``op``: ovsdb, kernel, or flows (which also refuses strangers)."""
    if _vsctl_args(op) is not None:
        return "ovsdb"
    return "kernel" if is_kernel_op(op) else "flows"


def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def _scalar(v: Any) -> Any:
    """OVSDB optional column: [] means unset, a bare value is the value."""
    if isinstance(v, list):
        return v[0] if v else None
    return v

