"""Linux bridge backend: one kernel bridge per network, VXLAN devices, kernel objects only.

Per network with a local port:

* bridge ``brq<net[:11]>`` (or, for a flat network whose physnet is in
  ``bridge_mappings``, that existing bridge, which is never deleted);
* VXLAN: ``vxlan-<vni>`` (see :mod:`netplex.agent.l2pop`) enslaved to it;
* flat: the interface from ``physical_interface_mappings`` enslaved to it
  (untagged). Addresses on that interface are not moved to the bridge: give
  the underlay its own interface;
* VLAN provider networks need kernel 802.1q devices (``eth1.100``), which
  these hosts do not have, so they are reported as a problem (ports DOWN)
  instead of half-built; use the Open vSwitch backend, where OVS tags;
* ``local``: just the bridge;
* VM ports: the device ``tap<port[:11]>`` (created by the compute side) is
  enslaved and set up. Admin-down ports are released and set down.

When the last local port of a network goes, its bridge and VXLAN device are
deleted; taps are released, never deleted (they belong to the compute side).
ARP responder / proxy ARP entries are not installed: ARP is flooded over the
L2pop flood list, which the hosts here handle easily.

A kernel bridge takes at most :data:`BRIDGE_MAX_PORTS` ports (it numbers them
1..1023; one more fails with "Exchange full"). Ports of a network whose
bridge is full are not attached but reported DOWN with that reason, so the
agent neither retries a doomed operation every pass nor calls them ACTIVE;
they are attached as soon as others leave.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netplex.agent.backend_api import ApplyResult, Backend, BackendKind, Baseline, PortStatus
from netplex.agent.kernel import apply_kernel, refresh
from netplex.agent.l2pop import plan_stale_vxlan, plan_vxlan
from netplex.agent.model import HostDesired, LinuxObserved, NetworkSpec, bridge_name, vxlan_name
from netplex.agent.monitor import DeviceMonitor, DeviceNews, LinkMonitor
from netplex.agent.ops import (
    AttachPort,
    DeleteBridge,
    DetachPort,
    EnsureBridge,
    Op,
    Plan,
    SetLinkDown,
    SetLinkUp,
)
from netplex.agent.secgroups_backend import FilteredBackend, with_filter
from netplex.linux.ip import observe_linux, read_links

if TYPE_CHECKING:
    from netplex.agent.settings import AgentSettings


__all__ = [
    "BRIDGE_MAX_PORTS",
    "LinuxBridgeBackend",
    "LinuxBridgeConfig",
    "plan_linuxbridge",
    "port_status_linuxbridge",
    "ports_without_room",
]

#: Ports a Linux bridge can hold: BR_MAX_PORTS is 1024 and port number 0 is reserved.
BRIDGE_MAX_PORTS = 1023

_VLAN_UNSUPPORTED = ("VLAN provider networks need kernel 802.1q devices, which this host "
                     "does not have; use the openvswitch mechanism for VLAN")


@dataclass(frozen=True)
class LinuxBridgeConfig:
    """Options with Neutron's names (``[vxlan] local_ip``, ``[linux_bridge] ...``)."""

    local_ip: str | None = None
    physical_interface_mappings: Mapping[str, str] = field(default_factory=dict)
    bridge_mappings: Mapping[str, str] = field(default_factory=dict)
    udp_port: int = 4789
    enable_vxlan: bool = True


def _net_bridge(net: NetworkSpec, cfg: LinuxBridgeConfig) -> str:
    physnet = net.physical_network or ""
    if net.network_type == "flat" and physnet in cfg.bridge_mappings:
        return cfg.bridge_mappings[physnet]
    return bridge_name(net.network_id)


def _problem(net: NetworkSpec, cfg: LinuxBridgeConfig, observed: LinuxObserved) -> str | None:
    """Why ``net`` cannot be built here, or None."""
    t = net.network_type
    if t == "vxlan":
        if not cfg.enable_vxlan or not cfg.local_ip:
            return "VXLAN is not enabled on this host (no [vxlan] local_ip)"
        return None
    if t == "flat":
        physnet = net.physical_network or ""
        if physnet in cfg.bridge_mappings:
            br = cfg.bridge_mappings[physnet]
            return None if br in observed.links else f"mapped bridge {br!r} does not exist"
        iface = cfg.physical_interface_mappings.get(physnet)
        if iface is None:
            return f"physical network {physnet!r} is not mapped on this host"
        return None if iface in observed.links else f"interface {iface!r} does not exist"
    if t == "vlan":
        return _VLAN_UNSUPPORTED
    if t == "local":
        return None
    return f"network type {t!r} is not supported by the Linux bridge backend"


