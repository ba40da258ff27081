"""Everything one host agent needs to know, from Neutron-named options plus CLI overrides.

:class:`AgentSettings` is built once at the edge (``netplex agent``; the lab;
tests) and passed down; nothing below reads configuration files. It also
knows how to describe the agent to the server (``agent_type``, ``binary``,
``configurations``, which the mechanism drivers bind against) and which
backend to build.

Option sources, with Neutron's names:

=============================  ===============================================
``[DEFAULT] host``             host id (``binding:host_id``); else hostname
``[DEFAULT] agent_auth_token`` sent as ``X-Agent-Token``
``[agent] server_url``         the Netplex API
``[agent] report_interval``    seconds between heartbeats
``[agent] resync_interval``    seconds between full resyncs
``[agent] tunnel_types``       default ``vxlan`` when a local IP is set
``[vxlan] local_ip``           tunnel endpoint (``[ovs] local_ip`` wins for OVS)
``[vxlan] udp_dstport``        VXLAN port
``[linux_bridge] ...``         ``physical_interface_mappings``, ``bridge_mappings``
``[ovs] ...``                  ``bridge_mappings``, ``integration_bridge``,
                               ``datapath_type``, ``ovsdb_connection``
=============================  ===============================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from netplex.agent.linuxbridge import LinuxBridgeBackend, LinuxBridgeConfig
from netplex.agent.openvswitch import OvsBackend, OvsConfig
from netplex.agent.reconcile import Backend

__all__ = [
    "AGENT_BINARIES",
    "AGENT_TYPES",
    "DEFAULT_OVSDB",
    "AgentSettings",
    "Mechanism",
    "SettingsError",
]

Mechanism = Literal["linuxbridge", "openvswitch"]
AGENT_TYPES: Mapping[str, str] = {"linuxbridge": "Linux bridge agent",
                                  "openvswitch": "Open vSwitch agent"}
AGENT_BINARIES: Mapping[str, str] = {"linuxbridge": "netplex-linuxbridge-agent",
                                     "openvswitch": "netplex-openvswitch-agent"}
DEFAULT_OVSDB = "unix:/var/run/openvswitch/db.sock"


class SettingsError(ValueError):
    """The agent cannot start with these settings; ``hint`` says what to do next."""

    def __init__(self, message: str, hint: str) -> None:
        self.hint = hint
        super().__init__(message)


@dataclass(frozen=True)
class AgentSettings:
    host: str
    mechanism: Mechanism
    server_url: str = "http://127.0.0.1:9696"
    agent_token: str = ""
    report_interval: float = 30.0
    resync_interval: float = 300.0
    local_ip: str = ""
    tunnel_types: tuple[str, ...] = ("vxlan",)
    udp_port: int = 4789
    enable_vxlan: bool = True
    #: Linux bridge: physnet -> interface; physnet -> existing bridge.
    physical_interface_mappings: Mapping[str, str] = field(default_factory=dict)
    lb_bridge_mappings: Mapping[str, str] = field(default_factory=dict)
    #: Open vSwitch: physnet -> OVS bridge.
    bridge_mappings: Mapping[str, str] = field(default_factory=dict)
    integration_bridge: str = "br-int"
    datapath_type: str = "netdev"
    ovs_db: str = DEFAULT_OVSDB
    #: Where ovs-vswitchd keeps ``<bridge>.mgmt``; default: the OVSDB socket's directory.
    ovs_rundir: str = ""
    #: The host's network namespace (lab / tests); "" is the agent's own.
    netns: str = ""
    availability_zone: str = "nova"
    #: Long-poll timeout (server caps it at 60).
    poll_timeout: float = 25.0
    #: After a change arrives at an idle agent, wait this long for more before
    #: reconciling once (changes that queued up during a pass are taken at once).
    coalesce: float = 0.01
    #: While a bound port has no device, look again this often (monitors usually beat it).
    device_recheck: float = 2.0

    # --- construction ----------------------------------------------------------

    @classmethod
    def from_config(cls, cfg: Any, mechanism: Mechanism, **overrides: Any) -> AgentSettings:
        """Options from a :class:`netplex.config.Config`; ``overrides`` (non-None) win."""
        ovs = mechanism == "openvswitch"
        local_ip = (cfg.get("ovs", "local_ip") if ovs else "") or cfg.get("vxlan", "local_ip")
        base = cls(
            host=cfg.host,
            mechanism=mechanism,
            server_url=cfg.get("agent", "server_url"),
            agent_token=cfg.get("DEFAULT", "agent_auth_token"),
            report_interval=float(cfg.get("agent", "report_interval")),
            resync_interval=float(cfg.get("agent", "resync_interval")),
            local_ip=local_ip or "",
            tunnel_types=tuple(cfg.get("agent", "tunnel_types")),
            udp_port=int(cfg.get("vxlan", "udp_dstport")),
            enable_vxlan=bool(cfg.get("vxlan", "enable_vxlan")),
            physical_interface_mappings=dict(cfg.get("linux_bridge", "physical_interface_mappings")),
            lb_bridge_mappings=dict(cfg.get("linux_bridge", "bridge_mappings")),
            bridge_mappings=dict(cfg.get("ovs", "bridge_mappings")),
            integration_bridge=cfg.get("ovs", "integration_bridge"),
            datapath_type=cfg.get("ovs", "datapath_type"),
            ovs_db=cfg.get("ovs", "ovsdb_connection") or DEFAULT_OVSDB,
        )
        return base.with_overrides(**overrides)

    def with_overrides(self, **overrides: Any) -> AgentSettings:
        s = replace(self, **{k: v for k, v in overrides.items() if v is not None})
        if not s.tunnel_types and s.local_ip and s.enable_vxlan:
            # Neutron needs tunnel_types spelled out; here a local IP means VXLAN.
            s = replace(s, tunnel_types=("vxlan",))
        if not s.local_ip:
            s = replace(s, tunnel_types=())
        return s

    def validate(self) -> None:
        """Check what can be checked before contacting anything; raise :class:`SettingsError`."""
        if not self.host:
            raise SettingsError("no host id", "pass --host HOST or set [DEFAULT] host")
        if self.mechanism not in AGENT_TYPES:
            raise SettingsError(f"unknown mechanism {self.mechanism!r}",
                                "use --mechanism linuxbridge or --mechanism openvswitch")
        if self.netns and not os.path.exists(f"/run/netns/{self.netns}"):
            raise SettingsError(f"network namespace {self.netns!r} does not exist",
                                f"create it (ip netns add {self.netns}) or drop --netns")
        if self.report_interval <= 0 or self.resync_interval <= 0:
            raise SettingsError("report_interval and resync_interval must be positive",
                                "fix [agent] report_interval / resync_interval")
        if self.mechanism == "openvswitch":
            # ssl: would need key/certificate options the agent does not have.
            if not self.ovs_db.startswith(("unix:", "tcp:")):
                raise SettingsError(f"OVSDB connection {self.ovs_db!r} is not unix: or tcp:",
                                    "pass --ovs-db unix:/path/to/db.sock")
            if self.ovs_db.startswith("unix:") and not Path(self.ovs_db[5:]).exists():
                raise SettingsError(
                    f"OVSDB socket {self.ovs_db[5:]} does not exist",
                    "start ovsdb-server + ovs-vswitchd, or pass --ovs-db unix:PATH "
                    "(and --ovs-rundir DIR) of the instance serving this host")
        if "vxlan" in self.tunnel_types and not self.local_ip:
            raise SettingsError("tunnel_types has vxlan but no local IP is set",
                                "pass --local-ip IP or set [vxlan] local_ip")

    # --- what the server sees ------------------------------------------------------

    @property
    def agent_type(self) -> str:
        return AGENT_TYPES[self.mechanism]

    @property
    def binary(self) -> str:
        return AGENT_BINARIES[self.mechanism]

    @property
    def rundir(self) -> Path:
        if self.ovs_rundir:
            return Path(self.ovs_rundir)
        if self.ovs_db.startswith("unix:"):
            return Path(self.ovs_db[5:]).parent
        return Path("/var/run/openvswitch")

    def configurations(self) -> dict[str, Any]:
        """The agent's ``configurations``, as the mechanism drivers read them."""
        conf: dict[str, Any] = {
            "tunneling_ip": self.local_ip or None,
            "tunnel_types": list(self.tunnel_types),
            "l2_population": True,
        }
        if self.mechanism == "linuxbridge":
            conf["interface_mappings"] = dict(self.physical_interface_mappings)
            conf["bridge_mappings"] = dict(self.lb_bridge_mappings)
        else:
            conf["bridge_mappings"] = dict(self.bridge_mappings)
            conf["integration_bridge"] = self.integration_bridge
            conf["datapath_type"] = self.datapath_type
        return conf

    def report_body(self, start_flag: bool) -> dict[str, Any]:
        return {
            "agent_type": self.agent_type,
            "binary": self.binary,
            "host": self.host,
            "topic": "N/A",
            "configurations": self.configurations(),
            "availability_zone": self.availability_zone,
            "start_flag": start_flag,
        }

    # --- the data plane ------------------------------------------------------------

    def backend(self) -> Backend:
        """A fresh backend for this host (backends keep no host state between calls).

        The Open vSwitch one opens its OVSDB connection on first use; the
        agent closes it when it stops (``close()``).
        """
        ns = self.netns or None
        vxlan = "vxlan" in self.tunnel_types
        if self.mechanism == "linuxbridge":
            return LinuxBridgeBackend(LinuxBridgeConfig(
                local_ip=self.local_ip or None,
                physical_interface_mappings=dict(self.physical_interface_mappings),
                bridge_mappings=dict(self.lb_bridge_mappings),
                udp_port=self.udp_port,
                enable_vxlan=self.enable_vxlan and vxlan,
            ), netns=ns)
        return OvsBackend(OvsConfig(
            integration_bridge=self.integration_bridge,
            datapath_type=self.datapath_type,
            bridge_mappings=dict(self.bridge_mappings),
            local_ip=(self.local_ip or None) if vxlan else None,
            udp_port=self.udp_port,
        ), db_socket=self.ovs_db, rundir=self.rundir, netns=ns)
