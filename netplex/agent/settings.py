"""Everything one host agent needs to know, from Neutron-named options plus CLI overrides.

:class:`AgentSettings` is built once at the edge (``netplex agent``; the lab;
tests) and passed down; nothing below reads configuration files. It is
plain data: :mod:`netplex.agent.backends` turns it into the backend kind's
answers (registration body, ``configurations``, the backend itself).

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
``[<options_section>] ...``    the backend kind's own section, if it names one
                               (``backend_options``, parsed; see
                               :attr:`netplex.agent.backend_api.BackendKind.options_section`)
=============================  ===============================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_OVSDB", "AgentSettings", "SettingsError"]

DEFAULT_OVSDB = "unix:/var/run/openvswitch/db.sock"


class SettingsError(ValueError):
    """The agent cannot start with these settings; ``hint`` says what to do next."""

    def __init__(self, message: str, hint: str) -> None:
        self.hint = hint
        super().__init__(message)


@dataclass(frozen=True)
class AgentSettings:
    host: str
    #: Name of the backend kind (an ``netplex.agent_backends`` entry point).
    mechanism: str
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
    #: The parsed options of the backend kind's own section (``BackendKind.options_section``);
    #: empty when the kind names none.
    backend_options: Mapping[str, Any] = field(default_factory=dict)

    # --- construction ----------------------------------------------------------

    @classmethod
    def from_config(cls, cfg: Any, mechanism: str, *, config_local_ip: str,
                    backend_options: Mapping[str, Any] | None = None, **overrides: Any) -> AgentSettings:
        """Options from a :class:`netplex.config.Config`; ``overrides`` (non-None) win.

        ``config_local_ip`` is the backend kind's reading of its tunnel address option and
        ``backend_options`` its own section's values
        (:func:`netplex.agent.backends.settings_from_config` passes both).
        """
        base = cls(
            host=cfg.host,
            mechanism=mechanism,
            server_url=cfg.get("agent", "server_url"),
            agent_token=cfg.get("DEFAULT", "agent_auth_token"),
            report_interval=float(cfg.get("agent", "report_interval")),
            resync_interval=float(cfg.get("agent", "resync_interval")),
            local_ip=config_local_ip or "",
            tunnel_types=tuple(cfg.get("agent", "tunnel_types")),
            udp_port=int(cfg.get("vxlan", "udp_dstport")),
            enable_vxlan=bool(cfg.get("vxlan", "enable_vxlan")),
            physical_interface_mappings=dict(cfg.get("linux_bridge", "physical_interface_mappings")),
            lb_bridge_mappings=dict(cfg.get("linux_bridge", "bridge_mappings")),
            bridge_mappings=dict(cfg.get("ovs", "bridge_mappings")),
            integration_bridge=cfg.get("ovs", "integration_bridge"),
            datapath_type=cfg.get("ovs", "datapath_type"),
            ovs_db=cfg.get("ovs", "ovsdb_connection") or DEFAULT_OVSDB,
            backend_options=dict(backend_options or {}),
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
        """The checks common to every kind (see :func:`netplex.agent.backends.validate`)."""
        if not self.host:
            raise SettingsError("no host id", "pass --host HOST or set [DEFAULT] host")
        if self.netns and not os.path.exists(f"/run/netns/{self.netns}"):
            raise SettingsError(f"network namespace {self.netns!r} does not exist",
                                f"create it (ip netns add {self.netns}) or drop --netns")
        if self.report_interval <= 0 or self.resync_interval <= 0:
            raise SettingsError("report_interval and resync_interval must be positive",
                                "fix [agent] report_interval / resync_interval")
        if "vxlan" in self.tunnel_types and not self.local_ip:
            raise SettingsError("tunnel_types has vxlan but no local IP is set",
                                "pass --local-ip IP or set [vxlan] local_ip")

    @property
    def rundir(self) -> Path:
        if self.ovs_rundir:
            return Path(self.ovs_rundir)
        if self.ovs_db.startswith("unix:"):
            return Path(self.ovs_db[5:]).parent
        return Path("/var/run/openvswitch")
