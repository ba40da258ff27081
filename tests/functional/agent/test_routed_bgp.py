"""Routed hosts with ``route_distribution = bgp``: endpoints distributed by the hosts' own BIRD 2.

Two routed hosts on one underlay, each agent running its own BIRD (full
iBGP mesh, IPv4 and IPv6 sessions); the agents install only their local
endpoints (protocol 78), every route to the other host's VMs comes from BGP
(protocol ``bird``). Every name starts with ``nprb-<6 hex>``; BIRD daemons,
agents, server and namespaces are removed afterwards, whatever happens.

Ports are made without port security: these tests are about the routed data plane, the
security-group filter has its own.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator

import pytest

from netplex.agent.routed_plan import ROUTE_PROTO
from netplex.lab.lab import Lab
from netplex.linux import bird, netns
from netplex.linux.routing import read_routes

from .. import labs
from ..labs import running_lab

pytestmark = [pytest.mark.functional, pytest.mark.timeout(180)]

if shutil.which("bird") is None:
    pytest.skip("BIRD 2 (bird2) is not installed", allow_module_level=True)


def wait_for(cond: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    labs.wait_for(cond, timeout, what, interval=0.1)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    hosts = [("host-r1", "routed"), ("host-r2", "routed")]
    with running_lab("nprb", hosts, agent_down_time=15, route_distribution="bgp") as lab:
        lab.create_network("net", "10.61.0.0/24", {"provider:network_type": "local"}, cidr6="fd61::/64")
        lab.add_vm("vm-1", "host-r1", "net", "10.61.0.11", ip6="fd61::11", port_security=False)
        lab.add_vm("vm-2", "host-r2", "net", "10.61.0.12", ip6="fd61::12", port_security=False)
        yield lab


def kernel_routes(lab: Lab, host: str, family: str = "-4") -> str:
    return netns.run(lab.state.hosts[host].ns, ["ip", family, "route", "show"]).stdout


def bgp_route(lab: Lab, host: str, prefix: str) -> bool:
    return any(line.startswith(prefix) and "proto bird" in line
               for line in (kernel_routes(lab, host, "-4") + kernel_routes(lab, host, "-6")).splitlines())


def pings(lab: Lab, vm: str, ip: str, within: float = 10.0) -> bool:
    """One answered ping within ``within`` seconds (retried: a fresh VM's IPv6 address is
    tentative for a moment, and ping gives up at once then)."""
    end = time.monotonic() + within
    while True:
        if netns.run(lab.state.vms[vm].ns, ["ping", "-c", "1", "-W", "1", ip], check=False,
                     timeout=15).returncode == 0:
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.2)


def test_routes_to_the_other_host_come_from_bgp_and_pings_cross(lab: Lab) -> None:
    wait_for(lambda: bgp_route(lab, "host-r1", "10.61.0.12") and bgp_route(lab, "host-r2", "10.61.0.11"),
             what="IPv4 endpoints learned over BGP")
    wait_for(lambda: bgp_route(lab, "host-r1", "fd61::12") and bgp_route(lab, "host-r2", "fd61::11"),
             what="IPv6 endpoints learned over BGP")
    # The agent's own routes are only the local endpoints.
    assert {r.dst for r in read_routes(lab.state.hosts["host-r1"].ns, ROUTE_PROTO)} == {
        "10.61.0.11/32", "fd61::11/128"}
    shown = bird.birdc(bird.BirdFiles(lab.bird_dir("host-r1")), "show", "route")
    assert "10.61.0.12/32" in shown and "fd61::12/128" in shown
    for src, dst in [("vm-1", "10.61.0.12"), ("vm-2", "10.61.0.11"), ("vm-1", "fd61::12"),
                     ("vm-2", "fd61::11")]:
        assert pings(lab, src, dst), (src, dst)


def test_a_deleted_port_is_withdrawn_from_bgp(lab: Lab) -> None:
    lab.add_vm("vm-3", "host-r2", "net", "10.61.0.13", ip6="fd61::13", port_security=False)
    wait_for(lambda: bgp_route(lab, "host-r1", "10.61.0.13"), what="vm-3 announced")
    lab.remove_vm("vm-3")
    wait_for(lambda: not bgp_route(lab, "host-r1", "10.61.0.13") and not bgp_route(lab, "host-r1", "fd61::13"),
             what="vm-3 withdrawn")


def test_a_stopped_bird_withdraws_its_hosts_routes_and_the_agent_restarts_it(lab: Lab) -> None:
    files = bird.BirdFiles(lab.bird_dir("host-r2"))
    old = bird.running_pid(files)
    assert old is not None and bird.stop(files)
    # The hold time is 9 s; a clean stop sends a notification and withdraws at once.
    wait_for(lambda: not bgp_route(lab, "host-r1", "10.61.0.12"), timeout=15, what="routes withdrawn")
    # The agent's next resync starts BIRD again (its observe sees no BIRD): force one by
    # restarting the agent, which must not disturb anything else.
    lab.stop_agent("host-r2")
    lab.start_agent("host-r2")
    wait_for(lambda: bird.running_pid(files) not in (None, old), what="BIRD started again")
    wait_for(lambda: bgp_route(lab, "host-r1", "10.61.0.12"), what="routes announced again")
    assert pings(lab, "vm-1", "10.61.0.12")
