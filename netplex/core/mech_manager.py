"""The mechanism manager: loads mechanism drivers, calls them, and binds ports.

Three jobs, none of which touches the database directly:

* **Loading.** Drivers are found by name in the entry-point group
  ``netplex.mechanism_drivers``; ``[ml2] mechanism_drivers`` lists which to
  load and is also the call order. An unknown or repeated name is a
  :class:`~netplex.config.ConfigError` at start-up.
* **Resource hooks.** :meth:`MechanismManager.call_precommit` stops at the
  first failing driver and raises (the caller's transaction rolls back).
  :meth:`MechanismManager.call_postcommit` calls every driver even if one
  fails; for ``create_*`` it then raises so the caller can delete what it
  created, for ``update_*``/``delete_*`` it logs and returns the failures.
  Those are not retried here: the shipped drivers are agent-driven and
  converge from the change feed and periodic resync, which is the retry.
* **Binding.** :meth:`MechanismManager.bind_port` runs the level-by-level
  binding algorithm over a :class:`BindingRequest` (a snapshot the caller
  read) and returns a :class:`BindingResult`, including one diagnostic line
  per driver that was asked. Dynamic segments go through an injected
  :class:`SegmentAllocator`; those the final result does not use are
  released before returning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from netplex.config import ConfigError
from netplex.core.mech_api import (
    MAX_BINDING_LEVELS,
    PORT_STATUSES,
    VIF_TYPE_BINDING_FAILED,
    VIF_TYPE_UNBOUND,
    AgentInfo,
    BindingLevel,
    MechanismDriver,
    NetworkContext,
    PortBindingInfo,
    PortContext,
    SubnetContext,
    describe_segment,
)
from netplex.core.segments_model import Segment
from netplex.errors import MechanismDriverError, NetplexError

if TYPE_CHECKING:
    from netplex.config import Config

__all__ = [
    "ENTRY_POINT_GROUP",
    "POSTCOMMIT_METHODS",
    "PRECOMMIT_METHODS",
    "BindingRequest",
    "BindingResult",
    "DriverFailure",
    "MechanismManager",
    "SegmentAllocator",
]

LOG = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "netplex.mechanism_drivers"

_RESOURCES = ("network", "subnet", "port")
_VERBS = ("create", "update", "delete")
PRECOMMIT_METHODS: frozenset[str] = frozenset(
    f"{v}_{r}_precommit" for v in _VERBS for r in _RESOURCES
)
POSTCOMMIT_METHODS: frozenset[str] = frozenset(
    f"{v}_{r}_postcommit" for v in _VERBS for r in _RESOURCES
)

ResourceContext = NetworkContext | SubnetContext | PortContext


@dataclass(frozen=True)
class DriverFailure:
    """One driver's exception from a postcommit call."""

    driver: str
    method: str
    error: BaseException

    def __str__(self) -> str:
        return f"{self.driver}: {type(self.error).__name__}: {self.error}"


class SegmentAllocator(Protocol):
    """Dynamic segments for hierarchical binding, each call its own transaction.

    The core's implementation wraps the type manager; tests may pass a fake.
    """

    def allocate(
        self,
        network_id: str,
        network_type: str,
        physical_network: str | None,
        segmentation_id: int | None,
    ) -> Segment:
        """Allocate (or reuse) a dynamic segment of ``network_id``."""
        ...

    def release_unused(self, segment_ids: Sequence[str]) -> None:
        """Release each dynamic segment that no binding level references."""
        ...


@dataclass(frozen=True)
class BindingRequest:
    """Everything a binding attempt looks at, read in one snapshot.

    ``binding`` carries the requested host, vnic_type and profile (and the
    levels stored before this attempt, for drivers that care). ``agents``
    are the agents registered on that host.
    """

    port: Mapping[str, Any]
    network: NetworkContext
    binding: PortBindingInfo
    agents: tuple[AgentInfo, ...] = ()
    original_port: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class BindingResult:
    """The outcome of one binding attempt (not yet committed).

    ``vif_type`` is the bound type or ``binding_failed``. ``levels`` are in
    order from level 0. ``diagnostics`` has one or more lines per driver
    asked, e.g. ``"openvswitch: no alive Open vSwitch agent on host-3"``.
    ``dynamic_segments`` are the dynamic segments the levels use; any others
    allocated during the attempt were already released.
    """

    vif_type: str
    vif_details: Mapping[str, Any] = field(default_factory=dict)
    levels: tuple[BindingLevel, ...] = ()
    diagnostics: tuple[str, ...] = ()
    dynamic_segments: tuple[Segment, ...] = ()
    #: Port status a driver asked for with ``set_binding(status=...)``.
    status: str | None = None

    @property
    def bound(self) -> bool:
        return self.vif_type not in (VIF_TYPE_UNBOUND, VIF_TYPE_BINDING_FAILED)

    def failed(self, *extra_diagnostics: str) -> BindingResult:
        """The same attempt turned into a failure (e.g. rejected at commit)."""
        return BindingResult(
            vif_type=VIF_TYPE_BINDING_FAILED,
            diagnostics=self.diagnostics + tuple(extra_diagnostics),
        )


