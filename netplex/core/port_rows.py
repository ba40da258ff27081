"""The ``ports`` table: its one writer and its one renderer.

Every statement that inserts, updates or deletes a ``ports`` row, and every
rendering of a port as the API shows it, is here. The port service, the
subnet service (SLAAC addresses), the agent calls (device status) and the
binding layer (through its :class:`~netplex.core.binding.PortRecords`
protocol, which :class:`PortTable` implements) all go through it, so a new
column or a new rule about revisions is added in one place.

The statements are prebuilt: building a SQLAlchemy statement costs several
times more than running it on SQLite, and these are on the hottest paths.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, String, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from netplex.core.binding.views import binding_dict
from netplex.core.common import iso, raw_timestamp, tags_among, tags_of
from netplex.core.extensions import NO_EXTENSIONS, ResourceExtensions
from netplex.db.base import utcnow
from netplex.db.engine import Txn
from netplex.db.models import IPAllocation, Port, PortBinding, Tag
from netplex.db.prepared import Prepared
from netplex.errors import PortNotFound

PORT_STATUS_DOWN = "DOWN"

_PORTS = cast(Table, Port.__table__)
_BINDINGS = cast(Table, PortBinding.__table__)
_IPS = cast(Table, IPAllocation.__table__)
_TAGS = cast(Table, Tag.__table__)

_PORT_KEYS = [c.key for c in _PORTS.c]
#: What lists read: timestamps stay text (formatted by ``iso`` without parsing).
LIST_COLUMNS = [raw_timestamp(c) if c.key in ("created_at", "updated_at") else c for c in _PORTS.c]

_PORT_ROW = Prepared(select(*_PORTS.c).where(_PORTS.c.id == bindparam("id")))
_IPS_OF_PORT = Prepared(select(_IPS.c.subnet_id, _IPS.c.ip_address).where(_IPS.c.port_id == bindparam("id")))
_ACTIVE_BINDING_OF_PORT = Prepared(
    select(*_BINDINGS.c).where(_BINDINGS.c.port_id == bindparam("id"), _BINDINGS.c.status == "ACTIVE")
)
_ACTIVE_BINDINGS = select(*_BINDINGS.c).where(
    _BINDINGS.c.port_id.in_(bindparam("ids", expanding=True)), _BINDINGS.c.status == "ACTIVE"
)
_PORT_IPS = select(_IPS.c.port_id, _IPS.c.subnet_id, _IPS.c.ip_address).where(
    _IPS.c.port_id.in_(bindparam("ids", expanding=True))
)
_STATUS_ON_HOST = (
    select(_PORTS.c.id, _PORTS.c.status)
    .join(_BINDINGS, _BINDINGS.c.port_id == _PORTS.c.id)
    .where(
        _PORTS.c.id.in_(bindparam("ids", expanding=True)),
        _BINDINGS.c.host == bindparam("host"),
        _BINDINGS.c.status == "ACTIVE",
    )
)
_PORTS_BY_IDS = select(*_PORTS.c).where(_PORTS.c.id.in_(bindparam("ids", expanding=True)))
_INSERT_PORT = Prepared(insert(_PORTS), keys=_PORT_KEYS)
_DELETE_PORT = Prepared(delete(_PORTS).where(_PORTS.c.id == bindparam("id")))
_PORT_DOWN = Prepared(update(_PORTS).where(_PORTS.c.id == bindparam("id")).values(status=PORT_STATUS_DOWN))
#: A port changed elsewhere (binding, addresses): new revision, and a new status if given.
_BUMP_PORT = Prepared(
    update(_PORTS)
    .where(_PORTS.c.id == bindparam("id"))
    .values(
        revision_number=_PORTS.c.revision_number + 1,
        updated_at=bindparam("now", type_=_PORTS.c.updated_at.type),
        status=func.coalesce(bindparam("status", type_=String()), _PORTS.c.status),
    )
)

_PORT_UPDATES: dict[frozenset[str], Prepared] = {}


def _port_update(columns: Iterable[str]) -> Prepared:
    """UPDATE of ``columns`` plus a new revision (one statement per column set)."""
    keys = frozenset(columns)
    stmt = _PORT_UPDATES.get(keys)
    if stmt is None:
        values: dict[str, Any] = {k: bindparam(k, type_=_PORTS.c[k].type) for k in sorted(keys)}
        values["revision_number"] = _PORTS.c.revision_number + 1
        values["updated_at"] = bindparam("now", type_=_PORTS.c.updated_at.type)
        stmt = _PORT_UPDATES[keys] = Prepared(update(_PORTS).where(_PORTS.c.id == bindparam("id")).values(**values))
    return stmt


def to_dict(row: Any, ips: Sequence[tuple[str, str]], binding: Any, tags: list[str]) -> dict[str, Any]:
    """A port as the API shows it: its row, fixed IPs, ACTIVE binding (or None) and tags."""
    d: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "network_id": row.network_id,
        "project_id": row.project_id,
        "tenant_id": row.project_id,
        "mac_address": row.mac_address,
        "admin_state_up": row.admin_state_up,
        "status": row.status,
        "device_id": row.device_id,
        "device_owner": row.device_owner,
        "fixed_ips": [{"subnet_id": sid, "ip_address": ip} for sid, ip in ips],
        "allowed_address_pairs": list(row.allowed_address_pairs or []),
        "revision_number": row.revision_number,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "tags": tags,
    }
    d.update(binding_dict(binding))
    return d


class PortTable:
    """Reads, renders and writes ``ports`` rows; shared by every service.

    ``extensions``: the attributes service plugins add to ports (security groups, ...),
    rendered with every port dict this table produces (API answers and feed entries).
    """

    def __init__(self, extensions: ResourceExtensions = NO_EXTENSIONS) -> None:
        self.extensions = extensions

    # -- rendering -------------------------------------------------------------

    def row(self, conn: Connection, port_id: str) -> Any:
        """The port's row (a named tuple), or None."""
        return _PORT_ROW.first(conn, {"id": port_id})

    def render(self, conn: Connection, port_id: str) -> dict[str, Any]:
        """The port as the API shows it, read on ``conn``."""
        row = _PORT_ROW.first(conn, {"id": port_id})
        if row is None:
            raise PortNotFound(port_id=port_id)
        return self.render_row(conn, row)

    def dict_in_session(self, s: Session, port_id: str) -> dict[str, Any]:
        """The port as the API shows it, as this transaction sees it (flush first)."""
        return self.render(s.connection(), port_id)

    def render_row(self, conn: Connection, row: Any) -> dict[str, Any]:
        """One port's dict from four indexed lookups (the single-port hot path)."""
        ips = [tuple(r) for r in _IPS_OF_PORT.rows(conn, {"id": row.id})]
        binding = _ACTIVE_BINDING_OF_PORT.first(conn, {"id": row.id})
        tags = tags_of(conn, "ports", row.id)
        port = to_dict(row, ips, binding, tags)
        if self.extensions:
            self.extensions.extend(conn, [port])
        return port

    def render_rows(self, conn: Connection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        """API dicts for port rows (ORM objects or rows with the ports columns)."""
        if len(rows) == 1:
            return [self.render_row(conn, rows[0])]
        ids = [r.id for r in rows]
        ips: dict[str, list[tuple[str, str]]] = defaultdict(list)
        bindings: dict[str, Any] = {}
        for i in range(0, len(ids), 5000):
            chunk = ids[i : i + 5000]
            for pid, sid, ip in conn.execute(_PORT_IPS, {"ids": chunk}).all():
                ips[pid].append((sid, ip))
            for b in conn.execute(_ACTIVE_BINDINGS, {"ids": chunk}).all():
                bindings[b.port_id] = b
        tags = tags_among(conn, "ports", ids)
        ports = [to_dict(r, ips.get(r.id, []), bindings.get(r.id), tags.get(r.id, [])) for r in rows]
        self.extensions.extend(conn, ports)
        return ports

    def render_where(self, conn: Connection, *where: Any) -> list[dict[str, Any]]:
        """API dicts of the ports matching ``where`` (SQL clauses), ordered by id."""
        rows = conn.execute(select(*LIST_COLUMNS).where(*where).order_by(_PORTS.c.id)).all()
        return self.render_rows(conn, rows)

    # -- writing ---------------------------------------------------------------

    def insert(self, conn: Connection, values: Mapping[str, Any]) -> None:
        _INSERT_PORT.execute(conn, dict(values))

    def update(self, conn: Connection, port_id: str, changes: Mapping[str, Any]) -> None:
        """Set ``changes`` (column -> value) with a new revision."""
        _port_update(changes).execute(conn, {**changes, "id": port_id, "now": utcnow()})

    def delete(self, conn: Connection, port_id: str) -> None:
        _DELETE_PORT.execute(conn, {"id": port_id})

    def bump(self, conn: Connection, port_id: str, *, status: str | None = None) -> None:
        """New revision (and ``status`` if given) for a port changed elsewhere."""
        bumped = _BUMP_PORT.execute(conn, {"id": port_id, "now": utcnow(), "status": status})
        if bumped.rowcount != 1:
            raise PortNotFound(port_id=port_id)

    def port_changed(self, txn: Txn, port_id: str, *, status: str | None = None) -> dict[str, Any]:
        """Bump the port (setting ``status`` if given), record it on the feed and return it."""
        txn.flush()
        self.bump(txn.conn, port_id, status=status)
        rendered = self.render(txn.conn, port_id)
        txn.record("port", port_id, "update", rendered)
        return rendered

    def set_down(self, conn: Connection, port_id: str) -> None:
        """Status DOWN without a new revision: for changes inside a port update,
        which bumps the port itself."""
        _PORT_DOWN.execute(conn, {"id": port_id})

    def set_statuses(self, txn: Txn, host: str, statuses: Mapping[str, str]) -> list[str]:
        """Set ``status`` of the ports bound (ACTIVE binding) on ``host``; others are
        ignored. Changed ports get a new revision and a feed entry; returns their ids."""
        conn = txn.conn
        changed: dict[str, str] = {}
        ids = list(statuses)
        for i in range(0, len(ids), 5000):
            rows = conn.execute(_STATUS_ON_HOST, {"ids": ids[i : i + 5000], "host": host})
            changed.update({pid: statuses[pid] for pid, old in rows if old != statuses[pid]})
        if not changed:
            return []
        now = utcnow()
        _port_update(["status"]).executemany(
            conn, [{"id": pid, "status": st, "now": now} for pid, st in changed.items()]
        )
        for i in range(0, len(changed), 5000):
            found = conn.execute(_PORTS_BY_IDS, {"ids": list(changed)[i : i + 5000]}).all()
            for port in self.render_rows(conn, found):
                txn.record("port", port["id"], "update", port)
        return list(changed)
