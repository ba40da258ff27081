"""Desired state of one host's data plane, built from server data; pure and frozen.

The agent's functional core (STYLE §4, "What to absorb" 6) is::

    desired = desired_from_api(host, ...)        # what the server says (this module)
    observed = backend.observe()                 # what the kernel / OVS has
    plan = backend.plan(desired, observed)       # pure: a list of operations
    backend.apply(plan.ops)                      # imperative shell

Nothing in this module does I/O. Observed-state types for the kernel live in
:mod:`netplex.linux.ip` (they describe the kernel, not Netplex) and are
re-exported here; the OVS observed state is :class:`OvsObserved`.

A host only instantiates a network while at least one of its ports is bound
here ("last port leaves -> bridge/tag removed"), so :class:`HostDesired`
contains exactly the networks of its local ports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from netplex.agent.names import bridge_name, tap_name, vxlan_name
from netplex.linux.ip import FdbEntry, LinkState, LinuxObserved, VxlanInfo

if TYPE_CHECKING:
    from netplex.agent.secgroups import SecurityDesired

__all__ = [
    "DESIRED_PORT_KEYS",
    "FLOOD_MAC",
    "FdbEntry",
    "HostDesired",
    "LinkState",
    "LinuxObserved",
    "NetworkSpec",
    "OvsBridgeState",
    "OvsObserved",
    "OvsPortState",
    "PortSpec",
    "RemoteEndpoint",
    "RoutedEndpoint",
    "VxlanInfo",
    "bridge_name",
    "desired_from_api",
    "tap_name",
    "tunnel_ips_from_agents",
    "vxlan_name",
]

#: The all-zeros MAC: a VXLAN FDB entry with it is the flood (BUM) list.
FLOOD_MAC = "00:00:00:00:00:00"

#: Network types a host data plane knows how to build (subject to backend/config).
KNOWN_TYPES = frozenset({"flat", "vlan", "vxlan", "local"})

#: ``binding:vif_type`` of routed (L3) ports; with ``vif_details.connectivity`` ``l3``
#: (or no connectivity given) such a port on another host is a :class:`RoutedEndpoint`.
ROUTED_VIF_TYPE = "tap"

#: vif types that mean "not (successfully) bound", so not a live endpoint.
_UNBOUND_VIF_TYPES = frozenset({"", "unbound", "binding_failed"})


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    """One network as this host must build it (the segment it uses here)."""

    network_id: str
    network_type: str
    physical_network: str | None = None
    segmentation_id: int | None = None
    mtu: int = 1500

    def __post_init__(self) -> None:
        if self.network_type == "vxlan" and not self.segmentation_id:
            raise ValueError(f"vxlan network {self.network_id} needs a segmentation_id (VNI)")


@dataclass(frozen=True, slots=True)
class PortSpec:
    """A port bound to this host."""

    port_id: str
    network_id: str
    mac: str
    fixed_ips: tuple[str, ...] = ()
    admin_state_up: bool = True
    #: ``allowed_address_pairs`` addresses (IPs or CIDRs) the VM may also use; routed
    #: hosts route them to the VM too (L2 backends ignore them).
    allowed_ips: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # MACs are compared with what the kernel reports (lower case).
        object.__setattr__(self, "mac", self.mac.lower())

    @property
    def device(self) -> str:
        return tap_name(self.port_id)


@dataclass(frozen=True, slots=True)
class RemoteEndpoint:
    """L2 population: another host's tunnel endpoint and its ports on one VXLAN network.

    ``ports`` holds (mac, ip) pairs; ip may be "" for a port without fixed IPs.
    """

    network_id: str
    tunnel_ip: str
    ports: frozenset[tuple[str, str]] = frozenset()

    @property
    def macs(self) -> frozenset[str]:
        return frozenset(mac.lower() for mac, _ in self.ports)


@dataclass(frozen=True, slots=True)
class RoutedEndpoint:
    """A routed port bound on another host, on a network with local ports here.

    Routed hosts install a host route to each of ``ips`` with ``host``'s
    underlay address ``next_hop`` (its agent's ``tunneling_ip``; "" when that
    host reported none) as the gateway. L2 backends ignore these.
    """

    port_id: str
    network_id: str
    host: str
    ips: tuple[str, ...] = ()
    next_hop: str = ""
    #: Its ``allowed_address_pairs`` addresses (IPs or CIDRs), routed like ``ips``.
    allowed_ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class HostDesired:
    """Everything one host's data plane should contain. Build with :func:`desired_from_api`
    or directly (tests). Invariant: every port's network is in ``networks``."""

    host: str
    networks: tuple[NetworkSpec, ...] = ()
    ports: tuple[PortSpec, ...] = ()
    remotes: tuple[RemoteEndpoint, ...] = ()
    #: Routed ports of other hosts on this host's networks (see :class:`RoutedEndpoint`).
    routed_remotes: tuple[RoutedEndpoint, ...] = ()
    #: Security groups / port security of the local ports (None: not managed here).
    security: SecurityDesired | None = None
    _by_id: Mapping[str, NetworkSpec] = field(init=False, repr=False, compare=False)
    # Grouped once: planners ask per network, and a host may have 1,000s of ports.
    _ports_by_net: Mapping[str, tuple[PortSpec, ...]] = field(init=False, repr=False,
                                                              compare=False)
    _remotes_by_net: Mapping[str, tuple[RemoteEndpoint, ...]] = field(init=False, repr=False,
                                                                      compare=False)

    def __post_init__(self) -> None:
        by_id = {n.network_id: n for n in self.networks}
        if len(by_id) != len(self.networks):
            raise ValueError("duplicate network_id in HostDesired.networks")
        for p in self.ports:
            if p.network_id not in by_id:
                raise ValueError(f"port {p.port_id} refers to unknown network {p.network_id}")
        object.__setattr__(self, "_by_id", by_id)
        object.__setattr__(self, "_ports_by_net", _group(self.ports))
        object.__setattr__(self, "_remotes_by_net", _group(self.remotes))

    def network(self, network_id: str) -> NetworkSpec:
        return self._by_id[network_id]

    def ports_of(self, network_id: str) -> tuple[PortSpec, ...]:
        return self._ports_by_net.get(network_id, ())

    def remotes_of(self, network_id: str) -> tuple[RemoteEndpoint, ...]:
        return self._remotes_by_net.get(network_id, ())

    def active_networks(self) -> tuple[NetworkSpec, ...]:
        """Networks with at least one local port (the ones this host instantiates)."""
        return tuple(n for n in self.networks if n.network_id in self._ports_by_net)


