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
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from netplex.config import Config, ConfigError
from netplex.core import provider_requests, segment_rows
from netplex.core.provider_requests import PROVIDER_KEYS, to_int
from netplex.core.segments_model import Segment, SegmentRequest
from netplex.core.type_api import SegmentContext, TypeDriver
from netplex.core.type_loading import ENTRY_POINT_GROUP, configured_drivers, mtu_settings, network_types
from netplex.db.base import new_id
from netplex.db.models import NetworkSegment, SegmentAllocation
from netplex.errors import InvalidInput, NoNetworkAvailable

__all__ = ["ENTRY_POINT_GROUP", "PROVIDER_KEYS", "TypeManager", "mtu_settings"]

LOG = logging.getLogger(__name__)

#: Longest physical network name the schema stores.
MAX_PHYSNET_LEN = 64


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
            for name, driver in configured_drivers(config, self.mtu):
                self._add_driver(driver, origin=name)
        else:
            for key, driver in drivers.items():
                if key != driver.network_type:
                    raise ConfigError(
                        f"driver for {key!r} serves network type {driver.network_type!r}"
                    )
                self._add_driver(driver, origin=key)

        self.project_network_types, self.external_network_type = network_types(config, self.drivers)
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
        sid = to_int(segmentation_id)
        return driver.validate_provider_segment(
            SegmentRequest(network_type, physical_network, sid)
        )

    def is_partial_segment(self, request: SegmentRequest) -> bool:
        return self._driver(request.network_type or "").is_partial_segment(request)

    def validate_provider_request(self, attrs: Mapping[str, Any]) -> list[SegmentRequest] | None:
        """The provider segments a network create asks for, validated; None if none
        (see :func:`netplex.core.provider_requests.validate_provider_request`)."""
        return provider_requests.validate_provider_request(
            attrs, segment=self.validate_segment, is_partial=self.is_partial_segment
        )

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
                    out.append(self.reserve(session, network_id, req, index=index))
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
                return segment_rows.insert_segment(session, segment_id, network_id, found, index=0)
            LOG.debug("no free %s segment; trying the next project network type", network_type)
        raise NoNetworkAvailable()

    def reserve(
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
        return segment_rows.insert_segment(
            session, segment_id, network_id, full, index=index, is_dynamic=is_dynamic,
            name=name, description=description,
        )

    def release_network_segments(self, session: Session, network_id: str) -> None:
        """Release every segment of a network (dynamic ones too) and delete the rows.

        Call before deleting the network row: the rows go with it by
        cascade, and their ids would stay allocated.
        """
        with session.begin_nested():
            for seg in self.get_segments(session, network_id, include_dynamic=True):
                self.release(session, seg)
            session.execute(delete(NetworkSegment).where(NetworkSegment.network_id == network_id))

    def release(self, session: Session, seg: Segment) -> None:
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

    def get_segments(
        self, session: Session, network_id: str, *, include_dynamic: bool = False
    ) -> list[Segment]:
        """A network's segments in segment_index order; static ones unless asked."""
        return segment_rows.segments_of(session, network_id, include_dynamic=include_dynamic)

    def get_segments_for_networks(
        self, session: Session, network_ids: Iterable[str], *, include_dynamic: bool = False
    ) -> dict[str, list[Segment]]:
        """Segments of many networks in one query (per 30,000 ids); every id is a key."""
        return segment_rows.segments_among(session, network_ids, include_dynamic=include_dynamic)

    def get_segment(self, session: Session, segment_id: str) -> Segment:
        """One segment by id; SegmentNotFound (404) when there is none."""
        return segment_rows.get_segment(session, segment_id)

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
        segment_rows.lock_network(session, network_id)
        stmt = select(*segment_rows.SEGMENT_COLUMNS).where(
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
            return self.reserve(
                session, network_id, req, index=segment_rows.next_index(session, network_id),
                is_dynamic=True,
            )

    def release_dynamic_segment(self, session: Session, segment_id: str) -> None:
        """Release a dynamic segment and delete it; a no-op when it is already gone.

        The caller decides that no binding uses it any more.
        """
        seg = segment_rows.segment_by_id(session, segment_id)
        if seg is None:
            return
        if not seg.is_dynamic:
            raise InvalidInput(error_message=f"segment {segment_id} is not a dynamic segment")
        with session.begin_nested():
            self.release(session, seg)
            session.execute(delete(NetworkSegment).where(NetworkSegment.id == segment_id))

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
