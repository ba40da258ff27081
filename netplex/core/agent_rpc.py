"""What host agents ask of the server besides the Neutron API.

Neutron's agents use RPC for these; ours use two small HTTP calls (see
:mod:`netplex.api.agent_routes`): a consistent snapshot of everything a
host must wire, and batched device up/down reports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, select

from netplex.core.agents import AgentService
from netplex.core.networks import NetworkService
from netplex.core.port_rows import PortTable
from netplex.db.engine import Database
from netplex.db.models import FeedHead, Network, Port, PortBinding

ACTIVE, DOWN = "ACTIVE", "DOWN"


#: A service plugin's part of the snapshot: (connection, host, the snapshot's ports) -> extra keys.
SnapshotPart = Callable[[Connection, str, Sequence[Mapping[str, Any]]], Mapping[str, Any]]


class AgentRpc:
    """The host snapshot and device status reports.

    ``parts``: what service plugins add to the snapshot (``ServicePlugin.host_state``).
    """

    def __init__(self, db: Database, ports: PortTable, networks: NetworkService, agents: AgentService,
                 parts: Sequence[SnapshotPart] = ()) -> None:
        self.db = db
        self.ports = ports
        self.networks = networks
        self.agents = agents
        self.parts = tuple(parts)

    def host_state(self, host: str) -> dict[str, Any]:
        """Snapshot at one feed revision: the host's ports, their networks, and the
        other bound ports on those networks (L2 population), plus every agent."""
        with self.db.snapshot() as s:
            revision = int(s.execute(select(FeedHead.revision).where(FeedHead.id == 1)).scalar_one())
            local = select(PortBinding.port_id).where(PortBinding.host == host, PortBinding.status == ACTIVE)
            net_ids = list(s.execute(select(Port.network_id).where(Port.id.in_(local)).distinct()).scalars())
            bound = select(PortBinding.port_id).where(PortBinding.host != "", PortBinding.status == ACTIVE)
            # Plain rows, not ORM objects: a host with 1,000 ports reads them all.
            ports = self.ports.render_where(s.connection(), Port.network_id.in_(net_ids), Port.id.in_(bound))
            nets = self.networks.dicts_in_session(
                s, list(s.execute(select(Network).where(Network.id.in_(net_ids)).order_by(Network.id)).scalars())
            )
            agents = self.agents.list_agents(s)
            state = {"revision": revision, "host": host, "networks": nets, "ports": ports, "agents": agents}
            for part in self.parts:
                for key, value in part(s.connection(), host, ports).items():
                    if key in state:
                        raise ValueError(f"a service plugin's host-state key {key!r} clashes")
                    state[key] = value
        return state

    def device_status(self, host: str, up: list[str], down: list[str]) -> list[str]:
        """Set ports ACTIVE/DOWN as the host's agent reports; ignores ports not bound there."""
        wanted = {pid: ACTIVE for pid in up}
        wanted.update({pid: DOWN for pid in down})
        if not wanted:
            return []
        return self.db.transaction(lambda txn: self.ports.set_statuses(txn, host, wanted))


class _Services(Protocol):
    @property
    def agent_rpc(self) -> AgentRpc: ...


# The API's entry points (it passes the services record it was built with).
def host_state(services: _Services, host: str) -> dict[str, Any]:
    return services.agent_rpc.host_state(host)


def device_status(services: _Services, host: str, up: list[str], down: list[str]) -> list[str]:
    return services.agent_rpc.device_status(host, up, down)