def _infra_device(net: NetworkSpec, cfg: LinuxBridgeConfig) -> str | None:
    """The device the agent itself puts on ``net``'s bridge (VXLAN device or uplink)."""
    if net.network_type == "vxlan" and net.segmentation_id:
        return vxlan_name(net.segmentation_id)
    if net.network_type == "flat" and (net.physical_network or "") not in cfg.bridge_mappings:
        return cfg.physical_interface_mappings.get(net.physical_network or "")
    return None


def ports_without_room(desired: HostDesired, observed: LinuxObserved,
                       cfg: LinuxBridgeConfig) -> dict[str, str]:
    """Pure: device -> bridge, for admin-up ports that are not on their bridge yet
    and do not fit on it (see :data:`BRIDGE_MAX_PORTS`). What the same pass
    releases from a bridge makes room (the plan detaches before it attaches);
    ports are taken in ``desired``'s order, so the plan and the status report
    agree on which."""
    links = observed.links
    mapped = set(cfg.bridge_mappings.values())
    wanted: dict[str, set[str]] = {}
    new: list[tuple[str, str]] = []
    for net in desired.active_networks():
        if _problem(net, cfg, observed) is not None:
            continue
        br = _net_bridge(net, cfg)
        on_br = wanted.setdefault(br, set())
        infra = _infra_device(net, cfg)
        if infra is not None:
            on_br.add(infra)
        for port in desired.ports_of(net.network_id):
            link = links.get(port.device)
            if link is None or not port.admin_state_up:
                continue
            on_br.add(port.device)
            if link.master != br:
                new.append((port.device, br))
    if not new:
        return {}
    # Slaves that stay: wanted there, or an operator's device on a mapped bridge.
    room = {br: BRIDGE_MAX_PORTS for br in wanted}
    for link in links.values():
        master = link.master
        if master in room and (link.name in wanted[master]
                               or (master in mapped and not link.name.startswith("tap"))):
            room[master] -= 1
    for br, devices in wanted.items():
        # Not yet on the bridge, wanted there: the VXLAN device or uplink goes first.
        room[br] -= sum(1 for d in devices
                        if not d.startswith("tap") and (d not in links or links[d].master != br))
    out: dict[str, str] = {}
    for device, br in new:
        if room[br] > 0:
            room[br] -= 1
        else:
            out[device] = br
    return out


def plan_linuxbridge(desired: HostDesired, observed: LinuxObserved,
                     cfg: LinuxBridgeConfig) -> Plan:
    """Pure: the operations that make ``observed`` match ``desired`` (see module docstring)."""
    links = observed.links
    ops: list[Op] = []
    problems: dict[str, str] = {}
    #: device -> bridge it must be enslaved to (moving a tap between bridges is
    #: one AttachPort, so nothing that is wanted elsewhere is ever detached).
    placement: dict[str, str] = {}
    keep_bridges: set[str] = set()
    keep_vxlan: set[str] = set()
    mapped = set(cfg.bridge_mappings.values())
    full = ports_without_room(desired, observed, cfg)

    for net in desired.active_networks():
        br = _net_bridge(net, cfg)
        keep_bridges.add(br)
        if net.network_type == "vxlan" and net.segmentation_id:
            keep_vxlan.add(vxlan_name(net.segmentation_id))
        why = _problem(net, cfg, observed)
        if why is not None:
            # Leave whatever exists alone: tearing down a bridge because an
            # uplink is briefly missing would cut the VMs that still work.
            problems[net.network_id] = why
            placement.update({s.name: br for s in observed.slaves_of(br)})
            continue
        bridge = links.get(br)
        if bridge is None:
            ops.append(EnsureBridge(br))
        elif not bridge.up:
            ops.append(SetLinkUp(br))
        if net.network_type == "vxlan":
            assert cfg.local_ip is not None
            vx_ops, _ = plan_vxlan(net, desired.remotes_of(net.network_id), observed,
                                   cfg.local_ip, cfg.udp_port, master=br)
            ops += vx_ops
            placement[vxlan_name(net.segmentation_id or 0)] = br
        elif net.network_type == "flat" and br not in mapped:
            iface = cfg.physical_interface_mappings[net.physical_network or ""]
            placement[iface] = br
            uplink = links[iface]
            if uplink.master != br:
                ops.append(AttachPort(iface, br))
            if not uplink.up:
                ops.append(SetLinkUp(iface))
        for port in desired.ports_of(net.network_id):
            link = links.get(port.device)
            if link is None or port.device in full:
                continue  # not plugged yet, or no room: reported DOWN
            if port.admin_state_up:
                placement[port.device] = br
                if link.master != br:
                    ops.append(AttachPort(port.device, br))
                if not link.up:
                    ops.append(SetLinkUp(port.device))
            elif link.up:
                ops.append(SetLinkDown(port.device))

    # Release what sits on our bridges but is not wanted anywhere.
    stray = [name for name, link in links.items() if link.master is not None
             and name not in placement and _releasable(name, link.master, keep_bridges, mapped)]
    # Released first: on a full bridge they make the room the attaches need.
    ops[:0] = [DetachPort(name) for name in sorted(stray)]
    ops += plan_stale_vxlan(observed, keep_vxlan)
    ops += [DeleteBridge(name) for name in sorted(
        name for name, link in links.items()
        if link.kind == "bridge" and name.startswith("brq") and name not in keep_bridges)]
    return Plan(ops=tuple(ops), problems=problems)


