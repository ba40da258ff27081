"""The binding layer as one service: the port service, the agents' calls and the
binding routes use this; each job lives in its own module of the package."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from netplex.core.agents import AgentChange, AgentService
from netplex.core.binding.attempt import BindingAttempts
from netplex.core.binding.collaborators import PortRecords, SegmentTypeManager
from netplex.core.binding.liveness import Liveness
from netplex.core.binding.multiple import MultipleBindings
from netplex.core.binding.queries import BindingQueries
from netplex.core.binding.segments import DynamicSegments
from netplex.core.binding.staging import BindingRequests
from netplex.core.binding.views import UNSET, Unset, binding_dict
from netplex.core.mech_api import PortBindingInfo
from netplex.core.mech_manager import MechanismManager
from netplex.db.engine import Database


class PortBindingService:
    """Binds ports and keeps their bindings, levels and dynamic segments consistent.

    Methods taking a ``session`` (or ``conn``) run inside the caller's
    transaction; the others open their own short transactions and must be
    called outside any transaction (after the caller's commit).
    """

    def __init__(
        self,
        db: Database,
        mech: MechanismManager,
        agents: AgentService,
        type_manager: SegmentTypeManager | None = None,
        *,
        ports: PortRecords,
        max_tries: int = 10,
    ) -> None:
        self.segments = DynamicSegments(db, type_manager)
        self.requests = BindingRequests(ports, self.segments)
        self.attempts = BindingAttempts(db, mech, agents, ports, self.segments, max_tries=max_tries)
        self.queries = BindingQueries(agents)
        self.liveness = Liveness(db, mech, agents, ports, self.attempts)
        self.multiple = MultipleBindings(db, mech, ports, self.segments, self.attempts)

    # -- in the caller's transaction (staging.py, queries.py) ---------------------------

    def stage_binding(
        self,
        session: Session,
        port_id: str,
        *,
        host: str | None | Unset = UNSET,
        vnic_type: str | None | Unset = UNSET,
        profile: Mapping[str, Any] | None | Unset = UNSET,
    ) -> bool:
        """See :meth:`BindingRequests.stage_binding`: True when the caller must bind after commit."""
        return self.requests.stage_binding(session, port_id, host=host, vnic_type=vnic_type, profile=profile)

    def insert_request(
        self, conn: Connection, port_id: str, host: str, vnic_type: str, profile: Mapping[str, Any]
    ) -> None:
        self.requests.insert_request(conn, port_id, host, vnic_type, profile)

    def release_port_bindings(self, session: Session, port_id: str) -> None:
        self.requests.release_port_bindings(session, port_id)

    def binding_info(self, session: Session, port_id: str) -> PortBindingInfo:
        return self.queries.binding_info_of(session, port_id)

    def port_binding(self, session: Session, port_id: str) -> dict[str, Any]:
        return self.queries.port_binding(session, port_id)

    def list_bindings(self, session: Session, port_id: str) -> list[dict[str, Any]]:
        return self.queries.list_bindings(session, port_id)

    def get_binding(self, session: Session, port_id: str, host: str) -> dict[str, Any]:
        return self.queries.get_binding(session, port_id, host)

    def explain(self, session: Session, port_id: str) -> dict[str, Any]:
        return self.queries.explain(session, port_id)

    # -- own transactions (attempt.py, liveness.py, multiple.py, segments.py) -----------

    def bind_port(self, port_id: str, host: str | None = None, *, force: bool = False) -> dict[str, Any]:
        """Bind the port's ACTIVE binding (or its binding on ``host``) if it is
        ``unbound`` or ``binding_failed`` with a host set, and return the
        port's ``binding:*`` attributes afterwards (for ``host`` given, those
        of that binding). ``force`` rebinds a bound binding too."""
        return binding_dict(self.attempts.bind(port_id, host, force=force)[0])

    def bind_port_returning_port(self, port_id: str) -> dict[str, Any] | None:
        """:meth:`bind_port` for the ACTIVE binding, returning the whole port as
        committed with the binding result, or None when this call committed
        no result (already bound, no host, or it gave up)."""
        return self.attempts.bind(port_id, None, force=False)[1]

    def rebind_failed_ports_on_host(self, host: str) -> list[str]:
        return self.liveness.rebind_failed_ports_on_host(host)

    def agent_changed(self, change: AgentChange) -> list[str]:
        return self.liveness.agent_changed(change)

    def mark_ports_down_for_dead_agents(self) -> list[str]:
        return self.liveness.mark_ports_down_for_dead_agents()

    def create_binding(
        self, port_id: str, host: str, vnic_type: str | None = None, profile: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        return self.multiple.create_binding(port_id, host, vnic_type, profile)

    def activate_binding(self, port_id: str, host: str) -> dict[str, Any]:
        return self.multiple.activate_binding(port_id, host)

    def delete_binding(self, port_id: str, host: str) -> None:
        self.multiple.delete_binding(port_id, host)

    def release_unused_segments(self, segment_ids: Any) -> None:
        self.segments.release_unused(segment_ids)

    def release_orphaned_dynamic_segments(self, older_than: float = 300.0) -> list[str]:
        return self.segments.release_orphaned_dynamic_segments(older_than)
