"""A small lab for data-plane tests: hosts and VMs as namespaces, a fake "server".

::

      underlay netns <prefix>-u
      ┌──────────── br-u (10.99.0.0/24, VXLAN underlay) ─────────────┐
      │ br-p (physnet1, flat/VLAN provider wire)                     │
      └──┬───────────────────────┬───────────────────────────────────┘
         │ eth0 10.99.0.1        │ eth0 10.99.0.2          (eth1: physnet1)
      host <prefix>-h1 (LB)   host <prefix>-h2 (OVS: own ovsdb-server + ovs-vswitchd)
         │ tap<port[:11]>         │ tap<port[:11]> on br-int (iface-id=<port>)
      VM <prefix>-vm1          VM <prefix>-vm2

The "server" is :class:`Cloud`: Neutron-shaped network/port/agent dicts fed
through :func:`netplex.agent.model.desired_from_api`, exactly what the real
agent loop does with what it reads from the API. VM plugging mimics the
compute side (veth; for OVS, ``add-port br-int`` with ``iface-id`` and the
dead VLAN tag 4095 until the agent wires it).
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from netplex.agent.linuxbridge import LinuxBridgeBackend, LinuxBridgeConfig
from netplex.agent.model import HostDesired, desired_from_api, tap_name, tunnel_ips_from_agents
from netplex.agent.openvswitch import OvsBackend, OvsConfig
from netplex.agent.reconcile import Backend, ReconcileResult, reconcile
from netplex.linux import netns
from netplex.linux.ovs import OvsInstance

PHYSNET = "physnet1"
PHYS_BRIDGE = "br-phys1"


def sh(*cmd: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return netns.run(ns, list(cmd), check=check)


class Cloud:
    """The server's view: networks, ports (with bindings) and agents' tunnel IPs."""

    def __init__(self) -> None:
        self.networks: dict[str, dict[str, Any]] = {}
        self.ports: dict[str, dict[str, Any]] = {}
        self.agents: dict[str, str] = {}

    def add_network(self, network_type: str, segmentation_id: int | None = None,
                    physical_network: str | None = None, mtu: int | None = None) -> str:
        nid = str(uuid.uuid4())
        self.networks[nid] = {
            "id": nid, "mtu": mtu or (1450 if network_type == "vxlan" else 1500),
            "provider:network_type": network_type,
            "provider:physical_network": physical_network,
            "provider:segmentation_id": segmentation_id,
        }
        return nid

    def desired(self, host: str) -> HostDesired:
        agents = [{"host": h, "configurations": {"tunneling_ip": ip}}
                  for h, ip in self.agents.items()]
        return desired_from_api(host, self.networks.values(), self.ports.values(),
                                tunnel_ips_from_agents(agents))


@dataclass
class Host:
    name: str
    ns: str
    kind: str  # "lb" | "ovs"
    ip: str
    ovs: OvsInstance | None = None

    def backend(self) -> Backend:
        """A *fresh* backend each call: like a restarted agent, it knows only what it observes."""
        if self.kind == "lb":
            return LinuxBridgeBackend(
                LinuxBridgeConfig(local_ip=self.ip,
                                  physical_interface_mappings={PHYSNET: "eth1"}),
                netns=self.ns)
        assert self.ovs is not None
        return OvsBackend.for_instance(
            OvsConfig(local_ip=self.ip, bridge_mappings={PHYSNET: PHYS_BRIDGE}), self.ovs)


@dataclass
class Vm:
    name: str
    ns: str
    host: Host
    port_id: str
    net_id: str
    mac: str
    ip: str

    @property
    def tap(self) -> str:
        return tap_name(self.port_id)


class Lab:
    def __init__(self, make_netns: Callable[[str], str],
                 make_ovs: Callable[[str, str | None], OvsInstance]) -> None:
        self._make_netns = make_netns
        self._make_ovs = make_ovs
        self.cloud = Cloud()
        self.hosts: dict[str, Host] = {}
        self.vms: dict[str, Vm] = {}
        self.underlay = make_netns("u")
        for br in ("br-u", "br-p"):
            sh("ip", "link", "add", "name", br, "type", "bridge", ns=self.underlay)
            sh("ip", "link", "set", br, "up", ns=self.underlay)

    def add_host(self, name: str, kind: str) -> Host:
        ns = self._make_netns(name)
        ip = f"10.99.0.{len(self.hosts) + 1}"
        for dev, br in (("eth0", "br-u"), ("eth1", "br-p")):
            outer = f"{br[-1]}-{name}"
            sh("ip", "link", "add", "name", outer, "netns", self.underlay, "type", "veth",
               "peer", "name", dev, "netns", ns)
            sh("ip", "link", "set", outer, "master", br, "up", ns=self.underlay)
            sh("ip", "link", "set", dev, "up", ns=ns)
        sh("ip", "addr", "add", f"{ip}/24", "dev", "eth0", ns=ns)
        host = Host(name, ns, kind, ip)
        if kind == "ovs":
            host.ovs = self._make_ovs(name, ns)
            # The operator's part of bridge_mappings: the provider bridge with its NIC.
            host.ovs.vsctl("--may-exist", "add-br", PHYS_BRIDGE, "--", "set", "Bridge",
                           PHYS_BRIDGE, "datapath_type=netdev", "--",
                           "--may-exist", "add-port", PHYS_BRIDGE, "eth1")
        self.hosts[name] = host
        self.cloud.agents[name] = ip
        return host

    def add_vm(self, name: str, host: Host, net_id: str, ip: str) -> Vm:
        """Create the port on the "server", bind it to ``host`` and plug a VM namespace."""
        port_id = str(uuid.uuid4())
        mac = "fa:16:3e:" + ":".join(f"{random.randrange(256):02x}" for _ in range(3))
        mtu = str(self.cloud.networks[net_id]["mtu"])
        ns = self._make_netns(name)
        vm = Vm(name, ns, host, port_id, net_id, mac, ip)
        sh("ip", "link", "add", "name", vm.tap, "netns", host.ns, "type", "veth",
           "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", "eth0", "address", mac, "mtu", mtu, "up", ns=ns)
        sh("ip", "addr", "add", f"{ip}/24", "dev", "eth0", ns=ns)
        sh("ip", "link", "set", vm.tap, "mtu", mtu, "up", ns=host.ns)
        if host.ovs is not None:
            # What the compute side's "ovs" plugging does (dead VLAN until wired).
            host.ovs.vsctl(
                "--may-exist", "add-br", "br-int", "--", "set", "Bridge", "br-int",
                "datapath_type=netdev", "fail_mode=secure", "--",
                "--may-exist", "add-port", "br-int", vm.tap, "--",
                "set", "Port", vm.tap, "tag=4095", "protected=true", "--",
                "set", "Interface", vm.tap, f"external_ids:iface-id={port_id}",
                f"external_ids:attached-mac={mac}", "external_ids:iface-status=active")
        self.cloud.ports[port_id] = {
            "id": port_id, "network_id": net_id, "mac_address": mac,
            "fixed_ips": [{"subnet_id": "s", "ip_address": ip}], "admin_state_up": True,
            "binding:host_id": host.name,
            "binding:vif_type": "ovs" if host.kind == "ovs" else "bridge",
        }
        self.vms[name] = vm
        return vm

    def remove_vm(self, vm: Vm) -> None:
        """Delete the port and unplug the VM (the veth pair goes with the namespace)."""
        self.cloud.ports.pop(vm.port_id, None)
        if vm.host.ovs is not None:
            vm.host.ovs.vsctl("--if-exists", "del-port", "br-int", vm.tap)
        netns.delete(vm.ns)
        self.vms.pop(vm.name, None)

    def converge(self, hosts: Iterable[Host] | None = None) -> dict[str, ReconcileResult]:
        """One reconcile pass per host with a fresh backend; operations must all succeed."""
        out = {}
        for host in hosts if hosts is not None else self.hosts.values():
            res = reconcile(host.backend(), self.cloud.desired(host.name))
            assert not res.apply.errors, res.apply.errors
            out[host.name] = res
        return out

    # --- traffic -------------------------------------------------------------------

    def ping(self, vm: Vm, ip: str, deadline: float = 6.0) -> bool:
        """True once a ping gets through (retries: ARP and OVS upcalls take a moment)."""
        end = time.monotonic() + deadline
        while True:
            if sh("ping", "-c", "1", "-W", "1", ip, ns=vm.ns, check=False).returncode == 0:
                return True
            if time.monotonic() > end:
                return False

    def unreachable(self, vm: Vm, ip: str) -> bool:
        """Neither ping nor ARP gets an answer from ``ip``."""
        p = sh("ping", "-c", "2", "-i", "0.2", "-W", "1", ip, ns=vm.ns, check=False)
        a = sh("arping", "-c", "2", "-w", "1", "-I", "eth0", ip, ns=vm.ns, check=False)
        return p.returncode != 0 and a.returncode != 0

    def tcp_transfer(self, client: Vm, server: Vm, size: int = 200_000) -> int:
        """Bytes a TCP client in ``client`` receives from a server in ``server``.

        Bulk TCP (MTU-sized segments, checksums left to "hardware" by veths)
        catches what ping cannot, e.g. an OVS netdev datapath forwarding
        unfinished checksums.
        """
        srv_code = (
            "import socket,sys;s=socket.socket();"
            "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
            f"s.bind(({server.ip!r},7000));s.listen(1);print('ready',flush=True);"
            "c,_=s.accept();c.sendall(b'x'*" + str(size) + ");c.close()")
        srv = subprocess.Popen(netns.exec_in(server.ns, [sys.executable, "-c", srv_code]),
                               stdout=subprocess.PIPE, text=True)
        try:
            assert srv.stdout is not None and srv.stdout.readline().strip() == "ready"
            cli_code = (
                "import socket;s=socket.create_connection(("
                f"{server.ip!r},7000),timeout=5);n=0\n"
                "while True:\n b=s.recv(65536)\n if not b: break\n n+=len(b)\nprint(n)")
            out = sh(sys.executable, "-c", cli_code, ns=client.ns, check=False)
            return int(out.stdout.strip() or 0)
        finally:
            srv.kill()
            srv.wait()

    def neigh_mac(self, vm: Vm, ip: str) -> str | None:
        out = sh("ip", "neigh", "show", ip, "dev", "eth0", ns=vm.ns).stdout
        m = re.search(r"lladdr ([0-9a-f:]{17})", out)
        return m.group(1) if m else None

    def fdb(self, host: Host, dev: str) -> set[tuple[str, str]]:
        """(mac, dst) remote entries on a host's VXLAN device."""
        out = sh("bridge", "fdb", "show", "dev", dev, ns=host.ns, check=False).stdout
        return {(m.group(1), m.group(2))
                for m in re.finditer(r"^([0-9a-f:]{17}) dst (\S+)", out, re.M)}

    def links(self, host: Host) -> set[str]:
        out = sh("ip", "-o", "link", "show", ns=host.ns).stdout
        return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


class ContinuousPing:
    """``ping -i <interval>`` in the background; ``stop()`` returns (sent, received)."""

    def __init__(self, vm: Vm, ip: str, interval: float = 0.05) -> None:
        self.proc = subprocess.Popen(
            netns.exec_in(vm.ns, ["ping", "-i", str(interval), "-W", "1", ip]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop(self) -> tuple[int, int]:
        import signal
        self.proc.send_signal(signal.SIGINT)
        try:
            out, _ = self.proc.communicate(timeout=5)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        assert m, out
        return int(m.group(1)), int(m.group(2))
