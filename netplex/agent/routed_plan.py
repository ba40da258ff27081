"""Routed (L3, calico-style) hosts: the observed state, the operations, and the pure plan.

For every port bound to this host (admin up) whose tap exists:

* the tap is up; proxy ARP, IPv4 and IPv6 forwarding and proxy NDP are on
  for it, with no proxy delay (the kernel would otherwise wait up to 0.8 s
  before each proxied answer), and strict reverse-path filtering: a VM that
  sends from an IPv4 address that is not its own (another VM's, or an unknown
  one) reaches nobody, not even the gateway (IPv6: see isolation below).
  MAC checks are not done here (nftables, see the security-group work);
* **isolation** (feed mode): each routed network has its own routing table
  (:func:`network_table`) holding its endpoints' routes, local and remote;
  policy rules send a tap's traffic to that table only, and only from the
  VM's own addresses (``prio 1000 iif TAP from VM-IP lookup T`` per address,
  then ``prio 1001 iif TAP prohibit`` per family), so a VM reaches only its
  own network's endpoints, proxy ARP answers only for those, and a VM sending
  from an address not its own (IPv4 or IPv6) reaches nobody. (The host's
  ``local`` table comes first: NDP, link-local and the gateway addresses are
  answered as before.) Every rule is matched linearly per packet, so a host
  with thousands of taps pays for thousands of rules. ``allowed_address_pairs``
  are honoured: each pair's address or CIDR is routed to its VM (locally and
  from the other hosts) and accepted as a source from its tap. Local endpoints' routes
  are in the main table too (traffic from the underlay). In BGP mode BIRD
  installs the remote routes in the main table, so the rules are left out
  there: routed networks are not isolated with BGP, and IPv6 sources are not
  checked;
* a host route ``ip/32`` (``ip/128``) ``dev tap scope link proto 78`` to
  each fixed IP, and a permanent neighbour entry ``ip -> port MAC`` on the tap;
* the **gateway**: each gateway IP of the port's network (from the server's
  subnets) is a host address (/32, /128 without DAD) on the tap itself, so
  ARP and NDP for it are answered by the kernel as for any local address and
  a ping of the gateway is answered by the host. The same address sits on
  every tap of the network (an anycast gateway: each host is its own router);
* IPv4 needs nothing more: the VM's subnet is on-link for it, so it ARPs for
  its peers' addresses and proxy ARP answers for every address the host routes
  through another device. IPv6 proxy NDP answers only what is listed, so each
  tap gets a proxy entry for every other IPv6 endpoint of its network (local
  and remote): O(ports x endpoints per network) entries, fine for the sizes
  of a lab; a large IPv6 network would rather advertise its prefix off-link.

For every routed port of another host on a network with a local port (feed
mode): ``ip/32 via <that host's tunneling_ip> proto 78``; IPv6 addresses via
its IPv6 underlay address (``configurations.tunneling_ip6``, IPv6 routes
cannot have an IPv4 gateway) when it reported one.

What the plan owns: routes of protocol :data:`ROUTE_PROTO` in any table
(nobody else's are even read), rules of priorities :data:`RULE_LOOKUP` and
:data:`RULE_PROHIBIT` on ``tap*`` devices, and on ``tap*`` devices their
permanent neighbour entries, proxy entries and host addresses. Kernel
parameters are set, never reset
(they go with the tap). Taps themselves belong to the compute side, except
those the agent made when ``[routed] create_taps`` is on (marked with the
alias :data:`TAP_ALIAS`), which it deletes again when their port goes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from netplex.agent.backend_api import PortStatus
from netplex.agent.model import HostDesired, PortSpec
from netplex.agent.ops import Op, Plan, SetLinkDown, SetLinkUp
from netplex.linux.neigh import Neighbour, ProxyEntry
from netplex.linux.routing import MAIN_TABLE, DeviceState, Route, Rule

__all__ = [
    "GLOBAL_SYSCTLS",
    "ROUTE_PROTO",
    "RULE_LOOKUP",
    "RULE_PROHIBIT",
    "TAP_ALIAS",
    "TAP_PREFIX",
    "AddAddress",
    "AddNeighbour",
    "AddProxy",
    "AddRoute",
    "AddRule",
    "CreateTap",
    "DelAddress",
    "DelNeighbour",
    "DelProxy",
    "DelRoute",
    "DelRule",
    "DeleteTap",
    "RoutedObserved",
    "RoutedPlanConfig",
    "RunBird",
    "SetSysctl",
    "advance",
    "network_table",
    "plan_routed",
    "port_status_routed",
    "tap_sysctls",
    "with_taps",
]

#: Routing protocol number of every route the routed agent installs (0x4e, "N"; not in
#: /etc/iproute2/rt_protos). Observing reads, and the plan removes, only routes of this protocol.
ROUTE_PROTO = 78
TAP_PREFIX = "tap"
#: ``ifalias`` of taps the agent created itself (only those it ever deletes).
TAP_ALIAS = "netplex-routed"
#: Priorities of the per-tap policy rules (isolation, feed mode): look up the tap's
#: network's table, else drop. Rules of other priorities are never read or touched.
RULE_LOOKUP, RULE_PROHIBIT = 1000, 1001


def network_table(network_id: str) -> int:
    """The routing table of a routed network on every host: 0x4E (``N``) and 24 bits of a hash
    of its id, the same everywhere without coordination (a clash of two networks' tables on one
    host would merge their routing domains: one in 16 million per pair)."""
    return (0x4E << 24) | int(hashlib.sha1(network_id.encode()).hexdigest()[:6], 16)

#: Host-wide parameters a routed host needs (a router, answering NDP for others).
GLOBAL_SYSCTLS: Mapping[str, str] = {
    "net.ipv4.ip_forward": "1",
    "net.ipv6.conf.all.forwarding": "1",
    "net.ipv6.conf.all.proxy_ndp": "1",
}


def tap_sysctls(dev: str) -> dict[str, str]:
    """Per-tap parameters: proxy ARP/NDP, forwarding, answers without delay, and strict
    reverse-path filtering (IPv4 anti-spoofing: a packet - or an ARP request - whose source
    is not routed back through the same tap, i.e. is not one of this VM's addresses, is dropped)."""
    return {
        f"net.ipv4.conf.{dev}.rp_filter": "1",
        f"net.ipv4.conf.{dev}.proxy_arp": "1",
        f"net.ipv4.conf.{dev}.forwarding": "1",
        f"net.ipv4.neigh.{dev}.proxy_delay": "0",
        f"net.ipv6.conf.{dev}.forwarding": "1",
        f"net.ipv6.conf.{dev}.proxy_ndp": "1",
        f"net.ipv6.neigh.{dev}.proxy_delay": "0",
    }


# --- operations ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetSysctl(Op):
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class CreateTap(Op):
    """A persistent tap for a port whose compute side made none (``create_taps``)."""

    name: str


@dataclass(frozen=True, slots=True)
class DeleteTap(Op):
    """Delete a tap this agent created (alias :data:`TAP_ALIAS`)."""

    name: str


@dataclass(frozen=True, slots=True)
class AddRoute(Op):
    route: Route


@dataclass(frozen=True, slots=True)
class DelRoute(Op):
    route: Route


@dataclass(frozen=True, slots=True)
class AddRule(Op):
    rule: Rule


@dataclass(frozen=True, slots=True)
class DelRule(Op):
    rule: Rule


@dataclass(frozen=True, slots=True)
class AddNeighbour(Op):
    entry: Neighbour


@dataclass(frozen=True, slots=True)
class DelNeighbour(Op):
    entry: Neighbour


@dataclass(frozen=True, slots=True)
class AddProxy(Op):
    entry: ProxyEntry


@dataclass(frozen=True, slots=True)
class DelProxy(Op):
    entry: ProxyEntry


@dataclass(frozen=True, slots=True)
class AddAddress(Op):
    """Host address ``ip`` (/32 or /128) on ``dev``: the gateway, answered by the host."""

    dev: str
    ip: str


@dataclass(frozen=True, slots=True)
class DelAddress(Op):
    dev: str
    ip: str


@dataclass(frozen=True, slots=True)
class RunBird(Op):
    """BGP mode: BIRD runs with exactly ``config`` (written, then reloaded or started)."""

    config: str

    def __str__(self) -> str:
        return f"RunBird(<{len(self.config.splitlines())} lines of bird.conf>)"


# --- observed state and configuration ------------------------------------------------


@dataclass(frozen=True)
class RoutedObserved:
    """What a routed host has (only what the plan owns or needs), plus the server facts
    the change feed does not carry to agents (subnet gateways, IPv6 underlay addresses)."""

    taps: Mapping[str, DeviceState] = field(default_factory=dict)
    routes: frozenset[Route] = frozenset()
    neighbours: frozenset[Neighbour] = frozenset()
    proxies: frozenset[ProxyEntry] = frozenset()
    sysctls: Mapping[str, str] = field(default_factory=dict)
    #: network id -> gateway IPs of its subnets.
    gateways: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: host -> its IPv6 underlay address (routed agents' ``configurations.tunneling_ip6``).
    next_hops6: Mapping[str, str] = field(default_factory=dict)
    #: BGP mode: the config our BIRD runs with (None: not running, or not BGP mode).
    bird_config: str | None = None
    #: Our policy rules (priorities RULE_LOOKUP / RULE_PROHIBIT on tap devices).
    rules: frozenset[Rule] = frozenset()


@dataclass(frozen=True)
class RoutedPlanConfig:
    #: This host's underlay addresses (routes to them would be loops).
    local_ip: str = ""
    local_ip6: str = ""
    #: Create a tap for a bound port that has none (see the module docstring).
    create_taps: bool = False
    #: Install other hosts' endpoints (feed mode); off when BGP distributes them.
    install_remote_routes: bool = True
    #: BGP mode: the BIRD config that must run ("" in feed mode: no BIRD).
    bird_config: str = ""
    #: Isolate routed networks from each other: a tap's traffic is routed by its network's
    #: table only (feed mode; BGP-learned routes are in the main table, so not with BGP).
    isolate: bool = True


# --- the plan -----------------------------------------------------------------------------


# Parsing addresses is most of a plan's time on a host with 10,000 remote endpoints;
# the same addresses come back every pass, so each is parsed once.
@functools.lru_cache(maxsize=1 << 17)
def _norm(ip: str) -> tuple[str, int]:
    """(canonical text, version) of an address, as the kernel prints it."""
    addr = ipaddress.ip_address(ip)
    return str(addr), addr.version


@functools.lru_cache(maxsize=1 << 14)
def _allowed(cidr: str) -> tuple[str, int, str] | None:
    """An allowed-address-pair entry as (route prefix, version, rule source), None if unusable."""
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None
    host = net.prefixlen == net.max_prefixlen
    return str(net), net.version, str(net.network_address) if host else str(net)


def _version(ip: str) -> int:
    return _norm(ip)[1]


def _host_prefix(ip: str) -> str:
    text, version = _norm(ip)
    return f"{text}/{32 if version == 4 else 128}"


@dataclass
class _Want:
    routes: set[Route] = field(default_factory=set)
    neighbours: set[Neighbour] = field(default_factory=set)
    proxies: set[ProxyEntry] = field(default_factory=set)
    rules: set[Rule] = field(default_factory=set)
    addresses: set[tuple[str, str]] = field(default_factory=set)
    sysctls: dict[str, str] = field(default_factory=dict)


def _wired(port: PortSpec, observed: RoutedObserved) -> bool:
    """Whether the plan wires ``port`` now: admin up and its tap exists."""
    return port.admin_state_up and port.device in observed.taps


def _desired(desired: HostDesired, observed: RoutedObserved, cfg: RoutedPlanConfig) -> _Want:
    want = _Want()
    isolate = cfg.isolate and cfg.install_remote_routes
    v6_by_net: dict[str, set[str]] = {}
    for p in desired.ports:
        v6_by_net.setdefault(p.network_id, set()).update(ip for ip in p.fixed_ips if _version(ip) == 6)
    for r in desired.routed_remotes:
        v6_by_net.setdefault(r.network_id, set()).update(ip for ip in r.ips if _version(ip) == 6)
    pairs = [(p.network_id, p.allowed_ips) for p in desired.ports]
    pairs += [(r.network_id, r.allowed_ips) for r in desired.routed_remotes]
    for network_id, allowed in pairs:
        for cidr in allowed:
            pair = _allowed(cidr)
            if pair is not None and pair[1] == 6 and pair[0].endswith("/128"):
                v6_by_net.setdefault(network_id, set()).add(pair[2])
    for port in desired.ports:
        if not _wired(port, observed):
            continue
        dev = port.device
        want.sysctls.update(tap_sysctls(dev))
        gateways = observed.gateways.get(port.network_id, ())
        table = network_table(port.network_id)
        if isolate:
            for family in (4, 6):
                want.rules.add(Rule(family, RULE_PROHIBIT, dev, None))
            # From the VM's own addresses only: anything else it sends is prohibited.
            want.rules.update(Rule(_version(ip), RULE_LOOKUP, dev, table, _norm(ip)[0])
                              for ip in port.fixed_ips)
        # Allowed address pairs: the VM may send from them, and they are routed to it.
        for cidr in port.allowed_ips:
            pair = _allowed(cidr)
            if pair is None:
                continue
            want.routes.add(Route(pair[0], dev=dev))
            if isolate:
                want.routes.add(Route(pair[0], dev=dev, table=table))
                want.rules.add(Rule(pair[1], RULE_LOOKUP, dev, table, pair[2]))
        for ip in port.fixed_ips:
            want.routes.add(Route(_host_prefix(ip), dev=dev))
            if isolate:
                want.routes.add(Route(_host_prefix(ip), dev=dev, table=table))
            want.neighbours.add(Neighbour(dev, _norm(ip)[0], port.mac))
        for gw in gateways:
            want.addresses.add((dev, _norm(gw)[0]))
        own = {_norm(ip)[0] for ip in port.fixed_ips}
        gws = {_norm(gw)[0] for gw in gateways}
        for ip in v6_by_net.get(port.network_id, ()):
            norm = _norm(ip)[0]
            if norm not in own and norm not in gws:
                want.proxies.add(ProxyEntry(dev, norm))
    if want.sysctls:
        want.sysctls.update(GLOBAL_SYSCTLS)
    if cfg.install_remote_routes:
        local = {r.dst for r in want.routes}
        for r in desired.routed_remotes:
            hop6 = observed.next_hops6.get(r.host, "")
            # Isolated: only the network's own taps may reach it (nobody else needs to).
            table = network_table(r.network_id) if isolate else MAIN_TABLE
            dsts = [(_host_prefix(ip), _version(ip)) for ip in r.ips]
            dsts += [(p[0], p[1]) for p in map(_allowed, r.allowed_ips) if p is not None]
            for dst, version in dsts:
                hop = r.next_hop if version == 4 else hop6
                if hop and hop not in (cfg.local_ip, cfg.local_ip6) and dst not in local:
                    want.routes.add(Route(dst, via=hop, table=table))
    return want


def _route_key(r: Route) -> tuple[str, str, str, int]:
    return r.dst, r.dev or "", r.via or "", r.table


def _rule_key(r: Rule) -> tuple[int, int, str, int, str]:
    return r.family, r.priority, r.iif, -1 if r.table is None else r.table, r.src or ""


def plan_routed(desired: HostDesired, observed: RoutedObserved, cfg: RoutedPlanConfig) -> Plan:
    """Pure: operations that turn ``observed`` into ``desired`` (see the module docstring)."""
    ops: list[Op] = []
    wanted_taps = {p.device for p in desired.ports}
    for port in desired.ports:
        tap = observed.taps.get(port.device)
        if tap is None:
            if cfg.create_taps and port.admin_state_up:
                ops.append(CreateTap(port.device))
        elif port.admin_state_up and not tap.up:
            ops.append(SetLinkUp(port.device))
        elif not port.admin_state_up and tap.up:
            ops.append(SetLinkDown(port.device))
    ops += [DeleteTap(name) for name, tap in sorted(observed.taps.items())
            if tap.alias == TAP_ALIAS and name not in wanted_taps]
    want = _desired(desired, observed, cfg)
    ops += [SetSysctl(k, v) for k, v in sorted(want.sysctls.items()) if observed.sysctls.get(k) != v]
    # Removals first: a route that moved (new next hop, or now local) is replaced after.
    ops += [DelRoute(r) for r in sorted(observed.routes - want.routes, key=_route_key)]
    ops += [DelNeighbour(n) for n in sorted(observed.neighbours - want.neighbours)]
    ops += [DelProxy(p) for p in sorted(observed.proxies - want.proxies)]
    have_addresses = {(name, ip) for name, tap in observed.taps.items() for ip in tap.addresses}
    ops += [DelAddress(dev, ip) for dev, ip in sorted(have_addresses - want.addresses)]
    ops += [AddAddress(dev, ip) for dev, ip in sorted(want.addresses - have_addresses)]
    ops += [AddNeighbour(n) for n in sorted(want.neighbours - observed.neighbours)]
    ops += [AddProxy(p) for p in sorted(want.proxies - observed.proxies)]
    ops += [AddRoute(r) for r in sorted(want.routes - observed.routes, key=_route_key)]
    # Rules last: a tap's traffic moves to its network's table once that table is filled.
    ops += [DelRule(r) for r in sorted(observed.rules - want.rules, key=_rule_key)]
    ops += [AddRule(r) for r in sorted(want.rules - observed.rules, key=_rule_key)]
    if cfg.bird_config and observed.bird_config != cfg.bird_config:
        ops.append(RunBird(cfg.bird_config))
    return Plan(ops=tuple(ops))


def port_status_routed(desired: HostDesired, observed: RoutedObserved,
                       converged: bool = False) -> dict[str, PortStatus]:
    """Pure: a port is up when its tap is up and (unless ``converged``) its host routes are there."""
    out: dict[str, PortStatus] = {}
    for port in desired.ports:
        tap = observed.taps.get(port.device)
        if not port.admin_state_up:
            out[port.port_id] = PortStatus(False, "admin_state_up is false")
        elif tap is None:
            out[port.port_id] = PortStatus(False, f"device {port.device} not present")
        elif not converged and (not tap.up or any(
                Route(_host_prefix(ip), dev=port.device) not in observed.routes
                for ip in port.fixed_ips)):
            out[port.port_id] = PortStatus(False, f"routes to {port.device} not installed")
        else:
            out[port.port_id] = PortStatus(True)
    return out


# --- the snapshot after our own operations ------------------------------------------------


def advance(observed: RoutedObserved, ops: Iterable[Op]) -> RoutedObserved:
    """Pure: ``observed`` once ``ops`` were applied without error (the agent is the only writer
    of what the plan owns, so this is the host now, as far as its own doing goes)."""
    taps = dict(observed.taps)
    routes, neighbours = set(observed.routes), set(observed.neighbours)
    proxies, rules = set(observed.proxies), set(observed.rules)
    sysctls = dict(observed.sysctls)
    bird_config = observed.bird_config

    def change(name: str, **kw: object) -> None:
        if name in taps:
            taps[name] = dataclasses.replace(taps[name], **kw)  # type: ignore[arg-type]

    for op in ops:
        match op:
            case CreateTap(name):
                taps[name] = DeviceState(name, kind="tun", up=True, alias=TAP_ALIAS)
            case DeleteTap(name):
                taps.pop(name, None)
            case SetLinkUp(name):
                change(name, up=True)
            case SetLinkDown(name):
                change(name, up=False)
            case AddAddress(dev, ip) if dev in taps:
                change(dev, addresses=taps[dev].addresses | {ip})
            case DelAddress(dev, ip) if dev in taps:
                change(dev, addresses=taps[dev].addresses - {ip})
            case AddRoute(route):
                routes.add(route)
            case DelRoute(route):
                routes.discard(route)
            case AddNeighbour(entry):
                neighbours.add(entry)
            case DelNeighbour(entry):
                neighbours.discard(entry)
            case AddProxy(entry):
                proxies.add(entry)
            case DelProxy(entry):
                proxies.discard(entry)
            case AddRule(rule):
                rules.add(rule)
            case DelRule(rule):
                rules.discard(rule)
            case SetSysctl(key, value):
                sysctls[key] = value
            case RunBird(config):
                bird_config = config
    return dataclasses.replace(observed, taps=taps, routes=frozenset(routes), neighbours=frozenset(neighbours),
                               proxies=frozenset(proxies), rules=frozenset(rules), sysctls=sysctls,
                               bird_config=bird_config)


def with_taps(observed: RoutedObserved, taps: Mapping[str, DeviceState],
              new_sysctls: Mapping[str, str]) -> RoutedObserved:
    """Pure: ``observed`` with the taps as they are now (the compute side plugs and unplugs them).

    What the kernel removes with a deleted device goes from the snapshot too (its routes,
    neighbour and proxy entries, its parameters; policy rules stay, as in the kernel);
    ``new_sysctls`` are the parameters read for taps the snapshot did not have.
    """
    gone = set(observed.taps) - set(taps)
    if not gone and not new_sysctls and taps == observed.taps:
        return observed
    sysctls = {k: v for k, v in observed.sysctls.items()
               if not any(f".{dev}." in k for dev in gone)}
    sysctls.update(new_sysctls)
    return dataclasses.replace(
        observed, taps=dict(taps), sysctls=sysctls,
        routes=frozenset(r for r in observed.routes if r.dev not in gone),
        neighbours=frozenset(n for n in observed.neighbours if n.dev not in gone),
        proxies=frozenset(p for p in observed.proxies if p.dev not in gone))
