"""The lab: a Netplex server, hosts as network namespaces with real agents, VMs, a ping matrix.

::

                         root namespace: netplex server (127.0.0.1:<free port>, SQLite)
                                          agents (one per host, talk to the server on loopback)
      <prefix>-underlay ┌──── br-u 10.99.0.0/24 (VXLAN underlay) ─────┐
                        │ br-p (physnet1: flat provider wire)          │
                        └──┬───────────────┬───────────────┬───────────┘
                     eth0 .1, eth1   eth0 .2, eth1     eth0 .3, eth1
      <prefix>-host-lb1 (Linux bridge)  <prefix>-host-ovs1 (OVS)  <prefix>-host-ovs2 (OVS)
                            │ tap…                 │ tap… on br-int       │
      <prefix>-vm-a1 …   VMs: namespaces plugged by netplex.vif.attach (the compute side)

Where things run, and why:

* The server and the agents run in the root namespace so they reach each
  other on loopback; each agent programs its host namespace from outside
  (``--netns``: netlink and ``ip -n`` work on any namespace, and an OVS
  agent talks to its host's ovsdb-server over a Unix socket, which has no
  namespace). Only the data plane lives in the host namespaces, exactly as
  on a real host.
* An OVS host runs its own ``ovsdb-server`` + ``ovs-vswitchd`` *inside* its
  namespace (:class:`netplex.linux.ovs.OvsInstance`), so the netdev
  datapath's devices and sockets are that host's.
* The underlay addresses (10.99.0.0/24) exist only inside the namespaces.
  Nothing is created in the root namespace except processes and files.
* Routed hosts (kind ``routed``) also get an IPv6 underlay address
  (fd99::N) and serve only the routed network ``net-r`` (``local`` type,
  10.50.0.0/24 + fd50::/64, one VM each); their agents install each
  other's endpoint routes from the feed. With ``fabric="bgp"`` every second
  routed host sits in 10.98.0.0/24 behind a router namespace running BIRD
  (:mod:`netplex.lab.fabric`) and the routes are learned over BGP. Routed and
  L2 networks have no router between them: the ping matrix expects them
  isolated.
* Every VM above is in its project's ``default`` group. The security-group
  demo (:mod:`netplex.lab.secdemo`) adds VMs in groups ``web`` and
  ``isolated`` on the first Linux bridge and routed hosts, with TCP
  listeners, probed from the default group's VMs; they stay out of the ping
  matrix.

Everything made is recorded in ``<dir>/state.json`` *before* it is made, so
``down`` removes it all even after a crash half-way through ``up``; processes
are identified by pid + start time + the state directory on their command
line (:mod:`netplex.lab.procs`), OVS daemons by their pidfiles
(:meth:`OvsInstance.stop_workdir`), so nothing that is not ours is touched.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from netplex.agent.settings import AgentSettings
from netplex.client import NeutronClient
from netplex.lab import launch, procs, secdemo, teardown, tenants, topology, views
from netplex.lab.matrix import Cell, VmInfo, run_matrix
from netplex.lab.state import (
    DEFAULT_DIR,
    DEFAULT_HOSTS,
    MECHANISMS,
    ROUTED_NET,
    HostRec,
    LabError,
    NetRec,
    Progress,
    VmRec,
    parse_hosts,
)
from netplex.lab.workspace import LabOptions, Workspace

__all__ = [  # the records are re-exported: callers import them from here
    "DEFAULT_DIR",
    "DEFAULT_HOSTS",
    "HostRec",
    "Lab",
    "LabError",
    "NetRec",
    "Progress",
    "VmRec",
    "parse_hosts",
]


class Lab(Workspace):
    """One lab rooted at ``dir``: :meth:`up` builds it, :meth:`down` removes it.

    The parts live in their own modules (:mod:`~netplex.lab.workspace` state and names,
    :mod:`~netplex.lab.topology` wires, :mod:`~netplex.lab.launch` processes,
    :mod:`~netplex.lab.tenants` networks and VMs, :mod:`~netplex.lab.views`,
    :mod:`~netplex.lab.teardown`); the methods here are the lab's public face.

    :param report_interval: agents' heartbeat period (short, so ``status`` is live).
    """

    def __init__(self, dir: Path = DEFAULT_DIR, prefix: str = "npl",
                 report_interval: float = 5.0, agent_down_time: int = 20,
                 route_distribution: str = "feed", fabric: str = "flat") -> None:
        super().__init__(dir, prefix, LabOptions(report_interval=report_interval, agent_down_time=agent_down_time,
                                                 route_distribution=route_distribution, fabric=fabric))

    # --- processes ----------------------------------------------------------------------

    def start_server(self) -> None:
        launch.start_server(self)

    def wait_server(self, proc: procs.Proc | None = None, timeout: float = 120.0) -> None:
        launch.wait_server(self, proc, timeout)

    def stop_server(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        launch.stop_server(self, sig, timeout)

    def agent_argv(self, host: HostRec) -> list[str]:
        return launch.agent_argv(self, host)

    def agent_settings(self, name: str) -> AgentSettings:
        return launch.agent_settings(self, name)

    def start_agent(self, name: str) -> procs.Proc:
        return launch.start_agent(self, name)

    def stop_agent(self, name: str, sig: int = signal.SIGTERM) -> None:
        launch.stop_agent(self, name, sig)

    def agent_running(self, name: str) -> bool:
        return launch.agent_running(self, name)

    def wait_agents(self, names: Sequence[str] | None = None, timeout: float = 120.0) -> None:
        launch.wait_agents(self, names, timeout)

    def alive_agents(self, client: NeutronClient) -> set[str]:
        return launch.alive_agents(client)

    # --- wires, networks, VMs ---------------------------------------------------------------

    def add_underlay(self) -> str:
        return topology.add_underlay(self)

    def add_host(self, name: str, kind: str) -> HostRec:
        return topology.add_host(self, name, kind)

    def add_router(self) -> str:
        return topology.add_router(self)

    def create_network(self, name: str, cidr: str, provider: dict[str, Any] | None = None,
                       cidr6: str = "") -> NetRec:
        return tenants.create_network(self, name, cidr, provider, cidr6)

    def add_vm(self, name: str, host: str, network: str, ip: str,
               progress: Progress | None = None, timeout: float = 60.0,
               wait_active: bool = True, ip6: str = "", port_security: bool = True,
               security_groups: Sequence[str] | None = None, demo_group: str = "") -> VmRec:
        """See :func:`netplex.lab.tenants.add_vm`."""
        return tenants.add_vm(self, name, host, network, ip, progress, timeout, wait_active, ip6,
                              port_security, security_groups, demo_group)

    def remove_vm(self, name: str) -> None:
        tenants.remove_vm(self, name)

    def vm_plan(self, flat: bool = False) -> list[tuple[str, str, str, str]]:
        return tenants.vm_plan(self, flat)

    @staticmethod
    def routed_ip6(vm: str, network: str, ip: str) -> str:
        return tenants.routed_ip6(vm, network, ip)

    # --- the whole thing ----------------------------------------------------------------

    def up(self, kinds: Sequence[str] = DEFAULT_HOSTS, flat: bool = False,
           step: Callable[[str], contextlib.AbstractContextManager[Progress]] | None = None,
           secgroups: bool = True) -> None:
        """Build the lab. ``step(title)`` is a context manager yielding a progress callback.

        ``secgroups``: also the security-group demo (:mod:`netplex.lab.secdemo`)."""
        start = time.monotonic()
        step = step or _quiet_step
        self.init()
        with step("server (SQLite) on a free loopback port") as say:
            self.start_server()
            say(self.url)
        with step("underlay namespace") as say:
            self.add_underlay()
            say(self.ns_name("underlay"))
        counts: dict[str, int] = {}
        for kind in kinds:
            counts[kind] = counts.get(kind, 0) + 1
            name = f"host-{kind}{counts[kind]}"
            with step(f"host {name} ({MECHANISMS[kind]})") as say:
                h = self.add_host(name, kind)
                say(f"{h.ns}, underlay {h.ip}" + (", ovsdb-server + ovs-vswitchd" if kind == "ovs" else ""))
        if self.options.fabric == "bgp" and self.routed_hosts():
            with step("router (BGP route reflector between 10.99.0.0/24 and 10.98.0.0/24)") as say:
                say(self.add_router())
        with step("agents") as say:
            for name in self.state.hosts:
                self.start_agent(name)
                say(f"started {name}")
            say("waiting for every agent to register")
            self.wait_agents()
        with step("tenant networks (VXLAN, overlapping 10.0.0.0/24)") as say:
            for name in ("net-a", "net-b"):
                n = self.create_network(name, "10.0.0.0/24")
                say(f"{name}: VNI {n.segmentation_id}")
            if flat:
                self.create_network("net-flat", "172.16.0.0/24", tenants.FLAT_PROVIDER)
                say("net-flat: flat on physnet1")
        if self.routed_hosts():
            with step("routed network (local type, routed hosts only)") as say:
                rname, cidr, cidr6 = ROUTED_NET
                self.create_network(rname, cidr, {"provider:network_type": "local"}, cidr6=cidr6)
                say(f"{rname}: {cidr} + {cidr6}, /32 and /128 routes between the routed hosts")
        plan = self.vm_plan(flat)
        with step(f"{len(plan)} VMs plugged by the VIF library") as say:
            def one(args: tuple[str, str, str, str]) -> None:
                vm, host, net, ip = args

                def tell(message: str) -> None:
                    say(f"{vm}: {message}")

                self.add_vm(vm, host, net, ip, progress=tell, ip6=self.routed_ip6(vm, net, ip))
                say(f"{vm}: ACTIVE on {host}")

            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(one, plan))
        if secgroups:
            with step("security-group demo: groups web + isolated, VMs on Linux bridge and routed hosts") as say:
                secdemo.build(self, say)
        self.state.up_seconds = time.monotonic() - start
        self.save()

    def down(self, keep_logs: bool = False, say: Progress | None = None) -> list[str]:
        return teardown.down(self, keep_logs, say)

    def leftovers(self) -> list[str]:
        return teardown.leftovers(self)

    # --- looking at it ------------------------------------------------------------------

    def vm_infos(self, demo: bool = False) -> list[VmInfo]:
        return views.vm_infos(self, demo)

    def describe(self) -> dict[str, Any]:
        return views.describe(self)

    def namespace_of(self, name: str) -> str:
        return views.namespace_of(self, name)

    def matrix(self) -> list[Cell]:
        return run_matrix(self.vm_infos())

    def links(self, host: str) -> set[str]:
        return views.links(self, host)

    def fdb(self, host: str, network: str) -> set[tuple[str, str]]:
        return views.fdb(self, host, network)


@contextlib.contextmanager
def _quiet_step(title: str) -> Iterator[Progress]:
    yield lambda _m: None
