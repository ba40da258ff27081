"""Security groups on a real Linux bridge host: namespaces as host and VMs, real traffic.

The host backend is driven directly (like a restarted agent each pass: a fresh
backend that only knows what it observes) with a HostDesired built from
Neutron-shaped dicts, so nothing here needs a server.

VM A and VM B share a bridge; B's group admits only TCP 22 from A's group.
VM C has port security off (everything reaches it: it is the witness of
what B manages to send).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from netplex.agent.linuxbridge import LinuxBridgeBackend, LinuxBridgeConfig
from netplex.agent.model import HostDesired, desired_from_api, tap_name
from netplex.agent.reconcile import ReconcileResult, reconcile
from netplex.agent.secgroups import security_from_api
from netplex.agent.secgroups_backend import ApplyFilter, FilteredBackend, with_filter
from netplex.agent.secgroups_nft import BRIDGE_TABLE, INET_TABLE
from netplex.linux import netns
from netplex.linux.nftables import read_table

pytestmark = [pytest.mark.functional,
              pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft")]

NET = str(uuid.uuid4())
G_A, G_B, G_OUT = (str(uuid.uuid4()) for _ in range(3))  # A's tag, B's group, egress-only


def rule(direction: str, **kw: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "direction": direction, "ethertype": "IPv4", "protocol": None,
            "port_range_min": None, "port_range_max": None, "remote_ip_prefix": None,
            "remote_group_id": None, **kw}


GROUPS = {
    G_A: {"id": G_A, "stateful": True, "security_group_rules": []},
    G_OUT: {"id": G_OUT, "stateful": True, "security_group_rules": [rule("egress"),
                                                                     rule("egress", ethertype="IPv6")]},
    G_B: {"id": G_B, "stateful": True, "security_group_rules": [
        rule("egress"),
        rule("ingress", protocol="tcp", port_range_min=22, port_range_max=22, remote_group_id=G_A)]},
}


@dataclass
class Vm:
    ns: str
    port: dict[str, Any]

    @property
    def ip(self) -> str:
        return str(self.port["fixed_ips"][0]["ip_address"])

    @property
    def mac(self) -> str:
        return str(self.port["mac_address"])


def sh(ns: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return netns.run(ns, list(cmd), check=check)


class Host:
    def __init__(self, make_netns: Callable[[str], str]) -> None:
        self.make_netns = make_netns
        self.ns = make_netns("h")
        self.vms: dict[str, Vm] = {}

    def add_vm(self, name: str, ip: str, groups: list[str], security: bool = True, ip6: str = "") -> Vm:
        pid = str(uuid.uuid4())
        mac = f"fa:16:3e:00:00:{len(self.vms) + 1:02x}"
        ns = self.make_netns(name)
        tap = tap_name(pid)
        sh(self.ns, "ip", "link", "add", "name", tap, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh(ns, "ip", "link", "set", "eth0", "address", mac, "up")
        sh(ns, "ip", "link", "set", "lo", "up")
        sh(ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        fixed = [{"subnet_id": "s", "ip_address": ip}]
        if ip6:
            sh(ns, "ip", "-6", "addr", "add", f"{ip6}/64", "dev", "eth0", "nodad")
            fixed.append({"subnet_id": "s6", "ip_address": ip6})
        sh(self.ns, "ip", "link", "set", tap, "up")
        port = {"id": pid, "network_id": NET, "mac_address": mac, "admin_state_up": True,
                "fixed_ips": fixed, "allowed_address_pairs": [],
                "binding:host_id": "h1", "binding:vif_type": "bridge", "device_owner": "compute:nova",
                "security_groups": groups if security else [], "port_security_enabled": security}
        vm = self.vms[name] = Vm(ns, port)
        return vm

    def desired(self) -> HostDesired:
        ports = [vm.port for vm in self.vms.values()]
        base = desired_from_api("h1", [{"id": NET, "provider:network_type": "local", "mtu": 1500}],
                                ports, {})
        return dataclasses.replace(base, security=security_from_api(ports, GROUPS.values(), ports))

    def backend(self) -> FilteredBackend:
        return with_filter(LinuxBridgeBackend(LinuxBridgeConfig(), netns=self.ns), "bridge", self.ns)

    def converge(self) -> ReconcileResult:
        res = reconcile(self.backend(), self.desired())
        assert not res.apply.errors, res.apply.errors
        assert reconcile(self.backend(), self.desired()).plan.ops == ()  # converged
        return res

    def handles(self) -> dict[str, tuple[int, ...]]:
        """Every chain of ours with its rule handles (a rewritten chain gets new ones)."""
        out: dict[str, tuple[int, ...]] = {}
        for key in (BRIDGE_TABLE, INET_TABLE):
            table = read_table(self.ns, *key)
            assert table is not None
            out.update({f"{key[0]}:{c.name}": tuple(r.handle for r in c.rules)
                        for c in table.chains.values()})
        return out


@pytest.fixture
def host(make_netns: Callable[[str], str]) -> Host:
    return Host(make_netns)


_SERVER = """
import socket, sys, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(8)
    while True:
        c, _ = s.accept(); c.sendall(b"hello"); c.close()
