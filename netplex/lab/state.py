"""The lab's records: what a lab is made of, as saved in ``<dir>/state.json``.

Plain data (hosts, networks, VMs, the processes and namespaces made) plus the
lab's fixed names and addresses; :mod:`netplex.lab.lab` builds and removes
what they describe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_DIR",
    "DEFAULT_HOSTS",
    "MECHANISMS",
    "PHYSNET",
    "PHYS_BRIDGE",
    "ROUTED_NET",
    "UNDERLAY_NET",
    "UNDERLAY_NET6",
    "HostRec",
    "LabError",
    "LabState",
    "NetRec",
    "Progress",
    "VmRec",
    "parse_hosts",
]

DEFAULT_DIR = Path("/tmp/netplex-lab")
DEFAULT_HOSTS = ("lb", "ovs", "ovs", "routed", "routed")
UNDERLAY_NET = "10.99.0"
#: Routed hosts also have an IPv6 underlay address: the next hop of their IPv6 endpoints.
UNDERLAY_NET6 = "fd99::"
PHYSNET = "physnet1"
PHYS_BRIDGE = "br-phys1"
MECHANISMS = {"lb": "linuxbridge", "ovs": "openvswitch", "routed": "routed"}
#: The routed network of the lab (``local`` type: each routed host routes its VMs' /32s).
ROUTED_NET = ("net-r", "10.50.0.0/24", "fd50::/64")

Progress = Callable[[str], None]


class LabError(RuntimeError):
    """The lab cannot do this; ``hint`` says what to do next."""

    def __init__(self, message: str, hint: str = "") -> None:
        self.hint = hint
        super().__init__(message)


def parse_hosts(spec: str) -> list[str]:
    """``"lb,ovs,ovs"`` -> host kinds; at least one of each for the hybrid case."""
    kinds = [k.strip().lower() for k in spec.split(",") if k.strip()]
    bad = [k for k in kinds if k not in MECHANISMS]
    if bad:
        raise LabError(f"unknown host kind(s) {', '.join(bad)}",
                       "use lb, ovs and routed, e.g. --hosts lb,ovs,ovs or lb,ovs,routed,routed")
    if not 1 <= len(kinds) <= 8:
        raise LabError("a lab has 1 to 8 hosts", "e.g. --hosts lb,ovs,ovs")
    return kinds


@dataclass
class HostRec:
    name: str
    kind: str
    ns: str
    ip: str
    ovs_dir: str = ""
    #: IPv6 underlay address (routed hosts).
    ip6: str = ""

    @property
    def mechanism(self) -> str:
        return MECHANISMS[self.kind]

    @property
    def ovs_db(self) -> str | None:
        return f"unix:{self.ovs_dir}/db.sock" if self.ovs_dir else None


@dataclass
class NetRec:
    name: str
    id: str
    subnet_id: str
    cidr: str
    network_type: str = "vxlan"
    segmentation_id: int | None = None
    #: The IPv6 subnet, if the network has one.
    subnet6_id: str = ""
    cidr6: str = ""


@dataclass
class VmRec:
    name: str
    ns: str
    host: str
    network: str
    ip: str
    port_id: str = ""
    mac: str = ""
    ip6: str = ""
    #: "" = the project's ``default`` group; else the security-group demo's group (not in the matrix).
    security_group: str = ""


@dataclass
class LabState:
    prefix: str
    token: str
    server_port: int = 0
    server: dict[str, Any] | None = None
    #: In creation order; recorded before each is created.
    namespaces: list[str] = field(default_factory=list)
    ovs_dirs: list[str] = field(default_factory=list)
    hosts: dict[str, HostRec] = field(default_factory=dict)
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    networks: dict[str, NetRec] = field(default_factory=dict)
    vms: dict[str, VmRec] = field(default_factory=dict)
    up_seconds: float = 0.0
    #: ``flat`` (one underlay subnet) or ``bgp`` (routed hosts in two subnets behind a BGP router).
    fabric: str = "flat"
    #: The security-group demo: group name -> id, and its TCP listeners (VM name -> process).
    groups: dict[str, str] = field(default_factory=dict)
    listeners: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LabState:
        st = cls(prefix=d["prefix"], token=d.get("token", ""))
        st.server_port = int(d.get("server_port") or 0)
        st.server = d.get("server")
        st.namespaces = list(d.get("namespaces") or [])
        st.ovs_dirs = list(d.get("ovs_dirs") or [])
        st.hosts = {k: HostRec(**v) for k, v in (d.get("hosts") or {}).items()}
        st.agents = dict(d.get("agents") or {})
        st.networks = {k: NetRec(**v) for k, v in (d.get("networks") or {}).items()}
        st.vms = {k: VmRec(**v) for k, v in (d.get("vms") or {}).items()}
        st.up_seconds = float(d.get("up_seconds") or 0.0)
        st.fabric = str(d.get("fabric") or "flat")
        st.groups = dict(d.get("groups") or {})
        st.listeners = dict(d.get("listeners") or {})
        return st
