"""Agents come and go: rebinding a host's failed ports, and ports DOWN when their agent dies.

When the world changes (an agent registers, revives, gains a mapping, is
enabled) the caller, after that commit, calls :meth:`Liveness.agent_changed`,
which retries every binding on the host that is ``binding_failed`` or still
``unbound``; a binder that read the old world either commits first (and the
rebind retries after it) or loses its compare-and-swap to the rebind.
:meth:`Liveness.mark_ports_down_for_dead_agents` sets bound ports ``DOWN``
when the agent that served them stops reporting, without unbinding.
"""

from __future__ import annotations

from sqlalchemy import and_, select

from netplex.core.agents import AgentChange, AgentService
from netplex.core.binding.attempt import BindingAttempts
from netplex.core.binding.collaborators import PortRecords
from netplex.core.binding.views import PORT_STATUS_ACTIVE, PORT_STATUS_DOWN
from netplex.core.mech_api import BINDING_ACTIVE, VIF_TYPE_BINDING_FAILED, VIF_TYPE_UNBOUND
from netplex.core.mech_manager import MechanismManager
from netplex.db.engine import Database, Txn
from netplex.db.models import Agent, Port, PortBinding, PortBindingLevel
from netplex.errors import PortBindingNotFound, PortNotFound


class Liveness:
    """Port bindings and status following the agents' lives."""

    def __init__(
        self,
        db: Database,
        mech: MechanismManager,
        agents: AgentService,
        ports: PortRecords,
        attempts: BindingAttempts,
    ) -> None:
        self.db = db
        self.mech = mech
        self.agents = agents
        self.ports = ports
        self.attempts = attempts

    def rebind_failed_ports_on_host(self, host: str) -> list[str]:
        """Retry every binding on ``host`` that is ``binding_failed`` or still
        ``unbound``; returns the ids of ports bound afterwards. Call after
        committing an agent change that may make the host able to bind more
        (see :meth:`agent_changed`)."""
        if not host:
            return []
        with self.db.read() as s:
            port_ids = list(
                s.scalars(
                    select(PortBinding.port_id).where(
                        PortBinding.host == host,
                        PortBinding.vif_type.in_([VIF_TYPE_BINDING_FAILED, VIF_TYPE_UNBOUND]),
                    )
                ).all()
            )
        bound: list[str] = []
        for port_id in port_ids:
            try:
                view = self.attempts.bind(port_id, host, force=False)[0]
            except (PortNotFound, PortBindingNotFound):
                continue
            if view.is_bound:
                bound.append(port_id)
        return bound

    def agent_changed(self, change: AgentChange) -> list[str]:
        """After an agent write committed: rebind its host's failed ports if the
        change may let them bind now. Returns the ports bound."""
        if not change.should_rebind:
            return []
        return self.rebind_failed_ports_on_host(change.host)

    def mark_ports_down_for_dead_agents(self) -> list[str]:
        """Set status DOWN on ACTIVE ports whose binding was made through an agent
        that is now dead (run periodically, e.g. every agent_down_time / 2).
        Bindings are left as they are. Returns the port ids changed."""
        drivers_by_type: dict[str, list[str]] = {}
        for driver, agent_type in self.mech.agent_types().items():
            drivers_by_type.setdefault(agent_type, []).append(driver)
        if not drivers_by_type:
            return []
        cutoff = self.agents.dead_before()
        candidates: list[tuple[str, str, str]] = []
        with self.db.read() as s:
            dead = s.execute(
                select(Agent.agent_type, Agent.host).where(
                    Agent.heartbeat_timestamp < cutoff,
                    Agent.agent_type.in_(list(drivers_by_type)),
                )
            ).all()
            for agent_type, host in dead:
                stmt = (
                    select(Port.id)
                    .join(
                        PortBinding,
                        and_(
                            PortBinding.port_id == Port.id,
                            PortBinding.status == BINDING_ACTIVE,
                            PortBinding.host == host,
                        ),
                    )
                    .join(
                        PortBindingLevel,
                        and_(
                            PortBindingLevel.port_id == Port.id,
                            PortBindingLevel.host == host,
                        ),
                    )
                    .where(
                        Port.status == PORT_STATUS_ACTIVE,
                        PortBindingLevel.driver.in_(drivers_by_type[agent_type]),
                    )
                    .distinct()
                )
                candidates.extend((pid, agent_type, host) for pid in s.scalars(stmt))
        if not candidates:
            return []

        def fn(txn: Txn) -> list[str]:
            s = txn.session
            changed: list[str] = []
            for port_id, agent_type, host in candidates:
                agent = s.scalars(
                    select(Agent).where(Agent.agent_type == agent_type, Agent.host == host)
                ).one_or_none()
                if agent is None or self.agents.is_alive(agent.heartbeat_timestamp):
                    continue
                port = s.get(Port, port_id)
                active_host = s.scalars(
                    select(PortBinding.host).where(
                        PortBinding.port_id == port_id, PortBinding.status == BINDING_ACTIVE
                    )
                ).one_or_none()
                if port is None or port.status != PORT_STATUS_ACTIVE or active_host != host:
                    continue
                self.ports.port_changed(txn, port_id, status=PORT_STATUS_DOWN)
                changed.append(port_id)
            return changed

        return self.db.transaction(fn)
