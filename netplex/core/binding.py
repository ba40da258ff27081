"""Port binding: deciding, storing and explaining which mechanism wires a port.

The rule that shapes this module: **no database transaction stays open while
drivers think.** One binding attempt is three steps:

1. *Snapshot* (a read-only transaction): the port, its network's segments,
   the binding row being bound (with its ``attempt`` counter N) and the
   agents registered on the binding's host.
2. *Decide* (no transaction): :meth:`MechanismManager.bind_port` asks the
   drivers. A driver that needs a dynamic segment gets it in its own short
   transaction.
3. *Commit* (a short write transaction): store the result only if the
   binding's ``attempt`` is still N, and bump it to N + 1 (compare-and-swap).
   If someone changed the binding meanwhile (new host, vnic_type, profile,
   activation, another binder's commit) nothing is written, the attempt's
   dynamic segments are released if unused, and the attempt starts again from
   step 1 with the latest port, up to ``max_tries`` times.

Who binds when: whoever changes a binding's inputs bumps ``attempt`` (see
:meth:`PortBindingService.stage_binding`) and, after commit, calls
:meth:`PortBindingService.bind_port`. A binding that is already bound is
left alone (unless ``force``), so of several racing binders the first
commit wins and the others return its result. When the world changes (an
agent registers, revives, gains a mapping, is enabled) the caller, after
that commit, calls :meth:`PortBindingService.rebind_failed_ports_on_host`,
which retries every binding on the host that is ``binding_failed`` or still
``unbound``; a binder that read the old world either commits first (and the
rebind retries after it) or loses its CAS to the rebind.

Dynamic segments are reference-counted by ``port_binding_levels``: a
dynamic segment is released (through the type manager) in the same
transaction that removes the last level using it: unbinding, rebinding,
deleting a binding or the port. The segment row is locked first, so a
concurrent binder that wants to use it either sees it gone (and retries)
or makes the releaser see its new level.

Port status: a change of the active binding's host, and an activation, set
the port ``DOWN`` (the new host's agent reports it ``ACTIVE`` when wired);
:meth:`PortBindingService.mark_ports_down_for_dead_agents` sets bound ports
``DOWN`` when the agent that served them stops reporting, without unbinding.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Table, and_, bindparam, delete, false, insert, select, update
from sqlalchemy.orm import Session

from netplex.core.agents import AgentChange, AgentService
from netplex.core.mech_api import (
    BINDING_ACTIVE,
    BINDING_INACTIVE,
    VIF_TYPE_BINDING_FAILED,
    VIF_TYPE_UNBOUND,
    VNIC_NORMAL,
    VNIC_TYPES,
    BindingLevel,
    NetworkContext,
    PortBindingInfo,
    PortContext,
    SubnetContext,
    describe_segment,
    frozen_mapping,
)
from netplex.core.mech_manager import BindingRequest, BindingResult, MechanismManager
from netplex.core.segments_model import Segment
from netplex.db.base import utcnow
from netplex.db.engine import Database, Txn
from netplex.db.models import (
    Agent,
    IPAllocation,
    Network,
    NetworkSegment,
    Port,
    PortBinding,
    PortBindingLevel,
)
from netplex.db.prepared import Prepared
from netplex.errors import (
    InvalidInput,
    InvalidState,
    NetplexError,
    NetworkNotFound,
    PortBindingAlreadyActive,
    PortBindingAlreadyExists,
    PortBindingError,
    PortBindingNotFound,
    PortNotFound,
)

__all__ = [
    "UNSET",
    "BindingView",
    "PortBindingService",
    "PortRecords",
    "SegmentTypeManager",
    "binding_dict",
    "binding_dicts",
    "binding_entry_dict",
    "binding_levels",
    "network_context",
    "network_segments",
    "port_context",
    "subnet_context",
    "validate_host",
    "validate_profile",
    "validate_vnic_type",
]

LOG = logging.getLogger(__name__)

PORT_STATUS_ACTIVE = "ACTIVE"
PORT_STATUS_DOWN = "DOWN"


class _Unset(enum.Enum):
    UNSET = "UNSET"


#: "Not given" for :meth:`PortBindingService.stage_binding` keyword arguments.
UNSET = _Unset.UNSET

# --- hot-path statements, built once ---------------------------------------------------
# Building a SQLAlchemy statement costs several times more than running it on
# SQLite; binding is on the request path, so its statements are prebuilt with
# bind parameters.

_B = cast(Table, PortBinding.__table__)
_L = cast(Table, PortBindingLevel.__table__)
_S = cast(Table, NetworkSegment.__table__)
_IPS = cast(Table, IPAllocation.__table__)

_P = cast(Table, Port.__table__)
_N = cast(Table, Network.__table__)

_ACTIVE_BINDING_ROW = Prepared(
    select(_B).where(_B.c.port_id == bindparam("port_id"), _B.c.status == BINDING_ACTIVE)
)
_HOST_BINDING_ROW = Prepared(
    select(_B).where(_B.c.port_id == bindparam("port_id"), _B.c.host == bindparam("host"))
)
_LOCK_ACTIVE_BINDING = Prepared(
    select(_B)
    .where(_B.c.port_id == bindparam("port_id"), _B.c.status == BINDING_ACTIVE)
    .with_for_update()
)
_BINDING_EXISTS = Prepared(
    select(_B.c.host).where(_B.c.port_id == bindparam("port_id"), _B.c.host == bindparam("host"))
)
_PORT_ROW = Prepared(select(_P).where(_P.c.id == bindparam("port_id")))
_NETWORK_ROW = Prepared(select(_N).where(_N.c.id == bindparam("network_id")))
_PORT_IPS = Prepared(
    select(_IPS.c.subnet_id, _IPS.c.ip_address).where(_IPS.c.port_id == bindparam("port_id"))
)
_STATIC_SEGMENTS = Prepared(
    select(_S)
    .where(_S.c.network_id == bindparam("network_id"), _S.c.is_dynamic == false())
    .order_by(_S.c.segment_index, _S.c.created_at)
)
_ALL_SEGMENTS = Prepared(
    select(_S)
    .where(_S.c.network_id == bindparam("network_id"))
    .order_by(_S.c.segment_index, _S.c.created_at)
)
_LEVELS = Prepared(
    select(_L.c.level, _L.c.driver, _L.c.segment_id, _S)
    .outerjoin(_S, _S.c.id == _L.c.segment_id)
    .where(_L.c.port_id == bindparam("port_id"), _L.c.host == bindparam("host"))
    .order_by(_L.c.level)
)
_CAS_BINDING = Prepared(
    update(_B)
    .where(
        _B.c.port_id == bindparam("b_port_id"),
        _B.c.host == bindparam("b_host"),
        _B.c.attempt == bindparam("b_attempt"),
    )
    .values(
        vif_type=bindparam("b_vif_type"),
        vif_details=bindparam("b_vif_details"),
        diagnostics=bindparam("b_diagnostics"),
        attempt=bindparam("b_new_attempt"),
    )
)
#: A new binding request: back to ``unbound`` and a new attempt number.
_RESTAGE_BINDING = Prepared(
    update(_B)
    .where(_B.c.port_id == bindparam("b_port_id"), _B.c.host == bindparam("b_old_host"))
    .values(
        host=bindparam("b_host"),
        vnic_type=bindparam("b_vnic_type"),
        profile=bindparam("b_profile", type_=_B.c.profile.type),
        vif_type=VIF_TYPE_UNBOUND,
        vif_details=bindparam("b_vif_details", type_=_B.c.vif_details.type),
        diagnostics=bindparam("b_diagnostics", type_=_B.c.diagnostics.type),
        attempt=_B.c.attempt + 1,
    )
)
_INSERT_BINDING = Prepared(insert(_B), keys=[c.key for c in _B.c])
_SEGMENT_IS_DYNAMIC = Prepared(select(_S.c.is_dynamic).where(_S.c.id == bindparam("id")))
_DELETE_LEVELS = Prepared(
    delete(_L)
    .where(_L.c.port_id == bindparam("port_id"), _L.c.host == bindparam("host"))
    .returning(_L.c.segment_id)
)
_DELETE_ALL_LEVELS = Prepared(
    delete(_L).where(_L.c.port_id == bindparam("port_id")).returning(_L.c.segment_id)
)
_DELETE_ALL_BINDINGS = Prepared(delete(_B).where(_B.c.port_id == bindparam("port_id")))
_INSERT_LEVELS = Prepared(insert(_L), keys=["port_id", "host", "level", "driver", "segment_id"])

# --- collaborators ---------------------------------------------------------------------


class SegmentTypeManager(Protocol):
    """The part of the type manager binding needs (dynamic segments).

    Both run inside the caller's session/transaction. ``allocate`` writes a
    ``network_segments`` row with ``is_dynamic = true`` (or returns an
    existing dynamic segment of the network with the same type and physical
    network); ``release`` frees its segmentation ID and deletes that row.
    This module reference-counts through binding levels and calls ``release``
    only when no level uses the segment, with the segment row locked.
    """

    def allocate_dynamic_segment(
        self,
        session: Session,
        network_id: str,
        network_type: str,
        physical_network: str | None = None,
        segmentation_id: int | None = None,
    ) -> Segment: ...

    def release_dynamic_segment(self, session: Session, segment_id: str) -> None: ...


class PortRecords(Protocol):
    """What binding needs of the ``ports`` table (:class:`netplex.core.port_rows.PortTable`).

    ``render`` gives the port's API dict (the ``current``/``original`` that
    drivers see). ``port_changed`` is called inside every transaction in
    which binding changed the port (binding result, activation, status): it
    bumps ``revision_number``, records the port on the change feed and
    returns the dict it recorded (the API answers with it). ``set_down``
    sets the status DOWN without a revision (inside a port update, which
    bumps the port itself).
    """

    def render(self, conn: Connection, port_id: str) -> dict[str, Any]: ...

    def port_changed(self, txn: Txn, port_id: str, *, status: str | None = None) -> dict[str, Any]: ...

    def set_down(self, conn: Connection, port_id: str) -> None: ...


# --- validation and views ------------------------------------------------------------------


def validate_vnic_type(value: Any) -> str:
    if value is None:
        return VNIC_NORMAL
    if not isinstance(value, str) or value not in VNIC_TYPES:
        raise InvalidInput(
            error_message=(
                f"binding:vnic_type {value!r} is not one of {', '.join(sorted(VNIC_TYPES))}"
            )
        )
    return value


def validate_profile(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(error_message="binding:profile must be a JSON object")
    return dict(value)


def validate_host(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 255:
        raise InvalidInput(error_message="binding:host_id must be a string of at most 255 chars")
    return value.strip()


@dataclass(frozen=True)
class BindingView:
    """A port binding row's values, detached from any session."""

    port_id: str
    host: str
    vnic_type: str
    profile: dict[str, Any]
    vif_type: str
    vif_details: dict[str, Any]
    status: str
    diagnostics: tuple[str, ...]
    attempt: int

    @classmethod
    def from_row(cls, row: Any) -> BindingView:
        """From a :class:`PortBinding` or a Core row of ``port_bindings``."""
        return cls(
            port_id=row.port_id,
            host=row.host,
            vnic_type=row.vnic_type,
            profile=dict(row.profile or {}),
            vif_type=row.vif_type,
            vif_details=dict(row.vif_details or {}),
            status=row.status,
            diagnostics=tuple(row.diagnostics or ()),
            attempt=row.attempt,
        )

    @property
    def is_bound(self) -> bool:
        return self.vif_type not in (VIF_TYPE_UNBOUND, VIF_TYPE_BINDING_FAILED)