def _releasable(name: str, master: str, keep_bridges: set[str], mapped: set[str]) -> bool:
    """Whether an unwanted ``name`` on ``master`` is ours to release. On an operator's
    mapped bridge only our own kind of device (taps) is touched; a brq bridge about
    to be deleted releases its ports by itself."""
    ours = master.startswith("brq") or (master in mapped and name.startswith("tap"))
    return ours and (master in keep_bridges or master in mapped)


def port_status_linuxbridge(desired: HostDesired, observed: LinuxObserved,
                            cfg: LinuxBridgeConfig, converged: bool = False,
                            ) -> dict[str, PortStatus]:
    """Pure: a port is up when its tap is up and enslaved to its network's (up) bridge.

    :param converged: ``observed`` was taken *before* a plan that then applied
        without error, so the wiring is right by construction; only presence counts.
    """
    out: dict[str, PortStatus] = {}
    up = PortStatus(True)
    full = ports_without_room(desired, observed, cfg)
    for net in desired.active_networks():
        why = _problem(net, cfg, observed)
        br = _net_bridge(net, cfg)
        bridge = observed.links.get(br)
        for port in desired.ports_of(net.network_id):
            link = observed.links.get(port.device)
            if why is not None:
                out[port.port_id] = PortStatus(False, why)
            elif not port.admin_state_up:
                out[port.port_id] = PortStatus(False, "admin_state_up is false")
            elif link is None:
                out[port.port_id] = PortStatus(False, f"device {port.device} not present")
            elif port.device in full:
                out[port.port_id] = PortStatus(
                    False, f"bridge {br} is full ({BRIDGE_MAX_PORTS} ports, the kernel's limit)")
            elif not converged and (
                    link.master != br or not link.up or bridge is None or not bridge.up):
                out[port.port_id] = PortStatus(False, f"device {port.device} not wired to {br}")
            else:
                out[port.port_id] = up
    return out


class LinuxBridgeBackend(Backend[LinuxObserved]):
    """The Linux bridge data plane of one host (network namespace ``netns``; None = current).

    Stateless between calls: everything it needs is re-read by :meth:`observe`
    (or handed back by the caller, :meth:`observe_since`), so a fresh instance
    after an agent restart behaves like the old one.
    """

    name = "linuxbridge"

    def __init__(self, config: LinuxBridgeConfig, netns: str | None = None) -> None:
        self.config = config
        self.netns = netns

    def observe(self) -> LinuxObserved:
        return observe_linux(self.netns)

    def device_monitor(self, notify: Callable[[DeviceNews], None]) -> DeviceMonitor:
        """``ip monitor link`` in the host's namespace: taps that appear or go."""
        return LinkMonitor(self.netns, notify)

    def observe_since(self, baseline: Baseline[LinuxObserved], desired: HostDesired,
                      devices: Collection[str]) -> LinuxObserved:
        return refresh(baseline.observed, baseline.applied, desired, devices,
                       lambda names: read_links(self.netns, names))

    def plan(self, desired: HostDesired, observed: LinuxObserved) -> Plan:
        return plan_linuxbridge(desired, observed, self.config)

    def port_status(self, desired: HostDesired, observed: LinuxObserved,
                    converged: bool = False) -> dict[str, PortStatus]:
        return port_status_linuxbridge(desired, observed, self.config, converged)

    def apply(self, ops: Sequence[Op]) -> ApplyResult:
        return apply_kernel(self.netns, ops)


class LinuxBridgeKind(BackendKind):
    """Linux bridge hosts (entry point ``linuxbridge``)."""

    name = "linuxbridge"
    agent_type = "Linux bridge agent"
    binary = "netplex-linuxbridge-agent"

    def configurations(self, settings: AgentSettings) -> dict[str, Any]:
        return {"interface_mappings": dict(settings.physical_interface_mappings),
                "bridge_mappings": dict(settings.lb_bridge_mappings)}

    def build(self, settings: AgentSettings) -> FilteredBackend:
        """The bridge backend with security group enforcement (:mod:`netplex.agent.secgroups_backend`)."""
        return with_filter(LinuxBridgeBackend(LinuxBridgeConfig(
            local_ip=settings.local_ip or None,
            physical_interface_mappings=dict(settings.physical_interface_mappings),
            bridge_mappings=dict(settings.lb_bridge_mappings),
            udp_port=settings.udp_port,
            enable_vxlan=settings.enable_vxlan and "vxlan" in settings.tunnel_types,
        ), netns=settings.netns or None), "bridge", netns=settings.netns or None)
