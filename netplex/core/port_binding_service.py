"""Adapter between the port service and the binding layer (netplex.core.binding).

The port service stores a binding *request* (host, vnic_type, profile)
inside its own transaction; :meth:`bind` then runs the mechanism drivers
outside any transaction and commits the result compare-and-swap style.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from netplex.db.models import PortBinding

if TYPE_CHECKING:
    from netplex.core.plugin import Core


class PortBindingService:
    def __init__(self, core: Core) -> None:
        self.core = core

    def update_request(self, session: Session, port_id: str, changes: dict[str, Any]) -> bool:
        if not changes:
            return False
        b = session.execute(
            select(PortBinding).where(PortBinding.port_id == port_id, PortBinding.status == "ACTIVE")
        ).scalar_one_or_none()
        if b is None:
            b = PortBinding(port_id=port_id, host="", status="ACTIVE", attempt=0)
            session.add(b)
        host = changes.get("binding:host_id", b.host)
        host = host or ""
        vnic = changes.get("binding:vnic_type", b.vnic_type)
        profile = changes.get("binding:profile", b.profile)
        if host == b.host and vnic == b.vnic_type and profile == b.profile:
            return False
        if host != b.host:
            # The primary key includes the host: move the row.
            session.delete(b)
            session.flush()
            nb = PortBinding(
                port_id=port_id,
                host=host,
                vnic_type=vnic,
                profile=profile or {},
                vif_type="unbound",
                vif_details={},
                status="ACTIVE",
                diagnostics=[],
                attempt=(b.attempt or 0) + 1,
            )
            session.add(nb)
        else:
            b.vnic_type, b.profile = vnic, profile or {}
            b.vif_type, b.vif_details, b.diagnostics = "unbound", {}, []
            b.attempt = (b.attempt or 0) + 1
        session.flush()
        return True

    def bind(self, port_id: str) -> dict[str, Any] | None:
        return None

    def release_port(self, session: Session, port_id: str) -> None:
        return None
