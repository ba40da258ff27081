"""Reading bindings: a port's ``binding:*`` view, ``/ports/{id}/bindings`` and ``explain``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from netplex.core.agents import AgentService
from netplex.core.binding.contexts import binding_info, binding_levels
from netplex.core.binding.views import binding_dicts, binding_entry_dict
from netplex.core.mech_api import BINDING_ACTIVE, PortBindingInfo, describe_segment
from netplex.db.models import Port, PortBinding
from netplex.errors import PortBindingNotFound, PortNotFound


class BindingQueries:
    """Read-only views of a port's bindings, in the caller's session."""

    def __init__(self, agents: AgentService) -> None:
        self.agents = agents

    def binding_info_of(self, session: Session, port_id: str) -> PortBindingInfo:
        """The port's ACTIVE binding as drivers see it (for ``original_binding``)."""
        row = session.scalars(
            select(PortBinding).where(
                PortBinding.port_id == port_id, PortBinding.status == BINDING_ACTIVE
            )
        ).one_or_none()
        return binding_info(session, row)

    def port_binding(self, session: Session, port_id: str) -> dict[str, Any]:
        """The port's ``binding:*`` attributes (see :func:`binding_dict`)."""
        return binding_dicts(session, [port_id])[port_id]

    def list_bindings(self, session: Session, port_id: str) -> list[dict[str, Any]]:
        """``GET /v2.0/ports/{id}/bindings``: the active binding first, then by host."""
        if session.get(Port, port_id) is None:
            raise PortNotFound(port_id=port_id)
        rows = session.scalars(
            select(PortBinding).where(PortBinding.port_id == port_id, PortBinding.host != "")
        ).all()
        rows = sorted(rows, key=lambda r: (r.status != BINDING_ACTIVE, r.host))
        return [binding_entry_dict(r) for r in rows]

    def get_binding(self, session: Session, port_id: str, host: str) -> dict[str, Any]:
        row = session.get(PortBinding, (port_id, host))
        if row is None or not host:
            raise PortBindingNotFound(port_id=port_id, host=host)
        return binding_entry_dict(row)

    def explain(self, session: Session, port_id: str) -> dict[str, Any]:
        """Everything an operator needs to see why a port is (not) bound:
        used by ``netplex explain-binding PORT``."""
        port = session.get(Port, port_id)
        if port is None:
            raise PortNotFound(port_id=port_id)
        out: dict[str, Any] = {"port_id": port_id, "status": port.status, "bindings": []}
        rows = session.scalars(select(PortBinding).where(PortBinding.port_id == port_id)).all()
        for row in sorted(rows, key=lambda r: (r.status != BINDING_ACTIVE, r.host)):
            levels = binding_levels(session, port_id, row.host) if row.host else ()
            agents = self.agents.agents_on_host(session, row.host) if row.host else ()
            out["bindings"].append(
                {
                    **binding_entry_dict(row),
                    "diagnostics": list(row.diagnostics or ()),
                    "attempt": row.attempt,
                    "levels": [
                        {
                            "level": lv.level,
                            "driver": lv.driver,
                            "segment_id": lv.segment_id,
                            "segment": describe_segment(lv.segment) if lv.segment else None,
                        }
                        for lv in levels
                    ],
                    "agents": [
                        {
                            "id": a.id,
                            "agent_type": a.agent_type,
                            "alive": a.alive,
                            "admin_state_up": a.admin_state_up,
                            "configurations": dict(a.configurations),
                        }
                        for a in agents
                    ],
                }
            )
        return out
