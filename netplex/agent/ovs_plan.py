"""Open vSwitch backend, the pure part: what to change on a host (plan) and whether its ports are wired.

No I/O here: :mod:`netplex.agent.openvswitch` observes and applies. See that module's docstring for the design.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from netplex.agent.backend_api import PortStatus
from netplex.agent.l2pop import plan_stale_vxlan, plan_vxlan
from netplex.agent.model import (
    HostDesired,
    NetworkSpec,
    OvsObserved,
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

#: Tag of ports that must not forward (Neutron's DEAD_VLAN_TAG).
DEAD_VLAN = 4095
_MAX_TAG = 4094


@dataclass(frozen=True)
class OvsConfig:
    """Options with Neutron's names (``[ovs] integration_bridge, bridge_mappings, local_ip``)."""

    integration_bridge: str = "br-int"
    datapath_type: str = "netdev"
    bridge_mappings: Mapping[str, str] = field(default_factory=dict)
    local_ip: str | None = None
    udp_port: int = 4789


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
