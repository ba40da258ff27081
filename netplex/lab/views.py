"""Looking at a lab: its VMs for the ping matrix, ``status --json``, and what is on a host."""

from __future__ import annotations

import re
from typing import Any

from netplex.lab import secdemo
from netplex.lab.matrix import VmInfo
from netplex.lab.state import LabError
from netplex.lab.workspace import Workspace
from netplex.linux import netns

__all__ = ["describe", "fdb", "links", "namespace_of", "vm_infos"]


def vm_infos(ws: Workspace, demo: bool = False) -> list[VmInfo]:
    """The default-group VMs (the ping matrix's), or with ``demo`` the security-group demo's."""
    st = ws.state
    return [VmInfo(name=v.name, ns=v.ns, host=v.host, kind=st.hosts[v.host].kind,
                   network=v.network, ip=v.ip, mac=v.mac)
            for v in sorted(st.vms.values(), key=lambda v: (v.network, v.name))
            if bool(v.security_group) == demo]


def describe(ws: Workspace) -> dict[str, Any]:
    """The lab as one JSON-able object (``netplex lab status --json``; keys are only ever added)."""
    st = ws.state
    routed_nets = {v.network for v in st.vms.values() if st.hosts[v.host].kind == "routed"}
    return {
        "endpoint": ws.url,
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


def namespace_of(ws: Workspace, name: str) -> str:
    """The namespace of VM or host ``name`` (LabError naming the choices if there is none)."""
    st = ws.state
    if name in st.vms:
        return st.vms[name].ns
    if name in st.hosts:
        return st.hosts[name].ns
    raise LabError(f"no VM or host called {name!r}", f"one of: {', '.join([*st.vms, *st.hosts]) or '(none)'}")


def links(ws: Workspace, host: str) -> set[str]:
    """Link names in a host's namespace."""
    out = netns.run(ws.state.hosts[host].ns, ["ip", "-o", "link", "show"]).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def fdb(ws: Workspace, host: str, network: str) -> set[tuple[str, str]]:
    """(mac, dst) L2 population entries of a network's VXLAN device on a host."""
    vni = ws.state.networks[network].segmentation_id
    out = netns.run(ws.state.hosts[host].ns, ["bridge", "fdb", "show", "dev", f"vxlan-{vni}"],
                    check=False).stdout
    return {(m.group(1), m.group(2)) for m in re.finditer(r"^([0-9a-f:]{17}) dst (\S+)", out, re.M)}
