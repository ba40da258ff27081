"""The built core services, as one plain record for the API layer.

:func:`netplex.server.build_core` (the composition root) builds each
service with exactly its collaborators and collects them here. The record
has no behaviour, and no service receives it: a service's constructor
says what it depends on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netplex.config import Config
from netplex.core.admin_resources import AgentResource, SegmentResource
from netplex.core.agent_rpc import AgentRpc
from netplex.core.agents import AgentService
from netplex.core.binding import PortBindingService
from netplex.core.hooks import ResourceHooks
from netplex.core.mech_manager import MechanismManager
from netplex.core.networks import NetworkService
from netplex.core.ports import PortService
from netplex.core.service_api import ServicePlugin
from netplex.core.subnets import SubnetService
from netplex.core.tags import TagService
from netplex.core.type_manager import TypeManager
from netplex.db.engine import Database


@dataclass(frozen=True)
class CoreServices:
    """What the API serves (attribute names are the API's ``service_name``s)."""

    cfg: Config
    db: Database
    types: TypeManager
    mech: MechanismManager
    hooks: ResourceHooks
    agents: AgentService
    bindings: PortBindingService
    ports: PortService
    subnets: SubnetService
    networks: NetworkService
    tags: TagService
    segments_api: SegmentResource
    agents_api: AgentResource
    agent_rpc: AgentRpc
    #: The service plugins built from ``service_plugins`` (their collections are served beside these).
    plugins: tuple[ServicePlugin, ...] = field(default=())


#: The name the API layer imports.
Core = CoreServices

__all__ = ["Core", "CoreServices"]
