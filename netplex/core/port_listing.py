"""Listing ports (``GET /v2.0/ports``): Neutron's filters, including
``fixed_ips`` and ``binding:host_id``, as SQL where it can be."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import ColumnElement, or_, select

from netplex.core import ipam
from netplex.core.context import Context
from netplex.core.listing import ListQuery, filter_clauses, finish_in_python, paginate
from netplex.core.port_rows import LIST_COLUMNS, PortTable
from netplex.db.engine import Database
from netplex.db.models import IPAllocation, Network, Port, PortBinding
from netplex.errors import BadRequest

COLUMNS = {
    "id": Port.id,
    "name": Port.name,
    "description": Port.description,
    "project_id": Port.project_id,
    "tenant_id": Port.project_id,
    "network_id": Port.network_id,
    "mac_address": Port.mac_address,
    "admin_state_up": Port.admin_state_up,
    "status": Port.status,
    "device_id": Port.device_id,
    "device_owner": Port.device_owner,
    "revision_number": Port.revision_number,
    "created_at": Port.created_at,
    "updated_at": Port.updated_at,
}


def find_ports(db: Database, rows: PortTable, ctx: Context, query: ListQuery) -> list[dict[str, Any]]:
    """``GET /v2.0/ports``: SQL filters and paging where possible, the rest in Python."""
    sql_filters, rest = query.split_filters(COLUMNS)
    fixed_ip_filters = rest.pop("fixed_ips", None)
    binding_host = rest.pop("binding:host_id", None)
    with db.read() as s:
        # Plain rows: for 10,000 ports ORM objects would cost more than the query.
        stmt = select(*LIST_COLUMNS).where(*filter_clauses(COLUMNS, sql_filters))
        if not (ctx.is_admin or ctx.is_agent):
            own_nets = select(Network.id).where(Network.project_id == (ctx.project_id or ""))
            stmt = stmt.where(or_(Port.project_id == (ctx.project_id or ""), Port.network_id.in_(own_nets)))
        if binding_host is not None:
            stmt = stmt.where(
                Port.id.in_(
                    select(PortBinding.port_id).where(
                        PortBinding.host.in_(binding_host), PortBinding.status == "ACTIVE"
                    )
                )
            )
        if fixed_ip_filters:
            stmt = stmt.where(*_fixed_ip_clauses(fixed_ip_filters))
        stmt = paginate(s, stmt, COLUMNS, Port.id, query, resource="port", apply_limit=not rest)
        items = rows.render_rows(s.connection(), s.connection().execute(stmt).all())
    return finish_in_python(items, rest, query)

def _fixed_ip_clauses(values: list[Any]) -> list[Any]:
    """``fixed_ips=ip_address=10.0.0.3`` / ``subnet_id=...`` / ``ip_address_substr=...``."""
    clauses = []
    by_key: dict[str, list[str]] = defaultdict(list)
    for v in values:
        key, sep, val = str(v).partition("=")
        if not sep or key not in ("ip_address", "subnet_id", "ip_address_substr"):
            raise BadRequest(resource="port", msg=f"Invalid fixed_ips filter '{v}'")
        by_key[key].append(val)
    for key, vals in by_key.items():
        cond: ColumnElement[bool]
        if key == "ip_address":
            cond = IPAllocation.ip_address.in_([str(ipam.parse_ip(x)) for x in vals])
        elif key == "subnet_id":
            cond = IPAllocation.subnet_id.in_(vals)
        else:
            cond = or_(*[IPAllocation.ip_address.contains(x) for x in vals])
        clauses.append(Port.id.in_(select(IPAllocation.port_id).where(cond)))
    return clauses
