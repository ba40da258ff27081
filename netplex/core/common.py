"""Small helpers every resource service shares: timestamps, tags, revisions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, String, Table, bindparam, select, type_coerce
from sqlalchemy.orm import Session

from netplex.core.context import Context
from netplex.db.base import utcnow
from netplex.db.models import Tag
from netplex.db.prepared import Prepared
from netplex.errors import BadRequest, RevisionNumberConstraintFailed


def iso(dt: datetime | str | None) -> str | None:
    """Neutron's timestamp format: ``2026-11-20T23:21:40Z``.

    Big lists read timestamps unconverted (see :data:`RAW_TIMESTAMP`): SQLite
    then gives its stored text, ``2026-11-20 23:21:40.000000``, which is
    sliced here instead of being parsed into a datetime and formatted again.
    """
    if dt is None:
        return None
    if isinstance(dt, str):
        return f"{dt[:10]}T{dt[11:19]}Z"
    # isoformat is several times cheaper than strftime (10,000-port lists).
    return dt.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def raw_timestamp(column: Any) -> Any:
    """``column`` selected without datetime conversion (for :func:`iso` only)."""
    return type_coerce(column, String).label(column.key)


_TAGS = cast(Table, Tag.__table__)
# Prebuilt: a statement built per call costs more in cache-key work than it runs.
_TAGS_AMONG = (
    select(_TAGS.c.resource_id, _TAGS.c.tag)
    .where(_TAGS.c.resource_type == bindparam("type"), _TAGS.c.resource_id.in_(bindparam("ids", expanding=True)))
    .order_by(_TAGS.c.tag)
)
_TAGS_OF = Prepared(
    select(_TAGS.c.tag)
    .where(_TAGS.c.resource_type == bindparam("type"), _TAGS.c.resource_id == bindparam("id"))
    .order_by(_TAGS.c.tag)
)


def tags_of(conn: Connection, resource_type: str, resource_id: str) -> list[str]:
    """One resource's tags, sorted."""
    return [row[0] for row in _TAGS_OF.rows(conn, {"type": resource_type, "id": resource_id})]


def tags_for(session: Session, resource_type: str, ids: Iterable[str]) -> dict[str, list[str]]:
    return tags_among(session.connection(), resource_type, ids)


def tags_among(conn: Connection, resource_type: str, ids: Iterable[str]) -> dict[str, list[str]]:
    """Tags of many resources: id -> sorted tags (ids without tags are absent)."""
    ids = list(ids)
    out: dict[str, list[str]] = defaultdict(list)
    if not ids:
        return out
    if len(ids) == 1:
        out[ids[0]] = tags_of(conn, resource_type, ids[0])
        return out
    # One query for the whole page; chunked to stay under bind-parameter limits.
    for i in range(0, len(ids), 5000):
        chunk = ids[i : i + 5000]
        for rid, tag in conn.execute(_TAGS_AMONG, {"type": resource_type, "ids": chunk}):
            out[rid].append(tag)
    return out


def bump(row: Any) -> None:
    """A resource changed: new revision_number and updated_at (ORM rows)."""
    row.revision_number = (row.revision_number or 0) + 1
    row.updated_at = utcnow()


def check_revision(expected: int | None, current: int) -> None:
    """``If-Match: revision_number=N`` semantics (412 on mismatch)."""
    if expected is not None and expected != current:
        raise RevisionNumberConstraintFailed(expected=expected, current=current)


def resolve_project(ctx: Context, attrs: dict[str, Any], resource: str) -> str:
    """The owning project for a create; only admins may name another project."""
    pid = attrs.get("project_id")
    tid = attrs.get("tenant_id")
    if pid is not None and tid is not None and pid != tid:
        raise BadRequest(resource=resource, msg="'project_id' and 'tenant_id' do not match")
    requested = pid if pid is not None else tid
    if requested is None:
        return ctx.project_id or ""
    if not ctx.is_admin and requested != ctx.project_id:
        raise BadRequest(
            resource=resource,
            msg="Specifying 'project_id' or 'tenant_id' other than the authenticated "
            "project in request requires admin privileges",
        )
    return str(requested)


def tag_filter(tags: list[str], filters: dict[str, list[Any]]) -> bool:
    """Neutron's tags / tags-any / not-tags / not-tags-any (values are comma lists)."""
    have = set(tags)

    def groups(key: str) -> list[set[str]]:
        return [set(v.split(",")) for v in filters.get(key, []) if v]

    for g in groups("tags"):
        if not g <= have:
            return False
    for g in groups("tags-any"):
        if not g & have:
            return False
    for g in groups("not-tags"):
        if g <= have:
            return False
    for g in groups("not-tags-any"):
        if g & have:
            return False
    return True


TAG_FILTER_KEYS = ("tags", "tags-any", "not-tags", "not-tags-any")
