"""Limits, usage and enforcement of per-project quotas.

Enforcement (:meth:`QuotaService.check`) runs inside the creating transaction, after the
new row is written, and counts the project's rows: a bulk create sees its own earlier
items, so a bulk that would pass the limit fails as a whole. Exact under concurrency:
SQLite writers are serialised (one writer; group-commit batches run their jobs in
order on one connection), and on PostgreSQL the check first takes a transaction-scoped
advisory lock per (project, resource), so two servers' creates for the same project
count one after the other (READ COMMITTED: the count after the lock sees every
committed row).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, text

from netplex.db.engine import Database, Txn
from netplex.db.models.quota import Quota
from netplex.db.prepared import Prepared
from netplex.services.quotas.counting import CountedTable
from netplex.services.quotas.errors import InvalidQuotaValue, OverQuota, QuotaResourceUnknown

__all__ = ["QuotaService"]

_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_LIMIT = Prepared(select(Quota.limit).where(Quota.project_id == bindparam("p"), Quota.resource == bindparam("r")))


class QuotaService:
    def __init__(self, db: Database, defaults: Mapping[str, int], counted: Iterable[CountedTable]) -> None:
        self._db = db
        self._counted = {c.name: c for c in counted}
        #: Every resource with a limit, in a stable order; resources without their own option
        #: use [quotas] default_quota (given as defaults[""]).
        self.resources = tuple(dict.fromkeys([*(r for r in defaults if r), *self._counted]))
        self._defaults = {r: defaults.get(r, defaults.get("", -1)) for r in self.resources}

    # -- limits ----------------------------------------------------------------

    def defaults(self) -> dict[str, int]:
        return dict(self._defaults)

    def _limits(self, conn: Connection, project_id: str) -> dict[str, int]:
        out = self.defaults()
        for res, limit in conn.execute(select(Quota.resource, Quota.limit).where(Quota.project_id == project_id)):
            if res in out:
                out[res] = limit
        return out

    def limits(self, project_id: str) -> dict[str, int]:
        with self._db.read_conn() as conn:
            return self._limits(conn, project_id)

    def details(self, project_id: str) -> dict[str, dict[str, int]]:
        with self._db.read_conn() as conn:
            limits = self._limits(conn, project_id)
            return {r: {"limit": limits[r], "used": self._used(conn, r, project_id), "reserved": 0}
                    for r in self.resources}

    def _used(self, conn: Connection, resource: str, project_id: str) -> int:
        counted = self._counted.get(resource)
        return counted.count(conn, project_id) if counted is not None else 0

    def projects(self) -> list[dict[str, Any]]:
        """Every project with a limit set, with all its limits (``GET /v2.0/quotas``)."""
        with self._db.read_conn() as conn:
            ids = sorted({p for (p,) in conn.execute(select(Quota.project_id).distinct())})
            return [{"project_id": p, **self._limits(conn, p)} for p in ids]

    def update(self, project_id: str, values: Mapping[str, Any]) -> dict[str, int]:
        unknown = sorted(set(values) - set(self.resources))
        if unknown:
            raise QuotaResourceUnknown(unknown=", ".join(unknown))
        parsed: dict[str, int] = {}
        for res, raw in values.items():
            try:
                n = int(raw)
                ok = str(raw).strip().lstrip("-").isdigit() or isinstance(raw, int)
            except (TypeError, ValueError):
                ok, n = False, 0
            if not ok or isinstance(raw, bool) or n < -1:
                raise InvalidQuotaValue(resource=res, value=raw)
            parsed[res] = n

        def write(txn: Txn) -> dict[str, int]:
            conn = txn.conn
            for res, n in parsed.items():
                conn.execute(delete(Quota).where(Quota.project_id == project_id, Quota.resource == res))
                conn.execute(insert(Quota).values(project_id=project_id, resource=res, limit=n))
            return self._limits(conn, project_id)

        return self._db.transaction(write)

    def reset(self, project_id: str) -> None:
        def write(txn: Txn) -> None:
            txn.conn.execute(delete(Quota).where(Quota.project_id == project_id))

        self._db.transaction(write)

    # -- enforcement -----------------------------------------------------------

    def check(self, txn: Txn, project_id: str, resource: str) -> None:
        """Inside the creating transaction, after the new row(s) are written: raise
        :class:`OverQuota` if the project now has more than its limit. Resources of no project
        (``""``: the server's own creates, internal callers) are not limited."""
        if not project_id:
            return
        conn = txn.conn
        row = _LIMIT.first(conn, {"p": project_id, "r": resource})
        limit = row[0] if row is not None else self._defaults.get(resource, -1)
        if limit < 0:
            return
        if self._db.is_postgres:
            key = zlib.crc32(f"quota:{project_id}:{resource}".encode()) - 2**31
            conn.execute(_LOCK, {"key": key})
        txn.flush()
        if self._used(conn, resource, project_id) > limit:
            raise OverQuota(overs=resource)
