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
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from netplex.agent.settings import AgentSettings
from netplex.client import ClientError, NeutronClient
from netplex.lab import fabric as fabric_mod
from netplex.lab import procs, secdemo
from netplex.lab.matrix import Cell, VmInfo, run_matrix
from netplex.lab.state import (
    DEFAULT_DIR,
    DEFAULT_HOSTS,
    MECHANISMS,
    PHYS_BRIDGE,
    PHYSNET,
    ROUTED_NET,
    UNDERLAY_NET,
    UNDERLAY_NET6,
    HostRec,
    LabError,
    LabState,
    NetRec,
    Progress,
    VmRec,
    parse_hosts,
)
from netplex.linux import bird, netns
from netplex.linux.ovs import OvsInstance

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

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _netplex_argv() -> list[str]:
    exe = Path(sys.executable).with_name("netplex")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "netplex.cli.main"]


def _sh(*cmd: str, ns: str | None = None) -> None:
    netns.run(ns, list(cmd))


class Lab:
    """One lab rooted at ``dir``. Names: ``<prefix>-underlay``, ``<prefix>-host-*``, ``<prefix>-vm-*``.

    :param report_interval: agents' heartbeat period (short, so ``status`` is live).
    """

    def __init__(self, dir: Path = DEFAULT_DIR, prefix: str = "npl",
                 report_interval: float = 5.0, agent_down_time: int = 20,
                 route_distribution: str = "feed", fabric: str = "flat") -> None:
        self.dir = Path(dir).absolute()
        #: Routed hosts: ``feed`` (agents install each other's routes) or ``bgp`` (each runs
        #: its own BIRD: a full iBGP mesh between the routed hosts on the underlay, or, with
        #: ``fabric = "bgp"``, sessions to the router of :mod:`netplex.lab.fabric`).
        if fabric not in fabric_mod.FABRICS:
            raise LabError(f"unknown fabric {fabric!r}", f"use one of {', '.join(fabric_mod.FABRICS)}")
        self.fabric = fabric
        self.route_distribution = "bgp" if fabric == "bgp" else route_distribution
        self.prefix = prefix
        self.report_interval = report_interval
        self.agent_down_time = agent_down_time
        self.state_file = self.dir / "state.json"
        self._state: LabState | None = None
        # VMs are plugged in parallel: state changes and saves are serialised.
        self._mutex = threading.RLock()

    # --- state ----------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        return self.state_file.exists()

    @property
    def state(self) -> LabState:
        if self._state is None:
            if not self.exists:
                raise LabError(f"no lab in {self.dir}", "start one with: netplex lab up")
            try:
                self._state = LabState.from_json(json.loads(self.state_file.read_text()))
            except (ValueError, KeyError, TypeError) as exc:
                raise LabError(f"{self.state_file} is unreadable: {exc}",
                               f"inspect it; remove {self.dir} once nothing of the lab runs") from exc
            self.prefix = self._state.prefix
            if self._state.fabric == "bgp":
                self.fabric, self.route_distribution = "bgp", "bgp"
        return self._state

    def save(self) -> None:
        """Write the state atomically (a crash never leaves half a file)."""
        with self._mutex:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state.to_json(), indent=1))
            os.replace(tmp, self.state_file)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One lab command at a time per directory."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LabError(f"another lab command is running on {self.dir}",
                               "wait for it to finish") from None
            yield
        finally:
            os.close(fd)

    def ns_name(self, name: str) -> str:
        prefix = self._state.prefix if self._state is not None else self.prefix
        return f"{prefix}-{name}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.state.server_port}"

    def client(self, timeout: float = 30.0) -> NeutronClient:
        return NeutronClient(self.url, timeout=timeout)

    def _new_ns(self, name: str) -> str:
        ns = self.ns_name(name)
        with self._mutex:
            if netns.exists(ns) and ns not in self.state.namespaces:
                raise LabError(f"network namespace {ns} exists but this lab did not create it",
                               f"remove it (ip netns del {ns}) if it is a leftover, or use --dir/--prefix")
            if ns not in self.state.namespaces:
                self.state.namespaces.append(ns)
                self.save()
        netns.create(ns)
        return ns

    # --- creation -----------------------------------------------------------------------

    def check_dir(self) -> None:
        """The OVS daemons' Unix sockets live under the directory: at most 107 bytes."""
        longest = self.dir / "ovs" / "host-ovs10" / "ovs-vswitchd.1234567.ctl"
        if len(str(longest)) > 107:
            raise LabError(f"{self.dir} is too long: OVS's Unix sockets under it would exceed "
                           "107 bytes", "use a shorter --dir, e.g. /tmp/netplex-lab")

    def init(self) -> None:
        """Create the state directory and config files for a new lab."""
        if self.exists:
            raise LabError(f"a lab already exists in {self.dir}",
                           "see it with: netplex lab status; remove it with: netplex lab down")
        self.check_dir()
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        self._state = LabState(prefix=self.prefix, token=secrets.token_hex(12), fabric=self.fabric)
        self.save()

    def start_server(self) -> None:
        st = self.state
        st.server_port = st.server_port or _free_port()
        conf = self.dir / "server.ini"
        (self.dir / "server").mkdir(parents=True, exist_ok=True)
        conf.write_text(
            "[DEFAULT]\n"
            f"bind_host = 127.0.0.1\nbind_port = {st.server_port}\n"
            f"state_path = {self.dir / 'server'}\n"
            f"agent_auth_token = {st.token}\n"
            f"agent_down_time = {self.agent_down_time}\n"
            "api_workers = 1\n"
            "[ml2]\ntype_drivers = local,flat,vlan,vxlan\nproject_network_types = vxlan\n"
            "mechanism_drivers = openvswitch,linuxbridge,routed\n"
            "[ml2_type_vxlan]\nvni_ranges = 1000:1999\n"
            "[ml2_type_flat]\nflat_networks = *\n"
            "[ml2_type_vlan]\nnetwork_vlan_ranges = physnet1:100:199\n")
        proc = procs.spawn([*_netplex_argv(), "server", "--config", str(conf)],
                           self.dir / "logs" / "server.log", marker=str(self.dir))
        st.server = proc.to_json()
        self.save()
        self.wait_server(proc)

    def wait_server(self, proc: procs.Proc | None = None, timeout: float = 120.0) -> None:
        proc = proc or procs.Proc.from_json(self.state.server or {"pid": 0, "start": 0, "marker": ""})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not procs.is_ours(proc):
                raise LabError("the server exited", f"see {self.dir / 'logs' / 'server.log'}")
            try:
                if httpx.get(self.url + "/", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise LabError(f"the server did not answer within {timeout:g}s",
                       f"see {self.dir / 'logs' / 'server.log'}")

    def stop_server(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Stop the server (SIGKILL after ``timeout``: it waits for open long-polls)."""
        if self.state.server:
            procs.stop(procs.Proc.from_json(self.state.server), sig, timeout)

    def add_underlay(self) -> str:
        ns = self._new_ns("underlay")
        bridges = ("br-u", "br-p", *((fabric_mod.SECOND_BRIDGE,) if self.fabric == "bgp" else ()))
        for br in bridges:
            if netns.run(ns, ["ip", "link", "show", br], check=False).returncode != 0:
                _sh("ip", "link", "add", "name", br, "type", "bridge", ns=ns)
            _sh("ip", "link", "set", br, "up", ns=ns)
        return ns

    def add_host(self, name: str, kind: str) -> HostRec:
        st = self.state
        underlay = self.ns_name("underlay")
        # BGP fabric: every second routed host sits in the other underlay subnet.
        second = self.fabric == "bgp" and kind == "routed" and len(self.routed_hosts()) % 2 == 1
        subnet, wire = (fabric_mod.SECOND_NET, fabric_mod.SECOND_BRIDGE) if second else (UNDERLAY_NET, "br-u")
        ip = f"{subnet}.{len(st.hosts) + 1}"
        ns = self._new_ns(name)
        host = HostRec(name=name, kind=kind, ns=ns, ip=ip)
        for dev, br in (("eth0", wire), ("eth1", "br-p")):
            outer = f"{br[-1]}-{name}"[:15]
            if netns.run(ns, ["ip", "link", "show", dev], check=False).returncode != 0:
                _sh("ip", "link", "add", "name", outer, "netns", underlay, "type", "veth",
                    "peer", "name", dev, "netns", ns)
            _sh("ip", "link", "set", outer, "master", br, "up", ns=underlay)
            _sh("ip", "link", "set", dev, "up", ns=ns)
        netns.run(ns, ["ip", "addr", "replace", f"{ip}/24", "dev", "eth0"])
        if kind == "routed":
            host.ip6 = f"{fabric_mod.SECOND_NET6 if second else UNDERLAY_NET6}{len(st.hosts) + 1}"
            netns.run(ns, ["ip", "addr", "replace", f"{host.ip6}/64", "dev", "eth0", "nodad"])
            if self.fabric == "bgp":
                gw4, gw6 = fabric_mod.router_address(subnet)
                netns.run(ns, ["ip", "route", "replace", "default", "via", gw4])
                netns.run(ns, ["ip", "-6", "route", "replace", "default", "via", gw6])
        if kind == "ovs":
            workdir = self.dir / "ovs" / name
            host.ovs_dir = str(workdir)
            if str(workdir) not in st.ovs_dirs:
                st.ovs_dirs.append(str(workdir))
                self.save()
            inst = OvsInstance(name, workdir, netns=ns)
            inst.start()
            # The operator's part of bridge_mappings: the provider bridge with its NIC.
            inst.vsctl("--may-exist", "add-br", PHYS_BRIDGE, "--", "set", "Bridge", PHYS_BRIDGE,
                       "datapath_type=netdev", "--", "--may-exist", "add-port", PHYS_BRIDGE, "eth1")
        st.hosts[name] = host
        self.save()
        return host

    def agent_argv(self, host: HostRec) -> list[str]:
        conf = self.dir / "agent.ini"
        if not conf.exists():
            conf.write_text(f"[DEFAULT]\nagent_auth_token = {self.state.token}\n"
                            f"[agent]\nreport_interval = {self.report_interval:g}\n"
                            "resync_interval = 300\n")
        configs = ["--config", str(conf)]
        if host.kind == "routed":
            own = self.dir / f"agent-{host.name}.ini"
            own.write_text("[routed]\n" + "".join(f"{k} = {v}\n" for k, v in self.routed_options(host).items()))
            configs += ["--config", str(own)]
        argv = [*_netplex_argv(), "agent", *configs, "--host", host.name,
                "--mechanism", host.mechanism, "--server", self.url, "--netns", host.ns,
                "--local-ip", host.ip, "--log-file", str(self.dir / "logs" / f"agent-{host.name}.log")]
        if host.kind == "ovs":
            argv += ["--ovs-db", host.ovs_db or "", "--ovs-rundir", host.ovs_dir,
                     "--bridge-mappings", f"{PHYSNET}:{PHYS_BRIDGE}"]
        elif host.kind == "routed":
            pass
        else:
            argv += ["--physical-interface-mappings", f"{PHYSNET}:eth1"]
        return argv

    def agent_settings(self, name: str) -> AgentSettings:
        """The settings :meth:`agent_argv` gives the agent process (for in-process agents)."""
        host = self.state.hosts[name]
        common: dict[str, Any] = dict(host=name, server_url=self.url, agent_token=self.state.token,
                                      local_ip=host.ip, netns=host.ns,
                                      report_interval=self.report_interval)
        if host.kind == "ovs":
            return AgentSettings(mechanism="openvswitch", ovs_db=host.ovs_db or "",
                                 ovs_rundir=host.ovs_dir, bridge_mappings={PHYSNET: PHYS_BRIDGE},
                                 **common).with_overrides()
        if host.kind == "routed":
            opts: dict[str, Any] = {"create_taps": False, "bgp_as": 64512, "bird": "bird",
                                    "birdc": "birdc", **self.routed_options(host)}
            opts["bgp_peers"] = tuple(p for p in str(opts.get("bgp_peers", "")).split(",") if p)
            return AgentSettings(mechanism="routed", backend_options=opts, **common).with_overrides()
        return AgentSettings(mechanism="linuxbridge",
                             physical_interface_mappings={PHYSNET: "eth1"}, **common).with_overrides()

    def routed_options(self, host: HostRec) -> dict[str, str]:
        """The ``[routed]`` section of a routed host's agent (BGP: a full mesh of the routed hosts)."""
        opts = {"route_distribution": self.route_distribution, "local_ip6": host.ip6}
        if self.route_distribution == "bgp":
            peers = [ip for h in self.state.hosts.values() if h.kind == "routed" and h.name != host.name
                     for ip in (h.ip, h.ip6) if ip]
            if self.fabric == "bgp":  # the router only
                peers = list(fabric_mod.router_address(host.ip.rsplit(".", 1)[0]))
            opts.update(bgp_peers=",".join(peers), bird_dir=str(self.bird_dir(host.name)))
        return opts

    def bird_dir(self, name: str) -> Path:
        return self.dir / "bird" / name

    def add_router(self) -> str:
        """BGP fabric: the router namespace between the two underlay subnets, BIRD reflecting routes."""
        ns = self._new_ns(fabric_mod.TOR)
        clients = [ip for h in self.state.hosts.values() if h.kind == "routed" for ip in (h.ip, h.ip6)]
        fabric_mod.start_tor(ns, self.ns_name("underlay"), self.bird_dir(fabric_mod.TOR), clients)
        return ns

    def start_agent(self, name: str) -> procs.Proc:
        host = self.state.hosts[name]
        old = self.state.agents.get(name)
        if old and procs.is_ours(procs.Proc.from_json(old)):
            return procs.Proc.from_json(old)
        proc = procs.spawn(self.agent_argv(host), self.dir / "logs" / f"agent-{name}.out",
                           marker=str(self.dir))
        self.state.agents[name] = proc.to_json()
        self.save()
        return proc

    def stop_agent(self, name: str, sig: int = signal.SIGTERM) -> None:
        rec = self.state.agents.get(name)
        if rec:
            procs.stop(procs.Proc.from_json(rec), sig)

    def agent_running(self, name: str) -> bool:
        rec = self.state.agents.get(name)
        return bool(rec) and procs.is_ours(procs.Proc.from_json(rec or {}))

    def wait_agents(self, names: Sequence[str] | None = None, timeout: float = 120.0) -> None:
        """Until every agent is registered and alive, and OVS hosts have their br-int.

        The timeout is only a backstop: an agent that exits fails the wait at once, and a
        loaded 2-core machine has taken over 30 s to start five agents (each imports the
        server's client and its backend, then registers)."""
        names = list(names or self.state.hosts)
        deadline = time.monotonic() + timeout
        with self.client() as c:
            while True:
                missing = set(names) - self.alive_agents(c)
                for name in list(set(names) - missing):
                    host = self.state.hosts[name]
                    if host.kind == "ovs" and host.ovs_db and subprocess.run(
                            ["ovs-vsctl", f"--db={host.ovs_db}", "br-exists", "br-int"],
                            capture_output=True, check=False).returncode != 0:
                        missing.add(name)
                if not missing:
                    return
                for name in missing:
                    if not self.agent_running(name):
                        raise LabError(f"the agent of {name} exited",
                                       f"see {self.dir / 'logs' / f'agent-{name}.log'}")
                if time.monotonic() > deadline:
                    raise LabError(f"agents not ready after {timeout:g}s: {', '.join(sorted(missing))}",
                                   f"see {self.dir / 'logs'}/agent-*.log")
                time.sleep(0.2)

    def alive_agents(self, client: NeutronClient) -> set[str]:
        try:
            agents = client.list_resources("agent")
        except ClientError:
            return set()
        return {str(a.get("host")) for a in agents if a.get("alive")}

    def create_network(self, name: str, cidr: str, provider: dict[str, Any] | None = None,
                       cidr6: str = "") -> NetRec:
        with self.client() as c:
            net = c.create_network({"name": name, **(provider or {})})
            sub = c.create_subnet({"network_id": net["id"], "cidr": cidr, "ip_version": 4,
                                   "name": f"{name}-subnet"})
            sub6 = c.create_subnet({"network_id": net["id"], "cidr": cidr6, "ip_version": 6,
                                    "name": f"{name}-subnet6"}) if cidr6 else {"id": ""}
        rec = NetRec(name=name, id=net["id"], subnet_id=sub["id"], cidr=cidr,
                     network_type=str(net.get("provider:network_type") or ""),
                     segmentation_id=net.get("provider:segmentation_id"),
                     subnet6_id=str(sub6["id"]), cidr6=cidr6)
        self.state.networks[name] = rec
        self.save()
        return rec

    def add_vm(self, name: str, host: str, network: str, ip: str,
               progress: Progress | None = None, timeout: float = 60.0,
               wait_active: bool = True, ip6: str = "", port_security: bool = True,
               security_groups: Sequence[str] | None = None, demo_group: str = "") -> VmRec:
        """A port with ``ip`` (and ``ip6``) on ``network``, plugged into a new VM namespace on ``host``.

        ``port_security=False``: no security groups, no port security (tests of the data
        plane's own behaviour, independent of the filter). ``security_groups``: the port's
        group ids (default: the project's ``default``); ``demo_group`` marks a VM of the
        security-group demo (:mod:`netplex.lab.secdemo`), kept out of the ping matrix."""
        from netplex.vif.attach import Progress as AttachProgress
        from netplex.vif.attach import attach

        st = self.state
        net, h = st.networks[network], st.hosts[host]
        vm = st.vms.get(name) or VmRec(name=name, ns=self.ns_name(name), host=host,
                                       network=network, ip=ip, ip6=ip6, security_group=demo_group)
        with self.client() as c:
            if not vm.port_id:
                fixed = [{"subnet_id": net.subnet_id, "ip_address": ip}]
                if ip6 and net.subnet6_id:
                    fixed.append({"subnet_id": net.subnet6_id, "ip_address": ip6})
                attrs: dict[str, Any] = {"network_id": net.id, "name": name, "fixed_ips": fixed}
                if not port_security:
                    attrs.update(port_security_enabled=False, security_groups=[])
                elif security_groups is not None:
                    attrs["security_groups"] = list(security_groups)
                port = c.create_port(attrs)
                vm.port_id, vm.mac = port["id"], port["mac_address"]
                with self._mutex:
                    st.vms[name] = vm
                    self.save()
            self._new_ns(name)

            def report(p: AttachProgress) -> None:
                if progress is not None:
                    progress(p.message)

            attach(c, vm.port_id, host, vm.ns, host_netns=h.ns, ovs_db=h.ovs_db,
                   timeout=timeout, progress=report, poll_interval=0.1, wait_active=wait_active)
        return vm

    def remove_vm(self, name: str) -> None:
        """Detach and delete the VM's port, delete its namespace."""
        from netplex.vif.attach import detach

        vm = self.state.vms[name]
        h = self.state.hosts[vm.host]
        with self.client() as c:
            with contextlib.suppress(ClientError):
                detach(c, vm.port_id, vm.host, host_netns=h.ns, ovs_db=h.ovs_db, netns=vm.ns,
                       wait_down=False)
            with contextlib.suppress(ClientError):
                c.delete_port(vm.port_id)
        netns.delete(vm.ns)
        del self.state.vms[name]
        self.save()

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
        if self.fabric == "bgp" and self.routed_hosts():
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
                n = self.create_network("net-flat", "172.16.0.0/24", {
                    "provider:network_type": "flat", "provider:physical_network": PHYSNET})
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

    def vm_plan(self, flat: bool = False) -> list[tuple[str, str, str, str]]:
        """(vm, host, network, ip): one VM per host on each network.

        net-a uses .11, .12, ...; net-b *reuses* those addresses shifted by one
        host (the same IP on the other network lives on another host), and its
        last VM gets an address nobody else has: cross-network pings then show
        both "no answer" and "answered by my own network's VM, not the target".
        """
        hosts = [h for h, rec in self.state.hosts.items() if rec.kind != "routed"]
        n = len(hosts)
        plan = [(f"vm-a{i + 1}", h, "net-a", f"10.0.0.{11 + i}") for i, h in enumerate(hosts)]
        for i, h in enumerate(hosts):
            ip = f"10.0.0.{11 + (i + 1) % n}" if i < n - 1 else f"10.0.0.{21 + i}"
            plan.append((f"vm-b{i + 1}", h, "net-b", ip))
        if flat:
            plan += [(f"vm-f{i + 1}", h, "net-flat", f"172.16.0.{11 + i}") for i, h in enumerate(hosts)]
        # Routed hosts serve only the routed network (VXLAN is not routed), one VM each.
        plan += [(f"vm-r{i + 1}", h, ROUTED_NET[0], f"10.50.0.{11 + i}")
                 for i, h in enumerate(self.routed_hosts())]
        return plan

    def routed_hosts(self) -> list[str]:
        return [h for h, rec in self.state.hosts.items() if rec.kind == "routed"]

    @staticmethod
    def routed_ip6(vm: str, network: str, ip: str) -> str:
        """The IPv6 address of a routed-network VM (same host part as its IPv4 one)."""
        if network != ROUTED_NET[0]:
            return ""
        return f"{ROUTED_NET[2].split('/')[0]}{ip.rsplit('.', 1)[1]}"

    def vm_infos(self, demo: bool = False) -> list[VmInfo]:
        """The default-group VMs (the ping matrix's), or with ``demo`` the security-group demo's."""
        st = self.state
        return [VmInfo(name=v.name, ns=v.ns, host=v.host, kind=st.hosts[v.host].kind,
                       network=v.network, ip=v.ip, mac=v.mac)
                for v in sorted(st.vms.values(), key=lambda v: (v.network, v.name))
                if bool(v.security_group) == demo]

    def describe(self) -> dict[str, Any]:
        """The lab as one JSON-able object (``netplex lab status --json``; keys are only ever added)."""
        st = self.state
        routed_nets = {v.network for v in st.vms.values() if st.hosts[v.host].kind == "routed"}
        return {
            "endpoint": self.url,
            "hosts": [{"name": h.name, "kind": h.kind, "mechanism": h.mechanism, "namespace": h.ns,
                       "underlay_ip": h.ip, "underlay_ip6": h.ip6} for h in st.hosts.values()],
            "networks": [{"name": n.name, "id": n.id,
                          "kind": "routed" if n.name in routed_nets else n.network_type,
                          "network_type": n.network_type, "cidr": n.cidr, "cidr6": n.cidr6}
                         for n in st.networks.values()],
            "vms": [{"name": v.name, "host": v.host, "mechanism": st.hosts[v.host].mechanism,
                     "network": v.network, "ip": v.ip, "ip6": v.ip6, "mac": v.mac,
                     "port_id": v.port_id, "namespace": v.ns,
                     "security_group": v.security_group or "default"} for v in st.vms.values()],
            "security_groups": [{"name": name, "id": gid, "ingress": secdemo.DEMO_GROUPS[name][0],
                                 "vms": [v.name for v in st.vms.values() if v.security_group == name],
                                 "expected": secdemo.EXPECTED[name]}
                                for name, gid in st.groups.items() if name in secdemo.DEMO_GROUPS],
        }

    def namespace_of(self, name: str) -> str:
        """The namespace of VM or host ``name`` (LabError naming the choices if there is none)."""
        st = self.state
        if name in st.vms:
            return st.vms[name].ns
        if name in st.hosts:
            return st.hosts[name].ns
        raise LabError(f"no VM or host called {name!r}",
                       f"one of: {', '.join([*st.vms, *st.hosts]) or '(none)'}")

    def matrix(self) -> list[Cell]:
        return run_matrix(self.vm_infos())

    # --- looking at hosts ------------------------------------------------------------------

    def links(self, host: str) -> set[str]:
        """Link names in a host's namespace."""
        out = netns.run(self.state.hosts[host].ns, ["ip", "-o", "link", "show"]).stdout
        return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}

    def fdb(self, host: str, network: str) -> set[tuple[str, str]]:
        """(mac, dst) L2 population entries of a network's VXLAN device on a host."""
        vni = self.state.networks[network].segmentation_id
        out = netns.run(self.state.hosts[host].ns, ["bridge", "fdb", "show", "dev", f"vxlan-{vni}"],
                        check=False).stdout
        return {(m.group(1), m.group(2))
                for m in re.finditer(r"^([0-9a-f:]{17}) dst (\S+)", out, re.M)}

    # --- teardown ------------------------------------------------------------------------

    def down(self, keep_logs: bool = False, say: Progress | None = None) -> list[str]:
        """Remove every process, OVS instance and namespace the lab made; idempotent.

        Returns what was removed. Works from the state file alone.
        """
        say = say or (lambda _m: None)
        done: list[str] = []
        if not self.exists:
            return done
        st = self.state
        # Agents first (all signalled at once), so that the server has no
        # long-polls left to wait for when it shuts down.
        agents = {name: procs.Proc.from_json(rec) for name, rec in st.agents.items()}
        live = {name: p for name, p in agents.items() if procs.is_ours(p)}
        for p in live.values():
            procs.signal_only(p, signal.SIGTERM)
        for name, p in live.items():
            procs.stop(p)
            done.append(f"agent {name} (pid {p.pid})")
            say(done[-1])
        for item in secdemo.stop_listeners(self):
            done.append(item)
            say(item)
        # The routed hosts' BIRD daemons (BGP mode), by the PID in their own directories.
        if fabric_mod.stop_tor(self.bird_dir(fabric_mod.TOR)):
            done.append("BIRD of the router")
            say(done[-1])
        for name, h in st.hosts.items():
            if h.kind == "routed" and bird.stop(bird.BirdFiles(self.bird_dir(name))):
                done.append(f"BIRD of {name}")
                say(done[-1])
        if st.server and procs.stop(procs.Proc.from_json(st.server)):
            done.append(f"server (pid {st.server['pid']})")
            say(done[-1])
        for wd in st.ovs_dirs:
            if Path(wd).exists():
                OvsInstance.stop_workdir(Path(wd))
                done.append(f"OVS instance {wd}")
                say(done[-1])
        for ns in reversed(st.namespaces):
            if netns.exists(ns):
                netns.delete(ns)
                done.append(f"namespace {ns}")
                say(done[-1])
        self.remove_files(keep_logs)
        self._state = None
        return done

    #: Everything the lab writes in its directory (nothing else is ever deleted there).
    FILES = ("state.json", "state.tmp", ".lock", "server.ini", "agent.ini", "server", "ovs", "bird", "logs")

    def remove_files(self, keep_logs: bool = False) -> None:
        """Delete the lab's own files; the directory too if that leaves it empty."""
        for name in self.FILES:
            path = self.dir / name
            if name == "logs" and keep_logs:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        for own in self.dir.glob("agent-*.ini"):  # routed hosts' own sections
            own.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.dir.rmdir()  # only if empty

    def leftovers(self) -> list[str]:
        """What of this lab still exists (namespaces, live processes); for tests and status."""
        st = self.state
        out = [ns for ns in st.namespaces if netns.exists(ns)]
        for name, rec in [("server", st.server), *st.agents.items(),
                          *((f"listener {k}", v) for k, v in st.listeners.items())]:
            if rec and procs.is_ours(procs.Proc.from_json(rec)):
                out.append(f"process {name} ({rec['pid']})")
        return out


@contextlib.contextmanager
def _quiet_step(title: str) -> Iterator[Progress]:
    yield lambda _m: None
