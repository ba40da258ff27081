"""The routed host's pure plan: desired ports and remote endpoints against an observed host."""

from __future__ import annotations

from typing import Any

from netplex.agent.model import HostDesired, NetworkSpec, PortSpec, RoutedEndpoint, desired_from_api
from netplex.agent.ops import SetLinkUp
from netplex.agent.routed import AGENT_TYPE, RoutedKind, op_lines
from netplex.agent.routed_plan import (
    GLOBAL_SYSCTLS,
    ROUTE_PROTO,
    RULE_LOOKUP,
    RULE_PROHIBIT,
    TAP_ALIAS,
    AddAddress,
    AddNeighbour,
    AddProxy,
    AddRoute,
    AddRule,
    CreateTap,
    DelAddress,
    DeleteTap,
    DelNeighbour,
    DelProxy,
    DelRoute,
    DelRule,
    RoutedObserved,
    RoutedPlanConfig,
    SetSysctl,
    network_table,
    plan_routed,
    port_status_routed,
    tap_sysctls,
)
from netplex.agent.settings import AgentSettings
from netplex.drivers.mechanisms.routed import AGENT_TYPE_ROUTED
from netplex.linux.neigh import Neighbour, ProxyEntry
from netplex.linux.routing import DeviceState, Route, Rule

NET = "11111111-2222-3333-4444-555555555555"
P1 = "aaaaaaaa-0000-0000-0000-000000000001"
P2 = "bbbbbbbb-0000-0000-0000-000000000002"
TAP1 = "tap" + P1[:11]
MAC1 = "fa:16:3e:00:00:01"
CFG = RoutedPlanConfig(local_ip="192.0.2.1", local_ip6="2001:db8:ff::1")
T = network_table(NET)


def desired(*ports: PortSpec, remotes: tuple[RoutedEndpoint, ...] = ()) -> HostDesired:
    return HostDesired(host="r1", networks=(NetworkSpec(NET, "local"),), ports=ports,
                       routed_remotes=remotes)


def port(pid: str = P1, ips: tuple[str, ...] = ("10.0.0.5", "2001:db8::5"), **kw: Any) -> PortSpec:
    return PortSpec(port_id=pid, network_id=NET, mac=MAC1, fixed_ips=ips, **kw)


REMOTE = RoutedEndpoint(port_id=P2, network_id=NET, host="r2", ips=("10.0.0.6", "2001:db8::6"),
                        next_hop="192.0.2.2")


def host(*, up: bool = True, **kw: Any) -> RoutedObserved:
    taps = {TAP1: DeviceState(TAP1, kind="veth", up=up)}
    return RoutedObserved(taps=taps, gateways={NET: ("10.0.0.1", "2001:db8::1")},
                          next_hops6={"r2": "2001:db8:ff::2"}, **kw)


def converged(d: HostDesired, o: RoutedObserved) -> RoutedObserved:
    """``o`` with everything the plan adds (what a correct apply leaves)."""
    ops = plan_routed(d, o, CFG).ops
    taps = dict(o.taps)
    for op in ops:
        if isinstance(op, AddAddress):
            t = taps[op.dev]
            taps[op.dev] = DeviceState(t.name, t.kind, t.up, t.address, t.alias, t.addresses | {op.ip})
        if isinstance(op, SetLinkUp):
            t = taps[op.name]
            taps[op.name] = DeviceState(t.name, t.kind, True, t.address, t.alias, t.addresses)
    return RoutedObserved(
        taps=taps,
        routes=o.routes | {op.route for op in ops if isinstance(op, AddRoute)},
        neighbours=o.neighbours | {op.entry for op in ops if isinstance(op, AddNeighbour)},
        proxies=o.proxies | {op.entry for op in ops if isinstance(op, AddProxy)},
        sysctls={**o.sysctls, **{op.key: op.value for op in ops if isinstance(op, SetSysctl)}},
        gateways=o.gateways, next_hops6=o.next_hops6,
        rules=o.rules | {op.rule for op in ops if isinstance(op, AddRule)})


def test_a_local_port_gets_routes_neighbours_gateway_and_sysctls() -> None:
    d = desired(port(), remotes=(REMOTE,))
    ops = set(plan_routed(d, host(), CFG).ops)
    assert {AddRoute(Route("10.0.0.5/32", dev=TAP1)), AddRoute(Route("2001:db8::5/128", dev=TAP1)),
            AddNeighbour(Neighbour(TAP1, "10.0.0.5", MAC1)),
            AddNeighbour(Neighbour(TAP1, "2001:db8::5", MAC1)),
            AddAddress(TAP1, "10.0.0.1"), AddAddress(TAP1, "2001:db8::1"),
            # IPv6 peers of the network are answered by proxy NDP; IPv4 by proxy ARP.
            AddProxy(ProxyEntry(TAP1, "2001:db8::6")),
            # The remote endpoint through its host's underlay addresses, in the network's table.
            AddRoute(Route("10.0.0.6/32", via="192.0.2.2", table=T)),
            AddRoute(Route("2001:db8::6/128", via="2001:db8:ff::2", table=T)),
            # Local ones in the main table (from the underlay) and the network's table (from its taps).
            AddRoute(Route("10.0.0.5/32", dev=TAP1, table=T)),
            # The tap's traffic is routed by its network's table only.
            # (and only from the VM's own addresses: anti-spoofing, both families).
            AddRule(Rule(4, RULE_LOOKUP, TAP1, T, "10.0.0.5")), AddRule(Rule(4, RULE_PROHIBIT, TAP1, None)),
            AddRule(Rule(6, RULE_LOOKUP, TAP1, T, "2001:db8::5")), AddRule(Rule(6, RULE_PROHIBIT, TAP1, None))} <= ops
    assert {SetSysctl(k, v) for k, v in {**tap_sysctls(TAP1), **GLOBAL_SYSCTLS}.items()} <= ops