def binding_dict(row: PortBinding | BindingView | None) -> dict[str, Any]:
    """The ``binding:*`` attributes of a port, from its ACTIVE binding.

    ``binding:diagnostics`` is an admin-only extension attribute: the API
    layer drops it for other callers (as it does ``binding:profile`` etc.
    under Neutron's policy).
    """
    if row is None:
        return {
            "binding:host_id": "",
            "binding:vnic_type": VNIC_NORMAL,
            "binding:profile": {},
            "binding:vif_type": VIF_TYPE_UNBOUND,
            "binding:vif_details": {},
            "binding:diagnostics": [],
        }
    return {
        "binding:host_id": row.host,
        "binding:vnic_type": row.vnic_type,
        "binding:profile": dict(row.profile or {}),
        "binding:vif_type": row.vif_type,
        "binding:vif_details": dict(row.vif_details or {}),
        "binding:diagnostics": list(row.diagnostics or ()),
    }


def binding_entry_dict(row: PortBinding | BindingView) -> dict[str, Any]:
    """One entry of ``/v2.0/ports/{id}/bindings`` (binding-extended)."""
    return {
        "host": row.host,
        "vif_type": row.vif_type,
        "vif_details": dict(row.vif_details or {}),
        "vnic_type": row.vnic_type,
        "profile": dict(row.profile or {}),
        "status": row.status,
    }


