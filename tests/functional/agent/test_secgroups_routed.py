"""Security groups on a real routed host: the same traffic checks as on the Linux bridge host.

The routed backend is driven directly (no server: the subnet gateway comes
from a fixed ServerFacts); VMs are veths named like taps, routed through the
host (proxy ARP, /32 routes), so every packet between them crosses the
host's inet ``forward`` hook.
"""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from netplex.agent.model import HostDesired, desired_from_api, tap_name
from netplex.agent.reconcile import ReconcileResult, reconcile
from netplex.agent.routed import RoutedBackend
from netplex.agent.routed_plan import RoutedPlanConfig
from netplex.agent.secgroups import security_from_api
from netplex.agent.secgroups_backend import ApplyFilter, FilteredBackend, with_filter
from netplex.agent.secgroups_nft import INET_TABLE
from netplex.linux.nftables import read_table

from .test_secgroups_linuxbridge import G_A, G_B, G_OUT, GROUPS, NET, Vm, ping, sh, tcp_ok, tcp_servers, udp_arrivals

pytestmark = [pytest.mark.functional,
              pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft")]

GATEWAY = "10.61.0.1"


class Facts:
    def gateways(self) -> Mapping[str, tuple[str, ...]]:
        return {NET: (GATEWAY,)}

    def next_hops6(self) -> Mapping[str, str]:
        return {}


class RoutedHost:
    def __init__(self, make_netns: Callable[[str], str]) -> None:
        self.make_netns = make_netns
        self.ns = make_netns("h")
        self.vms: dict[str, Vm] = {}

    def add_vm(self, name: str, ip: str, groups: list[str], security: bool = True) -> Vm:
        pid = str(uuid.uuid4())
        mac = f"fa:16:3e:00:01:{len(self.vms) + 1:02x}"
        ns = self.make_netns(name)
        tap = tap_name(pid)
        sh(self.ns, "ip", "link", "add", "name", tap, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh(ns, "ip", "link", "set", "eth0", "address", mac, "up")
        sh(ns, "ip", "link", "set", "lo", "up")
        sh(ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        sh(ns, "ip", "route", "add", "default", "via", GATEWAY)
        port = {"id": pid, "network_id": NET, "mac_address": mac, "admin_state_up": True,
                "fixed_ips": [{"subnet_id": "s", "ip_address": ip}], "allowed_address_pairs": [],
                "binding:host_id": "r1", "binding:vif_type": "tap",
                "binding:vif_details": {"connectivity": "l3"}, "device_owner": "compute:nova",
                "security_groups": groups if security else [], "port_security_enabled": security}
        vm = self.vms[name] = Vm(ns, port)
        return vm

    def desired(self) -> HostDesired:
        ports: list[dict[str, Any]] = [vm.port for vm in self.vms.values()]
        base = desired_from_api("r1", [{"id": NET, "provider:network_type": "local", "mtu": 1500}],
                                ports, {"r1": "192.0.2.1"})
        return dataclasses.replace(base, security=security_from_api(ports, GROUPS.values(), ports))

    def backend(self) -> FilteredBackend:
        inner = RoutedBackend(RoutedPlanConfig(local_ip="192.0.2.1"), Facts(), netns=self.ns)
        return with_filter(inner, "routed", self.ns)

    def converge(self) -> ReconcileResult:
        res = reconcile(self.backend(), self.desired())
        assert not res.apply.errors, res.apply.errors
        assert reconcile(self.backend(), self.desired()).plan.ops == ()
        return res

    def handles(self) -> dict[str, tuple[int, ...]]:
        table = read_table(self.ns, *INET_TABLE)
        assert table is not None
        return {c.name: tuple(r.handle for r in c.rules) for c in table.chains.values()}


def test_routed_host_enforces_groups(make_netns: Callable[[str], str]) -> None:
    host = RoutedHost(make_netns)
    a = host.add_vm("a", "10.61.0.11", [G_A, G_OUT])
    b = host.add_vm("b", "10.61.0.12", [G_B])
    c = host.add_vm("c", "10.61.0.13", [], security=False)
    res = host.converge()
    assert res.up == {a.port["id"], b.port["id"], c.port["id"]}
    assert isinstance(res.plan.ops[0], ApplyFilter)

    assert ping(b, c.ip)                 # routed through the host; C unfiltered, B may send anything
    with tcp_servers(b, 22, 23):
        assert tcp_ok(a, b, 22)          # the reply reaches A through conntrack alone
        assert not tcp_ok(a, b, 23)
        assert not tcp_ok(c, b, 22)
    assert not ping(a, b.ip)
    assert not ping(c, a.ip)

    sh(b.ns, "ip", "addr", "add", "10.61.0.99/24", "dev", "eth0")
    assert udp_arrivals(b, c, [b.ip, "10.61.0.99"], l2=False) == {b.ip}

    before = host.handles()
    a.port["security_groups"] = [G_OUT]
    res = host.converge()
    (op,) = [o for o in res.plan.ops if isinstance(o, ApplyFilter)]
    lines = op.script.strip().splitlines()
    assert lines and all(line.startswith(("add element inet netplex rg4-", "delete element inet netplex rg4-"))
                         for line in lines), lines
    assert host.handles() == before
    with tcp_servers(b, 22):
        assert not tcp_ok(a, b, 22)
