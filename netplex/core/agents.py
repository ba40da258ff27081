"""Host agents: registration, heartbeats, liveness, and the ``/v2.0/agents`` views.

An agent reports its state every ``report_interval`` seconds; the first
report registers it. One agent per ``(agent_type, host)``. An agent is
*alive* while its last heartbeat is at most ``[DEFAULT] agent_down_time``
seconds old; this is computed when read, never stored.

What goes to the change feed (``resource = "agent"``): registration
(``create``), a report that changes something other than the heartbeat
time (revival, new configurations, restart, ...) and admin updates
(``update``), and deletion (``delete``). Plain heartbeats are not recorded:
with thousands of agents they would dominate the feed and say nothing a
reader cannot compute from ``heartbeat_timestamp``.

Every write method takes the caller's :class:`~netplex.db.engine.Txn` and
returns an :class:`AgentChange`; when :attr:`AgentChange.should_rebind` is
true the caller, *after commit*, asks the binding service to retry the
failed bindings on that host (see
:meth:`netplex.core.binding.PortBindingService.agent_changed`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, select
from sqlalchemy.orm import Session

from netplex.core.mech_api import AGENT_TYPE_LINUXBRIDGE, AGENT_TYPE_OVS, AgentInfo
from netplex.db.base import utcnow
from netplex.db.models import Agent
from netplex.db.prepared import Prepared
from netplex.errors import AgentNotFound, InvalidInput

if TYPE_CHECKING:
    from netplex.config import Config
    from netplex.db.engine import Txn

__all__ = [
    "AGENT_BINARIES",
    "TIMESTAMP_FORMAT",
    "AgentChange",
    "AgentService",
]

#: The binaries Netplex ships, by agent_type (other agent types are accepted too).
AGENT_BINARIES: Mapping[str, str] = MappingProxyType(
    {
        AGENT_TYPE_OVS: "netplex-openvswitch-agent",
        AGENT_TYPE_LINUXBRIDGE: "netplex-linuxbridge-agent",
    }
)

#: Neutron shows agent times as ``2019-01-09 10:28:53`` (UTC, no zone marker).
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

_UPDATABLE = frozenset({"admin_state_up", "description"})

_A = cast(Table, Agent.__table__)
#: Binding reads the agents of one host on every attempt: prebuilt, indexed.
_AGENTS_ON_HOST = Prepared(select(_A).where(_A.c.host == bindparam("host")))


@dataclass(frozen=True)
class AgentChange:
    """What an agent write did, for the caller to act on after commit."""

    #: The agent as ``/v2.0/agents`` shows it (None after delete).
    agent: dict[str, Any]
    created: bool = False
    #: The agent had been dead (no heartbeat for agent_down_time) and reported again.
    revived: bool = False
    configurations_changed: bool = False
    #: admin_state_up went from false to true.
    enabled: bool = False

    @property
    def should_rebind(self) -> bool:
        """The host may now bind ports it could not before: retry its failed bindings."""
        usable = bool(self.agent.get("alive")) and bool(self.agent.get("admin_state_up"))
        return usable and (
            self.created or self.revived or self.configurations_changed or self.enabled
        )

    @property
    def host(self) -> str:
        return str(self.agent["host"])


def _fmt(ts: datetime | None) -> str | None:
    return ts.strftime(TIMESTAMP_FORMAT) if ts is not None else None


def _require_str(state: Mapping[str, Any], key: str, *, default: str | None = None) -> str:
    value = state.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(error_message=f"agent state needs a non-empty string {key!r}")
    if len(value) > 255:
        raise InvalidInput(error_message=f"agent {key!r} is longer than 255 characters")
    return value.strip()


class AgentService:
    """Agent registry operations. Stateless apart from its configuration.

    ``clock`` returns the current UTC time (tests inject a fake one).
    """

    def __init__(
        self,
        agent_down_time: int = 75,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if agent_down_time < 1:
            raise ValueError("agent_down_time must be >= 1 second")
        self.agent_down_time = agent_down_time
        self.clock = clock

    @classmethod
    def from_config(cls, config: Config) -> AgentService:
        return cls(agent_down_time=int(config.get("DEFAULT", "agent_down_time")))

    # -- liveness ------------------------------------------------------------------

    def dead_before(self, now: datetime | None = None) -> datetime:
        """Heartbeats older than this mean dead."""
        return (now or self.clock()) - timedelta(seconds=self.agent_down_time)

    def is_alive(self, heartbeat: datetime | None, now: datetime | None = None) -> bool:
        return heartbeat is not None and heartbeat >= self.dead_before(now)

    # -- views ---------------------------------------------------------------------

    def agent_dict(self, row: Agent, now: datetime | None = None) -> dict[str, Any]:
        """The ``/v2.0/agents`` representation of one agent."""
        return {
            "id": row.id,
            "agent_type": row.agent_type,
            "binary": row.binary,
            "topic": row.topic,
            "host": row.host,
            "admin_state_up": row.admin_state_up,
            "alive": self.is_alive(row.heartbeat_timestamp, now),
            "heartbeat_timestamp": _fmt(row.heartbeat_timestamp),
            "started_at": _fmt(row.started_at),
            "created_at": _fmt(row.created_at),
            "configurations": dict(row.configurations or {}),
            "availability_zone": row.availability_zone,
            "description": row.description,
            "resources_synced": row.resources_synced,
        }

    def agent_info(self, row: Any, now: datetime | None = None) -> AgentInfo:
        """The typed view mechanism drivers receive (from an :class:`Agent` or a
        Core row of ``agents``)."""
        return AgentInfo(
            id=row.id,
            agent_type=row.agent_type,
            binary=row.binary,
            host=row.host,
            topic=row.topic,
            alive=self.is_alive(row.heartbeat_timestamp, now),
            admin_state_up=row.admin_state_up,
            configurations=MappingProxyType(dict(row.configurations or {})),
            availability_zone=row.availability_zone,
            heartbeat_timestamp=row.heartbeat_timestamp,
        )

    def agents_on_host(self, session: Session | Connection, host: str) -> tuple[AgentInfo, ...]:
        """All agents registered on ``host`` (uses the ``agents.host`` index)."""
        now = self.clock()
        conn = session.connection() if isinstance(session, Session) else session
        return tuple(self.agent_info(r, now) for r in _AGENTS_ON_HOST.rows(conn, {"host": host}))

    def list_agents(
        self,
        session: Session,
        *,
        host: str | None = None,
        agent_type: str | None = None,
    ) -> list[dict[str, Any]]:
        """Agents as dicts, ordered by host then type. Further filtering, ``fields``
        and paging are the API layer's (it works on these dicts)."""
        stmt = select(Agent).order_by(Agent.host, Agent.agent_type)
        if host is not None:
            stmt = stmt.where(Agent.host == host)
        if agent_type is not None:
            stmt = stmt.where(Agent.agent_type == agent_type)
        now = self.clock()
        return [self.agent_dict(r, now) for r in session.scalars(stmt)]

    def get_agent(self, session: Session, agent_id: str) -> dict[str, Any]:
        row = session.get(Agent, agent_id)
        if row is None:
            raise AgentNotFound(id=agent_id)
        return self.agent_dict(row)

    # -- writes --------------------------------------------------------------------

    def report_state(self, txn: Txn, state: Mapping[str, Any]) -> AgentChange:
        """Register or heartbeat an agent from its state report.

        ``state`` keys: ``agent_type``, ``binary``, ``host`` (required);
        ``topic`` (default ``N/A``), ``configurations`` (dict: e.g.
        ``bridge_mappings``, ``interface_mappings``, ``tunnel_types``,
        ``tunneling_ip``), ``availability_zone``, ``resources_synced``, and
        ``start_flag`` (true on the first report after the agent process
        started: resets ``started_at``). Raises ``InvalidInput`` on a
        malformed report.
        """
        agent_type = _require_str(state, "agent_type")
        binary = _require_str(state, "binary")
        host = _require_str(state, "host")
        topic = _require_str(state, "topic", default="N/A")
        configurations = state.get("configurations") or {}
        if not isinstance(configurations, Mapping):
            raise InvalidInput(error_message="agent 'configurations' must be an object")
        configurations = dict(configurations)
        az = state.get("availability_zone")
        if az is not None and not isinstance(az, str):
            raise InvalidInput(error_message="agent 'availability_zone' must be a string")
        start_flag = bool(state.get("start_flag", False))
        synced = state.get("resources_synced")
        synced = bool(synced) if synced is not None else None

        now = self.clock()
        session = txn.session
        row = session.scalars(
            select(Agent)
            .where(Agent.agent_type == agent_type, Agent.host == host)
            .with_for_update()
        ).one_or_none()
        if row is None:
            row = Agent(
                agent_type=agent_type,
                binary=binary,
                host=host,
                topic=topic,
                configurations=configurations,
                availability_zone=az,
                resources_synced=synced,
                admin_state_up=True,
                created_at=now,
                started_at=now,
                heartbeat_timestamp=now,
            )
            session.add(row)
            session.flush()
            body = self.agent_dict(row, now)
            txn.record("agent", row.id, "create", body)
            return AgentChange(body, created=True)

        revived = not self.is_alive(row.heartbeat_timestamp, now)
        # A bind running concurrently with this report may have judged the agent
        # dead a moment ago (its own clock read); treat a heartbeat that lands
        # close to the deadline as a revival too, so failed ports get retried.
        grace = timedelta(seconds=max(2.0, self.agent_down_time / 10))
        near_dead = not self.is_alive(row.heartbeat_timestamp, now + grace)
        config_changed = dict(row.configurations or {}) != configurations
        other_changed = (
            row.binary != binary
            or row.topic != topic
            or row.availability_zone != az
            or (synced is not None and row.resources_synced != synced)
        )
        row.heartbeat_timestamp = now
        if start_flag:
            row.started_at = now
        if config_changed:
            row.configurations = configurations
        row.binary, row.topic, row.availability_zone = binary, topic, az
        if synced is not None:
            row.resources_synced = synced
        body = self.agent_dict(row, now)
        if revived or config_changed or other_changed or start_flag:
            txn.record("agent", row.id, "update", body)
        return AgentChange(body, revived=revived or near_dead, configurations_changed=config_changed)

    def update_agent(self, txn: Txn, agent_id: str, changes: Mapping[str, Any]) -> AgentChange:
        """Admin update: only ``admin_state_up`` and ``description`` may change."""
        bad = sorted(set(changes) - _UPDATABLE)
        if bad:
            raise InvalidInput(error_message=f"cannot update read-only agent attribute(s) {bad}")
        if "admin_state_up" in changes and not isinstance(changes["admin_state_up"], bool):
            raise InvalidInput(error_message="admin_state_up must be a boolean")
        desc = changes.get("description")
        if desc is not None and (not isinstance(desc, str) or len(desc) > 255):
            raise InvalidInput(
                error_message="description must be a string of at most 255 characters"
            )
        row = txn.session.get(Agent, agent_id, with_for_update=True)
        if row is None:
            raise AgentNotFound(id=agent_id)
        was_up = row.admin_state_up
        if "admin_state_up" in changes:
            row.admin_state_up = changes["admin_state_up"]
        if "description" in changes:
            row.description = desc
        body = self.agent_dict(row)
        txn.record("agent", row.id, "update", body)
        return AgentChange(body, enabled=(not was_up and row.admin_state_up))

    def delete_agent(self, txn: Txn, agent_id: str) -> None:
        """Forget an agent. Ports it serves stay bound; a live agent re-registers
        on its next report."""
        res = txn.session.connection().execute(delete(_A).where(_A.c.id == agent_id))
        if res.rowcount != 1:  # never there, or a concurrent delete won
            raise AgentNotFound(id=agent_id)
        txn.record("agent", agent_id, "delete", None)