def binding_dicts(session: Session, port_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``binding:*`` attributes for many ports in one query (port lists)."""
    out = {pid: binding_dict(None) for pid in port_ids}
    if not port_ids:
        return out
    rows = session.scalars(
        select(PortBinding).where(
            PortBinding.port_id.in_(list(port_ids)), PortBinding.status == BINDING_ACTIVE
        )
    )
    for row in rows:
        out[row.port_id] = binding_dict(row)
    return out


# --- reading segments and contexts -------------------------------------------------------


def _connection(db: Session | Connection) -> Connection:
    return db.connection() if isinstance(db, Session) else db


def network_segments(
    db: Session | Connection, network_id: str, *, include_dynamic: bool = False
) -> tuple[Segment, ...]:
    """A network's segments in ``segment_index`` order (static ones by default)."""
    stmt = _ALL_SEGMENTS if include_dynamic else _STATIC_SEGMENTS
    return tuple(Segment.from_row(r) for r in stmt.rows(_connection(db), {"network_id": network_id}))


def binding_levels(db: Session | Connection, port_id: str, host: str) -> tuple[BindingLevel, ...]:
    """The stored levels of a port's binding on ``host``, with their segments."""
    rows = _LEVELS.rows(_connection(db), {"port_id": port_id, "host": host})
    return tuple(
        BindingLevel(
            level=r.level,
            driver=r.driver,
            segment_id=r.segment_id or "",
            segment=Segment.from_row(r) if r.id is not None else None,
        )
        for r in rows
    )


def _binding_info(session: Session | Connection, row: Any) -> PortBindingInfo:
    if row is None:
        return PortBindingInfo()
    return PortBindingInfo(
        host=row.host,
        vnic_type=row.vnic_type,
        profile=frozen_mapping(row.profile),
        vif_type=row.vif_type,
        vif_details=frozen_mapping(row.vif_details),
        status=row.status,
        levels=binding_levels(session, row.port_id, row.host) if row.host else (),
    )


def _basic_network_dict(net: Network) -> dict[str, Any]:
    return {
        "id": net.id,
        "name": net.name,
        "project_id": net.project_id,
        "tenant_id": net.project_id,
        "admin_state_up": net.admin_state_up,
        "status": net.status,
        "shared": net.shared,
        "mtu": net.mtu,
        "router:external": net.router_external,
    }


def network_context(
    session: Session,
    current: Mapping[str, Any],
    original: Mapping[str, Any] | None = None,
) -> NetworkContext:
    """Context for ``*_network_{pre,post}commit``; reads the network's static segments."""
    return NetworkContext(
        current=frozen_mapping(current),
        original=frozen_mapping(original) if original is not None else None,
        segments=network_segments(session, str(current["id"])),
    )


def subnet_context(
    session: Session,
    current: Mapping[str, Any],
    original: Mapping[str, Any] | None = None,
    *,
    network: Mapping[str, Any] | None = None,
) -> SubnetContext:
    """Context for ``*_subnet_{pre,post}commit``. ``network`` is the network's API
    dict; when omitted a basic one is read from the database."""
    net = network if network is not None else _read_network_dict(session, current["network_id"])
    return SubnetContext(
        current=frozen_mapping(current),
        original=frozen_mapping(original) if original is not None else None,
        network=network_context(session, net),
    )


def port_context(
    session: Session,
    current: Mapping[str, Any],
    original: Mapping[str, Any] | None = None,
    *,
    original_binding: PortBindingInfo | None = None,
    network: Mapping[str, Any] | None = None,
) -> PortContext:
    """Context for ``*_port_{pre,post}commit``.

    Reads the port's ACTIVE binding (with levels) as it is in ``session`` now
    (call after :meth:`PortBindingService.stage_binding` for creates and
    updates). For updates, pass ``original_binding`` captured with
    :meth:`PortBindingService.binding_info` before staging, so drivers see the
    old host/vif_type and levels; without it, the ``binding:*`` keys of
    ``original`` are used (no levels).
    """
    if original_binding is None and original is not None and "binding:host_id" in original:
        original_binding = PortBindingInfo(
            host=str(original.get("binding:host_id") or ""),
            vnic_type=str(original.get("binding:vnic_type") or VNIC_NORMAL),
            profile=frozen_mapping(original.get("binding:profile")),
            vif_type=str(original.get("binding:vif_type") or VIF_TYPE_UNBOUND),
            vif_details=frozen_mapping(original.get("binding:vif_details")),
        )
    port_id = str(current["id"])
    session.flush()
    row = session.scalars(
        select(PortBinding).where(
            PortBinding.port_id == port_id, PortBinding.status == BINDING_ACTIVE
        )
    ).one_or_none()
    net = network if network is not None else _read_network_dict(session, current["network_id"])
    return PortContext(
        current=frozen_mapping(current),
        original=frozen_mapping(original) if original is not None else None,
        network=network_context(session, net),
        binding=_binding_info(session, row),
        original_binding=original_binding,
    )


def _read_network_dict(session: Session, network_id: str) -> dict[str, Any]:
    net = session.get(Network, network_id)
    if net is None:
        raise NetworkNotFound(net_id=network_id)
    return _basic_network_dict(net)


# --- the service ----------------------------------------------------------------------------


class _SegmentGone(Exception):
    """A dynamic segment the result uses was released meanwhile: retry."""


@dataclass(frozen=True)
class _Snapshot:
    port_id: str
    host: str
    status: str
    attempt: int
    request: BindingRequest


@dataclass(frozen=True)
class _Committed:
    view: BindingView
    context: PortContext | None
    #: The port as committed with the result (None where not rendered).
    port: dict[str, Any] | None = None


class _DbSegmentAllocator:
    """:class:`~netplex.core.mech_manager.SegmentAllocator` over the type manager."""

    def __init__(self, service: PortBindingService) -> None:
        self._svc = service

    def allocate(
        self,
        network_id: str,
        network_type: str,
        physical_network: str | None,
        segmentation_id: int | None,
    ) -> Segment:
        tm = self._svc.type_manager
        if tm is None:
            raise RuntimeError("dynamic segments are unavailable: no type manager configured")
        return self._svc.db.transaction(
            lambda txn: tm.allocate_dynamic_segment(
                txn.session,
                network_id,
                network_type,
                physical_network=physical_network,
                segmentation_id=segmentation_id,
            )
        )

    def release_unused(self, segment_ids: Sequence[str]) -> None:
        self._svc.release_unused_segments(segment_ids)


class PortBindingService:
    """Binds ports and keeps their bindings, levels and dynamic segments consistent.

    Methods taking a ``session`` run inside the caller's transaction; the
    others open their own short transactions and must be called outside
    any transaction (after the caller's commit).
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
        self.db = db
        self.mech = mech
        self.agents = agents
        self.type_manager = type_manager
        self.ports = ports
        self.max_tries = max_tries
        self._allocator = _DbSegmentAllocator(self)

    # -- in the caller's transaction ------------------------------------------------------

    def stage_binding(
        self,
        session: Session,
        port_id: str,
        *,
        host: str | None | _Unset = UNSET,
        vnic_type: str | None | _Unset = UNSET,
        profile: Mapping[str, Any] | None | _Unset = UNSET,
    ) -> bool:
        """Record the binding a port asks for; return whether to bind after commit.

        Call in the port create transaction (creates the ACTIVE binding row;
        unset arguments take defaults) and in every port update that carries
        ``binding:host_id``, ``binding:vnic_type`` or ``binding:profile``
        (unset arguments keep their values). When any of the three changes,
        the old levels are dropped (dynamic segments released if unused),
        ``vif_type`` becomes ``unbound``, ``attempt`` is bumped (an in-flight
        binder's result is discarded), and a host change sets the port DOWN.
        Returns True when the caller must call :meth:`bind_port` after commit:
        a host is set and it changed, or the binding had failed (any update
        of a failed port retries it). Raises ``InvalidInput`` for bad values,
        ``PortBindingAlreadyExists`` when moving to a host that already has
        an inactive binding of this port.
        """
        new_host_arg = None if host is UNSET else validate_host(host)
        new_vnic_arg = None if vnic_type is UNSET else validate_vnic_type(vnic_type)
        new_profile_arg = None if profile is UNSET else validate_profile(profile)
        conn = session.connection()
        row = _LOCK_ACTIVE_BINDING.first(conn, {"port_id": port_id})
        if row is None:
            _INSERT_BINDING.execute(
                conn,
                {
                    "port_id": port_id,
                    "host": new_host_arg or "",
                    "vnic_type": new_vnic_arg or VNIC_NORMAL,
                    "profile": new_profile_arg if new_profile_arg is not None else {},
                    "vif_type": VIF_TYPE_UNBOUND,
                    "vif_details": {},
                    "status": BINDING_ACTIVE,
                    "diagnostics": [],
                    "attempt": 0,
                },
            )
            return bool(new_host_arg)
        new_host = row.host if new_host_arg is None else new_host_arg
        new_vnic = row.vnic_type if new_vnic_arg is None else new_vnic_arg
        new_profile = dict(row.profile or {}) if new_profile_arg is None else new_profile_arg
        if (new_host, new_vnic, new_profile) == (row.host, row.vnic_type, dict(row.profile or {})):
            return bool(row.host) and row.vif_type == VIF_TYPE_BINDING_FAILED
        old_host = row.host
        if new_host != old_host and new_host:
            if _BINDING_EXISTS.first(conn, {"port_id": port_id, "host": new_host}) is not None:
                raise PortBindingAlreadyExists(port_id=port_id, host=new_host)
        released = self._delete_levels(session, port_id, old_host)
        if new_host != old_host:
            self.ports.set_down(conn, port_id)
        _RESTAGE_BINDING.execute(
            conn,
            {
                "b_port_id": port_id,
                "b_old_host": old_host,
                "b_host": new_host,
                "b_vnic_type": new_vnic,
                "b_profile": new_profile,
                "b_vif_details": {},
                "b_diagnostics": [],
            },
        )
        for sid in released:
            self._release_if_unused(session, sid)
        return bool(new_host)

    def insert_request(
        self, conn: Connection, port_id: str, host: str, vnic_type: str, profile: Mapping[str, Any]
    ) -> None:
        """The ACTIVE binding row of a port being created (the port create hot path:
        one INSERT, no lookup; the caller has validated the values). Bind after
        commit when ``host`` is set."""
        _INSERT_BINDING.execute(
            conn,
            {
                "port_id": port_id,
                "host": host,
                "vnic_type": vnic_type,
                "profile": dict(profile),
                "vif_type": VIF_TYPE_UNBOUND,
                "vif_details": {},
                "status": BINDING_ACTIVE,
                "diagnostics": [],
                "attempt": 0,
            },
        )

    def release_port_bindings(self, session: Session, port_id: str) -> None:
        """Delete all of a port's bindings and levels, releasing dynamic segments
        no other port uses. Call in the port delete transaction, *before*
        deleting the port row (the cascade would hide the levels)."""
        conn = session.connection()
        seg_ids = [row[0] for row in _DELETE_ALL_LEVELS.rows(conn, {"port_id": port_id})]
        _DELETE_ALL_BINDINGS.execute(conn, {"port_id": port_id})
        for sid in set(seg_ids):
            if sid:
                self._release_if_unused(session, sid)

    def binding_info(self, session: Session, port_id: str) -> PortBindingInfo:
        """The port's ACTIVE binding as drivers see it (for ``original_binding``)."""
        row = session.scalars(
            select(PortBinding).where(
                PortBinding.port_id == port_id, PortBinding.status == BINDING_ACTIVE
            )
        ).one_or_none()
        return _binding_info(session, row)

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

    # -- binding (own transactions) --------------------------------------------------------

    def bind_port(
        self, port_id: str, host: str | None = None, *, force: bool = False
    ) -> dict[str, Any]:
        """Bind the port's ACTIVE binding (or its binding on ``host``) if it is
        ``unbound`` or ``binding_failed`` with a host set, and return the
        port's ``binding:*`` attributes afterwards (for ``host`` given, those
        of that binding). ``force`` rebinds a bound binding too. Never holds a
        transaction while drivers run. Raises ``PortNotFound`` /
        ``PortBindingNotFound``."""
        return binding_dict(self._bind(port_id, host, force=force)[0])

    def bind_port_returning_port(self, port_id: str) -> dict[str, Any] | None:
        """:meth:`bind_port` for the ACTIVE binding, returning the whole port as
        committed with the binding result, or None when this call committed
        no result (already bound, no host, or it gave up)."""
        return self._bind(port_id, None, force=False)[1]

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
                view = self._bind(port_id, host, force=False)[0]
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

    # -- multiple bindings (binding-extended) -----------------------------------------------

    def create_binding(
        self,
        port_id: str,
        host: str,
        vnic_type: str | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``POST /v2.0/ports/{id}/bindings``: an INACTIVE binding on ``host``, bound now.

        If no driver can bind it the new row is removed again and
        ``PortBindingError`` carries the drivers' reasons. Raises
        ``PortBindingAlreadyExists`` if the port already has a binding there.
        """
        host = validate_host(host)
        if not host:
            raise InvalidInput(error_message="a port binding needs a host")
        vnic = validate_vnic_type(vnic_type)
        prof = validate_profile(profile)

        def create(txn: Txn) -> None:
            s = txn.session
            if s.get(Port, port_id) is None:
                raise PortNotFound(port_id=port_id)
            if s.get(PortBinding, (port_id, host)) is not None:
                raise PortBindingAlreadyExists(port_id=port_id, host=host)
            s.add(
                PortBinding(
                    port_id=port_id,
                    host=host,
                    vnic_type=vnic,
                    profile=prof,
                    vif_type=VIF_TYPE_UNBOUND,
                    vif_details={},
                    status=BINDING_INACTIVE,
                    diagnostics=[],
                    attempt=0,
                )
            )

        self.db.transaction(create)
        view = self._bind(port_id, host, force=False)[0]
        if view.is_bound:
            return binding_entry_dict(view)

        def remove(txn: Txn) -> None:
            row = txn.session.get(PortBinding, (port_id, host))
            if (
                row is not None
                and row.status == BINDING_INACTIVE
                and row.vif_type in (VIF_TYPE_UNBOUND, VIF_TYPE_BINDING_FAILED)
            ):
                self._drop_binding(txn.session, port_id, host)

        self.db.transaction(remove)
        reasons = "; ".join(view.diagnostics) or "no reason recorded"
        raise PortBindingError(port_id=port_id, reason=f"no driver could bind on {host}: {reasons}")

    def activate_binding(self, port_id: str, host: str) -> dict[str, Any]:
        """``PUT /v2.0/ports/{id}/bindings/{host}/activate``: in one transaction the
        binding on ``host`` becomes ACTIVE and the previously active one INACTIVE.

        Raises ``PortBindingNotFound``, ``PortBindingAlreadyActive``, or
        ``InvalidState`` (409) if the binding is not bound (its diagnostics
        say why). The port goes DOWN until the new host's agent reports it.
        """
        want_ctx = self.mech.implements("update_port_precommit") or self.mech.implements(
            "update_port_postcommit"
        )

        def fn(txn: Txn) -> _Committed:
            s = txn.session
            port = s.get(Port, port_id)
            if port is None:
                raise PortNotFound(port_id=port_id)
            target = s.get(PortBinding, (port_id, host), with_for_update=True)
            if target is None or not host:
                raise PortBindingNotFound(port_id=port_id, host=host)
            if target.status == BINDING_ACTIVE:
                raise PortBindingAlreadyActive(port_id=port_id, host=host)
            if target.vif_type in (VIF_TYPE_UNBOUND, VIF_TYPE_BINDING_FAILED):
                why = "; ".join(target.diagnostics or ()) or "not bound yet"
                raise InvalidState(
                    reason=(
                        f"binding of port {port_id} on host {host} is {target.vif_type} "
                        f"and cannot be activated: {why}"
                    )
                )
            active = s.scalars(
                select(PortBinding)
                .where(PortBinding.port_id == port_id, PortBinding.status == BINDING_ACTIVE)
                .with_for_update()
            ).one_or_none()
            original = None
            original_info = None
            if want_ctx:
                original = frozen_mapping(self.ports.render(txn.conn, port_id))
                original_info = _binding_info(s, active)
            if active is not None:
                active.status = BINDING_INACTIVE
                active.attempt = active.attempt + 1
                s.flush()  # one ACTIVE row at a time
            target.status = BINDING_ACTIVE
            target.attempt = target.attempt + 1
            s.flush()
            rendered = self.ports.port_changed(txn, port_id, status=PORT_STATUS_DOWN)
            ctx = None
            if want_ctx:
                ctx = PortContext(
                    current=frozen_mapping(rendered),
                    original=original,
                    network=network_context(s, _read_network_dict(s, port.network_id)),
                    binding=_binding_info(s, target),
                    original_binding=original_info,
                )
                if self.mech.implements("update_port_precommit"):
                    self.mech.call_precommit("update_port_precommit", ctx)
            return _Committed(BindingView.from_row(target), ctx)

        committed = self.db.transaction(fn)
        if committed.context is not None and self.mech.implements("update_port_postcommit"):
            self.mech.call_postcommit("update_port_postcommit", committed.context)
        return binding_entry_dict(committed.view)

    def delete_binding(self, port_id: str, host: str) -> None:
        """``DELETE /v2.0/ports/{id}/bindings/{host}``: remove an INACTIVE binding
        (and its levels, releasing unused dynamic segments). The ACTIVE binding
        cannot be deleted this way (``InvalidState``, 409): clear
        ``binding:host_id`` instead."""

        def fn(txn: Txn) -> None:
            s = txn.session
            row = s.get(PortBinding, (port_id, host), with_for_update=True)
            if row is None or not host:
                if s.get(Port, port_id) is None:
                    raise PortNotFound(port_id=port_id)
                raise PortBindingNotFound(port_id=port_id, host=host)
            if row.status == BINDING_ACTIVE:
                raise InvalidState(
                    reason=(
                        f"binding of port {port_id} on host {host} is the active one; "
                        "unbind the port by clearing binding:host_id instead"
                    )
                )
            self._drop_binding(s, port_id, host)
            if s.get(Port, port_id) is not None:
                self.ports.port_changed(txn, port_id)

        self.db.transaction(fn)

    # -- dynamic segments ----------------------------------------------------------------

    def release_unused_segments(self, segment_ids: Iterable[str]) -> None:
        """Release each dynamic segment no binding level references (own transaction)."""
        ids = [sid for sid in segment_ids if sid]
        if not ids:
            return

        def fn(txn: Txn) -> None:
            for sid in ids:
                self._release_if_unused(txn.session, sid)

        self.db.transaction(fn)

    def release_orphaned_dynamic_segments(self, older_than: float = 300.0) -> list[str]:
        """Release dynamic segments no level references that are older than
        ``older_than`` seconds (left behind by a server that died between
        allocating and committing a binding). Run periodically."""
        cutoff = utcnow() - timedelta(seconds=older_than)
        with self.db.read() as s:
            ids = list(
                s.scalars(
                    select(NetworkSegment.id).where(
                        NetworkSegment.is_dynamic.is_(True),
                        NetworkSegment.created_at < cutoff,
                        ~select(PortBindingLevel.port_id)
                        .where(PortBindingLevel.segment_id == NetworkSegment.id)
                        .exists(),
                    )
                ).all()
            )
        if not ids:
            return []

        def fn(txn: Txn) -> list[str]:
            return [sid for sid in ids if self._release_if_unused(txn.session, sid)]

        return self.db.transaction(fn)

    def _release_if_unused(self, session: Session, segment_id: str) -> bool:
        # Most released levels are on a network's static segment: one plain
        # read tells, before the locking ORM load only dynamic ones need.
        if not _SEGMENT_IS_DYNAMIC.scalar(session.connection(), {"id": segment_id}):
            return False
        seg = session.scalars(
            select(NetworkSegment).where(NetworkSegment.id == segment_id).with_for_update()
        ).one_or_none()
        if seg is None or not seg.is_dynamic:
            return False
        in_use = session.execute(
            select(PortBindingLevel.port_id)
            .where(PortBindingLevel.segment_id == segment_id)
            .limit(1)
        ).first()
        if in_use is not None:
            return False
        if self.type_manager is None:
            LOG.warning("cannot release dynamic segment %s: no type manager", segment_id)
            return False
        self.type_manager.release_dynamic_segment(session, segment_id)
        return True

    def _delete_levels(self, session: Session, port_id: str, host: str) -> set[str]:
        """Delete a binding's levels; return the segment ids they used."""
        rows = _DELETE_LEVELS.rows(session.connection(), {"port_id": port_id, "host": host})
        return {r.segment_id for r in rows if r.segment_id}

    def _drop_binding(self, session: Session, port_id: str, host: str) -> None:
        released = self._delete_levels(session, port_id, host)
        session.execute(
            delete(PortBinding).where(PortBinding.port_id == port_id, PortBinding.host == host)
        )
        for sid in released:
            self._release_if_unused(session, sid)

    # -- the attempt loop ----------------------------------------------------------------

    def _bind(
        self, port_id: str, host: str | None, *, force: bool
    ) -> tuple[BindingView, dict[str, Any] | None]:
        for _ in range(self.max_tries):
            snap = self._snapshot(port_id, host, force=force)
            if isinstance(snap, BindingView):
                return snap, None
            result = self.mech.bind_port(snap.request, self._allocator)
            try:
                committed = self._commit(snap, result, run_precommit=True)
            except _SegmentGone:
                committed = None
            except NetplexError as exc:
                LOG.warning("binding of port %s rejected in update_port_precommit: %s",
                            port_id, exc)
                self.release_unused_segments(s.id for s in result.dynamic_segments)
                result = result.failed(f"update_port_precommit rejected the binding: {exc}")
                committed = self._commit(snap, result, run_precommit=False)
            if committed is None:
                LOG.debug("binding of port %s on %s changed meanwhile; retrying",
                          port_id, snap.host)
                self.release_unused_segments(s.id for s in result.dynamic_segments)
                continue
            if committed.context is not None and self.mech.implements("update_port_postcommit"):
                self.mech.call_postcommit("update_port_postcommit", committed.context)
            return committed.view, committed.port
        LOG.warning("gave up binding port %s after %d tries (it kept changing)",
                    port_id, self.max_tries)
        with self.db.read() as s:
            row = self._binding_row(s, port_id, host)
            if row is None:
                raise PortBindingNotFound(port_id=port_id, host=host or "")
            return BindingView.from_row(row), None

    @staticmethod
    def _binding_row(session: Session, port_id: str, host: str | None) -> PortBinding | None:
        if host is None:
            return session.scalars(
                select(PortBinding).where(
                    PortBinding.port_id == port_id, PortBinding.status == BINDING_ACTIVE
                )
            ).one_or_none()
        return session.get(PortBinding, (port_id, host))

    def _snapshot(self, port_id: str, host: str | None, *, force: bool) -> _Snapshot | BindingView:
        with self.db.read_conn() as conn:
            port = _PORT_ROW.first(conn, {"port_id": port_id})
            if port is None:
                raise PortNotFound(port_id=port_id)
            if host is None:
                row = _ACTIVE_BINDING_ROW.first(conn, {"port_id": port_id})
            else:
                row = _HOST_BINDING_ROW.first(conn, {"port_id": port_id, "host": host})
            if row is None:
                raise PortBindingNotFound(port_id=port_id, host=host or "")
            view = BindingView.from_row(row)
            if not row.host or (view.is_bound and not force):
                return view
            net = _NETWORK_ROW.first(conn, {"network_id": port.network_id})
            if net is None:
                raise NetworkNotFound(net_id=port.network_id)
            network = NetworkContext(
                current=frozen_mapping(_basic_network_dict(net)),
                segments=network_segments(conn, port.network_id),
            )
            # Levels exist only on bound bindings; skip the query otherwise.
            info = _binding_info(conn, row) if view.is_bound else PortBindingInfo(
                host=row.host,
                vnic_type=row.vnic_type,
                profile=frozen_mapping(row.profile),
                vif_type=row.vif_type,
                vif_details=frozen_mapping(row.vif_details),
                status=row.status,
            )
            request = BindingRequest(
                port=frozen_mapping(self.ports.render(conn, port_id)),
                network=network,
                binding=info,
                agents=self.agents.agents_on_host(conn, row.host),
            )
            return _Snapshot(port_id, row.host, row.status, row.attempt, request)

    def _commit(
        self, snap: _Snapshot, result: BindingResult, *, run_precommit: bool
    ) -> _Committed | None:
        want_pre = run_precommit and self.mech.implements("update_port_precommit")
        want_ctx = want_pre or self.mech.implements("update_port_postcommit")
        new_attempt = snap.attempt + 1

        def fn(txn: Txn) -> _Committed | None:
            conn = txn.conn
            res = _CAS_BINDING.execute(
                conn,
                {
                    "b_port_id": snap.port_id,
                    "b_host": snap.host,
                    "b_attempt": snap.attempt,
                    "b_vif_type": result.vif_type,
                    "b_vif_details": dict(result.vif_details),
                    "b_diagnostics": list(result.diagnostics),
                    "b_new_attempt": new_attempt,
                },
            )
            if res.rowcount != 1:
                return None
            dyn = {seg.id for seg in result.dynamic_segments}
            if dyn:
                found = set(
                    txn.session.scalars(
                        select(NetworkSegment.id)
                        .where(NetworkSegment.id.in_(list(dyn)))
                        .with_for_update(read=True)
                    ).all()
                )
                if found != dyn:
                    raise _SegmentGone()
            # The CAS succeeded, so the levels are still the ones the snapshot read.
            old = {lv.segment_id for lv in snap.request.binding.levels if lv.segment_id}
            if snap.request.binding.levels:
                _DELETE_LEVELS.rows(conn, {"port_id": snap.port_id, "host": snap.host})
            if result.levels:
                _INSERT_LEVELS.executemany(
                    conn,
                    [
                        {
                            "port_id": snap.port_id,
                            "host": snap.host,
                            "level": lv.level,
                            "driver": lv.driver,
                            "segment_id": lv.segment_id,
                        }
                        for lv in result.levels
                    ],
                )
            still_used = {lv.segment_id for lv in result.levels}
            for sid in old - still_used:
                self._release_if_unused(txn.session, sid)
            status = result.status if result.status and snap.status == BINDING_ACTIVE else None
            rendered = self.ports.port_changed(txn, snap.port_id, status=status)
            view = BindingView(
                port_id=snap.port_id,
                host=snap.host,
                vnic_type=snap.request.binding.vnic_type,
                profile=dict(snap.request.binding.profile),
                vif_type=result.vif_type,
                vif_details=dict(result.vif_details),
                status=snap.status,
                diagnostics=tuple(result.diagnostics),
                attempt=new_attempt,
            )
            ctx = None
            if want_ctx:
                ctx = PortContext(
                    current=frozen_mapping(rendered),
                    original=snap.request.port,
                    network=snap.request.network,
                    binding=_binding_info(conn, view),
                    original_binding=snap.request.binding,
                )
                if want_pre:
                    self.mech.call_precommit("update_port_precommit", ctx)
            return _Committed(view, ctx, rendered)

        return self.db.transaction(fn)