def test_a_converged_host_plans_nothing_and_reports_the_port_up() -> None:
    d = desired(port(), remotes=(REMOTE,))
    after = converged(d, host())
    assert plan_routed(d, after, CFG).ops == ()
    assert port_status_routed(d, after)[P1].up
    assert not port_status_routed(d, host())[P1].up  # routes missing


def test_a_port_that_goes_takes_everything_of_ours_with_it() -> None:
    before = converged(desired(port(), remotes=(REMOTE,)), host())
    ops = plan_routed(desired(), before, CFG).ops
    assert {type(op) for op in ops} == {DelRoute, DelNeighbour, DelProxy, DelAddress, DelRule}
    assert {op.route for op in ops if isinstance(op, DelRoute)} == before.routes
    assert DeleteTap(TAP1) not in ops  # the compute side's device is left alone


def test_moved_remote_endpoint_is_rerouted_and_local_wins_over_remote() -> None:
    before = converged(desired(port(), remotes=(REMOTE,)), host())
    moved = RoutedEndpoint(P2, NET, "r3", ("10.0.0.6",), next_hop="192.0.2.3")
    ops = plan_routed(desired(port(), remotes=(moved,)), before, CFG).ops
    assert DelRoute(Route("10.0.0.6/32", via="192.0.2.2", table=T)) in ops
    assert AddRoute(Route("10.0.0.6/32", via="192.0.2.3", table=T)) in ops
    # A remote claiming our own underlay address (stale) is never routed to ourselves.
    loop = RoutedEndpoint(P2, NET, "r1-old", ("10.0.0.7",), next_hop="192.0.2.1")
    assert not [op for op in plan_routed(desired(port(), remotes=(loop,)), host(), CFG).ops
                if isinstance(op, AddRoute) and op.route.via]


def test_missing_tap_admin_down_and_agent_made_taps() -> None:
    d = desired(port())
    empty = RoutedObserved(gateways={NET: ("10.0.0.1",)})
    assert plan_routed(d, empty, CFG).ops == ()
    assert port_status_routed(d, empty)[P1].reason == f"device {TAP1} not present"
    assert plan_routed(d, empty, RoutedPlanConfig(create_taps=True)).ops == (CreateTap(TAP1),)
    down = desired(port(admin_state_up=False))
    assert not port_status_routed(down, host()).get(P1, None).up  # type: ignore[union-attr]
    ours = RoutedObserved(taps={TAP1: DeviceState(TAP1, "tun", alias=TAP_ALIAS)})
    assert DeleteTap(TAP1) in plan_routed(desired(), ours, CFG).ops
    assert plan_routed(d, host(up=False), CFG).ops[0] == SetLinkUp(TAP1)


def test_feed_mode_off_installs_no_remote_routes_and_no_rules() -> None:
    cfg = RoutedPlanConfig(local_ip="192.0.2.1", install_remote_routes=False)
    ops = plan_routed(desired(port(), remotes=(REMOTE,)), host(), cfg).ops
    assert not [op for op in ops if isinstance(op, AddRoute) and op.route.via]
    # BGP-learned routes are in the main table: a tap limited to its network's table would miss them.
    assert not [op for op in ops if isinstance(op, AddRule)]
    assert {op.route.table for op in ops if isinstance(op, AddRoute)} == {254}


def test_each_network_has_its_own_stable_table() -> None:
    assert network_table(NET) == network_table(NET) != network_table("another-network")
    assert network_table(NET) >> 24 == 0x4E


def test_operations_become_ip_batch_lines() -> None:
    assert op_lines(AddRoute(Route("10.0.0.5/32", dev=TAP1))) == [
        f"route replace 10.0.0.5/32 dev {TAP1} scope link proto {ROUTE_PROTO}"]
    assert op_lines(AddRoute(Route("2001:db8::6/128", via="2001:db8:ff::2"))) == [
        f"route replace 2001:db8::6/128 via 2001:db8:ff::2 proto {ROUTE_PROTO}"]
    assert op_lines(AddNeighbour(Neighbour(TAP1, "10.0.0.5", MAC1))) == [
        f"neigh replace 10.0.0.5 lladdr {MAC1} dev {TAP1} nud permanent"]
    assert op_lines(AddAddress(TAP1, "2001:db8::1")) == [f"addr replace 2001:db8::1/128 dev {TAP1} nodad"]
    assert op_lines(AddProxy(ProxyEntry(TAP1, "2001:db8::6"))) == [f"neigh add proxy 2001:db8::6 dev {TAP1}"]


