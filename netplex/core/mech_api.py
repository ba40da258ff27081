"""The mechanism-driver API: the one module a third-party mechanism driver needs.

A *mechanism driver* connects ports on some hosts to network segments: by
asking a host agent to program a bridge, by telling an SDN controller, by
configuring a top-of-rack switch. Several drivers are loaded at once (entry
point group ``netplex.mechanism_drivers``, ordered by ``[ml2]
mechanism_drivers``); which one wires a given port is decided per port and
per host, when the port is *bound*.

What a driver implements: a subclass of :class:`MechanismDriver`.

What a driver sees: read-only contexts (:class:`NetworkContext`,
:class:`SubnetContext`, :class:`PortContext`). Segments are :class:`Segment`
values and agents are :class:`AgentInfo` values, never dicts. The only
way for a driver to change anything is through the :class:`PortContext`
methods that exist for binding: :meth:`PortContext.set_binding`,
:meth:`PortContext.continue_binding`,
:meth:`PortContext.allocate_dynamic_segment` and :meth:`PortContext.decline`.

The three phases of every resource operation::

    caller's DB transaction ─┐
        ... rows written ... │  *_precommit(context)   may not block; raising rolls back
    commit ──────────────────┘
    *_postcommit(context)        may block; raising on create deletes the resource

    bind_port(context)           outside any transaction; the result may be discarded

Lifecycle: the core constructs each driver with :meth:`MechanismDriver.from_config`
and calls :meth:`MechanismDriver.initialize` once, before any other call.
Drivers are called from several threads at once; keep per-call state in
locals, not on ``self``.

Options of a third-party driver's own section are declared through the
``netplex.config_options`` entry-point group (a mapping ``{section: [Opt,
...]}``, see :data:`netplex.config.OPTIONS_ENTRY_POINT_GROUP`); ``from_config``
then reads them typed, and options nobody declared are reported at start-up.

Nothing in this module touches the database; it imports only the
:class:`Segment` value type.
"""

# The resource hooks are deliberately optional no-ops, not abstract methods.
# ruff: noqa: B027

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from netplex.core.agent_config import as_mapping, as_str_tuple
from netplex.core.segments_model import Segment

if TYPE_CHECKING:
    from typing import Self

    from netplex.config import Config

__all__ = [
    "AGENT_TYPE_LINUXBRIDGE",
    "AGENT_TYPE_OVS",
    "BINDING_ACTIVE",
    "BINDING_INACTIVE",
    "MAX_BINDING_LEVELS",
    "PORT_STATUSES",
    "VIF_TYPE_BINDING_FAILED",
    "VIF_TYPE_BRIDGE",
    "VIF_TYPE_OVS",
    "VIF_TYPE_TAP",
    "VIF_TYPE_UNBOUND",
    "VNIC_NORMAL",
    "VNIC_TYPES",
    "AgentInfo",
    "BindingLevel",
    "BindingSink",
    "Connectivity",
    "MechanismDriver",
    "NetworkContext",
    "PortBindingInfo",
    "PortContext",
    "SubnetContext",
    "describe_segment",
    "frozen_mapping",
]

# --- vocabulary ----------------------------------------------------------------

#: ``binding:vif_type`` of a port with no ``binding:host_id`` (or whose binding
#: is being recomputed).
VIF_TYPE_UNBOUND = "unbound"
#: ``binding:vif_type`` when no driver could bind the port on its host.
VIF_TYPE_BINDING_FAILED = "binding_failed"
VIF_TYPE_OVS = "ovs"
VIF_TYPE_BRIDGE = "bridge"
VIF_TYPE_TAP = "tap"

VNIC_NORMAL = "normal"
#: Every ``binding:vnic_type`` the API accepts. Whether a driver can bind a
#: given one is the driver's decision.
VNIC_TYPES: tuple[str, ...] = (
    "normal",
    "direct",
    "macvtap",
    "baremetal",
    "direct-physical",
    "virtio-forwarder",
    "smart-nic",
    "vdpa",
    "remote-managed",
    "accelerator-direct",
    "accelerator-direct-physical",
)

