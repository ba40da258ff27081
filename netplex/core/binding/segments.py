"""Dynamic segments: allocated for a binding attempt, reference-counted by binding levels.

A dynamic segment is released (through the type manager) in the same
transaction that removes the last level using it. The segment row is locked
first, so a concurrent binder that wants to use it either sees it gone (and
retries) or makes the releaser see its new level.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from netplex.core.binding.collaborators import SegmentTypeManager
from netplex.core.binding.statements import (
    DELETE_LEVELS,
    SEGMENT_IS_DYNAMIC,
)
from netplex.core.segments_model import Segment
from netplex.db.base import utcnow
from netplex.db.engine import Database, Txn
from netplex.db.models import NetworkSegment, PortBinding, PortBindingLevel

LOG = logging.getLogger(__name__)


class DynamicSegments:
    """Allocation (the drivers' :class:`~netplex.core.mech_manager.SegmentAllocator`)
    and release of dynamic segments."""

    def __init__(self, db: Database, type_manager: SegmentTypeManager | None) -> None:
        self.db = db
        self.type_manager = type_manager

    def allocate(
        self,
        network_id: str,
        network_type: str,
        physical_network: str | None,
        segmentation_id: int | None,
    ) -> Segment:
        """A dynamic segment in its own short transaction (drivers call this while deciding)."""
        tm = self.type_manager
        if tm is None:
            raise RuntimeError("dynamic segments are unavailable: no type manager configured")
        return self.db.transaction(
            lambda txn: tm.allocate_dynamic_segment(
                txn.session,
                network_id,
                network_type,
                physical_network=physical_network,
                segmentation_id=segmentation_id,
            )
        )

    def release_unused(self, segment_ids: Iterable[str]) -> None:
        """Release each dynamic segment no binding level references (own transaction)."""
        ids = [sid for sid in segment_ids if sid]
        if not ids:
            return

        def fn(txn: Txn) -> None:
            for sid in ids:
                self.release_if_unused(txn.session, sid)

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
            return [sid for sid in ids if self.release_if_unused(txn.session, sid)]

        return self.db.transaction(fn)

    def release_if_unused(self, session: Session, segment_id: str) -> bool:
        # Most released levels are on a network's static segment: one plain
        # read tells, before the locking ORM load only dynamic ones need.
        if not SEGMENT_IS_DYNAMIC.scalar(session.connection(), {"id": segment_id}):
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

    def delete_levels(self, session: Session, port_id: str, host: str) -> set[str]:
        """Delete a binding's levels; return the segment ids they used."""
        rows = DELETE_LEVELS.rows(session.connection(), {"port_id": port_id, "host": host})
        return {r.segment_id for r in rows if r.segment_id}

    def drop_binding(self, session: Session, port_id: str, host: str) -> None:
        released = self.delete_levels(session, port_id, host)
        session.execute(
            delete(PortBinding).where(PortBinding.port_id == port_id, PortBinding.host == host)
        )
        for sid in released:
            self.release_if_unused(session, sid)
