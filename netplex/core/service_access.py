"""The core's side of the service-plugin contract: :class:`~netplex.core.service_api.CoreAccess`.

Read-only queries that tell a plugin how each port is wired. They read the ports,
fixed IPs, the ACTIVE binding and its bottom binding level (the driver that set
the vif type) in a handful of set-based statements, whatever the number of ports.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Literal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from netplex.core.service_api import PortBinding
from netplex.db.engine import Database, Txn
from netplex.db.models import IPAllocation, Port
from netplex.db.models.binding import PortBinding as BindingRow
from netplex.db.models.binding import PortBindingLevel

__all__ = ["CorePortAccess"]

Connectivity = Literal["l2", "l3"]
#: SQLite's default limit of bound parameters is 999 on old builds; stay below it.
_CHUNK = 500


def _ip_order(pair: tuple[str, str]) -> tuple[int, int]:
    ip = ipaddress.ip_address(pair[1])
    return ip.version, int(ip)


class CorePortAccess:
    """Implements :class:`~netplex.core.service_api.CoreAccess` over the core's tables.

    :param connectivity: mechanism driver name -> the connectivity it declares
        (``MechanismDriver.connectivity``), from the loaded mechanism manager.
    """

    def __init__(self, db: Database, connectivity: Mapping[str, Connectivity]) -> None:
        self._db = db
        self._connectivity = dict(connectivity)

    @property
    def db(self) -> Database:
        return self._db

    def port_bindings(self, txn: Txn, port_ids: Iterable[str]) -> dict[str, PortBinding]:
        return self.port_bindings_in(txn.session, port_ids)

    def port_bindings_in(self, s: Session, port_ids: Iterable[str]) -> dict[str, PortBinding]:
        """:meth:`port_bindings` in any session (a read session for after-commit views)."""
        ids = list(dict.fromkeys(port_ids))
        out: dict[str, PortBinding] = {}
        for i in range(0, len(ids), _CHUNK):
            out.update(self._load(s, Port.id.in_(ids[i:i + _CHUNK])))
        return out

    def ports_of_network(self, txn: Txn, network_id: str) -> list[PortBinding]:
        return sorted(self._load(txn.session, Port.network_id == network_id).values(), key=lambda p: p.port_id)

    def _load(self, s: Session, where: ColumnElement[bool]) -> dict[str, PortBinding]:
        ports = s.execute(
            select(Port.id, Port.network_id, Port.project_id, Port.device_owner, Port.device_id,
                   Port.mac_address).where(where)
        ).all()
        if not ports:
            return {}
        ids = [p.id for p in ports]
        ips: dict[str, list[tuple[str, str]]] = {}
        for row in s.execute(select(IPAllocation.port_id, IPAllocation.subnet_id, IPAllocation.ip_address)
                             .where(IPAllocation.port_id.in_(ids))):
            ips.setdefault(row.port_id, []).append((row.subnet_id, row.ip_address))
        bindings = {
            b.port_id: b for b in s.execute(
                select(BindingRow.port_id, BindingRow.host, BindingRow.vif_type, BindingRow.vif_details)
                .where(BindingRow.port_id.in_(ids), BindingRow.status == "ACTIVE"))
        }
        bottom = (select(PortBindingLevel.port_id, PortBindingLevel.host,
                         func.max(PortBindingLevel.level).label("level"))
                  .where(PortBindingLevel.port_id.in_(ids))
                  .group_by(PortBindingLevel.port_id, PortBindingLevel.host).subquery())
        drivers = {
            (r.port_id, r.host): r.driver for r in s.execute(
                select(PortBindingLevel.port_id, PortBindingLevel.host, PortBindingLevel.driver).join(
                    bottom, (PortBindingLevel.port_id == bottom.c.port_id)
                    & (PortBindingLevel.host == bottom.c.host) & (PortBindingLevel.level == bottom.c.level)))
        }
        out: dict[str, PortBinding] = {}
        for p in ports:
            b = bindings.get(p.id)
            host = b.host if b is not None else ""
            vif_type = b.vif_type if b is not None else "unbound"
            mechanism = drivers.get((p.id, host)) if b is not None else None
            bound = bool(host) and vif_type not in ("unbound", "binding_failed")
            out[p.id] = PortBinding(
                port_id=p.id, network_id=p.network_id, project_id=p.project_id or "",
                device_owner=p.device_owner or "", device_id=p.device_id or "", mac_address=p.mac_address,
                fixed_ips=tuple(sorted(ips.get(p.id, ()), key=_ip_order)),
                host=host, vif_type=vif_type, vif_details=dict(b.vif_details or {}) if b is not None else {},
                mechanism=mechanism if bound else None,
                connectivity=self._connectivity.get(mechanism or "") if bound else None,
            )
        return out
