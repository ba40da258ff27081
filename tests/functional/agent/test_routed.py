"""Routed (calico-style) hosts end to end: a real server, two routed agents, VMs plugged as taps.

Two routed hosts (namespaces on the lab's bridge underlay, IPv4 + IPv6), a
``local`` network with an IPv4 and an IPv6 subnet, VMs plugged by the VIF
library's ``tap`` plugin (vif_type ``tap``, nothing routed-specific on the
compute side). Route distribution ``feed``: each agent installs the other
host's endpoints from the change feed. Every name starts with ``npr-<6 hex>``;
everything is removed afterwards, whatever happens.

Ports are made without port security: these tests are about the routed data plane, the
security-group filter has its own.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from netplex.agent.model import tap_name
from netplex.agent.routed_plan import ROUTE_PROTO
from netplex.lab.lab import Lab
from netplex.linux import netns
from netplex.linux.neigh import read_neighbours
from netplex.linux.routing import read_devices, read_routes

from ..labs import running_lab, wait_for
from .topology import ContinuousPing

pytestmark = [pytest.mark.functional, pytest.mark.timeout(180)]

CIDR, CIDR6 = "10.60.0.0/24", "fd60::/64"
GW, GW6 = "10.60.0.1", "fd60::1"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with running_lab("npr", [("host-r1", "routed"), ("host-r2", "routed")], agent_down_time=15) as lab:
        lab.create_network("net", CIDR, {"provider:network_type": "local"}, cidr6=CIDR6)
        lab.add_vm("vm-1", "host-r1", "net", "10.60.0.11", ip6="fd60::11", port_security=False)
        lab.add_vm("vm-2", "host-r2", "net", "10.60.0.12", ip6="fd60::12", port_security=False)
        yield lab


def vm_ns(lab: Lab, vm: str) -> str:
    return lab.state.vms[vm].ns


def host_ns(lab: Lab, host: str) -> str:
    return lab.state.hosts[host].ns


def pings(lab: Lab, vm: str, ip: str, within: float = 8.0) -> bool:
    """One answered ping within ``within`` seconds. Retried because right after plugging
    the VM's own IPv6 address is still tentative (DAD), and ping gives up at once then."""
    end = time.monotonic() + within
    while True:
        if netns.run(vm_ns(lab, vm), ["ping", "-c", "1", "-W", "1", ip], check=False,
                     timeout=15).returncode == 0:
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.2)


def routes(lab: Lab, host: str) -> set[tuple[str, str | None, str | None]]:
    return {(r.dst, r.dev, r.via) for r in read_routes(host_ns(lab, host), ROUTE_PROTO)}


def test_ports_bind_as_tap_and_go_active(lab: Lab) -> None:
    with lab.client() as c:
        for vm in ("vm-1", "vm-2"):
            p = c.get_port(lab.state.vms[vm].port_id)
            assert p["binding:vif_type"] == "tap" and p["status"] == "ACTIVE"
            assert p["binding:vif_details"]["connectivity"] == "l3"


@pytest.mark.parametrize("src,dst", [("vm-1", "10.60.0.12"), ("vm-2", "10.60.0.11"),
                                     ("vm-1", "fd60::12"), ("vm-2", "fd60::11"),
                                     ("vm-1", GW), ("vm-2", GW6)])
def test_vms_reach_each_other_and_the_gateway_v4_and_v6(lab: Lab, src: str, dst: str) -> None:
    assert pings(lab, src, dst)


def test_each_host_routes_local_vms_via_the_tap_and_remote_ones_via_the_other_host(lab: Lab) -> None:
    st = lab.state
    tap1, tap2 = tap_name(st.vms["vm-1"].port_id), tap_name(st.vms["vm-2"].port_id)
    r1, r2 = st.hosts["host-r1"], st.hosts["host-r2"]
    assert routes(lab, "host-r1") == {("10.60.0.11/32", tap1, None), ("fd60::11/128", tap1, None),
                                      ("10.60.0.12/32", None, r2.ip), ("fd60::12/128", None, r2.ip6)}
    assert routes(lab, "host-r2") == {("10.60.0.12/32", tap2, None), ("fd60::12/128", tap2, None),
                                      ("10.60.0.11/32", None, r1.ip), ("fd60::11/128", None, r1.ip6)}
    # The VM's peer is answered by its host's tap (an L3 hop, no L2 adjacency).
    assert pings(lab, "vm-1", "10.60.0.12")
    out = netns.run(vm_ns(lab, "vm-1"), ["ip", "neigh", "show", "10.60.0.12"]).stdout
    host_mac = read_devices(host_ns(lab, "host-r1"), "tap")[tap1].address
    assert host_mac in out and st.vms["vm-2"].mac not in out


