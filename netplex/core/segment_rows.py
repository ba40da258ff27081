"""The ``network_segments`` table: reading segments, inserting one, per-network ordering.

The type manager decides *which* segment a network gets (through the type
drivers); this module is how segment rows are read and written. Reads are
prebuilt statements: segments are read on every port write.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import Session

from netplex.core.segments_model import Segment, SegmentRequest
from netplex.db.models import Network, NetworkSegment
from netplex.db.prepared import Prepared
from netplex.errors import NetworkNotFound, SegmentNotFound

#: IN-list size for bulk segment reads; below SQLite's bind-parameter limit.
_CHUNK = 30000

SEGMENT_COLUMNS = (
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
# Prebuilt, keyed by include_dynamic.
_SEGMENTS_OF = {
    dynamic: Prepared(
        select(*SEGMENT_COLUMNS)
        .where(NetworkSegment.network_id == bindparam("network_id"), *(() if dynamic else (_STATIC_ONLY,)))
        .order_by(*_SEGMENT_ORDER)
    )
    for dynamic in (False, True)
}
_SEGMENTS_AMONG = {
    dynamic: select(*SEGMENT_COLUMNS)
    .where(NetworkSegment.network_id.in_(bindparam("ids", expanding=True)), *(() if dynamic else (_STATIC_ONLY,)))
    .order_by(*_SEGMENT_ORDER)
    for dynamic in (False, True)
}


def segments_of(session: Session, network_id: str, *, include_dynamic: bool = False) -> list[Segment]:
    """A network's segments in segment_index order; static ones unless asked."""
    stmt = _SEGMENTS_OF[include_dynamic]
    return [Segment.from_row(r) for r in stmt.rows(session.connection(), {"network_id": network_id})]


def segments_among(
    session: Session, network_ids: Iterable[str], *, include_dynamic: bool = False
) -> dict[str, list[Segment]]:
    """Segments of many networks in one query (per 30,000 ids); every id is a key."""
    ids = list(dict.fromkeys(network_ids))
    out: dict[str, list[Segment]] = {i: [] for i in ids}
    stmt = _SEGMENTS_AMONG[include_dynamic]
    for start in range(0, len(ids), _CHUNK):
        for row in session.execute(stmt, {"ids": ids[start : start + _CHUNK]}):
            out[row.network_id].append(Segment.from_row(row))
    return out


def segment_by_id(session: Session, segment_id: str) -> Segment | None:
    row = session.execute(select(*SEGMENT_COLUMNS).where(NetworkSegment.id == segment_id)).first()
    return Segment.from_row(row) if row is not None else None


def get_segment(session: Session, segment_id: str) -> Segment:
    """One segment by id; SegmentNotFound (404) when there is none."""
    seg = segment_by_id(session, segment_id)
    if seg is None:
        raise SegmentNotFound(segment_id=segment_id)
    return seg


def insert_segment(
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
    """Write a segment row the type driver has reserved the id of."""
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


def lock_network(session: Session, network_id: str) -> None:
    # FOR UPDATE on PostgreSQL serialises segment changes per network
    # (segment_index, dynamic reuse); SQLite serialises all writers anyway.
    found = session.execute(select(Network.id).where(Network.id == network_id).with_for_update()).first()
    if found is None:
        raise NetworkNotFound(net_id=network_id)


def next_index(session: Session, network_id: str) -> int:
    top = session.execute(
        select(func.max(NetworkSegment.segment_index)).where(NetworkSegment.network_id == network_id)
    ).scalar()
    return 0 if top is None else int(top) + 1