#: ``status`` of a port's binding on a host (binding-extended): exactly one
#: binding of a port is ACTIVE; others (live-migration targets) are INACTIVE.
BINDING_ACTIVE = "ACTIVE"
BINDING_INACTIVE = "INACTIVE"

#: Port statuses a driver may request through ``set_binding(status=...)``.
PORT_STATUSES: frozenset[str] = frozenset({"ACTIVE", "DOWN", "BUILD", "ERROR"})

#: Hierarchical binding gives up below this many levels.
MAX_BINDING_LEVELS = 10

AGENT_TYPE_OVS = "Open vSwitch agent"
AGENT_TYPE_LINUXBRIDGE = "Linux bridge agent"

#: What a driver's ports can do: ``l2`` (the port shares a broadcast domain
#: with the network's other ports) or ``l3`` (routed only; no L2 adjacency).
#: Services that need L2 (e.g. some floating-IP designs) ask the driver that
#: bound the port, never a global switch.
Connectivity = Literal["l2", "l3"]


def frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only view of a private copy of ``value`` (top level only is frozen)."""
    import copy

    return MappingProxyType(copy.deepcopy(dict(value or {})))


def describe_segment(segment: Segment) -> str:
    """``vlan:physnet1:100``, ``vxlan:1001``, ``flat:physnet2``, ``local``."""
    parts = [segment.network_type]
    if segment.physical_network:
        parts.append(segment.physical_network)
    if segment.segmentation_id is not None:
        parts.append(str(segment.segmentation_id))
    return ":".join(parts)


# --- what drivers are told about agents -------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """One registered host agent, as seen at the start of a binding attempt.

    ``alive`` was computed from the last heartbeat and ``[DEFAULT]
    agent_down_time`` when the snapshot was taken. The typed accessors below
    read the well-known ``configurations`` keys; anything else an agent
    reports is still in :attr:`configurations`.
    """

    id: str
    agent_type: str
    binary: str
    host: str
    topic: str
    alive: bool
    admin_state_up: bool
    configurations: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    availability_zone: str | None = None
    heartbeat_timestamp: datetime | None = None

    @property
    def usable(self) -> bool:
        """Alive and administratively up: may be used for new bindings."""
        return self.alive and self.admin_state_up

    @property
    def bridge_mappings(self) -> dict[str, str]:
        """physical network -> bridge (Open vSwitch, or existing Linux bridges)."""
        return as_mapping(self.configurations.get("bridge_mappings"))

    @property
    def interface_mappings(self) -> dict[str, str]:
        """physical network -> host interface (Linux bridge agent)."""
        return as_mapping(self.configurations.get("interface_mappings"))

    @property
    def tunnel_types(self) -> tuple[str, ...]:
        """Overlay types the agent terminates, e.g. ``("vxlan",)``."""
        return as_str_tuple(self.configurations.get("tunnel_types"))

    @property
    def tunneling_ip(self) -> str | None:
        ip = self.configurations.get("tunneling_ip")
        return str(ip) if ip else None


# --- binding state ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BindingLevel:
    """One level of a (possibly hierarchical) binding: which driver bound which segment.

    Level 0 binds one of the network's own segments; level ``n + 1`` binds a
    segment that the level-``n`` driver passed down with ``continue_binding``.
    ``segment`` is None only if the segment row has since disappeared.
    """

    level: int
    driver: str
    segment_id: str
    segment: Segment | None = None


@dataclass(frozen=True, slots=True)
class PortBindingInfo:
    """A port's binding on one host, as stored (read-only)."""

    host: str = ""
    vnic_type: str = VNIC_NORMAL
    profile: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    vif_type: str = VIF_TYPE_UNBOUND
    vif_details: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: ``ACTIVE`` or ``INACTIVE`` (binding-extended).
    status: str = BINDING_ACTIVE
    levels: tuple[BindingLevel, ...] = ()

    @property
    def is_bound(self) -> bool:
        return self.vif_type not in (VIF_TYPE_UNBOUND, VIF_TYPE_BINDING_FAILED)

    @property
    def top_bound_segment(self) -> Segment | None:
        """The network segment bound at level 0 (what the port is "on")."""
        return self.levels[0].segment if self.levels else None

    @property
    def bottom_bound_segment(self) -> Segment | None:
        """The segment bound at the last level (what the host actually plugs into)."""
        return self.levels[-1].segment if self.levels else None


