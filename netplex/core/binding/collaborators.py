"""What the binding layer needs from outside it, as small protocols.

The composition root hands it a type manager (dynamic segments) and the
``ports`` table's owner (:class:`netplex.core.port_rows.PortTable`).
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from netplex.core.segments_model import Segment
from netplex.db.engine import Txn


class SegmentTypeManager(Protocol):
    """The part of the type manager binding needs (dynamic segments).

    Both run inside the caller's session/transaction. ``allocate`` writes a
    ``network_segments`` row with ``is_dynamic = true`` (or returns an
    existing dynamic segment of the network with the same type and physical
    network); ``release`` frees its segmentation ID and deletes that row.
    The binding layer (:mod:`netplex.core.binding.segments`) reference-counts
    through binding levels and calls ``release`` only when no level uses the
    segment, with the segment row locked.
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