def test_deleting_a_port_removes_its_routes_everywhere(lab: Lab) -> None:
    vm = lab.add_vm("vm-3", "host-r2", "net", "10.60.0.13", ip6="fd60::13", port_security=False)
    tap3 = tap_name(vm.port_id)
    wait_for(lambda: ("10.60.0.13/32", None, lab.state.hosts["host-r2"].ip) in routes(lab, "host-r1"),
             what="host-r1 learns vm-3")
    assert pings(lab, "vm-1", "10.60.0.13") and pings(lab, "vm-3", "fd60::11")
    lab.remove_vm("vm-3")
    wait_for(lambda: not any(d.startswith(("10.60.0.13/", "fd60::13/")) for d, _, _ in routes(lab, "host-r1")),
             what="host-r1 forgets vm-3")
    wait_for(lambda: not any(d.startswith(("10.60.0.13/", "fd60::13/")) for d, _, _ in routes(lab, "host-r2")),
             what="host-r2 forgets vm-3")
    assert tap3 not in lab.links("host-r2")
    assert not [n for n in read_neighbours(host_ns(lab, "host-r2"), "tap") if n.dev == tap3]
    # The others are untouched.
    assert pings(lab, "vm-1", "10.60.0.12") and pings(lab, "vm-2", "fd60::11")


def test_agent_sigkill_and_restart_keeps_traffic_and_catches_up(lab: Lab) -> None:
    ping = ContinuousPing(lab.state.vms["vm-1"], "10.60.0.12", interval=0.05)  # type: ignore[arg-type]
    try:
        time.sleep(0.5)
        os.kill(lab.state.agents["host-r1"]["pid"], signal.SIGKILL)
        wait_for(lambda: not lab.agent_running("host-r1"), 5, "the agent is gone")
        # While host-r1's agent is down, a VM appears on host-r2.
        lab.add_vm("vm-4", "host-r2", "net", "10.60.0.14", ip6="fd60::14", port_security=False)
        lab.start_agent("host-r1")
        wait_for(lambda: ("10.60.0.14/32", None, lab.state.hosts["host-r2"].ip) in routes(lab, "host-r1"),
                 what="the restarted agent learns vm-4")
        time.sleep(0.5)
    finally:
        sent, received = ping.stop()
    # The restarted agent found everything right and changed nothing the ping needs.
    assert sent > 20 and received >= sent - 1, (sent, received)
    assert pings(lab, "vm-1", "fd60::14")
    lab.remove_vm("vm-4")


def test_moving_a_port_to_another_host_moves_its_route(lab: Lab) -> None:
    st = lab.state
    net = st.networks["net"]
    r1, r2 = st.hosts["host-r1"], st.hosts["host-r2"]
    with lab.client() as c:
        port = c.create_port({"network_id": net.id, "name": "mover", "binding:host_id": "host-r1",
                              "fixed_ips": [{"subnet_id": net.subnet_id, "ip_address": "10.60.0.40"}]})
        try:
            wait_for(lambda: ("10.60.0.40/32", None, r1.ip) in routes(lab, "host-r2"), what="r2 routes to r1")
            c.update_port(port["id"], {"binding:host_id": "host-r2"})
            wait_for(lambda: ("10.60.0.40/32", None, r2.ip) in routes(lab, "host-r1"), what="r1 routes to r2")
            wait_for(lambda: not any(d == "10.60.0.40/32" for d, _, _ in routes(lab, "host-r2")),
                     what="r2 no longer routes it away (its tap is not plugged: no local route either)")
        finally:
            c.delete_port(port["id"])
    wait_for(lambda: not any(d == "10.60.0.40/32" for d, _, _ in routes(lab, "host-r1")), what="route gone")


