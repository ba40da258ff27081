"""Prepared statements: the same values in and out as SQLAlchemy's own execute."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import pytest
from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from netplex.db.engine import Database
from netplex.db.models import Network, Subnet
from netplex.db.prepared import Prepared

_NETS = cast(Table, Network.__table__)
_SUBNETS = cast(Table, Subnet.__table__)
_KEYS = [
    "id",
    "name",
    "description",
    "project_id",
    "admin_state_up",
    "status",
    "shared",
    "router_external",
    "mtu",
    "availability_zone_hints",
    "revision_number",
    "created_at",
    "updated_at",
]


def _values(net_id: str) -> dict[str, object]:
    when = datetime(2026, 11, 21, 3, 4, 5, tzinfo=UTC)
    return {
        "id": net_id,
        "name": "n",
        "description": "",
        "project_id": "p",
        "admin_state_up": False,
        "status": "ACTIVE",
        "shared": True,
        "router_external": False,
        "mtu": 1450,
        "availability_zone_hints": ["az1"],
        "revision_number": 0,
        "created_at": when,
        "updated_at": when,
    }


def test_round_trip_matches_core_types(db_url: str) -> None:
    db = Database(db_url)
    keys = [k for k in _KEYS if k in _NETS.c]
    ins = Prepared(insert(_NETS), keys=keys)
    sel = Prepared(select(_NETS.c.id, _NETS.c.shared, _NETS.c.created_at).where(_NETS.c.id == bindparam("id")))
    with db.write_engine.begin() as conn:
        ins.execute(conn, {k: v for k, v in _values("a").items() if k in keys})
        row = sel.first(conn, {"id": "a"})
        core = conn.execute(select(_NETS.c.id, _NETS.c.shared, _NETS.c.created_at).where(_NETS.c.id == "a")).one()
        assert sel.first(conn, {"id": "missing"}) is None
    assert tuple(row) == tuple(core)
    assert row.shared is True and row.created_at == datetime(2026, 11, 21, 3, 4, 5, tzinfo=UTC)
    db.dispose()


def test_literal_binds_and_scalar(db_url: str) -> None:
    db = Database(db_url)
    head = Prepared(select(_NETS.c.name).where(_NETS.c.project_id == "fixed", _NETS.c.id == bindparam("id")))
    keys = [k for k in _KEYS if k in _NETS.c]
    with db.write_engine.begin() as conn:
        Prepared(insert(_NETS), keys=keys).execute(
            conn, {**{k: v for k, v in _values("b").items() if k in keys}, "project_id": "fixed", "name": "bee"}
        )
        assert head.scalar(conn, {"id": "b"}) == "bee"
    db.dispose()


def test_driver_errors_surface_as_sqlalchemy_errors(db_url: str) -> None:
    db = Database(db_url)
    keys = [k for k in _KEYS if k in _NETS.c]
    ins = Prepared(insert(_NETS), keys=keys)
    row = {k: v for k, v in _values("dup").items() if k in keys}
    with pytest.raises(IntegrityError), db.write_engine.begin() as conn:
        ins.executemany(conn, [row, row])
    db.dispose()
