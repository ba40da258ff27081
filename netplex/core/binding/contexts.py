"""Driver contexts and what they are read from: a network's segments, a binding's levels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from netplex.core.binding.statements import (
    ALL_SEGMENTS,
    LEVELS,
    STATIC_SEGMENTS,
)
from netplex.core.mech_api import (
    BINDING_ACTIVE,
    VIF_TYPE_UNBOUND,
    VNIC_NORMAL,
    BindingLevel,
    NetworkContext,
    PortBindingInfo,
    PortContext,
    SubnetContext,
    frozen_mapping,
)
from netplex.core.segments_model import Segment
from netplex.db.models import Network, PortBinding
from netplex.errors import NetworkNotFound


def connection(db: Session | Connection) -> Connection:
    return db.connection() if isinstance(db, Session) else db


def network_segments(
    db: Session | Connection, network_id: str, *, include_dynamic: bool = False
) -> tuple[Segment, ...]:
    """A network's segments in ``segment_index`` order (static ones by default)."""
    stmt = ALL_SEGMENTS if include_dynamic else STATIC_SEGMENTS
    return tuple(Segment.from_row(r) for r in stmt.rows(connection(db), {"network_id": network_id}))


def binding_levels(db: Session | Connection, port_id: str, host: str) -> tuple[BindingLevel, ...]:
    """The stored levels of a port's binding on ``host``, with their segments."""
    rows = LEVELS.rows(connection(db), {"port_id": port_id, "host": host})
    return tuple(
        BindingLevel(
            level=r.level,
            driver=r.driver,
            segment_id=r.segment_id or "",
            segment=Segment.from_row(r) if r.id is not None else None,
        )
        for r in rows
    )


def binding_info(session: Session | Connection, row: Any) -> PortBindingInfo:
    if row is None:
        return PortBindingInfo()
    return PortBindingInfo(
        host=row.host,
        vnic_type=row.vnic_type,
        profile=frozen_mapping(row.profile),
        vif_type=row.vif_type,
        vif_details=frozen_mapping(row.vif_details),
        status=row.status,
        levels=binding_levels(session, row.port_id, row.host) if row.host else (),
    )


def basic_network_dict(net: Network) -> dict[str, Any]:
    return {
        "id": net.id,
        "name": net.name,
        "project_id": net.project_id,
        "tenant_id": net.project_id,
        "admin_state_up": net.admin_state_up,
        "status": net.status,
        "shared": net.shared,
        "mtu": net.mtu,
        "router:external": net.router_external,
    }


def network_context(
    session: Session,
    current: Mapping[str, Any],
    original: Mapping[str, Any] | None = None,
) -> NetworkContext:
    """Context for ``*_network_{pre,post}commit``; reads the network's static segments."""
    return NetworkContext(
        current=frozen_mapping(current),
        original=frozen_mapping(original) if original is not None else None,
        segments=network_segments(session, str(current["id"])),
    )


def subnet_context(
    session: Session,
    current: Mapping[str, Any],
    original: Mapping[str, Any] | None = None,
    *,
    network: Mapping[str, Any] | None = None,
) -> SubnetContext:
    """Context for ``*_subnet_{pre,post}commit``. ``network`` is the network's API
    dict; when omitted a basic one is read from the database."""
    net = network if network is not None else read_network_dict(session, current["network_id"])
    return SubnetContext(
        current=frozen_mapping(current),
        original=frozen_mapping(original) if original is not None else None,
        network=network_context(session, net),
    )


def port_context(
    session: Session,
    current: Mapping[str, Any],
    original: Mapping[str, Any] | None = None,
    *,
    original_binding: PortBindingInfo | None = None,
    network: Mapping[str, Any] | None = None,
) -> PortContext:
    """Context for ``*_port_{pre,post}commit``.

    Reads the port's ACTIVE binding (with levels) as it is in ``session`` now
    (call after :meth:`PortBindingService.stage_binding` for creates and
    updates). For updates, pass ``original_binding`` captured with
    :meth:`PortBindingService.binding_info` before staging, so drivers see the
    old host/vif_type and levels; without it, the ``binding:*`` keys of
    ``original`` are used (no levels).
    """
    if original_binding is None and original is not None and "binding:host_id" in original:
        original_binding = PortBindingInfo(
            host=str(original.get("binding:host_id") or ""),
            vnic_type=str(original.get("binding:vnic_type") or VNIC_NORMAL),
            profile=frozen_mapping(original.get("binding:profile")),
            vif_type=str(original.get("binding:vif_type") or VIF_TYPE_UNBOUND),
            vif_details=frozen_mapping(original.get("binding:vif_details")),
        )
    port_id = str(current["id"])
    session.flush()
    row = session.scalars(
        select(PortBinding).where(
            PortBinding.port_id == port_id, PortBinding.status == BINDING_ACTIVE
        )
    ).one_or_none()
    net = network if network is not None else read_network_dict(session, current["network_id"])
    return PortContext(
        current=frozen_mapping(current),
        original=frozen_mapping(original) if original is not None else None,
        network=network_context(session, net),
        binding=binding_info(session, row),
        original_binding=original_binding,
    )


def read_network_dict(session: Session, network_id: str) -> dict[str, Any]:
    net = session.get(Network, network_id)
    if net is None:
        raise NetworkNotFound(net_id=network_id)
    return basic_network_dict(net)
