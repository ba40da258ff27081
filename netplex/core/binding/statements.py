"""The binding layer's prebuilt statements.

Building a SQLAlchemy statement costs several times more than running it on
SQLite; binding is on the request path, so its statements are built once
with bind parameters.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, bindparam, delete, false, insert, select, update

from netplex.core.mech_api import BINDING_ACTIVE, VIF_TYPE_UNBOUND
from netplex.db.models import IPAllocation, Network, NetworkSegment, Port, PortBinding, PortBindingLevel
from netplex.db.prepared import Prepared

B = cast(Table, PortBinding.__table__)
L = cast(Table, PortBindingLevel.__table__)
S = cast(Table, NetworkSegment.__table__)
IPS = cast(Table, IPAllocation.__table__)

P = cast(Table, Port.__table__)
N = cast(Table, Network.__table__)

ACTIVE_BINDING_ROW = Prepared(
    select(B).where(B.c.port_id == bindparam("port_id"), B.c.status == BINDING_ACTIVE)
)
HOST_BINDING_ROW = Prepared(
    select(B).where(B.c.port_id == bindparam("port_id"), B.c.host == bindparam("host"))
)
LOCK_ACTIVE_BINDING = Prepared(
    select(B)
    .where(B.c.port_id == bindparam("port_id"), B.c.status == BINDING_ACTIVE)
    .with_for_update()
)
BINDING_EXISTS = Prepared(
    select(B.c.host).where(B.c.port_id == bindparam("port_id"), B.c.host == bindparam("host"))
)
PORT_ROW = Prepared(select(P).where(P.c.id == bindparam("port_id")))
NETWORK_ROW = Prepared(select(N).where(N.c.id == bindparam("network_id")))
PORT_IPS = Prepared(
    select(IPS.c.subnet_id, IPS.c.ip_address).where(IPS.c.port_id == bindparam("port_id"))
)
STATIC_SEGMENTS = Prepared(
    select(S)
    .where(S.c.network_id == bindparam("network_id"), S.c.is_dynamic == false())
    .order_by(S.c.segment_index, S.c.created_at)
)
ALL_SEGMENTS = Prepared(
    select(S)
    .where(S.c.network_id == bindparam("network_id"))
    .order_by(S.c.segment_index, S.c.created_at)
)
LEVELS = Prepared(
    select(L.c.level, L.c.driver, L.c.segment_id, S)
    .outerjoin(S, S.c.id == L.c.segment_id)
    .where(L.c.port_id == bindparam("port_id"), L.c.host == bindparam("host"))
    .order_by(L.c.level)
)
CAS_BINDING = Prepared(
    update(B)
    .where(
        B.c.port_id == bindparam("b_port_id"),
        B.c.host == bindparam("b_host"),
        B.c.attempt == bindparam("b_attempt"),
    )
    .values(
        vif_type=bindparam("b_vif_type"),
        vif_details=bindparam("b_vif_details"),
        diagnostics=bindparam("b_diagnostics"),
        attempt=bindparam("b_new_attempt"),
    )
)
#: A new binding request: back to ``unbound`` and a new attempt number.
RESTAGE_BINDING = Prepared(
    update(B)
    .where(B.c.port_id == bindparam("b_port_id"), B.c.host == bindparam("b_old_host"))
    .values(
        host=bindparam("b_host"),
        vnic_type=bindparam("b_vnic_type"),
        profile=bindparam("b_profile", type_=B.c.profile.type),
        vif_type=VIF_TYPE_UNBOUND,
        vif_details=bindparam("b_vif_details", type_=B.c.vif_details.type),
        diagnostics=bindparam("b_diagnostics", type_=B.c.diagnostics.type),
        attempt=B.c.attempt + 1,
    )
)
INSERT_BINDING = Prepared(insert(B), keys=[c.key for c in B.c])
SEGMENT_IS_DYNAMIC = Prepared(select(S.c.is_dynamic).where(S.c.id == bindparam("id")))
DELETE_LEVELS = Prepared(
    delete(L)
    .where(L.c.port_id == bindparam("port_id"), L.c.host == bindparam("host"))
    .returning(L.c.segment_id)
)
DELETE_ALL_LEVELS = Prepared(
    delete(L).where(L.c.port_id == bindparam("port_id")).returning(L.c.segment_id)
)
DELETE_ALL_BINDINGS = Prepared(delete(B).where(B.c.port_id == bindparam("port_id")))
INSERT_LEVELS = Prepared(insert(L), keys=["port_id", "host", "level", "driver", "segment_id"])
