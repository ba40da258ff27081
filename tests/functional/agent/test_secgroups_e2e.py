"""Security groups end to end: a real server, two Linux bridge agents, groups changed over the API.

The server's default group lets the two VMs (one per host) reach each
other; a group admitting only TCP 22 from its own members closes VM 2 to
VM 1 until VM 1 joins it: a membership change on one host, enforced on the
other within a feed round trip, and undone the same way.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from netplex.lab.lab import Lab

from ..labs import running_lab
from .test_secgroups_linuxbridge import Vm, ping, tcp_ok, tcp_servers

pytestmark = [pytest.mark.functional, pytest.mark.timeout(240),
              pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft")]


def eventually(cond: Callable[[], bool], timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.2)
    return True


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with running_lab("nps", [("host-lb1", "lb"), ("host-lb2", "lb")], agent_down_time=15) as lab:
        lab.create_network("net", "10.71.0.0/24")
        lab.add_vm("vm-1", "host-lb1", "net", "10.71.0.11")
        lab.add_vm("vm-2", "host-lb2", "net", "10.71.0.12")
        yield lab


def vm(lab: Lab, name: str) -> Vm:
    rec = lab.state.vms[name]
    return Vm(rec.ns, {"fixed_ips": [{"ip_address": rec.ip}], "mac_address": rec.mac})


def set_groups(lab: Lab, name: str, groups: list[str]) -> None:
    with lab.client() as c:
        c.update_port(lab.state.vms[name].port_id, {"security_groups": groups})


def test_default_group_then_a_remote_group_opened_and_closed_across_hosts(lab: Lab) -> None:
    one, two = vm(lab, "vm-1"), vm(lab, "vm-2")
    assert eventually(lambda: ping(one, two.ip) and ping(two, one.ip))  # the default group
    with lab.client() as c:
        port = c.get_port(lab.state.vms["vm-2"].port_id)
        default = list(port["security_groups"])
        body: dict[str, Any] = {"name": "ssh-peers", "project_id": port["project_id"]}
        group = c.request("POST", "/security-groups", json={"security_group": body})["security_group"]
        c.request("POST", "/security-group-rules", json={"security_group_rule": {
            "security_group_id": group["id"], "direction": "ingress", "ethertype": "IPv4",
            "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
            "remote_group_id": group["id"]}})
    set_groups(lab, "vm-2", [group["id"]])
    with tcp_servers(two, 22, 23):
        assert eventually(lambda: not ping(one, two.ip))      # no ICMP in the new group
        assert not tcp_ok(one, two, 22)                       # vm-1 is not a member
        set_groups(lab, "vm-1", [*default, group["id"]])
        assert eventually(lambda: tcp_ok(one, two, 22))       # joined: host-lb2's set learns it
        assert not tcp_ok(one, two, 23) and not ping(one, two.ip)
        set_groups(lab, "vm-1", default)
        assert eventually(lambda: not tcp_ok(one, two, 22))   # left again
    set_groups(lab, "vm-2", default)
    assert eventually(lambda: ping(one, two.ip) and ping(two, one.ip))
