"""Test-only views of the segment pools (they used to ship in the type manager)."""

from __future__ import annotations

from sqlalchemy import delete, exists, or_
from sqlalchemy.orm import Session

from netplex.core.type_manager import TypeManager
from netplex.db.models import NetworkSegment, SegmentAllocation


def free_count(tm: TypeManager, session: Session, network_type: str, physical_network: str | None = None) -> int:
    """Free project-pool ids of a type (on one physnet, or all): the driver's ``count_free``."""
    return tm.drivers[network_type].count_free(session, physical_network)


def reap_orphaned_allocations(session: Session) -> int:
    """Delete allocation rows whose segment no longer exists; returns how many.

    Only code that deleted segment rows without releasing them (a raw network
    delete relying on the cascade) leaves such rows.
    """
    orphan = or_(
        SegmentAllocation.segment_id.is_(None),
        ~exists().where(NetworkSegment.id == SegmentAllocation.segment_id),
    )
    result = session.connection().execute(delete(SegmentAllocation).where(orphan))
    return int(result.rowcount)