_Item = TypeVar("_Item", PortSpec, RemoteEndpoint)


def _group(items: Iterable[_Item]) -> dict[str, tuple[_Item, ...]]:
    """Items by network id, each group in the original order."""
    groups: dict[str, list[_Item]] = {}
    for item in items:
        groups.setdefault(item.network_id, []).append(item)
    return {nid: tuple(group) for nid, group in groups.items()}


# --- Observed Open vSwitch state ---------------------------------------------


@dataclass(frozen=True, slots=True)
class OvsBridgeState:
    name: str
    datapath_type: str = ""
    fail_mode: str = ""


@dataclass(frozen=True, slots=True)
class OvsPortState:
    """One OVS Port (with its single Interface) as read from OVSDB."""

    name: str
    bridge: str
    tag: int | None = None
    #: Port other_config:netplex-net-id: the network whose local VLAN ``tag`` is.
    #: This is how local tags survive agent restarts: they live in OVSDB.
    net_id: str | None = None
    #: Interface external_ids:iface-id (set by the compute side for VM ports).
    iface_id: str | None = None
    ofport: int | None = None
    type: str = ""
    #: options:peer for patch ports.
    peer: str | None = None
    #: Port protected: set on dead (tag 4095) ports so they cannot reach each other.
    protected: bool = False


@dataclass(frozen=True)
class OvsObserved:
    """What OVSDB, the flow tables and the kernel (for VXLAN devices) currently hold."""

    bridges: Mapping[str, OvsBridgeState] = field(default_factory=dict)
    ports: Mapping[str, OvsPortState] = field(default_factory=dict)
    #: Per bridge: cookies of the flows this agent installed (see openvswitch.FLOW_COOKIE_*).
    flows: Mapping[str, frozenset[int]] = field(default_factory=dict)
    linux: LinuxObserved = field(default_factory=LinuxObserved)

    def port_by_iface_id(self, bridge: str) -> dict[str, OvsPortState]:
        return {p.iface_id: p for p in self.ports.values()
                if p.bridge == bridge and p.iface_id}


# --- Building desired state from Neutron-shaped server data --------------------


