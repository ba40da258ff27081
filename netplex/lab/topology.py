"""The lab's wires: the underlay namespace with its bridges, host namespaces, the BGP fabric's router.

The underlay addresses (10.99.0.0/24, fd99::/64) exist only inside the namespaces;
nothing is created in the root namespace. An OVS host runs its own ``ovsdb-server`` +
``ovs-vswitchd`` *inside* its namespace (:class:`netplex.linux.ovs.OvsInstance`), so
the netdev datapath's devices and sockets are that host's.
"""

from __future__ import annotations

from netplex.lab import fabric as fabric_mod
from netplex.lab.state import PHYS_BRIDGE, UNDERLAY_NET, UNDERLAY_NET6, HostRec
from netplex.lab.workspace import Workspace
from netplex.linux import netns
from netplex.linux.ovs import OvsInstance

__all__ = ["add_host", "add_router", "add_underlay"]


def _sh(*cmd: str, ns: str | None = None) -> None:
    netns.run(ns, list(cmd))


def add_underlay(ws: Workspace) -> str:
    ns = ws.new_ns("underlay")
    bridges = ("br-u", "br-p", *((fabric_mod.SECOND_BRIDGE,) if ws.options.fabric == "bgp" else ()))
    for br in bridges:
        if netns.run(ns, ["ip", "link", "show", br], check=False).returncode != 0:
            _sh("ip", "link", "add", "name", br, "type", "bridge", ns=ns)
        _sh("ip", "link", "set", br, "up", ns=ns)
    return ns


def add_host(ws: Workspace, name: str, kind: str) -> HostRec:
    """A host namespace wired to the underlay (eth0) and the provider wire (eth1)."""
    st = ws.state
    underlay = ws.ns_name("underlay")
    bgp = ws.options.fabric == "bgp"
    # BGP fabric: every second routed host sits in the other underlay subnet.
    second = bgp and kind == "routed" and len(ws.routed_hosts()) % 2 == 1
    subnet, wire = (fabric_mod.SECOND_NET, fabric_mod.SECOND_BRIDGE) if second else (UNDERLAY_NET, "br-u")
    ip = f"{subnet}.{len(st.hosts) + 1}"
    ns = ws.new_ns(name)
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
        if bgp:
            gw4, gw6 = fabric_mod.router_address(subnet)
            netns.run(ns, ["ip", "route", "replace", "default", "via", gw4])
            netns.run(ns, ["ip", "-6", "route", "replace", "default", "via", gw6])
    if kind == "ovs":
        workdir = ws.dir / "ovs" / name
        host.ovs_dir = str(workdir)
        if str(workdir) not in st.ovs_dirs:
            st.ovs_dirs.append(str(workdir))
            ws.save()
        inst = OvsInstance(name, workdir, netns=ns)
        inst.start()
        # The operator's part of bridge_mappings: the provider bridge with its NIC.
        inst.vsctl("--may-exist", "add-br", PHYS_BRIDGE, "--", "set", "Bridge", PHYS_BRIDGE,
                   "datapath_type=netdev", "--", "--may-exist", "add-port", PHYS_BRIDGE, "eth1")
    st.hosts[name] = host
    ws.save()
    return host


def add_router(ws: Workspace) -> str:
    """BGP fabric: the router namespace between the two underlay subnets, BIRD reflecting routes."""
    ns = ws.new_ns(fabric_mod.TOR)
    clients = [ip for h in ws.state.hosts.values() if h.kind == "routed" for ip in (h.ip, h.ip6)]
    fabric_mod.start_tor(ns, ws.ns_name("underlay"), ws.bird_dir(fabric_mod.TOR), clients)
    return ns
