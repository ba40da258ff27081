"""Neutron list semantics: filters (OR within a key), sorting, marker pagination.

A service describes which API attributes are plain columns
(:class:`ColumnMap`); filters and sort keys on those run in SQL, keyset
pagination included, so a page of 10 out of 100,000 rows costs a page.
Filters on computed attributes (``fixed_ips``, ``tags`` ...) are applied
in Python by the service on the rows SQL returned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, or_, select
from sqlalchemy.orm import Session

from netplex.core.common import TAG_FILTER_KEYS, tag_filter
from netplex.errors import BadRequest, NotFound

ColumnMap = Mapping[str, Any]  # API attribute name -> SQLAlchemy column


@dataclass
class ListQuery:
    """A parsed list request. ``filters`` values are already converted to attribute types."""

    filters: dict[str, list[Any]] = field(default_factory=dict)
    fields: list[str] | None = None
    sorts: list[tuple[str, bool]] = field(default_factory=list)  # (key, ascending)
    limit: int | None = None
    marker: str | None = None
    page_reverse: bool = False

    def split_filters(self, columns: ColumnMap) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
        sql = {k: v for k, v in self.filters.items() if k in columns}
        rest = {k: v for k, v in self.filters.items() if k not in columns}
        return sql, rest


def filter_clauses(columns: ColumnMap, filters: Mapping[str, list[Any]]) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    for key, values in filters.items():
        col = columns[key]
        non_null = [v for v in values if v is not None]
        parts: list[ColumnElement[bool]] = []
        if non_null:
            parts.append(col.in_(non_null))
        if len(non_null) != len(values):
            parts.append(col.is_(None))
        clauses.append(or_(*parts) if parts else false())
    return clauses


def paginate(
    session: Session,
    stmt: Select[Any],
    columns: ColumnMap,
    id_column: Any,
    query: ListQuery,
    *,
    resource: str,
    apply_limit: bool = True,
) -> Select[Any]:
    """Order ``stmt`` by the sort keys (id last, for a total order) and apply marker/limit."""
    sorts = list(query.sorts)
    for key, _asc in sorts:
        if key not in columns:
            raise BadRequest(resource=resource, msg=f"'{key}' is an invalid attribute for sort_key")
    if not any(k == "id" for k, _ in sorts):
        sorts.append(("id", sorts[-1][1] if sorts else True))
    keys = [(columns[k] if k != "id" else id_column, asc) for k, asc in sorts]
    reverse = query.page_reverse
    order = []
    for col, asc in keys:
        effective = asc != reverse
        order.append(col.asc() if effective else col.desc())
    stmt = stmt.order_by(*order)
    if query.marker is not None:
        marker_row = session.execute(select(*[c for c, _ in keys]).where(id_column == query.marker)).first()
        if marker_row is None:
            raise NotFound(f"Marker {query.marker} could not be found.")
        stmt = stmt.where(_after(keys, list(marker_row), reverse))
    if apply_limit and query.limit is not None:
        stmt = stmt.limit(query.limit)
    return stmt


def _after(keys: Sequence[tuple[Any, bool]], values: list[Any], reverse: bool) -> ColumnElement[bool]:
    """Rows strictly after the marker in the (possibly reversed) sort order."""
    ors: list[ColumnElement[bool]] = []
    for i, (col, asc) in enumerate(keys):
        forward = asc != reverse
        eqs = [keys[j][0] == values[j] for j in range(i)]
        cmp = col > values[i] if forward else col < values[i]
        ors.append(and_(*eqs, cmp) if eqs else cmp)
    return or_(*ors)


def python_filter(
    items: list[dict[str, Any]],
    filters: Mapping[str, list[Any]],
    special: Mapping[str, Callable[[dict[str, Any], list[Any]], bool]] | None = None,
) -> list[dict[str, Any]]:
    """Apply filters that SQL could not; unknown keys match on equality of the value."""
    if not filters:
        return items
    special = special or {}
    out = []
    for item in items:
        ok = True
        for key, values in filters.items():
            if key in special:
                ok = special[key](item, values)
            elif key in item:
                v = item[key]
                ok = v in values if not isinstance(v, list) else any(x in v for x in values)
            else:
                ok = False
            if not ok:
                break
        if ok:
            out.append(item)
    return out


def finish_in_python(items: list[dict[str, Any]], rest: dict[str, list[Any]], query: ListQuery) -> list[dict[str, Any]]:
    """Apply the filters SQL could not (tags, computed attributes), then the page limit."""
    if not rest:
        return items
    rest = dict(rest)
    tag_keys = {k: rest.pop(k) for k in TAG_FILTER_KEYS if k in rest}
    if tag_keys:
        items = [i for i in items if tag_filter(i["tags"], tag_keys)]
    items = python_filter(items, rest)
    if query.limit is not None:
        items = items[: query.limit]
    return items
