"""What host agents ask of the server besides the Neutron API.

Neutron's agents use RPC for these; ours use two small HTTP calls (see
:mod:`netplex.api.agent_routes`): a consistent snapshot of everything a
host must wire, and batched device up/down reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from netplex.db.models import FeedHead, Network, Port, PortBinding

if TYPE_CHECKING:
    from netplex.core.plugin import Core

ACTIVE, DOWN = "ACTIVE", "DOWN"


def host_state(core: Core, host: str) -> dict[str, Any]:
    """Snapshot at one feed revision: the host's ports, their networks, and the
    other bound ports on those networks (L2 population), plus every agent."""
    with core.db.snapshot() as s:
        revision = int(s.execute(select(FeedHead.revision).where(FeedHead.id == 1)).scalar_one())
        local = select(PortBinding.port_id).where(PortBinding.host == host, PortBinding.status == ACTIVE)
        net_ids = list(s.execute(select(Port.network_id).where(Port.id.in_(local)).distinct()).scalars())
        bound = select(PortBinding.port_id).where(PortBinding.host != "", PortBinding.status == ACTIVE)
        # Plain rows, not ORM objects: a host with 1,000 ports reads them all.
        ports = core.ports.render_where(s.connection(), Port.network_id.in_(net_ids), Port.id.in_(bound))
        nets = core.networks._dicts(
            s, list(s.execute(select(Network).where(Network.id.in_(net_ids)).order_by(Network.id)).scalars())
        )
        agents = core.agents.list_agents(s)
    return {"revision": revision, "host": host, "networks": nets, "ports": ports, "agents": agents}


def device_status(core: Core, host: str, up: list[str], down: list[str]) -> list[str]:
    """Set ports ACTIVE/DOWN as the host's agent reports; ignores ports not bound there."""
    wanted = {pid: ACTIVE for pid in up}
    wanted.update({pid: DOWN for pid in down})
    if not wanted:
        return []

    return core.db.transaction(lambda txn: core.ports.set_statuses(txn, host, wanted))
