"""The core, composed: one object holding the services and what they share.

No globals: the API builds one :class:`Core` from a :class:`Config` and
passes it down. Tests build their own with a temporary database.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.orm import Session

from netplex.config import Config
from netplex.core.hooks import ResourceHooks
from netplex.db.base import utcnow
from netplex.db.engine import Database


class Binder(Protocol):
    """What the port service needs from the binding layer."""

    def update_request(self, session: Session, port_id: str, changes: dict[str, Any]) -> bool:
        """Store changed binding:host_id/vnic_type/profile; True when a (re)bind is needed."""

    def bind(self, port_id: str) -> dict[str, Any] | None:
        """Bind outside any transaction; returns the port as it is afterwards."""

    def release_port(self, session: Session, port_id: str) -> None:
        """Free what the port's bindings hold (dynamic segments) before it is deleted."""


class Core:
    """Services plus their shared dependencies."""

    def __init__(
        self,
        cfg: Config,
        db: Database,
        *,
        types: Any | None = None,
        mech: Any | None = None,
        hooks: ResourceHooks | None = None,
    ) -> None:
        from netplex.core.networks import NetworkService
        from netplex.core.ports import PortService
        from netplex.core.subnets import SubnetService
        from netplex.core.tags import TagService

        self.cfg = cfg
        self.db = db
        self._hook_cache: dict[tuple[str, str], bool] = {}
        if types is None:
            from netplex.core.type_manager import TypeManager

            types = TypeManager(cfg)
            types.initialize()
        self.types = types
        from netplex.core.agents import AgentService
        from netplex.core.binder import Binder as CoreBinder
        from netplex.core.binder import CorePortHooks
        from netplex.core.binding import PortBindingService
        from netplex.core.mech_hooks import MechanismHooks
        from netplex.core.mech_manager import MechanismManager

        if mech is None:
            mech = MechanismManager.from_config(cfg)
        mech.initialize()
        self.mech = mech
        self.agents = AgentService.from_config(cfg)
        self.hooks: ResourceHooks = hooks or MechanismHooks(mech)
        self.networks = NetworkService(self)
        self.subnets = SubnetService(self)
        self.ports = PortService(self)
        self.tags = TagService(self)
        self.bindings = PortBindingService(db, mech, self.agents, type_manager=types, hooks=CorePortHooks(self))
        self.binder: Binder = CoreBinder(self, self.bindings)
        from netplex.core.admin_resources import AgentResource, SegmentResource

        self.segments_api = SegmentResource(self)
        self.agents_api = AgentResource(self)

    def hooks_want(self, resource: str, event: str) -> bool:
        """Whether any mechanism driver overrides ``{event}_{resource}_pre/postcommit``."""
        key = (resource, event)
        cached = self._hook_cache.get(key)
        if cached is None:
            implements = getattr(self.mech, "implements", None)
            cached = implements is None or any(
                implements(f"{event}_{resource}_{phase}") for phase in ("precommit", "postcommit")
            )
            self._hook_cache[key] = cached
        return cached

    @staticmethod
    def bump(row: Any) -> None:
        """A resource changed: new revision_number and updated_at."""
        row.revision_number = (row.revision_number or 0) + 1
        row.updated_at = utcnow()