def test_desired_from_api_collects_remote_routed_endpoints_of_local_networks() -> None:
    nets = [{"id": NET, "provider:network_type": "local"},
            {"id": "other", "provider:network_type": "local"}]

    def p(pid: str, host: str, net: str = NET, vif: str = "tap") -> dict[str, Any]:
        return {"id": pid, "network_id": net, "binding:host_id": host, "binding:vif_type": vif,
                "binding:vif_details": {"connectivity": "l3"}, "mac_address": MAC1,
                "fixed_ips": [{"ip_address": "10.0.0.9"}]}

    ports = [p(P1, "r1"), p(P2, "r2"), p("c3", "r2", net="other"), p("c4", "r3", vif="bridge")]
    d = desired_from_api("r1", nets, ports, {"r2": "192.0.2.2"})
    assert d.routed_remotes == (RoutedEndpoint(P2, NET, "r2", ("10.0.0.9",), "192.0.2.2"),)
    assert d.remotes == ()


def test_kind_agrees_with_the_driver_and_reports_its_next_hops() -> None:
    assert AGENT_TYPE == AGENT_TYPE_ROUTED == RoutedKind.agent_type
    s = AgentSettings(host="r1", mechanism="routed", local_ip="192.0.2.1",
                      backend_options={"route_distribution": "feed", "local_ip6": "2001:db8:ff::1"})
    conf = RoutedKind().configurations(s)
    assert conf == {"tunnel_types": [], "tunneling_ip6": "2001:db8:ff::1", "route_distribution": "feed"}
    RoutedKind().validate(s)


def test_the_routed_section_is_declared_and_reaches_the_backend_options() -> None:
    import pytest

    from netplex import config as cfgmod
    from netplex.agent.backends import settings_from_config

    cfg = cfgmod.load(text="[routed]\nlocal_ip = 192.0.2.7\nlocal_ip6 = 2001:db8:ff::7\n")
    s = settings_from_config(cfg, "routed", host="r7")
    assert s.local_ip == "192.0.2.7"
    assert s.backend_options["route_distribution"] == "feed"
    assert RoutedKind().build(s).config.local_ip6 == "2001:db8:ff::7"
    with pytest.raises(cfgmod.ConfigError):
        cfgmod.load(text="[routed]\nroute_distribution = ospf\n")


def test_allowed_address_pairs_are_routed_to_the_vm_and_accepted_as_sources() -> None:
    d = desired(port(allowed_ips=("10.0.0.50", "192.168.7.0/24")),
                remotes=(RoutedEndpoint(P2, NET, "r2", ("10.0.0.6",), "192.0.2.2", allowed_ips=("10.0.0.60/32",)),))
    ops = set(plan_routed(d, host(), CFG).ops)
    assert {AddRoute(Route("10.0.0.50/32", dev=TAP1)), AddRoute(Route("192.168.7.0/24", dev=TAP1, table=T)),
            AddRule(Rule(4, RULE_LOOKUP, TAP1, T, "10.0.0.50")),
            AddRule(Rule(4, RULE_LOOKUP, TAP1, T, "192.168.7.0/24")),
            AddRoute(Route("10.0.0.60/32", via="192.0.2.2", table=T))} <= ops
    after = converged(d, host())
    assert plan_routed(d, after, CFG).ops == ()


def test_desired_from_api_reads_allowed_address_pairs() -> None:
    port_dict = {"id": P1, "network_id": NET, "binding:host_id": "r1", "binding:vif_type": "tap",
                 "mac_address": MAC1, "fixed_ips": [{"ip_address": "10.0.0.5"}],
                 "allowed_address_pairs": [{"ip_address": "10.0.0.50", "mac_address": MAC1}]}
    d = desired_from_api("r1", [{"id": NET, "provider:network_type": "local"}], [port_dict], {})
    assert d.ports[0].allowed_ips == ("10.0.0.50",)


def test_advance_is_the_host_after_an_error_free_apply() -> None:
    from netplex.agent.routed_plan import advance, with_taps

    d = desired(port(allowed_ips=("10.0.0.50",)), remotes=(REMOTE,))
    before = host(up=False)
    after = advance(before, plan_routed(d, before, CFG).ops)
    assert plan_routed(d, after, CFG).ops == ()
    assert after.taps[TAP1].up and after.taps[TAP1].addresses == {"10.0.0.1", "2001:db8::1"}
    # The compute side unplugs the tap: what the kernel drops with it leaves the snapshot.
    gone = with_taps(after, {}, {})
    assert not [r for r in gone.routes if r.dev == TAP1] and not gone.neighbours and not gone.proxies
    assert not [k for k in gone.sysctls if f".{TAP1}." in k] and gone.rules == after.rules
    assert [r for r in gone.routes if r.via]  # remote routes stay
