"""QuotaService: defaults, default_quota for resources without their own option, the empty project."""

from __future__ import annotations

from netplex.db.engine import Database, Txn
from netplex.services.quotas.counting import BUILT_IN, CountedTable
from netplex.services.quotas.service import QuotaService


def test_defaults_and_default_quota(db_url: str) -> None:
    db = Database(db_url)
    try:
        svc = QuotaService(db, {"network": 5, "": 7}, [*BUILT_IN, CountedTable("widget", "networks")])
        assert svc.defaults()["network"] == 5 and svc.defaults()["widget"] == 7
        assert svc.update("p", {"widget": "3"})["widget"] == 3
        assert svc.details("p")["widget"] == {"limit": 3, "used": 0, "reserved": 0}

        def check_empty_project(txn: Txn) -> None:
            svc.check(txn, "", "network")

        svc.update("", {"network": 0})
        db.transaction(check_empty_project)  # the server's own creates are never limited
    finally:
        db.dispose()
