"""Neutron's DHCP agent scheduler API (extension ``dhcp_agent_scheduler``), as plain operations.

* ``GET    /v2.0/agents/{agent_id}/dhcp-networks``               -> :meth:`DhcpSchedulingApi.networks_of_agent`
* ``POST   /v2.0/agents/{agent_id}/dhcp-networks`` {network_id}  -> :meth:`DhcpSchedulingApi.add_network`
* ``DELETE /v2.0/agents/{agent_id}/dhcp-networks/{network_id}``  -> :meth:`DhcpSchedulingApi.remove_network`
* ``GET    /v2.0/networks/{network_id}/dhcp-agents``             -> :meth:`DhcpSchedulingApi.agents_of_network`

Admin-only by policy (``get_dhcp-networks``, ``create_dhcp-network``, ``delete_dhcp-network``,
``get_dhcp-agents``, Neutron's rule names). Everything runs in one transaction: a binding is
added or removed together with its change-feed record.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from netplex.core.context import Context
from netplex.db.engine import Database, Txn
from netplex.db.models import Agent, Network
from netplex.errors import AgentNotFound, NetworkNotFound
from netplex.services.dhcp import errors as e
from netplex.services.dhcp import scheduler

__all__ = ["DhcpSchedulingApi"]

_TIME = "%Y-%m-%d %H:%M:%S"  # Neutron's agent time format


def _networks(s: Session, ids: list[str]) -> list[dict[str, Any]]:
    """The networks' core attributes (a short Neutron network dict; extensions are not rendered here)."""
    if not ids:
        return []
    rows = s.execute(select(Network).where(Network.id.in_(ids)).order_by(Network.id)).scalars()
    return [{"id": n.id, "name": n.name, "project_id": n.project_id, "tenant_id": n.project_id,
             "admin_state_up": n.admin_state_up, "status": n.status} for n in rows]


def _agents(s: Session, ids: list[str], down: int) -> list[dict[str, Any]]:
    if not ids:
        return []
    live = scheduler.dhcp_agents(s.connection(), down)
    rows = s.execute(select(Agent).where(Agent.id.in_(ids)).order_by(Agent.id)).scalars()
    return [{"id": a.id, "agent_type": a.agent_type, "binary": a.binary, "topic": a.topic, "host": a.host,
             "admin_state_up": a.admin_state_up, "alive": a.id in live and live[a.id].alive,
             "configurations": a.configurations,
             "heartbeat_timestamp": a.heartbeat_timestamp.strftime(_TIME) if a.heartbeat_timestamp else None}
            for a in rows]


class DhcpSchedulingApi:
    def __init__(self, db: Database, agent_down_time: int) -> None:
        self._db = db
        self._down = agent_down_time

    def networks_of_agent(self, ctx: Context, agent_id: str) -> list[dict[str, Any]]:
        with self._db.read() as s:
            agent_type = s.execute(select(Agent.agent_type).where(Agent.id == agent_id)).scalar()
            if agent_type is None:
                raise AgentNotFound(id=agent_id)
            ids = [n for n, _ in scheduler.bindings(s.connection(), agent_id=agent_id)]
            return _networks(s, ids)

    def agents_of_network(self, ctx: Context, network_id: str) -> list[dict[str, Any]]:
        with self._db.read() as s:
            if s.get(Network, network_id) is None:
                raise NetworkNotFound(net_id=network_id)
            ids = [a for _, a in scheduler.bindings(s.connection(), network_id=network_id)]
            return _agents(s, ids, self._down)

    def add_network(self, ctx: Context, agent_id: str, network_id: str) -> None:
        def run(txn: Txn) -> None:
            conn = txn.conn
            row = conn.execute(select(Agent.agent_type, Agent.admin_state_up).where(Agent.id == agent_id)).first()
            if row is None:
                raise AgentNotFound(id=agent_id)
            if row.agent_type != scheduler.DHCP_AGENT_TYPE or not row.admin_state_up:
                raise e.InvalidDHCPAgent(id=agent_id)
            if conn.execute(select(Network.id).where(Network.id == network_id)).first() is None:
                raise NetworkNotFound(net_id=network_id)
            if (network_id, agent_id) in scheduler.bindings(conn, network_id=network_id):
                raise e.NetworkHostedByDHCPAgent(network_id=network_id, agent_id=agent_id)
            scheduler.add_binding(txn, network_id, agent_id)

        self._db.transaction(run)

    def remove_network(self, ctx: Context, agent_id: str, network_id: str) -> None:
        def run(txn: Txn) -> None:
            if txn.conn.execute(select(Agent.id).where(Agent.id == agent_id)).first() is None:
                raise AgentNotFound(id=agent_id)
            if not scheduler.remove_binding(txn, network_id, agent_id):
                raise e.NetworkNotHostedByDhcpAgent(network_id=network_id, agent_id=agent_id)

        self._db.transaction(run)
