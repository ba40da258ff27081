"""How many of a resource a project has: counted from the resource's own table.

Counting is pluggable without any global registry: a resource is a :class:`CountedTable`
(a quota name and the table whose ``project_id`` rows it counts). The core's and the
security groups' are :data:`BUILT_IN`; a service plugin that adds a countable resource
(routers, floating IPs) declares its own through the ``netplex.quota_resources``
entry-point group (see docs/service-plugins.md, "Quotas").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points

from sqlalchemy import Connection, bindparam, column, func, select, table

from netplex.db.prepared import Prepared

__all__ = ["BUILT_IN", "ENTRY_POINT_GROUP", "CountedTable", "installed"]

ENTRY_POINT_GROUP = "netplex.quota_resources"


@dataclass(frozen=True)
class CountedTable:
    """Quota resource ``name`` counts the rows of ``table_name`` with the project's ``project_id``."""

    name: str
    table_name: str
    #: The count, compiled once (it runs inside every create of this resource).
    _count: Prepared = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        t = table(self.table_name, column("project_id"))
        stmt = select(func.count()).select_from(t).where(t.c.project_id == bindparam("p"))
        object.__setattr__(self, "_count", Prepared(stmt))

    def count(self, conn: Connection, project_id: str) -> int:
        return int(self._count.scalar(conn, {"p": project_id}) or 0)

    def count_all(self, conn: Connection) -> dict[str, int]:
        t = table(self.table_name, column("project_id"))
        rows = conn.execute(select(t.c.project_id, func.count()).group_by(t.c.project_id))
        return {str(p): int(n) for p, n in rows}


BUILT_IN: tuple[CountedTable, ...] = (
    CountedTable("network", "networks"),
    CountedTable("subnet", "subnets"),
    CountedTable("port", "ports"),
    CountedTable("security_group", "security_groups"),
    CountedTable("security_group_rule", "security_group_rules"),
)


def installed() -> tuple[CountedTable, ...]:
    """The built-in resources and those installed plugins declare (entry point -> CountedTable)."""
    found = list(BUILT_IN)
    names = {c.name for c in found}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        if isinstance(obj, CountedTable) and obj.name not in names:
            found.append(obj)
            names.add(obj.name)
    return tuple(found)
