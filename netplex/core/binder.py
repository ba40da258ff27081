"""Adapter between the port service and the binding layer (:mod:`netplex.core.binding`).

The port service stages a binding *request* (host, vnic_type, profile)
inside its own transaction; :meth:`Binder.bind` then runs the mechanism
drivers outside any transaction (the binding layer commits the result
compare-and-swap style) and returns the port as it is afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from netplex.core.binding import UNSET, BasicPortHooks, PortBindingService
from netplex.core.context import Context
from netplex.errors import PortNotFound

if TYPE_CHECKING:
    from netplex.core.plugin import Core


class CorePortHooks(BasicPortHooks):
    """How the binding layer renders ports: as the port service shows them."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def render_port(self, conn: Connection, port_id: str) -> dict[str, Any]:
        return self.core.ports.render(conn, port_id)


class Binder:
    def __init__(self, core: Core, service: PortBindingService) -> None:
        self.core = core
        self.service = service

    def update_request(self, session: Session, port_id: str, changes: dict[str, Any]) -> bool:
        if not changes:
            return False
        return self.service.stage_binding(
            session,
            port_id,
            host=changes.get("binding:host_id", UNSET),
            vnic_type=changes.get("binding:vnic_type", UNSET),
            profile=changes.get("binding:profile", UNSET),
        )

    def bind(self, port_id: str) -> dict[str, Any] | None:
        committed = self.service.bind_port_returning_port(port_id)
        if committed is not None:
            return committed
        try:
            return self.core.ports.get(Context.admin(), port_id)
        except PortNotFound:
            return None

    def release_port(self, session: Session, port_id: str) -> None:
        self.service.release_port_bindings(session, port_id)
