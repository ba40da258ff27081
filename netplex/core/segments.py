"""The segments resource (``/v2.0/segments``, Neutron's segment extension).

Service helpers for the API: each takes the caller's session (and the type
manager where ids are reserved or released) and returns Neutron-shaped
dicts. Query semantics (filters, fields, sorting, paging) are the API
layer's; :func:`list_segments` only narrows by network or id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from netplex.core import segment_rows
from netplex.core.segments_model import Segment
from netplex.core.type_manager import TypeManager
from netplex.db.base import utcnow
from netplex.db.models import NetworkSegment, PortBindingLevel, Subnet
from netplex.errors import InvalidInput, SegmentInUse, SegmentNotFound

__all__ = [
    "SEGMENT_FIELDS",
    "create_segment",
    "delete_segment",
    "get_segment",
    "list_segments",
    "segment_dict",
    "update_segment",
]

#: The attributes of a segment, as Neutron shows them.
SEGMENT_FIELDS = (
    "id",
    "network_id",
    "name",
    "description",
    "network_type",
    "physical_network",
    "segmentation_id",
    "revision_number",
    "created_at",
    "updated_at",
)

#: What ``PUT /v2.0/segments/{id}`` may change.
UPDATABLE = ("name", "description")


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def segment_dict(row: NetworkSegment) -> dict[str, Any]:
    """A segment row as the API shows it."""
    return {
        "id": row.id,
        "network_id": row.network_id,
        "name": row.name,
        "description": row.description,
        "network_type": row.network_type,
        "physical_network": row.physical_network,
        "segmentation_id": row.segmentation_id,
        "revision_number": row.revision_number,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def list_segments(
    session: Session,
    *,
    network_ids: Iterable[str] | None = None,
    segment_ids: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """Segments (dynamic ones included, as in Neutron), by network then index."""
    stmt = select(NetworkSegment)
    if network_ids is not None:
        stmt = stmt.where(NetworkSegment.network_id.in_(list(network_ids)))
    if segment_ids is not None:
        stmt = stmt.where(NetworkSegment.id.in_(list(segment_ids)))
    stmt = stmt.order_by(NetworkSegment.network_id, NetworkSegment.segment_index,
                         NetworkSegment.id)
    return [segment_dict(row) for row in session.execute(stmt).scalars()]


def _row(session: Session, segment_id: str) -> NetworkSegment:
    row = session.get(NetworkSegment, segment_id)
    if row is None:
        raise SegmentNotFound(segment_id=segment_id)
    return row


def get_segment(session: Session, segment_id: str) -> dict[str, Any]:
    """One segment; SegmentNotFound (404) when there is none."""
    return segment_dict(_row(session, segment_id))


def create_segment(
    session: Session, types: TypeManager, attrs: Mapping[str, Any]
) -> dict[str, Any]:
    """``POST /v2.0/segments``: ``network_id`` and ``network_type`` are required.

    Raises NetworkNotFound (404), InvalidInput (400), the type's ``*InUse``
    (409) or NoNetworkAvailable (503), all from the type manager.
    """
    network_id = attrs.get("network_id")
    if not isinstance(network_id, str) or not network_id:
        raise InvalidInput(error_message="network_id required")
    seg = _add_segment(session, types, network_id, attrs)
    return get_segment(session, seg.id)


def update_segment(
    session: Session, segment_id: str, attrs: Mapping[str, Any]
) -> dict[str, Any]:
    """``PUT /v2.0/segments/{id}``: only name and description change."""
    fixed = sorted(set(attrs) - set(UPDATABLE))
    if fixed:
        raise InvalidInput(
            error_message=f"Cannot update read-only attribute(s) {', '.join(fixed)}"
        )
    for key, value in attrs.items():
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise InvalidInput(error_message=f"{key} must be a string of at most 255 characters")
    row = _row(session, segment_id)
    if "name" in attrs:
        row.name = attrs["name"]
    if "description" in attrs:
        row.description = attrs["description"] or ""
    row.revision_number = (row.revision_number or 0) + 1
    row.updated_at = utcnow()
    session.flush()
    return segment_dict(row)


def delete_segment(session: Session, types: TypeManager, segment_id: str) -> None:
    """``DELETE /v2.0/segments/{id}``: releases its id; 409 while it is in use."""
    _remove_segment(session, types, segment_id)


def _add_segment(session: Session, types: TypeManager, network_id: str, attrs: Mapping[str, Any]) -> Segment:
    """Add a segment to an existing network (``POST /v2.0/segments``).

    ``attrs`` uses the segment resource's keys: ``network_type``
    (required), ``physical_network``, ``segmentation_id``, ``name``,
    ``description``. Validated and reserved like a provider segment.
    """
    req = types.validate_segment(
        attrs.get("network_type"), attrs.get("physical_network"),
        attrs.get("segmentation_id"),
    )
    name = attrs.get("name")
    description = attrs.get("description") or ""
    for key, value in (("name", name), ("description", description)):
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise InvalidInput(error_message=f"{key} must be a string of at most 255 characters")
    segment_rows.lock_network(session, network_id)
    with session.begin_nested():
        return types.reserve(
            session, network_id, req, index=segment_rows.next_index(session, network_id),
            name=name, description=description,
        )


def _remove_segment(session: Session, types: TypeManager, segment_id: str) -> None:
    """Delete a segment (``DELETE /v2.0/segments/{id}``) and release its id.

    SegmentInUse (409) while subnets or port bindings use it, or when it
    is the network's last static segment (delete the network instead).
    """
    seg = segment_rows.get_segment(session, segment_id)
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
        types.release(session, seg)
        session.execute(delete(NetworkSegment).where(NetworkSegment.id == segment_id))
