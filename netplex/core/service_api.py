"""The service-plugin contract: what a service (routers, security groups, DHCP scheduling, quotas) gets from the core.

Read this first if you are writing a service plugin. A plugin is a class found by
name through the ``netplex.service_plugins`` entry-point group and chosen by the
operator with Neutron's option ``[DEFAULT] service_plugins = router,...``::

    [project.entry-points."netplex.service_plugins"]
    router = "my_package.l3:RouterPlugin"

The composition root (:mod:`netplex.server`) builds each selected plugin once with
:meth:`ServicePlugin.build`, giving it the configuration and a :class:`CoreAccess`
(the database and the core's read-only port/binding queries), and then asks it for:

* :meth:`~ServicePlugin.resources` — whole collections it serves under ``/v2.0``
  (``routers``, ``floatingips``, ``security-groups``), described as data
  (:class:`Resource`), so the API layer adds the routes, validation, Neutron's list
  semantics, policy and error bodies exactly as for networks and ports;
* :meth:`~ServicePlugin.resource_extensions` — attributes it adds to the core's networks,
  subnets or ports (:class:`ResourceExtension`: stored in the same transaction, rendered
  in batches, carried by the change feed);
* :meth:`~ServicePlugin.extensions` — extension aliases for ``GET /v2.0/extensions``;
* :meth:`~ServicePlugin.policy_defaults` — its Neutron rule names and default check
  strings (an operator's ``policy.yaml`` overrides them like the core's);
* :meth:`~ServicePlugin.housekeeping` — periodic jobs (e.g. rescheduling the networks
  of a dead DHCP agent).

and calls its port hooks while ports change. The hooks are where the 2016 design
question is answered: each receives a :class:`PortBinding` that says *which mechanism
bound the port* (driver name, its ``connectivity`` ``l2``/``l3``, host, vif type),
so a plugin can implement itself per port — a router namespace for ports on L2
mechanisms, NAT on the compute host for routed ones.

Rules a plugin keeps:

* **In-transaction hooks only touch the database** through the :class:`~netplex.db.engine.Txn`
  they are given (rows of the plugin's own tables, ``txn.record`` for the change feed)
  and raise a :class:`~netplex.errors.NetplexError` to refuse; the whole request then
  rolls back, nothing half-written. They never do I/O or wait.
* **After-commit hooks never fail the request**: the change is committed; an exception
  is logged and the plugin's own resync (its agents follow the feed) repairs state.
* **Batch**: a list of 10,000 ports may pass through a plugin; hooks that read take
  and return collections.
* Plugins depend on the core only through this module, :mod:`netplex.core.context`,
  :mod:`netplex.core.listing`, :mod:`netplex.core.attr_map` and the db/errors layers
  (the layer table in ARCHITECTURE.md, checked by ``.importlinter``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from sqlalchemy import Connection

from netplex.config import Config
from netplex.core.attr_map import Attr
from netplex.core.context import Context
from netplex.core.listing import ListQuery
from netplex.db.engine import Database, Txn

__all__ = [
    "ENTRY_POINT_GROUP",
    "CoreAccess",
    "Extension",
    "PeriodicJob",
    "PortBinding",
    "PortChange",
    "Resource",
    "ResourceExtension",
    "ResourceService",
    "ServicePlugin",
]

#: Entry-point group that names the installed service plugins.
ENTRY_POINT_GROUP = "netplex.service_plugins"

#: vif types that mean "no mechanism wired this port".
UNBOUND_VIF_TYPES = frozenset({"unbound", "binding_failed", ""})


@dataclass(frozen=True, slots=True)
class PortBinding:
    """One port and how it is wired: what a plugin needs to choose its implementation.

    ``mechanism`` is the driver that bound the bottom level (the one that set the vif
    type), ``connectivity`` what that driver declares (``l2`` or ``l3``); both are
    ``None`` while the port is unbound or its binding failed.
    """

    port_id: str
    network_id: str
    project_id: str
    device_owner: str
    device_id: str
    mac_address: str
    #: (subnet_id, ip_address) pairs.
    fixed_ips: tuple[tuple[str, str], ...]
    host: str
    vif_type: str
    vif_details: Mapping[str, Any] = field(default_factory=dict)
    mechanism: str | None = None
    connectivity: Literal["l2", "l3"] | None = None

    @property
    def bound(self) -> bool:
        return bool(self.host) and self.vif_type not in UNBOUND_VIF_TYPES


@dataclass(frozen=True, slots=True)
class PortChange:
    """A committed change of one port, as the after-commit hook sees it.

    ``action`` is ``create``, ``update`` (any attribute, the binding included) or
    ``delete``; ``before`` is ``None`` on create, ``after`` is ``None`` on delete.
    """

    action: Literal["create", "update", "delete"]
    before: PortBinding | None
    after: PortBinding | None

    @property
    def port_id(self) -> str:
        some = self.after or self.before
        assert some is not None
        return some.port_id

    @property
    def rebound(self) -> bool:
        """Whether the host, mechanism or vif type changed (the implementation may have to move)."""
        b, a = self.before, self.after
        return _wiring(b) != _wiring(a)


def _wiring(port: PortBinding | None) -> tuple[str, str | None, str] | None:
    return None if port is None else (port.host, port.mechanism, port.vif_type)


class CoreAccess(Protocol):
    """What the core offers a plugin: its database and read-only views of ports.

    The queries run in the caller's session so a hook sees its own transaction.
    """

    @property
    def db(self) -> Database: ...

    def port_bindings(self, txn: Txn, port_ids: Iterable[str]) -> dict[str, PortBinding]:
        """The current :class:`PortBinding` of each existing port among ``port_ids``."""
        ...

    def ports_of_network(self, txn: Txn, network_id: str) -> list[PortBinding]:
        """Every port of a network with its binding (DHCP and router ports included)."""
        ...


class ResourceService(Protocol):
    """The operations behind one collection, with the same shape as the core's services.

    Every method receives the caller's :class:`Context`; dicts are Neutron-shaped
    (``{"id": ..., "project_id": ..., ...}``). Raise :mod:`netplex.errors` classes for
    Neutron's error bodies (``NotFound`` subclasses for 404, ``Conflict`` for 409, ...).
    """

    def find(self, ctx: Context, query: ListQuery) -> list[dict[str, Any]]: ...

    def get(self, ctx: Context, resource_id: str) -> dict[str, Any]: ...

    def create_bulk(self, ctx: Context, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create all or none (one transaction)."""
        ...

    def update(self, ctx: Context, resource_id: str, attrs: dict[str, Any], *,
               if_revision: int | None = None) -> dict[str, Any]: ...

    def delete(self, ctx: Context, resource_id: str, *, if_revision: int | None = None) -> None: ...


