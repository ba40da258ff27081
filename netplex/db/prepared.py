"""Hot statements compiled once per dialect and run on the DBAPI cursor.

SQLAlchemy's ``Connection.execute`` costs 15-40 µs per call (cache lookup,
execution context, events, result wrapping) where SQLite itself needs 2-5
µs for a primary-key insert or probe. A port create issues about ten such
statements inside the serialised write section, so the hot paths use
:class:`Prepared`: the statement is still built with SQLAlchemy Core (one
definition for SQLite and PostgreSQL), compiled once per dialect, and its
parameters and results go through the same type processors SQLAlchemy
would apply (UTC datetimes, JSON, booleans).

Statements with expanding ``IN`` parameters are not supported; give each
value its own bind parameter instead.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import Compiled

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Form:
    sql: str
    positional: bool
    #: Parameter names in placeholder order, each with its bind processor and
    #: the value the statement itself gives it (literals such as ``id == 1``).
    params: tuple[tuple[str, Processor, Any], ...]
    #: Result column processors (``None`` entries pass the value through).
    results: tuple[Processor, ...]
    row: Any  # the namedtuple type for result rows


class Prepared:
    """A Core statement run with the DBAPI cursor of a SQLAlchemy connection.

    ``keys`` lists the columns an INSERT/UPDATE provides values for (Core
    compiles only those); SELECTs need none.
    """

    def __init__(self, stmt: Executable, keys: Sequence[str] | None = None) -> None:
        self.stmt = stmt
        self.keys = list(keys) if keys is not None else None
        self._forms: dict[str, _Form] = {}

    def _form(self, dialect: Dialect) -> _Form:
        form = self._forms.get(dialect.name)
        if form is None:
            form = self._forms[dialect.name] = self._compile(dialect)
        return form

    def _compile(self, dialect: Dialect) -> _Form:
        compiled: Compiled = self.stmt.compile(dialect=dialect, column_keys=self.keys)  # type: ignore[attr-defined]
        binds = compiled.binds  # type: ignore[attr-defined]
        positional = bool(dialect.positional)
        names = list(compiled.positiontup or ()) if positional else list(binds)  # type: ignore[attr-defined]
        params = tuple(
            (name, binds[name].type._cached_bind_processor(dialect), binds[name].effective_value) for name in names
        )
        columns = list(getattr(self.stmt, "selected_columns", ()))
        if not columns:
            returning = getattr(self.stmt, "_returning", ())
            columns = list(returning)
        results = tuple(col.type._cached_result_processor(dialect, None) for col in columns)
        row = namedtuple("Row", [c.key or f"c{i}" for i, c in enumerate(columns)], rename=True) if columns else tuple
        return _Form(compiled.string, positional, params, results, row)

    def _args(self, form: _Form, values: Mapping[str, Any]) -> Any:
        args = []
        for name, proc, literal in form.params:
            value = values.get(name, literal)
            args.append(proc(value) if proc else value)
        if form.positional:
            return args
        return dict(zip((p[0] for p in form.params), args, strict=True))

    def _run(self, conn: Connection, form: _Form, args: Any, many: bool = False) -> Any:
        cur = conn.connection.cursor()
        try:
            if many:
                cur.executemany(form.sql, args)
            else:
                cur.execute(form.sql, args)
        except conn.dialect.loaded_dbapi.Error as exc:
            # Raise what SQLAlchemy would (IntegrityError, OperationalError, ...)
            # so retry logic and error mapping see one family of exceptions.
            raise DBAPIError.instance(form.sql, args, exc, conn.dialect.loaded_dbapi.Error) from exc
        return cur

    def execute(self, conn: Connection, values: Mapping[str, Any] | None = None) -> Any:
        """Run once; returns the DBAPI cursor (for ``rowcount``)."""
        form = self._form(conn.dialect)
        return self._run(conn, form, self._args(form, values or {}))

    def executemany(self, conn: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        form = self._form(conn.dialect)
        args = [self._args(form, values) for values in rows]
        if args:
            self._run(conn, form, args, many=True)

    def rows(self, conn: Connection, values: Mapping[str, Any] | None = None) -> list[Any]:
        """All result rows, as named tuples with processed values."""
        form = self._form(conn.dialect)
        raw = self._run(conn, form, self._args(form, values or {})).fetchall()
        procs = form.results
        make = form.row._make
        if not any(procs):
            return [make(r) for r in raw]
        return [make([p(v) if p else v for p, v in zip(procs, r, strict=True)]) for r in raw]

    def first(self, conn: Connection, values: Mapping[str, Any] | None = None) -> Any:
        found = self.rows(conn, values)
        return found[0] if found else None

    def scalar(self, conn: Connection, values: Mapping[str, Any] | None = None) -> Any:
        row = self.first(conn, values)
        return None if row is None else row[0]