# --- loading --------------------------------------------------------------------


def _load_driver_classes(names: Sequence[str]) -> list[tuple[str, type[MechanismDriver]]]:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"[ml2] mechanism_drivers lists {name!r} twice")
        seen.add(name)
    available = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    out: list[tuple[str, type[MechanismDriver]]] = []
    for name in names:
        ep = available.get(name)
        if ep is None:
            known = ", ".join(sorted(available)) or "none"
            raise ConfigError(
                f"[ml2] mechanism_drivers: no mechanism driver named {name!r} "
                f"(installed: {known})"
            )
        try:
            cls = ep.load()
        except Exception as exc:
            raise ConfigError(
                f"mechanism driver {name!r} ({ep.value}) failed to load: {exc}"
            ) from exc
        if not (isinstance(cls, type) and issubclass(cls, MechanismDriver)):
            raise ConfigError(f"mechanism driver {name!r} ({ep.value}) is not a MechanismDriver")
        out.append((name, cls))
    return out


# --- binding internals ---------------------------------------------------------------


@dataclass
class _Run:
    """State of one bind_port() call across levels."""

    request: BindingRequest
    allocator: SegmentAllocator | None
    diagnostics: list[str] = field(default_factory=list)
    allocated: dict[str, Segment] = field(default_factory=dict)


@dataclass(frozen=True)
class _Bound:
    levels: tuple[BindingLevel, ...]
    vif_type: str
    vif_details: Mapping[str, Any]
    status: str | None


class _LevelCall:
    """The :class:`BindingSink` for one driver's bind_port call at one level."""

    def __init__(
        self, run: _Run, driver: str, level: int, segments: tuple[Segment, ...]
    ) -> None:
        self._run = run
        self._driver = driver
        self._level = level
        self._segments = segments
        self.declines: list[str] = []
        self.bound: tuple[Segment, str, dict[str, Any], str | None] | None = None
        self.continued: tuple[Segment, tuple[Segment, ...]] | None = None

    @property
    def level(self) -> int:
        return self._level

    @property
    def segments_to_bind(self) -> tuple[Segment, ...]:
        return self._segments

    def _segment(self, segment_id: str) -> Segment:
        if self.bound is not None or self.continued is not None:
            raise RuntimeError(
                "set_binding/continue_binding may be called only once per bind_port call"
            )
        for seg in self._segments:
            if seg.id == segment_id:
                return seg
        raise ValueError(f"segment {segment_id} is not one of the segments to bind")

    def set_binding(
        self,
        segment_id: str,
        vif_type: str,
        vif_details: Mapping[str, Any],
        status: str | None,
    ) -> None:
        seg = self._segment(segment_id)
        if not vif_type or vif_type in (VIF_TYPE_UNBOUND, VIF_TYPE_BINDING_FAILED):
            raise ValueError(f"{vif_type!r} is not a vif_type a driver can bind with")
        if not isinstance(vif_details, Mapping):
            raise ValueError("vif_details must be a mapping")
        if status is not None and status not in PORT_STATUSES:
            raise ValueError(f"port status {status!r} is not one of {sorted(PORT_STATUSES)}")
        self.bound = (seg, vif_type, dict(vif_details), status)

    def continue_binding(self, segment_id: str, next_segments: Sequence[Segment]) -> None:
        seg = self._segment(segment_id)
        nxt = tuple(next_segments)
        if not nxt:
            raise ValueError("continue_binding needs at least one next segment")
        network_id = self._run.request.network.id
        for s in nxt:
            if not isinstance(s, Segment):
                raise ValueError(f"next segments must be Segment values, got {type(s).__name__}")
            if s.network_id != network_id:
                raise ValueError(
                    f"segment {s.id} belongs to network {s.network_id}, not {network_id}"
                )
        self.continued = (seg, nxt)

    def allocate_dynamic_segment(
        self, network_type: str, physical_network: str | None, segmentation_id: int | None
    ) -> Segment:
        if self._run.allocator is None:
            raise RuntimeError("dynamic segments are unavailable: no segment allocator configured")
        seg = self._run.allocator.allocate(
            self._run.request.network.id, network_type, physical_network, segmentation_id
        )
        self._run.allocated.setdefault(seg.id, seg)
        return seg

    def decline(self, reason: str) -> None:
        self.declines.append(str(reason))