def tunnel_ips_from_agents(agents: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """host -> tunneling_ip from Neutron agent dicts (``configurations.tunneling_ip``).

    Dead agents (``alive`` false) are still included: their VMs may well be
    running, and dropping their flood entry would cut them off.
    """
    out: dict[str, str] = {}
    for agent in agents:
        conf = agent.get("configurations") or {}
        ip = conf.get("tunneling_ip") or conf.get("local_ip")
        if agent.get("host") and ip:
            out[agent["host"]] = ip
    return out


def _network_segment(net: Mapping[str, Any]) -> NetworkSpec:
    segments = net.get("segments")
    seg: Mapping[str, Any] = segments[0] if segments else net
    return NetworkSpec(
        network_id=net["id"],
        network_type=seg.get("provider:network_type") or "local",
        physical_network=seg.get("provider:physical_network"),
        segmentation_id=seg.get("provider:segmentation_id"),
        mtu=int(net.get("mtu") or 1500),
    )


def _is_bound(port: Mapping[str, Any]) -> bool:
    return bool(port.get("binding:host_id")) and (
        port.get("binding:vif_type", "") not in _UNBOUND_VIF_TYPES)


#: The port attributes :func:`desired_from_api` reads (keep the two together): a
#: change to anything else - ``status`` above all, which every agent report
#: changes - cannot change any host's desired state.
DESIRED_PORT_KEYS = frozenset({"id", "network_id", "binding:host_id", "binding:vif_type",
                               "binding:vif_details", "mac_address", "fixed_ips", "admin_state_up",
                               "allowed_address_pairs"})


def _fixed_ips(port: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple([ip["ip_address"] for ip in port.get("fixed_ips") or ()])


def _allowed_ips(port: Mapping[str, Any]) -> tuple[str, ...]:
    pairs = port.get("allowed_address_pairs") or ()
    return tuple(str(p["ip_address"]) for p in pairs if isinstance(p, Mapping) and p.get("ip_address"))


def _port_spec(port: Mapping[str, Any], memo: MutableMapping[str, PortSpec] | None) -> PortSpec:
    spec = memo.get(port["id"]) if memo is not None else None
    if spec is None:
        spec = PortSpec(port_id=port["id"], network_id=port["network_id"],
                        mac=port["mac_address"], fixed_ips=_fixed_ips(port),
                        admin_state_up=bool(port.get("admin_state_up", True)),
                        allowed_ips=_allowed_ips(port))
        if memo is not None:
            memo[spec.port_id] = spec
    return spec


def desired_from_api(
    host: str,
    networks: Iterable[Mapping[str, Any]],
    ports: Iterable[Mapping[str, Any]],
    tunnel_ips: Mapping[str, str],
    specs: MutableMapping[str, PortSpec] | None = None,
) -> HostDesired:
    """Translate Neutron v2.0 resource dicts into this host's :class:`HostDesired`.

    :param host: this agent's host name (``binding:host_id`` of its ports).
    :param networks: network dicts (``id``, ``mtu``, ``provider:*`` or ``segments``).
        Multi-segment networks use their first segment here.
    :param ports: all ports the agent knows about, on any host: local ones
        become :class:`PortSpec`, remote ones on VXLAN networks feed L2 population,
        remote routed ones (vif_type ``tap``) become :class:`RoutedEndpoint`.
    :param tunnel_ips: host -> tunnel endpoint (see :func:`tunnel_ips_from_agents`).
    :param specs: local ports' :class:`PortSpec` by port id, reused and filled in;
        the caller drops a port's entry whenever one of its :data:`DESIRED_PORT_KEYS`
        changes (:class:`~netplex.agent.cache.HostCache` does).

    A port counts as present on a host once it is bound there (vif_type not
    unbound/binding_failed); we do not wait for ACTIVE, because ACTIVE is what
    the other host reports *after* wiring, and waiting would add a round trip.
    Ports with ``device_owner`` ``network:dhcp`` etc. are treated like any port.
    """
    nets = {n["id"]: _network_segment(n) for n in networks}
    local: list[PortSpec] = []
    remote: dict[tuple[str, str], set[tuple[str, str]]] = {}
    routed: list[RoutedEndpoint] = []
    for p in ports:
        net = nets.get(p.get("network_id", ""))
        if net is None or not _is_bound(p):
            continue
        if p["binding:host_id"] == host:
            local.append(_port_spec(p, specs))
        elif _is_routed(p):
            other = p["binding:host_id"]
            routed.append(RoutedEndpoint(port_id=p["id"], network_id=net.network_id, host=other,
                                         ips=_fixed_ips(p), next_hop=tunnel_ips.get(other, ""),
                                         allowed_ips=_allowed_ips(p)))
        elif net.network_type == "vxlan":
            tip = tunnel_ips.get(p["binding:host_id"])
            if tip is None:
                continue
            entries = remote.setdefault((net.network_id, tip), set())
            for ip in _fixed_ips(p) or ("",):
                entries.add((p["mac_address"].lower(), ip))
    used = {p.network_id for p in local}
    own_ip = tunnel_ips.get(host)
    remotes = tuple(
        RemoteEndpoint(network_id=nid, tunnel_ip=tip, ports=frozenset(entries))
        for (nid, tip), entries in sorted(remote.items())
        if nid in used and tip != own_ip
    )
    return HostDesired(
        host=host,
        networks=tuple(nets[nid] for nid in sorted(used)),
        ports=tuple(sorted(local, key=lambda p: p.port_id)),
        remotes=remotes,
        routed_remotes=tuple(sorted((r for r in routed if r.network_id in used),
                                    key=lambda r: r.port_id)),
    )


def _is_routed(port: Mapping[str, Any]) -> bool:
    if port.get("binding:vif_type") != ROUTED_VIF_TYPE:
        return False
    details = port.get("binding:vif_details") or {}
    return not isinstance(details, Mapping) or details.get("connectivity", "l3") == "l3"