def test_a_vm_sending_from_an_address_not_its_own_reaches_nobody(lab: Lab) -> None:
    ns = vm_ns(lab, "vm-1")
    netns.run(ns, ["ip", "addr", "add", "10.60.0.99/24", "dev", "eth0"])
    try:
        for src in ("10.60.0.99", "10.60.0.11"):
            proc = netns.run(ns, ["ping", "-c", "2", "-i", "0.2", "-W", "1", "-I", src, "10.60.0.12"],
                             check=False, timeout=15)
            assert (proc.returncode == 0) == (src == "10.60.0.11"), (src, proc.stdout)
        assert netns.run(ns, ["ping", "-c", "1", "-W", "1", "-I", "10.60.0.99", GW], check=False).returncode != 0
        netns.run(ns, ["ip", "addr", "add", "fd60::99/64", "dev", "eth0", "nodad"])
        for src in ("fd60::99", "fd60::11"):
            proc = netns.run(ns, ["ping", "-c", "2", "-i", "0.2", "-W", "1", "-I", src, "fd60::12"],
                             check=False, timeout=15)
            assert (proc.returncode == 0) == (src == "fd60::11"), (src, proc.stdout)
    finally:
        netns.run(ns, ["ip", "addr", "del", "10.60.0.99/24", "dev", "eth0"], check=False)
        netns.run(ns, ["ip", "addr", "del", "fd60::99/64", "dev", "eth0"], check=False)


def test_routed_networks_are_isolated_from_each_other(lab: Lab) -> None:
    lab.create_network("net2", "10.62.0.0/24", {"provider:network_type": "local"}, cidr6="fd62::/64")
    lab.add_vm("vm-n1", "host-r1", "net2", "10.62.0.11", ip6="fd62::11", port_security=False)
    lab.add_vm("vm-n2", "host-r2", "net2", "10.62.0.12", ip6="fd62::12", port_security=False)
    try:
        assert pings(lab, "vm-n1", "10.62.0.12") and pings(lab, "vm-n2", "fd62::11")
        for src, dst in [("vm-n1", "10.60.0.11"), ("vm-n1", "10.60.0.12"), ("vm-n1", "fd60::11"),
                         ("vm-n1", "fd60::12"), ("vm-1", "10.62.0.11"), ("vm-1", "10.62.0.12"),
                         ("vm-2", "fd62::11")]:
            assert not pings(lab, src, dst, within=0), (src, dst)
        # (The host answers on every gateway address it holds, whichever tap asks: those are the
        # host's own addresses, not another network's VMs.)
        # Its own network still works for the others.
        assert pings(lab, "vm-1", "10.60.0.12")
    finally:
        lab.remove_vm("vm-n1")
        lab.remove_vm("vm-n2")


def test_allowed_address_pairs_are_routed_and_may_be_sent_from(lab: Lab) -> None:
    # Address pairs need port security (Neutron's rule), whose filter is not what this
    # module tests: the routes and rules are checked, the traffic only through them.
    vm = lab.state.vms["vm-1"]
    tap1 = tap_name(vm.port_id)
    r1 = lab.state.hosts["host-r1"]
    with lab.client() as c:
        c.update_port(vm.port_id, {"port_security_enabled": True,
                                   "allowed_address_pairs": [{"ip_address": "10.60.0.77"}]})
        try:
            wait_for(lambda: ("10.60.0.77/32", None, r1.ip) in routes(lab, "host-r2"),
                     what="host-r2 routes the pair to host-r1")
            wait_for(lambda: ("10.60.0.77/32", tap1, None) in routes(lab, "host-r1"),
                     what="host-r1 routes the pair to vm-1's tap")
            rules = netns.run(r1.ns, ["ip", "rule"]).stdout
            assert f"from 10.60.0.77 iif {tap1} lookup" in rules
        finally:
            c.update_port(vm.port_id, {"allowed_address_pairs": []})
            c.update_port(vm.port_id, {"port_security_enabled": False})
    wait_for(lambda: not any(d == "10.60.0.77/32" for d, _, _ in routes(lab, "host-r2")), what="pair gone")
    assert pings(lab, "vm-1", "10.60.0.12")
