"""The BGP fabric: routed hosts in two underlay subnets, their routes learned over BGP via a router.

Builds the lab's pieces directly (two routed hosts, the router namespace),
not the whole ``lab up``, to keep it short. Everything (BIRD daemons, agents,
server, namespaces) is removed afterwards, whatever happens.

Ports are made without port security: these tests are about the routed data plane, the
security-group filter has its own.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Iterator

import pytest

from netplex.lab import fabric
from netplex.lab.lab import Lab
from netplex.linux import bird, netns

from .. import labs
from ..labs import running_lab

pytestmark = [pytest.mark.functional, pytest.mark.timeout(180)]

if shutil.which("bird") is None:
    pytest.skip("BIRD 2 (bird2) is not installed", allow_module_level=True)


def wait_for(cond: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    labs.wait_for(cond, timeout, what, interval=0.1)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    hosts = [("host-routed1", "routed"), ("host-routed2", "routed")]
    with running_lab("nplb", hosts, router=True, fabric="bgp") as lab:
        lab.create_network("net-r", "10.50.0.0/24", {"provider:network_type": "local"}, cidr6="fd50::/64")
        lab.add_vm("vm-r1", "host-routed1", "net-r", "10.50.0.11", ip6="fd50::11", port_security=False)
        lab.add_vm("vm-r2", "host-routed2", "net-r", "10.50.0.12", ip6="fd50::12", port_security=False)
        yield lab


def pings(lab: Lab, vm: str, ip: str) -> bool:
    return netns.run(lab.state.vms[vm].ns, ["ping", "-c", "1", "-W", "1", ip], check=False,
                     timeout=15).returncode == 0


def routes(lab: Lab, host: str) -> str:
    ns = lab.state.hosts[host].ns
    return netns.run(ns, ["ip", "-4", "route"]).stdout + netns.run(ns, ["ip", "-6", "route"]).stdout


def test_hosts_are_in_two_subnets_and_learn_each_other_through_the_router(lab: Lab) -> None:
    r1, r2 = lab.state.hosts["host-routed1"], lab.state.hosts["host-routed2"]
    assert r1.ip.startswith("10.99.0.") and r2.ip.startswith("10.98.0.")
    tor = bird.BirdFiles(lab.bird_dir(fabric.TOR))
    wait_for(lambda: all(p in bird.birdc(tor, "show", "route")
                         for p in ("10.50.0.11/32", "10.50.0.12/32", "fd50::11/128", "fd50::12/128")),
             what="the router learns every endpoint")
    wait_for(lambda: "10.50.0.12 via 10.99.0.254" in routes(lab, "host-routed1")
             and "fd50::12 via fd99::fe" in routes(lab, "host-routed1"), what="host-routed1 learns vm-r2")
    wait_for(lambda: "10.50.0.11 via 10.98.0.254" in routes(lab, "host-routed2"), what="host-routed2 learns vm-r1")
    for vm, ip in (("vm-r1", "10.50.0.12"), ("vm-r2", "10.50.0.11"), ("vm-r1", "fd50::12")):
        # Retried: a fresh VM's IPv6 address is tentative (DAD) for a moment, ping gives up at once then.
        wait_for(functools.partial(pings, lab, vm, ip), timeout=10, what=f"{vm} pings {ip}")
    # Across the router: the reply is two routed hops further away (TTL 64 - host - router - host).
    out = netns.run(lab.state.vms["vm-r1"].ns, ["ping", "-c", "1", "-W", "1", "10.50.0.12"]).stdout
    assert "ttl=61" in out


def test_a_stopped_host_bird_withdraws_its_routes_from_the_router(lab: Lab) -> None:
    tor = bird.BirdFiles(lab.bird_dir(fabric.TOR))
    lab.stop_agent("host-routed2")  # else its next resync would start BIRD again
    assert bird.stop(bird.BirdFiles(lab.bird_dir("host-routed2")))
    wait_for(lambda: "10.50.0.12/32" not in bird.birdc(tor, "show", "route"), timeout=15,
             what="withdrawn within the hold time")
    wait_for(lambda: "10.50.0.12" not in routes(lab, "host-routed1"), what="host-routed1 forgets vm-r2")