for p in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""

_CLIENT = """
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
    print(s.recv(16).decode())
except OSError as exc:
    print("failed", exc)
"""


@contextmanager
def tcp_servers(vm: Vm, *ports: int) -> Iterator[None]:
    proc = subprocess.Popen(netns.exec_in(vm.ns, [sys.executable, "-c", _SERVER, *map(str, ports)]),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield
    finally:
        proc.kill()
        proc.wait()


def tcp_ok(client: Vm, server: Vm, port: int) -> bool:
    """A TCP connection from ``client`` to ``server:port`` gets the server's greeting."""
    out = sh(client.ns, sys.executable, "-c", _CLIENT, server.ip, str(port), check=False)
    return out.stdout.strip() == "hello"


def ping(client: Vm, ip: str) -> bool:
    return sh(client.ns, "ping", "-c", "2", "-i", "0.2", "-W", "1", ip, check=False).returncode == 0


_UDP_SEND = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND: a source address the VM does not own
s.bind((sys.argv[1], 0))
for _ in range(5):
    s.sendto(sys.argv[3].encode(), (sys.argv[2], 7001))
"""

_UDP_RECV = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 7001)); s.settimeout(2)
print("ready", flush=True)
got = set()
try:
    while True:
        data, (src, _) = s.recvfrom(100); got.add(data.decode() + "@" + src)
except OSError:
    pass
print(" ".join(sorted(got)))
"""


def udp_arrivals(sender: Vm, receiver: Vm, sources: list[str], l2: bool = True) -> set[str]:
    """Which of ``sources`` (as the sender's source address) reach ``receiver``."""
    if l2:
        # A permanent neighbour: the spoofed source would otherwise fail at ARP already.
        sh(sender.ns, "ip", "neigh", "replace", receiver.ip, "lladdr", receiver.mac, "dev", "eth0",
           "nud", "permanent")
    recv = subprocess.Popen(netns.exec_in(receiver.ns, [sys.executable, "-c", _UDP_RECV]),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert recv.stdout is not None and recv.stdout.readline().strip() == "ready"
        for src in sources:
            sh(sender.ns, sys.executable, "-c", _UDP_SEND, src, receiver.ip, src)
        out, _ = recv.communicate(timeout=30)
    finally:
        if recv.poll() is None:
            recv.kill()
            recv.wait()
    return {item.split("@")[0] for item in out.split()}


def test_groups_remote_group_stateful_and_antispoofing(host: Host) -> None:
    a = host.add_vm("a", "10.9.0.1", [G_A, G_OUT])
    b = host.add_vm("b", "10.9.0.2", [G_B])
    c = host.add_vm("c", "10.9.0.3", [], security=False)
    res = host.converge()
    assert res.up == {a.port["id"], b.port["id"], c.port["id"]}
    # The filter went first in the pass, before the taps were put on the bridge.
    assert isinstance(res.plan.ops[0], ApplyFilter) or isinstance(res.plan.ops[1], ApplyFilter)

    with tcp_servers(b, 22, 23):
        assert tcp_ok(a, b, 22)          # allowed; the reply gets in with no ingress rule on A
        assert not tcp_ok(a, b, 23)      # the next port stays closed
        assert not tcp_ok(c, b, 22)      # C is not in A's group
    assert not ping(a, b.ip)             # no ICMP rule on B
    assert ping(b, c.ip)                 # C has no port security: all passes
    assert not ping(c, a.ip)             # A admits nothing

    # Anti-spoofing: B may send from its own address only.
    sh(b.ns, "ip", "addr", "add", "10.9.0.99/24", "dev", "eth0")
    assert udp_arrivals(b, c, [b.ip, "10.9.0.99"]) == {b.ip}

    # Membership: A leaves A's group (its own rules do not change): only set elements change.
    before = host.handles()
    a.port["security_groups"] = [G_OUT]
    res = host.converge()
    (op,) = [o for o in res.plan.ops if isinstance(o, ApplyFilter)]
    lines = op.script.strip().splitlines()
    assert lines and all(line.startswith(("add element inet netplex rg4-", "delete element inet netplex rg4-"))
                         for line in lines), lines
    assert host.handles() == before      # no chain was rewritten
    with tcp_servers(b, 22):
        assert not tcp_ok(a, b, 22)
        a.port["security_groups"] = [G_A, G_OUT]
        host.converge()
        assert tcp_ok(a, b, 22)


def test_port_security_off_leaves_no_filter_objects(host: Host) -> None:
    a = host.add_vm("a", "10.9.0.1", [G_OUT])
    b = host.add_vm("b", "10.9.0.2", [G_B])
    host.converge()
    assert not ping(a, b.ip)
    b.port.update(port_security_enabled=False, security_groups=[])
    host.converge()
    tables = [read_table(host.ns, *k) for k in (BRIDGE_TABLE, INET_TABLE)]
    tap = tap_name(b.port["id"])
    for table in tables:
        assert table is not None
        assert not [n for n in [*table.chains, *table.sets] if tap in n]
        assert not [e for st in table.sets.values() for e in st.elements if tap in e]
    assert ping(a, b.ip)
    # The last filtered port goes: the tables go with it.
    a.port.update(port_security_enabled=False, security_groups=[])
    host.converge()
    assert read_table(host.ns, *INET_TABLE) is None and read_table(host.ns, *BRIDGE_TABLE) is None


def test_ipv6_neighbour_discovery_passes_and_rules_apply(host: Host) -> None:
    a = host.add_vm("a", "10.9.0.1", [G_OUT], ip6="fd09::1")
    b = host.add_vm("b", "10.9.0.2", [G_B], ip6="fd09::2")
    c = host.add_vm("c", "10.9.0.3", [], security=False, ip6="fd09::3")
    host.converge()

    def ping6(src: Vm, dst: str) -> bool:
        # Retried: the link-local addresses may still be tentative right after plugging.
        return any(sh(src.ns, "ping", "-6", "-c", "1", "-W", "1", dst, check=False).returncode == 0
                   for _ in range(5))

    assert ping6(a, "fd09::3")           # ND out and in, the echo reply by conntrack
    assert not ping6(c, "fd09::1")       # A admits nothing
    assert not ping6(a, "fd09::2")       # B has no IPv6 ingress rule
    # ...but ND with B works both ways: A learned B's MAC.
    assert b.mac in sh(a.ns, "ip", "-6", "neigh", "show", "fd09::2").stdout


def test_stateless_groups_need_both_directions_and_rule_removal_cuts(host: Host) -> None:
    s_a, s_b = str(uuid.uuid4()), str(uuid.uuid4())
    ssh_in = rule("ingress", protocol="tcp", port_range_min=22, port_range_max=22)
    http_in = rule("ingress", protocol="tcp", port_range_min=80, port_range_max=80)
    GROUPS[s_a] = {"id": s_a, "stateful": False,
                   "security_group_rules": [rule("egress"), rule("ingress", protocol="tcp")]}
    GROUPS[s_b] = {"id": s_b, "stateful": False, "security_group_rules": [ssh_in]}
    try:
        a = host.add_vm("a", "10.9.0.1", [s_a])
        b = host.add_vm("b", "10.9.0.2", [s_b])
        host.converge()
        with tcp_servers(b, 22):
            assert not tcp_ok(a, b, 22)  # B's SYN-ACK has no egress rule and no conntrack to ride on
            GROUPS[s_b]["security_group_rules"] = [ssh_in, http_in, rule("egress")]
            host.converge()
            assert tcp_ok(a, b, 22)
            # Removing the rule: only the group's ingress chain is rewritten, new connections are cut.
            GROUPS[s_b]["security_group_rules"] = [http_in, rule("egress")]
            res = host.converge()
            (op,) = [o for o in res.plan.ops if isinstance(o, ApplyFilter)]
            chains = {line.split()[4] for line in op.script.splitlines() if line.startswith("add rule")}
            assert chains == {f"gi-{s_b}"}
            assert not tcp_ok(a, b, 22)
    finally:
        GROUPS.pop(s_a, None)
        GROUPS.pop(s_b, None)
