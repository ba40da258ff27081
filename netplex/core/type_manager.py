"""The type manager: network segments for networks, through the type drivers.

The network service calls this module; the type drivers
(:mod:`netplex.core.type_api`) do the per-type work. The manager

* loads the drivers named in ``[ml2] type_drivers`` from the entry-point
  group ``netplex.type_drivers`` and checks the rest of ``[ml2]`` against
  them (construction is start-up: bad configuration raises
  :class:`~netplex.config.ConfigError` here);
* validates provider attributes (``provider:*`` or ``segments``);
* gives a network its segments, in the caller's transaction: provider
  segments reserved exactly, or one project segment from the first type of
  ``project_network_types`` with a free id, falling back type by type;
* releases them, keeps dynamic segments (hierarchical binding) and the
  segments API, computes the network MTU and the provider view of a network.

Every method that takes a ``session`` runs in the caller's transaction and
never commits. Writes are wrapped in a SAVEPOINT, so a method that raises
leaves nothing behind even when the caller catches the error and commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, insert, or_, select
from sqlalchemy.orm import Session

from netplex.config import Config, ConfigError
from netplex.core.segments_model import Segment, SegmentRequest
from netplex.core.type_api import MtuSettings, SegmentContext, TypeDriver
from netplex.db.base import new_id
from netplex.db.models import (
    Network,
    NetworkSegment,
    PortBindingLevel,
    SegmentAllocation,
    Subnet,
)
from netplex.db.prepared import Prepared
from netplex.errors import (
    InvalidInput,
    NetworkNotFound,
    NoNetworkAvailable,
    PolicyNotAuthorized,
    SegmentInUse,
    SegmentNotFound,
)

__all__ = ["ENTRY_POINT_GROUP", "PROVIDER_KEYS", "TypeManager", "mtu_settings"]

LOG = logging.getLogger(__name__)

#: Where type drivers are found by name.
ENTRY_POINT_GROUP = "netplex.type_drivers"

NETWORK_TYPE = "provider:network_type"
PHYSICAL_NETWORK = "provider:physical_network"
SEGMENTATION_ID = "provider:segmentation_id"
PROVIDER_KEYS = (NETWORK_TYPE, PHYSICAL_NETWORK, SEGMENTATION_ID)

#: Longest physical network name the schema stores.
MAX_PHYSNET_LEN = 64

#: IN-list size for bulk segment reads; below SQLite's bind-parameter limit.
_CHUNK = 30000

_SEGMENT_COLUMNS = (
    NetworkSegment.id,
    NetworkSegment.network_id,
    NetworkSegment.network_type,
    NetworkSegment.physical_network,
    NetworkSegment.segmentation_id,
    NetworkSegment.is_dynamic,
    NetworkSegment.segment_index,
    NetworkSegment.name,
)
_SEGMENT_ORDER = (NetworkSegment.network_id, NetworkSegment.segment_index, NetworkSegment.id)
_STATIC_ONLY = NetworkSegment.is_dynamic.is_(False)
# Prebuilt, keyed by include_dynamic: statements are read on every port write.
_SEGMENTS_OF = {
    dynamic: Prepared(
        select(*_SEGMENT_COLUMNS)
        .where(NetworkSegment.network_id == bindparam("network_id"), *(() if dynamic else (_STATIC_ONLY,)))
        .order_by(*_SEGMENT_ORDER)
    )
    for dynamic in (False, True)
}
_SEGMENTS_AMONG = {
    dynamic: select(*_SEGMENT_COLUMNS)
    .where(NetworkSegment.network_id.in_(bindparam("ids", expanding=True)), *(() if dynamic else (_STATIC_ONLY,)))
    .order_by(*_SEGMENT_ORDER)
    for dynamic in (False, True)
}


def mtu_settings(config: Config) -> MtuSettings:
    """The deployment MTU inputs from ``[DEFAULT]`` and ``[ml2]``, validated."""
    physnet_mtus: dict[str, int] = {}
    for physnet, raw in dict(config.get("ml2", "physical_network_mtus")).items():
        try:
            mtu = int(str(raw).strip())
        except ValueError:
            mtu = 0
        if mtu < 1:
            raise ConfigError(
                f"[ml2] physical_network_mtus = '{physnet}:{raw}' is invalid: "
                "the MTU must be a positive integer"
            )
        physnet_mtus[physnet] = mtu
    return MtuSettings(
        global_physnet_mtu=int(config.get("DEFAULT", "global_physnet_mtu")),
        physical_network_mtus=physnet_mtus,
        path_mtu=int(config.get("ml2", "path_mtu")),
        overlay_ip_version=int(config.get("ml2", "overlay_ip_version")),
    )


def _load_entry_points(names: Sequence[str]) -> dict[str, type[TypeDriver]]:
    found: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, []).append(ep)
    classes: dict[str, type[TypeDriver]] = {}
    for name in names:
        eps = found.get(name, [])
        if not eps:
            raise ConfigError(
                f"[ml2] type_drivers: no type driver named {name!r} "
                f"(installed: {', '.join(sorted(found)) or 'none'})"
            )
        if len({ep.value for ep in eps}) > 1:
            raise ConfigError(
                f"[ml2] type_drivers: {name!r} is provided by several packages: "
                + ", ".join(sorted({ep.value for ep in eps}))
            )
        try:
            cls = eps[0].load()
        except Exception as exc:
            raise ConfigError(
                f"[ml2] type_drivers: cannot load {name!r} ({eps[0].value}): {exc}"
            ) from exc
        if not (isinstance(cls, type) and issubclass(cls, TypeDriver)):
            raise ConfigError(
                f"[ml2] type_drivers: {name!r} ({eps[0].value}) is not a TypeDriver"
            )
        classes[name] = cls
    return classes


class TypeManager:
    """Type drivers by network type, and the segment operations built on them."""

    def __init__(self, config: Config, drivers: Mapping[str, TypeDriver] | None = None) -> None:
        """Load, construct and check the drivers; raises ConfigError on bad config.

        ``drivers`` (network type -> instance) replaces entry-point loading;
        tests use it to run with hand-built drivers.
        """
        self.mtu = mtu_settings(config)
        self.drivers: dict[str, TypeDriver] = {}
        if drivers is None:
            names = list(config.get("ml2", "type_drivers"))
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ConfigError(
                    f"[ml2] type_drivers = {','.join(names)} is invalid: "
                    f"{', '.join(dupes)} listed more than once"
                )
            for name, cls in _load_entry_points(names).items():
                section = cls.config_section
                options = config.values.get(section, {}) if section else {}
                self._add_driver(cls(options, self.mtu), origin=name)
        else:
            for key, driver in drivers.items():
                if key != driver.network_type:
                    raise ConfigError(
                        f"driver for {key!r} serves network type {driver.network_type!r}"
                    )
                self._add_driver(driver, origin=key)

        self.project_network_types: list[str] = list(config.get("ml2", "project_network_types"))
        dupes = sorted({t for t in self.project_network_types
                        if self.project_network_types.count(t) > 1})
        if dupes:
            raise ConfigError(
                f"[ml2] project_network_types = {','.join(self.project_network_types)} is "
                f"invalid: {', '.join(dupes)} listed more than once"
            )
        for t in self.project_network_types:
            if t not in self.drivers:
                raise ConfigError(
                    f"[ml2] project_network_types = {','.join(self.project_network_types)} is "
                    f"invalid: no type driver for {t!r} is loaded "
                    f"(type_drivers: {', '.join(self.drivers) or 'none'})"
                )
        external = str(config.get("ml2", "external_network_type") or "").strip()
        self.external_network_type: str | None = external or None
        if external and external not in self.drivers:
            raise ConfigError(
                f"[ml2] external_network_type = {external!r} is invalid: no type driver for "
                f"it is loaded (type_drivers: {', '.join(self.drivers) or 'none'})"
            )
        self._initialized = False

    def _add_driver(self, driver: TypeDriver, *, origin: str) -> None:
        nt = driver.network_type
        if nt in self.drivers:
            raise ConfigError(
                f"[ml2] type_drivers: {origin!r} serves network type {nt!r}, "
                "which another loaded driver already serves"
            )
        self.drivers[nt] = driver

    def initialize(self) -> None:
        """Call each driver's ``initialize()`` once; call at start-up, before requests."""
        if self._initialized:
            return
        for driver in self.drivers.values():
            driver.initialize()
        self._initialized = True
        LOG.info(
            "type drivers: %s; project network types: %s",
            ", ".join(self.drivers), ", ".join(self.project_network_types) or "none",
        )

    # -- validation (no database) -------------------------------------------

    def _driver(self, network_type: str) -> TypeDriver:
        driver = self.drivers.get(network_type)
        if driver is None:
            raise InvalidInput(error_message=f"network_type value '{network_type}' not supported")
        return driver

    def validate_segment(
        self, network_type: Any, physical_network: Any = None, segmentation_id: Any = None
    ) -> SegmentRequest:
        """Check and normalise one raw segment request (API values, any type)."""
        if network_type is None or network_type == "":
            raise InvalidInput(error_message="network_type required")
        if not isinstance(network_type, str):
            raise InvalidInput(error_message=f"network_type value {network_type!r} is not a string")
        driver = self._driver(network_type)
        if physical_network == "":
            physical_network = None
        if physical_network is not None:
            if not isinstance(physical_network, str):
                raise InvalidInput(
                    error_message=f"physical_network value {physical_network!r} is not a string"
                )
            if len(physical_network) > MAX_PHYSNET_LEN:
                raise InvalidInput(
                    error_message=f"physical_network '{physical_network}' exceeds "
                    f"{MAX_PHYSNET_LEN} characters"
                )
        sid = _to_int(segmentation_id)
        return driver.validate_provider_segment(
            SegmentRequest(network_type, physical_network, sid)
        )

    def is_partial_segment(self, request: SegmentRequest) -> bool:
        return self._driver(request.network_type or "").is_partial_segment(request)

    def validate_provider_request(
        self, attrs: Mapping[str, Any], *, is_admin: bool
    ) -> list[SegmentRequest] | None:
        """The provider segments a network create asks for, validated; None if none.

        Reads ``provider:network_type/physical_network/segmentation_id`` (None
        = unset) or ``segments`` (a list of dicts with those keys). Raises
        PolicyNotAuthorized (403) for non-admins, InvalidInput (400) for
        everything malformed: both forms at once, a missing or unknown type,
        a physnet or id the type does not allow, duplicate segments.
        """
        provider_set = any(attrs.get(k) is not None for k in PROVIDER_KEYS)
        raw_segments = attrs.get("segments")
        if not provider_set and raw_segments is None:
            return None
        if not is_admin:
            key = NETWORK_TYPE if provider_set else "segments"
            raise PolicyNotAuthorized(action=f"create_network:{key}")
        if provider_set and raw_segments is not None:
            raise InvalidInput(error_message="Segments and provider values cannot both be set.")
        if provider_set:
            entries: list[Mapping[str, Any]] = [attrs]
        else:
            if not isinstance(raw_segments, list):
                raise InvalidInput(error_message="segments must be a list of provider segments")
            if not raw_segments:
                return None
            entries = []
            for entry in raw_segments:
                if not isinstance(entry, Mapping):
                    raise InvalidInput(error_message=f"segment {entry!r} is not an object")
                extra = sorted(set(entry) - set(PROVIDER_KEYS))
                if extra:
                    raise InvalidInput(
                        error_message=f"Unrecognized attribute(s) '{', '.join(extra)}'"
                    )
                entries.append(entry)
        requests = [
            self.validate_segment(e.get(NETWORK_TYPE), e.get(PHYSICAL_NETWORK),
                                  e.get(SEGMENTATION_ID))
            for e in entries
        ]
        full = [r for r in requests if not self.is_partial_segment(r)]
        if len(set(full)) != len(full):
            raise InvalidInput(error_message="Duplicate segment entry in request.")
        return requests

    # -- network segments ------------------------------------------------------

    def create_network_segments(
        self,
        session: Session,
        network_id: str,
        requests: Sequence[SegmentRequest] | None,
        *,
        external: bool = False,
    ) -> list[Segment]:
        """Give a new network its segments; returns them in segment_index order.

        ``requests`` (from :meth:`validate_provider_request`) are reserved
        exactly or, when partial, from their pool; 409 when one is taken,
        503 when a partial one finds its pool empty. Without requests one
        project segment is allocated: ``external_network_type`` for an
        ``external`` network when set, else the first type of
        ``project_network_types`` with a free id; NoNetworkAvailable (503)
        when all are exhausted. The network row must already exist in the
        session (it is flushed here). Nothing is left behind if it raises.
        """
        session.flush()
        with session.begin_nested():
            if requests:
                out = []
                for index, raw in enumerate(requests):
                    req = self.validate_segment(
                        raw.network_type, raw.physical_network, raw.segmentation_id
                    )
                    out.append(self._reserve(session, network_id, req, index=index))
                return out
            return [self._allocate_project_segment(session, network_id, external=external)]

    def _allocate_project_segment(
        self, session: Session, network_id: str, *, external: bool
    ) -> Segment:
        ext = self.external_network_type
        types = [ext] if external and ext else self.project_network_types
        for network_type in types:
            segment_id = new_id()
            ctx = SegmentContext(session, network_id, segment_id)
            found = self.drivers[network_type].allocate_project_segment(ctx)
            if found is not None:
                return self._insert_segment(session, segment_id, network_id, found, index=0)
            LOG.debug("no free %s segment; trying the next project network type", network_type)
        raise NoNetworkAvailable()

    def _reserve(
        self,
        session: Session,
        network_id: str,
        request: SegmentRequest,
        *,
        index: int,
        is_dynamic: bool = False,
        name: str | None = None,
        description: str = "",
    ) -> Segment:
        driver = self._driver(request.network_type or "")
        segment_id = new_id()
        ctx = SegmentContext(session, network_id, segment_id)
        full = driver.reserve_provider_segment(ctx, request)
        return self._insert_segment(
            session, segment_id, network_id, full, index=index, is_dynamic=is_dynamic,
            name=name, description=description,
        )

    @staticmethod
    def _insert_segment(
        session: Session,
        segment_id: str,
        network_id: str,
        seg: SegmentRequest,
        *,
        index: int,
        is_dynamic: bool = False,
        name: str | None = None,
        description: str = "",
    ) -> Segment:
        assert seg.network_type is not None
        session.execute(
            insert(NetworkSegment).values(
                id=segment_id,
                network_id=network_id,
                network_type=seg.network_type,
                physical_network=seg.physical_network,
                segmentation_id=seg.segmentation_id,
                is_dynamic=is_dynamic,
                segment_index=index,
                name=name,
                description=description,
            )
        )
        return Segment(
            id=segment_id,
            network_id=network_id,
            network_type=seg.network_type,
            physical_network=seg.physical_network,
            segmentation_id=seg.segmentation_id,
            is_dynamic=is_dynamic,
            segment_index=index,
            name=name,
        )

    def release_network_segments(self, session: Session, network_id: str) -> None:
        """Release every segment of a network (dynamic ones too) and delete the rows.

        Call before deleting the network row: the rows go with it by
        cascade, and their ids would stay allocated.
        """
        with session.begin_nested():
            for seg in self.get_segments(session, network_id, include_dynamic=True):
                self._release(session, seg)
            session.execute(delete(NetworkSegment).where(NetworkSegment.network_id == network_id))

    def _release(self, session: Session, seg: Segment) -> None:
        driver = self.drivers.get(seg.network_type)
        if driver is None:
            # The type's driver is no longer configured: free what it left in
            # the shared ledger so the row does not outlive its segment.
            LOG.warning("no type driver for %s; releasing segment %s generically",
                        seg.network_type, seg.id)
            session.execute(delete(SegmentAllocation).where(SegmentAllocation.segment_id == seg.id))
            return
        driver.release_segment(SegmentContext(session, seg.network_id, seg.id), seg)

    # -- reading segments --------------------------------------------------------

    _COLUMNS = _SEGMENT_COLUMNS

    def get_segments(
        self, session: Session, network_id: str, *, include_dynamic: bool = False
    ) -> list[Segment]:
        """A network's segments in segment_index order; static ones unless asked."""
        stmt = _SEGMENTS_OF[include_dynamic]
        return [Segment.from_row(r) for r in stmt.rows(session.connection(), {"network_id": network_id})]

    def get_segments_for_networks(
        self, session: Session, network_ids: Iterable[str], *, include_dynamic: bool = False
    ) -> dict[str, list[Segment]]:
        """Segments of many networks in one query (per 30,000 ids); every id is a key."""
        ids = list(dict.fromkeys(network_ids))
        out: dict[str, list[Segment]] = {i: [] for i in ids}
        stmt = _SEGMENTS_AMONG[include_dynamic]
        for start in range(0, len(ids), _CHUNK):
            for row in session.execute(stmt, {"ids": ids[start : start + _CHUNK]}):
                out[row.network_id].append(Segment.from_row(row))
        return out

    def get_segment(self, session: Session, segment_id: str) -> Segment:
        """One segment by id; SegmentNotFound (404) when there is none."""
        row = session.execute(
            select(*self._COLUMNS).where(NetworkSegment.id == segment_id)
        ).first()
        if row is None:
            raise SegmentNotFound(segment_id=segment_id)
        return Segment.from_row(row)

    # -- dynamic segments (hierarchical binding) ------------------------------------

    def allocate_dynamic_segment(
        self,
        session: Session,
        network_id: str,
        network_type: str,
        physical_network: str | None = None,
        segmentation_id: int | None = None,
    ) -> Segment:
        """A dynamic segment of the network, reusing one that matches.

        An existing dynamic segment with the same type and physnet (and id,
        when one is given) is returned as is; otherwise one is reserved like
        a provider segment (a partial request draws from the type's pool).
        The network row is locked first, so concurrent binders of one network
        agree on a single segment.
        """
        req = self.validate_segment(network_type, physical_network, segmentation_id)
        self._lock_network(session, network_id)
        stmt = select(*self._COLUMNS).where(
            NetworkSegment.network_id == network_id,
            NetworkSegment.is_dynamic.is_(True),
            NetworkSegment.network_type == req.network_type,
        )
        if req.physical_network is None:
            stmt = stmt.where(NetworkSegment.physical_network.is_(None))
        else:
            stmt = stmt.where(NetworkSegment.physical_network == req.physical_network)
        if req.segmentation_id is not None:
            stmt = stmt.where(NetworkSegment.segmentation_id == req.segmentation_id)
        row = session.execute(stmt.order_by(NetworkSegment.segment_index).limit(1)).first()
        if row is not None:
            return Segment.from_row(row)
        with session.begin_nested():
            return self._reserve(
                session, network_id, req, index=self._next_index(session, network_id),
                is_dynamic=True,
            )

    def release_dynamic_segment(self, session: Session, segment_id: str) -> None:
        """Release a dynamic segment and delete it; a no-op when it is already gone.

        The caller decides that no binding uses it any more.
        """
        row = session.execute(
            select(*self._COLUMNS).where(NetworkSegment.id == segment_id)
        ).first()
        if row is None:
            return
        seg = Segment.from_row(row)
        if not seg.is_dynamic:
            raise InvalidInput(error_message=f"segment {segment_id} is not a dynamic segment")
        with session.begin_nested():
            self._release(session, seg)
            session.execute(delete(NetworkSegment).where(NetworkSegment.id == segment_id))

    # -- segments API --------------------------------------------------------------

    def create_segment(self, session: Session, network_id: str, attrs: Mapping[str, Any]) -> Segment:
        """Add a segment to an existing network (``POST /v2.0/segments``).

        ``attrs`` uses the segment resource's keys: ``network_type``
        (required), ``physical_network``, ``segmentation_id``, ``name``,
        ``description``. Validated and reserved like a provider segment.
        """
        req = self.validate_segment(
            attrs.get("network_type"), attrs.get("physical_network"),
            attrs.get("segmentation_id"),
        )
        name = attrs.get("name")
        description = attrs.get("description") or ""
        for key, value in (("name", name), ("description", description)):
            if value is not None and (not isinstance(value, str) or len(value) > 255):
                raise InvalidInput(error_message=f"{key} must be a string of at most 255 characters")
        self._lock_network(session, network_id)
        with session.begin_nested():
            return self._reserve(
                session, network_id, req, index=self._next_index(session, network_id),
                name=name, description=description,
            )

    def delete_segment(self, session: Session, segment_id: str) -> None:
        """Delete a segment (``DELETE /v2.0/segments/{id}``) and release its id.

        SegmentInUse (409) while subnets or port bindings use it, or when it
        is the network's last static segment (delete the network instead).
        """
        seg = self.get_segment(session, segment_id)
        if session.execute(select(exists().where(Subnet.segment_id == segment_id))).scalar():
            raise SegmentInUse(segment_id=segment_id, reason="subnets are associated with it")
        if session.execute(
            select(exists().where(PortBindingLevel.segment_id == segment_id))
        ).scalar():
            raise SegmentInUse(segment_id=segment_id, reason="ports are bound to it")
        if not seg.is_dynamic:
            others = session.execute(
                select(func.count()).where(
                    NetworkSegment.network_id == seg.network_id,
                    NetworkSegment.is_dynamic.is_(False),
                    NetworkSegment.id != segment_id,
                )
            ).scalar_one()
            if not others:
                raise SegmentInUse(
                    segment_id=segment_id,
                    reason=f"it is the last segment of network {seg.network_id}",
                )
        with session.begin_nested():
            self._release(session, seg)
            session.execute(delete(NetworkSegment).where(NetworkSegment.id == segment_id))

    @staticmethod
    def _lock_network(session: Session, network_id: str) -> None:
        # FOR UPDATE on PostgreSQL serialises segment changes per network
        # (segment_index, dynamic reuse); SQLite serialises all writers anyway.
        found = session.execute(
            select(Network.id).where(Network.id == network_id).with_for_update()
        ).first()
        if found is None:
            raise NetworkNotFound(net_id=network_id)

    @staticmethod
    def _next_index(session: Session, network_id: str) -> int:
        top = session.execute(
            select(func.max(NetworkSegment.segment_index)).where(
                NetworkSegment.network_id == network_id
            )
        ).scalar()
        return 0 if top is None else int(top) + 1

    # -- derived views -----------------------------------------------------------

    def network_mtu(self, segments: Iterable[Segment]) -> int:
        """The largest MTU every segment can carry, as Neutron computes it.

        The minimum of each segment type's MTU; types without a limit
        (local) do not count, and with no limit at all the network gets
        ``global_physnet_mtu``. A segment whose type has no loaded driver
        gives 0: better no MTU than a wrong one.
        """
        mtus = []
        for seg in segments:
            driver = self.drivers.get(seg.network_type)
            if driver is None:
                return 0
            mtu = driver.get_mtu(seg.physical_network)
            if mtu > 0:
                mtus.append(mtu)
        return min(mtus) if mtus else self.mtu.global_physnet_mtu

    @staticmethod
    def extend_network_dict(net: dict[str, Any], segments: Sequence[Segment]) -> None:
        """Add the provider view: ``provider:*`` for one segment, ``segments`` for several.

        Dynamic segments are not part of it (Neutron shows static ones only).
        """
        static = [s for s in segments if not s.is_dynamic]
        if len(static) > 1:
            for key in PROVIDER_KEYS:
                net.pop(key, None)
            net["segments"] = [s.as_provider_dict() for s in static]
            return
        net.pop("segments", None)
        if static:
            net.update(static[0].as_provider_dict())
        else:
            net.update(dict.fromkeys(PROVIDER_KEYS))

    # -- diagnostics ----------------------------------------------------------------

    def free_count(
        self, session: Session, network_type: str, physical_network: str | None = None
    ) -> int:
        """Free project-pool ids of a type (on one physnet, or all); see ``count_free``."""
        return self._driver(network_type).count_free(session, physical_network)

    @staticmethod
    def reap_orphaned_allocations(session: Session) -> int:
        """Delete allocation rows whose segment no longer exists; returns how many.

        Only code that deleted segment rows without releasing them (a raw
        network delete relying on the cascade) leaves such rows. An
        allocation and its segment are written in one transaction, so rows
        of transactions still in flight are never visible here.
        """
        orphan = or_(
            SegmentAllocation.segment_id.is_(None),
            ~exists().where(NetworkSegment.id == SegmentAllocation.segment_id),
        )
        result = session.connection().execute(delete(SegmentAllocation).where(orphan))
        return int(result.rowcount)


def _to_int(value: Any) -> int | None:
    """provider:segmentation_id as Neutron converts it: int or integer string."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput(
            error_message=f"Invalid input for provider:segmentation_id. Reason: '{value}' is "
            "not an integer."
        )
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise InvalidInput(
        error_message=f"Invalid input for provider:segmentation_id. Reason: '{value}' is not "
        "an integer."
    )