# --- the manager -------------------------------------------------------------------


class MechanismManager:
    """The ordered set of loaded mechanism drivers.

    Build it with :meth:`from_config` (production) or directly from
    ``(name, driver)`` pairs (tests, embedding), then call :meth:`initialize`
    once before use.
    """

    def __init__(self, drivers: Sequence[tuple[str, MechanismDriver]]) -> None:
        names = [n for n, _ in drivers]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ConfigError(f"mechanism driver names given twice: {', '.join(sorted(dupes))}")
        self._drivers: tuple[tuple[str, MechanismDriver], ...] = tuple(drivers)
        self._by_name = dict(self._drivers)
        self._initialized = False

    @classmethod
    def from_names(cls, names: Sequence[str], config: Config | None = None) -> MechanismManager:
        """Load drivers by entry-point name, in the given order (not initialized)."""
        classes = _load_driver_classes(names)
        return cls([(name, klass.from_config(config)) for name, klass in classes])

    @classmethod
    def from_config(cls, config: Config) -> MechanismManager:
        """Load ``[ml2] mechanism_drivers`` (not initialized)."""
        names: list[str] = list(config.get("ml2", "mechanism_drivers"))
        if not names:
            LOG.warning("[ml2] mechanism_drivers is empty: every port binding will fail")
        return cls.from_names(names, config)

    def initialize(self) -> None:
        """Call every driver's ``initialize()`` once, in order."""
        if self._initialized:
            return
        for name, driver in self._drivers:
            LOG.debug("initializing mechanism driver %s", name)
            driver.initialize()
        self._initialized = True

    # -- introspection -------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self._drivers)

    def driver(self, name: str) -> MechanismDriver:
        return self._by_name[name]

    def agent_types(self) -> dict[str, str]:
        """driver name -> agent_type, for agent-driven drivers."""
        return {n: d.agent_type for n, d in self._drivers if d.agent_type}

    def implements(self, method: str) -> bool:
        """Whether any driver overrides ``method`` (callers skip building contexts if not)."""
        base = getattr(MechanismDriver, method)
        return any(getattr(type(d), method) is not base for _, d in self._drivers)

    def _check_ready(self) -> None:
        if not self._initialized:
            raise RuntimeError("MechanismManager.initialize() has not been called")

    # -- resource hooks ------------------------------------------------------------------

    def call_precommit(self, method: str, context: ResourceContext) -> None:
        """Call ``method`` (e.g. ``"create_port_precommit"``) on each driver in order.

        Run it inside the caller's transaction. The first failure stops the
        loop and propagates: a :class:`NetplexError` unchanged, anything else
        as :class:`MechanismDriverError`. The caller lets it roll back.
        """
        if method not in PRECOMMIT_METHODS:
            raise ValueError(f"{method!r} is not a precommit method")
        self._check_ready()
        for name, driver in self._drivers:
            try:
                getattr(driver, method)(context)
            except NetplexError:
                LOG.info("mechanism driver %s rejected %s", name, method, exc_info=True)
                raise
            except Exception as exc:
                LOG.exception("mechanism driver %s failed in %s", name, method)
                raise MechanismDriverError(method=f"{name}.{method}", reason=str(exc)) from exc

    def call_postcommit(self, method: str, context: ResourceContext) -> list[DriverFailure]:
        """Call ``method`` (e.g. ``"create_port_postcommit"``) on every driver.

        Run it after commit. Every driver is called even when one fails.
        For ``create_*_postcommit`` any failure then raises
        :class:`MechanismDriverError` whose message lists each failing
        driver's reason: the caller deletes the resource through its normal
        delete path (so drivers see ``delete_*``) and returns that error
        (500). For ``update_*``/``delete_*`` failures are logged and returned;
        the change stands.
        """
        if method not in POSTCOMMIT_METHODS:
            raise ValueError(f"{method!r} is not a postcommit method")
        self._check_ready()
        failures: list[DriverFailure] = []
        for name, driver in self._drivers:
            try:
                getattr(driver, method)(context)
            except Exception as exc:
                LOG.exception("mechanism driver %s failed in %s", name, method)
                failures.append(DriverFailure(name, method, exc))
        if failures and method.startswith("create_"):
            raise MechanismDriverError(
                method=method, reason="; ".join(str(f) for f in failures)
            ) from failures[0].error
        return failures

    # -- binding -------------------------------------------------------------------------

    def bind_port(
        self, request: BindingRequest, allocator: SegmentAllocator | None = None
    ) -> BindingResult:
        """Find drivers that bind ``request``'s port on its host, level by level.

        Level 0 offers the network's static segments to each driver in
        order. A driver binds (the result), continues to the next level with
        segments it chose (recursively; if nothing binds below, the next
        driver at this level is tried), or declines. A driver is not offered
        a segment it already bound at a level above (no loops). Never
        raises for driver errors: they become diagnostics.

        Must be called outside any database transaction.
        """
        self._check_ready()
        run = _Run(request, allocator)
        bound: _Bound | None = None
        if not self._drivers:
            run.diagnostics.append("no mechanism drivers are configured ([ml2] mechanism_drivers)")
        elif not request.network.segments:
            run.diagnostics.append(f"network {request.network.id} has no segments to bind")
        else:
            bound = self._bind_level(run, 0, request.network.segments, ())
        used = {lvl.segment_id for lvl in bound.levels} if bound else set()
        unused = [sid for sid in run.allocated if sid not in used]
        if unused and allocator is not None:
            try:
                allocator.release_unused(unused)
            except Exception:
                LOG.exception("releasing unused dynamic segments %s failed", unused)
        if bound is None:
            return BindingResult(
                vif_type=VIF_TYPE_BINDING_FAILED, diagnostics=tuple(run.diagnostics)
            )
        return BindingResult(
            vif_type=bound.vif_type,
            vif_details=bound.vif_details,
            levels=bound.levels,
            diagnostics=tuple(run.diagnostics),
            dynamic_segments=tuple(s for sid, s in run.allocated.items() if sid in used),
            status=bound.status,
        )

    def _bind_level(
        self,
        run: _Run,
        level: int,
        segments: tuple[Segment, ...],
        above: tuple[BindingLevel, ...],
    ) -> _Bound | None:
        if level >= MAX_BINDING_LEVELS:
            run.diagnostics.append(f"binding gave up: more than {MAX_BINDING_LEVELS} levels")
            return None
        seg_ids = {s.id for s in segments}
        for name, driver in self._drivers:
            if any(lv.driver == name and lv.segment_id in seg_ids for lv in above):
                continue
            say = _prefixer(run.diagnostics, name, level)
            call = _LevelCall(run, name, level, segments)
            context = _binding_context(run.request, above, call)
            try:
                driver.bind_port(context)
            except Exception as exc:
                LOG.exception("mechanism driver %s failed in bind_port", name)
                for reason in call.declines:
                    say(reason)
                say(f"failed: {type(exc).__name__}: {exc}")
                continue
            for reason in call.declines:
                say(reason)
            if call.bound is not None:
                seg, vif_type, details, status = call.bound
                say(f"bound segment {describe_segment(seg)} ({seg.id}) with vif_type {vif_type}")
                return _Bound(above + (BindingLevel(level, name, seg.id, seg),), vif_type,
                              details, status)
            if call.continued is not None:
                seg, nxt = call.continued
                say(
                    f"bound segment {describe_segment(seg)} ({seg.id}) and continued at "
                    f"level {level + 1} with {', '.join(describe_segment(s) for s in nxt)}"
                )
                result = self._bind_level(
                    run, level + 1, nxt, above + (BindingLevel(level, name, seg.id, seg),)
                )
                if result is not None:
                    return result
                say(f"nothing bound below segment {describe_segment(seg)}; trying the next driver")
                continue
            if not call.declines:
                say("did not bind and gave no reason")
        return None


def _prefixer(out: list[str], name: str, level: int) -> Callable[[str], None]:
    prefix = f"{name}: " if level == 0 else f"{name} (level {level}): "

    def say(text: str) -> None:
        out.append(prefix + text)

    return say


def _binding_context(
    request: BindingRequest, above: tuple[BindingLevel, ...], call: _LevelCall
) -> PortContext:
    return PortContext(
        current=request.port,
        original=request.original_port,
        network=request.network,
        binding=request.binding,
        original_binding=None,
        agents=request.agents,
        levels_so_far=above,
        sink=call,
    )

