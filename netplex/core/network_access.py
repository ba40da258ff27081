"""Who may see a network, and which ports belong to it: shared by the network,
subnet and port services (none of them needs the others for this)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session

from netplex.core.context import Context
from netplex.db.models import Network
from netplex.errors import NetworkNotFound

#: Owners whose ports are the network's own and go away with it.
#: Router ports are network:* too but, as in Neutron, they keep a network alive.
AUTO_DELETE_OWNERS = ("network:dhcp", "network:distributed")


def is_auto_delete_owner(owner: str) -> bool:
    return owner in AUTO_DELETE_OWNERS


def visible_clause(ctx: Context) -> Any:
    """A WHERE clause on networks for what ``ctx`` may see (None: everything)."""
    if ctx.is_admin:
        return None
    return or_(
        Network.project_id == (ctx.project_id or ""),
        Network.shared.is_(True),
        Network.router_external.is_(True),
    )


def can_see(ctx: Context, row: Network) -> bool:
    return ctx.is_admin or row.project_id == ctx.project_id or row.shared or row.router_external


def visible_network(session: Session, ctx: Context, network_id: str) -> Network:
    """The network's row if ``ctx`` may see it, else ``NetworkNotFound``."""
    row = session.get(Network, network_id)
    if row is None or not can_see(ctx, row):
        raise NetworkNotFound(net_id=network_id)
    return row


def network_ids_visible(session: Session, ctx: Context) -> Any:
    """A subquery of network ids ``ctx`` may see (for subnets/ports visibility)."""
    stmt = select(Network.id)
    vis = visible_clause(ctx)
    return stmt.where(vis) if vis is not None else stmt.where(~false())
