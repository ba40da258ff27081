"""Which DHCP agents serve which networks (Neutron's DHCP agent scheduler), as database operations.

A network *needs DHCP* when one of its subnets has ``enable_dhcp``. A DHCP agent is
*eligible* when it is alive (heartbeat at most ``agent_down_time`` old) and
``admin_state_up``. :func:`schedule_pass` is the whole policy, run periodically by
the plugin's housekeeping:

* every network that needs DHCP gets live bindings up to ``dhcp_agents_per_network``
  (or as many eligible agents as there are), least-loaded agent first (Neutron's
  ``dhcp_load_type = networks``), ties broken by agent id so two servers agree;
* with ``allow_automatic_dhcp_failover``, a binding to a dead agent is removed once
  a live agent took its place (never the last binding: a network keeps its dead
  agent rather than none, so an agent that comes back resumes at once);
* bindings of networks that no longer need DHCP are left alone (Neutron keeps them
  too; the agent serves nothing for a network without DHCP subnets).

Each added or removed binding is recorded on the change feed as resource
``dhcp_agent_network`` (id ``<network_id>/<agent_id>``) so DHCP agents learn their
networks without polling.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, select

from netplex.db.base import utcnow
from netplex.db.engine import Txn
from netplex.db.models import Agent, Network, Subnet
from netplex.db.models.dhcp import NetworkDhcpAgentBinding
from netplex.services.dhcp.options import DHCP_AGENT_TYPE

__all__ = [
    "DHCP_AGENT_TYPE",
    "FEED_RESOURCE",
    "DhcpAgent",
    "SchedulePolicy",
    "add_binding",
    "bindings",
    "dhcp_agents",
    "networks_needing_dhcp",
    "remove_binding",
    "schedule_pass",
]

FEED_RESOURCE = "dhcp_agent_network"
_B = NetworkDhcpAgentBinding


@dataclass(frozen=True, slots=True)
class DhcpAgent:
    id: str
    host: str
    alive: bool
    admin_state_up: bool

    @property
    def eligible(self) -> bool:
        return self.alive and self.admin_state_up


@dataclass(frozen=True, slots=True)
class SchedulePolicy:
    agents_per_network: int = 1
    auto_schedule: bool = True
    failover: bool = True
    agent_down_time: int = 75


def dhcp_agents(conn: Connection, agent_down_time: int, now: datetime | None = None) -> dict[str, DhcpAgent]:
    """Every registered DHCP agent by id, with its liveness computed now."""
    cutoff = (now or utcnow()) - timedelta(seconds=agent_down_time)
    rows = conn.execute(select(Agent.id, Agent.host, Agent.heartbeat_timestamp, Agent.admin_state_up)
                        .where(Agent.agent_type == DHCP_AGENT_TYPE))
    return {r.id: DhcpAgent(r.id, r.host, r.heartbeat_timestamp is not None and r.heartbeat_timestamp >= cutoff,
                            bool(r.admin_state_up)) for r in rows}


def networks_needing_dhcp(conn: Connection) -> set[str]:
    return set(conn.execute(select(Subnet.network_id).where(Subnet.enable_dhcp.is_(True)).distinct()).scalars())


def bindings(conn: Connection, *, network_id: str | None = None, agent_id: str | None = None) -> list[tuple[str, str]]:
    """(network_id, agent_id) pairs, optionally of one network or one agent, sorted."""
    q = select(_B.network_id, _B.dhcp_agent_id)
    if network_id is not None:
        q = q.where(_B.network_id == network_id)
    if agent_id is not None:
        q = q.where(_B.dhcp_agent_id == agent_id)
    return sorted((r[0], r[1]) for r in conn.execute(q))


def _record(txn: Txn, action: str, network_id: str, agent_id: str) -> None:
    txn.record(FEED_RESOURCE, f"{network_id}/{agent_id}", action,
               None if action == "delete" else {"network_id": network_id, "agent_id": agent_id})


def add_binding(txn: Txn, network_id: str, agent_id: str) -> None:
    txn.conn.execute(insert(_B).values(network_id=network_id, dhcp_agent_id=agent_id))
    _record(txn, "create", network_id, agent_id)


def remove_binding(txn: Txn, network_id: str, agent_id: str) -> bool:
    gone = txn.conn.execute(delete(_B).where(_B.network_id == network_id, _B.dhcp_agent_id == agent_id)).rowcount
    if gone:
        _record(txn, "delete", network_id, agent_id)
    return bool(gone)


def schedule_pass(txn: Txn, policy: SchedulePolicy, now: datetime | None = None) -> list[tuple[str, str, str]]:
    """One scheduling pass (see the module docstring); returns (action, network_id, agent_id) done."""
    if not policy.auto_schedule and not policy.failover:
        return []
    conn = txn.conn
    agents = dhcp_agents(conn, policy.agent_down_time, now)
    eligible = sorted(a.id for a in agents.values() if a.eligible)
    if not eligible:
        return []
    current: dict[str, list[str]] = {}
    load = dict.fromkeys(eligible, 0)
    for net, agent in bindings(conn):
        current.setdefault(net, []).append(agent)
        if agent in load:
            load[agent] += 1
    # Only networks that still exist (a network deleted meanwhile cascades its bindings).
    existing = set(conn.execute(select(Network.id)).scalars())
    done: list[tuple[str, str, str]] = []
    for net in sorted(networks_needing_dhcp(conn) & existing):
        have = current.get(net, [])
        live = [a for a in have if a in load]
        dead = [a for a in have if a not in load and not agents.get(a, DhcpAgent(a, "", False, False)).alive]
        want = min(policy.agents_per_network, len(eligible))
        if policy.auto_schedule or (policy.failover and dead):
            candidates = sorted((a for a in eligible if a not in have), key=lambda a: (load[a], a))
            for agent in candidates[:max(0, want - len(live))]:
                add_binding(txn, net, agent)
                load[agent] += 1
                live.append(agent)
                done.append(("add", net, agent))
        if policy.failover and live:
            for agent in dead:
                remove_binding(txn, net, agent)
                done.append(("remove", net, agent))
    return done


def agents_of(conn: Connection, network_ids: Iterable[str]) -> dict[str, list[str]]:
    ids = list(network_ids)
    out: dict[str, list[str]] = {}
    if not ids:
        return out
    for net, agent in conn.execute(select(_B.network_id, _B.dhcp_agent_id).where(_B.network_id.in_(ids))):
        out.setdefault(net, []).append(agent)
    return out


