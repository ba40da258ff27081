"""The dhcp service plugin: Neutron's ``dhcp_agent_scheduler`` and ``extra_dhcp_opt`` extensions.

On by default, as Neutron's DHCP is core (``[dhcp] enabled = false`` turns it off). What
it serves:

* ``extra_dhcp_opts`` on ports (:mod:`netplex.services.dhcp.extra_opts`);
* scheduling of networks with DHCP subnets to ``DHCP agent`` agents: a housekeeping
  pass every ``[dhcp] schedule_interval`` seconds (:func:`scheduler.schedule_pass`:
  new networks, rescheduling after ``agent_down_time``), and the scheduler API
  (:class:`~netplex.services.dhcp.scheduling_api.DhcpSchedulingApi`);
* the host state of a DHCP agent's host: key ``dhcp`` with the agent and the networks
  it serves (the agent follows the feed's ``dhcp_agent_network`` records after that).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select

from netplex.config import Config
from netplex.core.service_api import CoreAccess, Extension, PeriodicJob, ResourceExtension, ServicePlugin
from netplex.db.engine import Database
from netplex.db.models import Agent
from netplex.services.dhcp import scheduler
from netplex.services.dhcp.extra_opts import ExtraDhcpOpts
from netplex.services.dhcp.scheduling_api import DhcpSchedulingApi

__all__ = ["DhcpPlugin"]

LOG = logging.getLogger(__name__)
_ADMIN = "rule:admin_only"


class DhcpPlugin(ServicePlugin):
    name = "dhcp"

    def __init__(self, db: Database, policy: scheduler.SchedulePolicy, interval: float) -> None:
        self._db = db
        self.policy = policy
        self._interval = interval
        self.scheduling = DhcpSchedulingApi(db, policy.agent_down_time)

    @classmethod
    def build(cls, cfg: Config, core: CoreAccess) -> ServicePlugin:
        policy = scheduler.SchedulePolicy(
            agents_per_network=int(cfg.get("DEFAULT", "dhcp_agents_per_network")),
            auto_schedule=bool(cfg.get("DEFAULT", "network_auto_schedule")),
            failover=bool(cfg.get("DEFAULT", "allow_automatic_dhcp_failover")),
            agent_down_time=int(cfg.get("DEFAULT", "agent_down_time")),
        )
        return cls(core.db, policy, float(cfg.get("dhcp", "schedule_interval")))

    def resource_extensions(self) -> Sequence[ResourceExtension]:
        return (ExtraDhcpOpts(),)

    def extensions(self) -> Sequence[Extension]:
        return (
            Extension("dhcp_agent_scheduler", "DHCP Agent Scheduler", "Schedule networks among dhcp agents"),
            Extension("extra_dhcp_opt", "Neutron Extra DHCP options",
                      "Extra options configuration for DHCP. For example PXE boot options to DHCP clients can "
                      "be specified (e.g. tftp-server, server-ip-address, bootfile-name)"),
        )

    def policy_defaults(self) -> Mapping[str, str]:
        return {
            "get_dhcp-networks": _ADMIN,
            "create_dhcp-network": _ADMIN,
            "delete_dhcp-network": _ADMIN,
            "get_dhcp-agents": _ADMIN,
            "create_port:extra_dhcp_opts": "rule:admin_or_network_owner",
            "update_port:extra_dhcp_opts": "rule:admin_or_network_owner",
        }

    def schedule_once(self) -> list[tuple[str, str, str]]:
        done = self._db.transaction(lambda txn: scheduler.schedule_pass(txn, self.policy))
        for action, net, agent in done:
            LOG.info("dhcp scheduler: %s network %s %s agent %s", action, net, "to" if action == "add" else "from",
                     agent)
        return done

    def housekeeping(self) -> Sequence[PeriodicJob]:
        return (PeriodicJob(self._interval, self.schedule_once, "dhcp-schedule"),)

    def host_state(self, conn: Connection, host: str, ports: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        agent_id = conn.execute(select(Agent.id).where(Agent.host == host,
                                                       Agent.agent_type == scheduler.DHCP_AGENT_TYPE)).scalar()
        if agent_id is None:
            return {}
        return {"dhcp": {"agent_id": agent_id,
                         "networks": [n for n, _ in scheduler.bindings(conn, agent_id=agent_id)]}}