# --- contexts --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NetworkContext:
    """A network as drivers see it.

    ``current`` is the network's API dict after the operation; ``original``
    is the dict before it (updates only, else None). ``segments`` are the
    network's static segments in ``segment_index`` order; dynamic segments
    (hierarchical binding) appear only in binding levels.
    """

    current: Mapping[str, Any]
    original: Mapping[str, Any] | None = None
    segments: tuple[Segment, ...] = ()

    @property
    def id(self) -> str:
        return str(self.current["id"])


@dataclass(frozen=True, slots=True)
class SubnetContext:
    """A subnet as drivers see it, with its network."""

    current: Mapping[str, Any]
    original: Mapping[str, Any] | None
    network: NetworkContext


class BindingSink(Protocol):
    """Where a :class:`PortContext` sends a driver's binding decisions.

    Implemented by the core (the mechanism manager), one per driver call;
    drivers never use it directly, they call the :class:`PortContext` methods.
    """

    @property
    def level(self) -> int: ...

    @property
    def segments_to_bind(self) -> tuple[Segment, ...]: ...

    def set_binding(
        self,
        segment_id: str,
        vif_type: str,
        vif_details: Mapping[str, Any],
        status: str | None,
    ) -> None: ...

    def continue_binding(self, segment_id: str, next_segments: Sequence[Segment]) -> None: ...

    def allocate_dynamic_segment(
        self, network_type: str, physical_network: str | None, segmentation_id: int | None
    ) -> Segment: ...

    def decline(self, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class PortContext:
    """A port as drivers see it.

    In ``*_precommit``/``*_postcommit`` calls the context is purely
    informational: ``current``/``original`` are the port's API dicts and
    ``binding``/``original_binding`` its (active) binding before and after.

    In :meth:`MechanismDriver.bind_port` it also carries the binding
    question: :attr:`host`, :attr:`vnic_type`, :attr:`profile`, the agents
    registered on that host (:meth:`host_agents`), the segments this level
    may bind (:attr:`segments_to_bind`), and the methods that answer it.
    Calling those methods outside ``bind_port`` raises ``RuntimeError``.
    """

    current: Mapping[str, Any]
    original: Mapping[str, Any] | None
    network: NetworkContext
    binding: PortBindingInfo = field(default_factory=PortBindingInfo)
    original_binding: PortBindingInfo | None = None
    #: Agents on :attr:`host` (all types, alive or not); filled only for bind_port.
    agents: tuple[AgentInfo, ...] = ()
    #: Levels bound above this one during the current bind_port attempt.
    levels_so_far: tuple[BindingLevel, ...] = ()
    sink: BindingSink | None = field(default=None, repr=False, compare=False)

    # -- what the port asks for -------------------------------------------------

    @property
    def host(self) -> str:
        """``binding:host_id`` being bound (empty: unbound)."""
        return self.binding.host

    @property
    def original_host(self) -> str | None:
        return self.original_binding.host if self.original_binding else None

    @property
    def vnic_type(self) -> str:
        return self.binding.vnic_type

    @property
    def profile(self) -> Mapping[str, Any]:
        return self.binding.profile

    @property
    def vif_type(self) -> str:
        return self.binding.vif_type

    @property
    def vif_details(self) -> Mapping[str, Any]:
        return self.binding.vif_details

    @property
    def binding_levels(self) -> tuple[BindingLevel, ...]:
        """Outside bind_port: the stored levels. Inside: the levels above this one."""
        return self.levels_so_far if self.sink is not None else self.binding.levels

    @property
    def top_bound_segment(self) -> Segment | None:
        levels = self.binding_levels
        return levels[0].segment if levels else None

    @property
    def bottom_bound_segment(self) -> Segment | None:
        levels = self.binding_levels
        return levels[-1].segment if levels else None

    def host_agents(self, agent_type: str) -> tuple[AgentInfo, ...]:
        """Agents of ``agent_type`` registered on :attr:`host` (dead or disabled too)."""
        return tuple(a for a in self.agents if a.agent_type == agent_type)

    # -- answering the binding question (bind_port only) ----------------------------

    def _sink(self) -> BindingSink:
        if self.sink is None:
            raise RuntimeError("binding methods may only be called from bind_port()")
        return self.sink

    @property
    def binding_level(self) -> int:
        """The level being bound (0 for the network's own segments)."""
        return self._sink().level

    @property
    def segments_to_bind(self) -> tuple[Segment, ...]:
        """Segments this level may bind: the network's static segments at level 0,
        the ``next_segments`` of the driver above at deeper levels."""
        return self._sink().segments_to_bind

    def set_binding(
        self,
        segment_id: str,
        vif_type: str,
        vif_details: Mapping[str, Any],
        status: str | None = None,
    ) -> None:
        """Bind the port to ``segment_id`` (one of :attr:`segments_to_bind`).

        ``vif_type``/``vif_details`` tell the compute side how to plug the
        VM. ``status`` optionally sets the port's status at commit (e.g. a
        driver with no agent that reports the device can say ``ACTIVE``);
        by default the port stays DOWN until the host's agent reports it up.
        At most one of set_binding/continue_binding per call; raises
        ``ValueError`` on arguments that cannot be right.
        """
        self._sink().set_binding(segment_id, vif_type, vif_details, status)

    def continue_binding(self, segment_id: str, next_segments: Sequence[Segment]) -> None:
        """Bind ``segment_id`` at this level and let the next level bind one of
        ``next_segments`` (typically a dynamic segment from
        :meth:`allocate_dynamic_segment`). If nothing binds below, the manager
        tries this level's remaining drivers."""
        self._sink().continue_binding(segment_id, next_segments)

    def allocate_dynamic_segment(
        self,
        network_type: str,
        physical_network: str | None = None,
        segmentation_id: int | None = None,
    ) -> Segment:
        """Get a dynamic segment of this port's network from the type manager
        (which may hand out the network's existing one of that type and
        physical network). Runs its own short transaction; may raise if the
        pool is exhausted. Segments no binding level ends up using are
        released by the core; drivers never release them."""
        return self._sink().allocate_dynamic_segment(
            network_type, physical_network, segmentation_id
        )

    def decline(self, reason: str) -> None:
        """Say why this driver does not bind here; shown to admins verbatim,
        prefixed with the driver's name. May be called several times."""
        self._sink().decline(reason)


# --- the driver contract ----------------------------------------------------------


class MechanismDriver(abc.ABC):
    """Base class of every mechanism driver.

    Override the calls you care about; all resource hooks default to doing
    nothing. :meth:`bind_port` is the only abstract method: a driver that
    never binds should still say so with ``context.decline(...)``.

    Raising from a precommit hook: a :class:`netplex.errors.NetplexError`
    subclass keeps its HTTP status (e.g. ``InvalidInput`` -> 400); any other
    exception becomes ``MechanismDriverError`` (500) naming the driver.
    Raising from a postcommit hook is always reported as
    ``MechanismDriverError`` (create) or logged (update, delete).
    """

    #: ``l2`` or ``l3``; see :data:`Connectivity`.
    connectivity: ClassVar[Connectivity] = "l2"
    #: For drivers that bind through a host agent: that agent's ``agent_type``.
    #: The core uses it to mark a bound port DOWN when its agent dies.
    agent_type: ClassVar[str | None] = None

    @classmethod
    def from_config(cls, config: Config | None) -> Self:
        """Construct the driver from the parsed configuration (None in tests).

        Called once at start-up, before :meth:`initialize`. Read the options
        you need here and pass them to ``__init__``; never read global state
        later.
        """
        return cls()

    def initialize(self) -> None:
        """Called once after construction and before any other call. May block."""

    # -- networks -----------------------------------------------------------------

    def create_network_precommit(self, context: NetworkContext) -> None:
        """Inside the creating transaction, after the network and its segments are
        written. Must not block (no network I/O). Raising rolls the creation back
        and the client gets the error."""

    def create_network_postcommit(self, context: NetworkContext) -> None:
        """After the creation committed. May block. Raising makes the core delete
        the network again (drivers then see the delete calls) and return 500."""

    def update_network_precommit(self, context: NetworkContext) -> None:
        """Inside the updating transaction; ``context.original`` holds the old
        values. Must not block. Raising rolls the update back."""

    def update_network_postcommit(self, context: NetworkContext) -> None:
        """After the update committed. May block. Raising is logged; the update
        stands (agent-driven drivers converge from the change feed instead)."""

    def delete_network_precommit(self, context: NetworkContext) -> None:
        """Inside the deleting transaction, before the rows go. Must not block.
        Raising aborts the delete."""

    def delete_network_postcommit(self, context: NetworkContext) -> None:
        """After the delete committed. May block. Raising is logged only; the
        network is gone."""

    # -- subnets ------------------------------------------------------------------

    def create_subnet_precommit(self, context: SubnetContext) -> None:
        """Inside the creating transaction. Must not block. Raising rolls back."""

    def create_subnet_postcommit(self, context: SubnetContext) -> None:
        """After commit. May block. Raising deletes the subnet and returns 500."""

    def update_subnet_precommit(self, context: SubnetContext) -> None:
        """Inside the updating transaction. Must not block. Raising rolls back."""

    def update_subnet_postcommit(self, context: SubnetContext) -> None:
        """After commit. May block. Raising is logged; the update stands."""

    def delete_subnet_precommit(self, context: SubnetContext) -> None:
        """Inside the deleting transaction. Must not block. Raising aborts the delete."""

    def delete_subnet_postcommit(self, context: SubnetContext) -> None:
        """After commit. May block. Raising is logged only."""

    # -- ports --------------------------------------------------------------------

    def create_port_precommit(self, context: PortContext) -> None:
        """Inside the creating transaction. The port's binding is not computed yet
        (``vif_type`` is ``unbound``). Must not block. Raising rolls back."""

    def create_port_postcommit(self, context: PortContext) -> None:
        """After commit, before binding is attempted. May block. Raising deletes
        the port and returns 500."""

    def update_port_precommit(self, context: PortContext) -> None:
        """Inside the updating transaction. Also called when a binding result is
        committed (``original_binding`` unbound, ``binding`` bound), and when a
        binding is activated. Must not block. Raising rolls back; for a binding
        commit, the port is left ``binding_failed`` with the reason."""

    def update_port_postcommit(self, context: PortContext) -> None:
        """After the update (or binding commit) committed. May block. Raising is
        logged; the change stands."""

    def delete_port_precommit(self, context: PortContext) -> None:
        """Inside the deleting transaction. Must not block. Raising aborts the delete."""

    def delete_port_postcommit(self, context: PortContext) -> None:
        """After commit. May block. Raising is logged only."""

    # -- binding -------------------------------------------------------------------

    @abc.abstractmethod
    def bind_port(self, context: PortContext) -> None:
        """Try to bind ``context``'s port on ``context.host``.

        Runs outside any database transaction and may block briefly (ask a
        controller), but every caller waits for it: keep it fast. Look at
        :attr:`PortContext.segments_to_bind`, :meth:`PortContext.host_agents`,
        :attr:`PortContext.vnic_type` and :attr:`PortContext.profile`, then
        either call :meth:`PortContext.set_binding`, call
        :meth:`PortContext.continue_binding`, or call
        :meth:`PortContext.decline` with a reason an operator can act on.

        The result may be thrown away (the port changed meanwhile) and this
        method called again, so do not record side effects here; do them in
        ``update_port_precommit``/``postcommit``, which see the committed
        binding. Raising is logged, recorded as this driver's reason, and the
        next driver is tried.
        """