#: ``PUT /v2.0/{plural}/{id}/{action}`` with a JSON body: (context, id, body) -> response body.
MemberAction = Callable[[Context, str, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Resource:
    """One collection a plugin serves, described as data; the API layer turns it into routes.

    ``attributes`` is a Neutron attribute map (:class:`~netplex.core.attr_map.Attr`:
    ``allow_post``, ``allow_put``, ``default``, ``convert``, ``is_visible``,
    ``is_filter``); ``actions`` are member actions such as Neutron's
    ``add_router_interface``.
    """

    member: str
    #: The JSON key of lists (``security_groups``).
    plural: str
    attributes: Mapping[str, Attr]
    service: ResourceService
    #: The URL segment under ``/v2.0`` when it differs from ``plural`` (``security-groups``).
    path: str = ""
    actions: Mapping[str, MemberAction] = field(default_factory=dict)
    allow_create: bool = True
    allow_update: bool = True
    allow_delete: bool = True
    #: Not supported yet: True stops the server (the tag service covers the core's collections only).
    has_tags: bool = False


class ResourceExtension(abc.ABC):
    """Attributes a plugin adds to a core resource (Neutron's extension drivers): for example
    ``security_groups`` and ``port_security_enabled`` on ports, ``extra_dhcp_opts``.

    The core validates the request against :meth:`attributes` like its own attributes,
    then calls the hooks inside its own transaction, so the resource and the extension's
    rows commit (or roll back) together and the change feed carries the extended dict.
    """

    #: The core collection extended: ``networks`` or ``ports`` (subnets cannot be extended yet).
    resource: ClassVar[str]

    @abc.abstractmethod
    def attributes(self) -> Mapping[str, Attr]:
        """The attribute map entries this extension adds (names must not clash with the core's)."""

    @abc.abstractmethod
    def process_create(self, txn: Txn, ctx: Context, request: Mapping[str, Any], result: dict[str, Any]) -> None:
        """After the core wrote the new resource (``result`` is its dict): validate and store this
        extension's part of ``request`` (defaults when absent; raise to refuse) and add its
        attributes to ``result``."""

    @abc.abstractmethod
    def process_update(self, txn: Txn, ctx: Context, request: Mapping[str, Any], result: dict[str, Any]) -> None:
        """Same for an update; ``request`` holds only what the caller sent."""

    @abc.abstractmethod
    def extend(self, conn: Connection, results: Sequence[dict[str, Any]]) -> None:
        """Add this extension's attributes to many resource dicts at once (show, list, feed),
        read on ``conn`` (a read connection or the writing transaction's): one query for all
        of them, never one per dict. One dict is the hot path of every port write: keep it
        to a prepared statement or two (:mod:`netplex.db.prepared`)."""


@dataclass(frozen=True, slots=True)
class Extension:
    """An entry of ``GET /v2.0/extensions`` (Neutron's alias, name and description)."""

    alias: str
    name: str
    description: str
    updated: str = "2026-01-01T00:00:00-00:00"


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    """A housekeeping job the server runs every ``interval`` seconds in a worker thread."""

    interval: float
    run: Callable[[], object]
    name: str = ""


class ServicePlugin(abc.ABC):
    """One service plugin. Subclass, set :attr:`name`, implement :meth:`build`; every hook is optional."""

    #: The name operators write in ``service_plugins = ...`` (also the entry-point name).
    name: ClassVar[str]

    @classmethod
    @abc.abstractmethod
    def build(cls, cfg: Config, core: CoreAccess) -> ServicePlugin:
        """Make the plugin from the configuration (check its options here: raise
        :class:`~netplex.config.ConfigError` naming the option) and the core's access."""

    # -- what it adds to the API ---------------------------------------------

    def resources(self) -> Sequence[Resource]:
        """Collections this plugin serves."""
        return ()

    def resource_extensions(self) -> Sequence[ResourceExtension]:
        """Attributes it adds to networks, subnets or ports."""
        return ()

    def extensions(self) -> Sequence[Extension]:
        """Extension aliases to advertise."""
        return ()

    def policy_defaults(self) -> Mapping[str, str]:
        """Neutron rule name -> default check string (``"rule:admin_or_owner"``)."""
        return {}

    def host_state(self, conn: Connection, host: str, ports: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        """Extra keys of a host agent's snapshot (``GET /v2.0/netplex/host-state``): what the
        host needs of this plugin to enforce it (security groups of its ports, routers it
        hosts ...). Read on ``conn``, inside the snapshot's consistent read; ``ports`` are the
        snapshot's ports (the host's own and the other bound ports of its networks)."""
        return {}

    def housekeeping(self) -> Sequence[PeriodicJob]:
        """Periodic jobs (one server process runs them)."""
        return ()

    # -- port hooks ----------------------------------------------------------

    def check_port_delete(self, txn: Txn, ctx: Context, port: PortBinding) -> None:
        """Inside the delete transaction: raise to refuse (e.g. Neutron's 409 for a router
        interface port deleted through the port API) or clean up the plugin's own rows
        that reference the port."""
        return None

    def check_port_update(self, txn: Txn, ctx: Context, port: PortBinding, changes: Mapping[str, Any]) -> None:
        """Inside the update transaction, before the change is written: raise to refuse."""
        return None

    def port_changed(self, changes: Sequence[PortChange]) -> None:
        """After commit, in commit order: ports created, updated (binding included) or deleted."""
        return None

    def close(self) -> None:
        """The server is stopping."""
        return None
