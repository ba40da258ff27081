"""Segment pools numbered from configured ranges, with no row per free id.

``segment_allocations`` holds one row per *allocated* id and nothing else,
so a pool of 16,777,215 VNIs costs nothing until ids are used, and changing
the configured ranges needs no resync: the ranges live only in memory.

How a free id is found
    An allocation first probes :data:`PROBES` random ids of the pool in one
    query (a primary-key lookup each) and takes the first free one: while
    the pool is not nearly full that settles it in one round trip, at 10
    ids or 16 million, however the allocated ids cluster. Random ids also
    keep concurrent servers from chasing the same one. When every probe is
    taken, :func:`first_free_id` searches upwards from the first probe,
    wrapping round, for the first hole, using only the primary-key index
    (network_type, physical_network, segmentation_id) over allocated rows;
    finding none proves the pool exhausted. Its cost grows with the log of
    the run of allocated ids it skips, never with the size of the range.

Why no two segments ever get the same id
    The id is claimed with ``INSERT ... ON CONFLICT DO NOTHING`` on the
    primary key and the row count tells whether we got it (a guarded insert:
    the compare-and-swap of a pool without free rows). On PostgreSQL a
    racing insert of the same key waits for the other transaction and then
    does nothing if it committed; on SQLite writers are serialised anyway.
    A lost race is retried in place with a fresh search (READ COMMITTED
    statements see the winner's row); after :data:`MAX_CLAIM_ATTEMPTS` lost
    races :class:`~netplex.errors.RetryRequest` reruns the whole
    transaction. No exception is raised inside the transaction for a lost
    race, so PostgreSQL never aborts it.

Releasing
    A release deletes the row only when it still belongs to the releasing
    segment (``segment_id`` matches), so releasing twice, or releasing after
    the id was handed to someone else, frees nothing.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from sqlalchemy import BigInteger, Integer, Table, bindparam, delete, func, insert, select, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from netplex.config import ConfigError
from netplex.core.segments_model import Segment, SegmentRequest
from netplex.core.type_api import MtuSettings, SegmentContext, TypeDriver
from netplex.db.models import SegmentAllocation
from netplex.db.prepared import Prepared
from netplex.errors import InvalidInput, NetplexError, NoNetworkAvailable, RetryRequest

__all__ = [
    "MAX_CLAIM_ATTEMPTS",
    "PROBES",
    "IdRange",
    "SegmentPoolTypeDriver",
    "claim_allocation",
    "count_allocated",
    "first_free_id",
    "merge_ranges",
    "parse_id_range",
    "physical_network_mtu",
    "release_allocation",
    "taken_ids",
]

#: Lost races tolerated inside one transaction before asking for a full retry.
MAX_CLAIM_ATTEMPTS = 16

#: Random ids tried (in one query) before scanning for a hole.
PROBES = 8

#: Longest physical network name the schema stores (Neutron uses 64 too).
MAX_PHYSNET_LEN = 64

_ALLOC = cast(Table, SegmentAllocation.__table__)
# Prebuilt statements: building one costs more than SQLite takes to run it.
_ALLOC_KEYS = {
    "network_type": bindparam("network_type"),
    "physical_network": bindparam("physical_network"),
    "segmentation_id": bindparam("segmentation_id", type_=BigInteger()),
    "segment_id": bindparam("segment_id"),
}
#: Insert unless present, returning the id when this statement inserted it (per dialect).
_CLAIM = {
    "postgresql": Prepared(
        pg_insert(_ALLOC).values(**_ALLOC_KEYS).on_conflict_do_nothing().returning(_ALLOC.c.segmentation_id)
    ),
    "sqlite": Prepared(
        sqlite_insert(_ALLOC).values(**_ALLOC_KEYS).on_conflict_do_nothing().returning(_ALLOC.c.segmentation_id)
    ),
}
_RELEASE = Prepared(delete(_ALLOC).where(*(_ALLOC.c[k] == v for k, v in _ALLOC_KEYS.items())))
_NTH_ALLOCATED = Prepared(
    select(_ALLOC.c.segmentation_id)
    .where(
        _ALLOC.c.network_type == bindparam("network_type"),
        _ALLOC.c.physical_network == bindparam("physical_network"),
        _ALLOC.c.segmentation_id >= bindparam("lo", type_=BigInteger()),
        _ALLOC.c.segmentation_id <= bindparam("hi", type_=BigInteger()),
    )
    .order_by(_ALLOC.c.segmentation_id)
    .limit(1)
    .offset(bindparam("n", type_=Integer()))
)


@dataclass(frozen=True, slots=True)
class IdRange:
    """An inclusive range of ids on one physical network ('' = none)."""

    physical_network: str
    first: int
    last: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1


# -- configuration ------------------------------------------------------------


def parse_id_range(text: str, *, lo: int, hi: int) -> tuple[int, int]:
    """``"100:199"`` -> ``(100, 199)``; ValueError explains what is wrong."""
    parts = text.split(":")
    if len(parts) != 2:
        raise ValueError("expected <min>:<max>")
    try:
        first, last = int(parts[0].strip()), int(parts[1].strip())
    except ValueError:
        raise ValueError("minimum and maximum must be integers") from None
    if first > last:
        raise ValueError(f"minimum {first} is greater than maximum {last}")
    if first < lo or last > hi:
        raise ValueError(f"ids must lie in {lo}..{hi}")
    return first, last


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, with overlapping and adjacent ranges joined (so ids count once)."""
    out: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def config_error(section: str | None, option: str, value: str, reason: str) -> ConfigError:
    return ConfigError(f"[{section}] {option} = {value!r} is invalid: {reason}")


def check_physnet_name(name: str) -> None:
    if not name:
        raise ValueError("physical network name is empty")
    if len(name) > MAX_PHYSNET_LEN:
        raise ValueError(f"physical network name is longer than {MAX_PHYSNET_LEN} characters")


def physical_network_mtu(settings: MtuSettings, physical_network: str | None) -> int:
    """MTU of a physical network: the smaller of the global and per-physnet values.

    As Neutron does for flat and VLAN: ``physical_network_mtus`` can lower the
    MTU of one physnet below ``global_physnet_mtu``, not raise it. 0 = unknown.
    """
    mtus = [settings.global_physnet_mtu] if settings.global_physnet_mtu > 0 else []
    if physical_network is not None and physical_network in settings.physical_network_mtus:
        mtus.append(settings.physical_network_mtus[physical_network])
    return min(mtus) if mtus else 0


# -- SQL over segment_allocations ----------------------------------------------


def claim_allocation(
    session: Session,
    network_type: str,
    physical_network: str,
    segmentation_id: int,
    segment_id: str,
) -> bool:
    """Insert the allocation row unless it exists; True when this call inserted it."""
    values = {
        "network_type": network_type,
        "physical_network": physical_network,
        "segmentation_id": segmentation_id,
        "segment_id": segment_id,
    }
    # Core execution on the session's connection: the ORM's bulk-insert path
    # would not report whether the row went in.
    conn = session.connection()
    claim = _CLAIM.get(conn.dialect.name)
    if claim is None:
        # Backends without ON CONFLICT: a SAVEPOINT keeps the duplicate-key
        # error from aborting the caller's transaction.
        try:
            with session.begin_nested():
                session.connection().execute(insert(_ALLOC).values(**values))
        except IntegrityError:
            return False
        return True
    return claim.first(conn, values) is not None


def release_allocation(
    session: Session,
    network_type: str,
    physical_network: str,
    segmentation_id: int,
    segment_id: str,
) -> bool:
    """Delete the row if ``segment_id`` still owns it; True when a row went away."""
    result = _RELEASE.execute(
        session.connection(),
        {
            "network_type": network_type,
            "physical_network": physical_network,
            "segmentation_id": segmentation_id,
            "segment_id": segment_id,
        },
    )
    return bool(result.rowcount)


def first_free_id(
    session: Session, network_type: str, physical_network: str, first: int, last: int
) -> int | None:
    """Smallest id in ``[first, last]`` without an allocation row, or None.

    Ids are unique integers, so ``[c, c+n]`` is fully allocated exactly when
    the n-th allocated id at or above ``c`` (0-based) is ``c+n``; one
    ``ORDER BY ... LIMIT 1 OFFSET n`` index range scan answers that. The
    search gallops (n = 0, 1, 3, 7, ...) past the run of allocated ids that
    starts at ``first``, then halves its way into the first hole: O(log run)
    round trips, and the database steps over O(run) index entries in total.
    Nothing depends on the size of the range. Each statement is a plain
    index range scan, which every planner gets right even with stale
    statistics (a single NOT EXISTS gap query can turn quadratic on
    PostgreSQL when the table was never analysed).
    """
    conn = session.connection()

    def dense(cursor: int, n: int) -> bool:
        """Are all of ``cursor .. cursor+n`` allocated?"""
        nth = _NTH_ALLOCATED.scalar(
            conn,
            {"network_type": network_type, "physical_network": physical_network, "lo": cursor, "hi": last, "n": n},
        )
        return nth == cursor + n

    cursor, n = first, 0
    # Gallop: while cursor .. cursor+n is all taken, skip it and look twice as far.
    while cursor <= last:
        n = min(n, last - cursor)
        if not dense(cursor, n):
            break
        cursor += n + 1
        n = 2 * n + 1
    else:
        return None
    # A hole lies in cursor .. cursor+n; halve the window until it is cursor.
    while n > 0:
        m = (n - 1) // 2
        if dense(cursor, m):
            cursor += m + 1
            n -= m + 1
        else:
            n = m
    return cursor


def taken_ids(
    session: Session, network_type: str, candidates: Iterable[tuple[str, int]]
) -> set[tuple[str, int]]:
    """Which of ``(physical_network, segmentation_id)`` candidates have a row.

    One statement: a UNION ALL of primary-key equality lookups. Full-key
    equality is an index lookup under any statistics; an IN list or an OR
    across physnets is not (PostgreSQL may filter an index scan with it when
    the table was never analysed, SQLite scans every row of the type).
    """
    unique = list(dict.fromkeys(candidates))
    if not unique:
        return set()
    params: dict[str, Any] = {"network_type": network_type}
    for i, (physnet, sid) in enumerate(unique):
        params[f"p{i}"], params[f"s{i}"] = physnet, sid
    rows = _taken_among(len(unique)).rows(session.connection(), params)
    return {(str(p), int(i)) for p, i in rows}


_TAKEN_AMONG: dict[int, Prepared] = {}


def _taken_among(n: int) -> Prepared:
    """The UNION ALL of ``n`` primary-key lookups (built once per ``n``)."""
    stmt = _TAKEN_AMONG.get(n)
    if stmt is None:
        branches = [
            select(_ALLOC.c.physical_network, _ALLOC.c.segmentation_id).where(
                _ALLOC.c.network_type == bindparam("network_type"),
                _ALLOC.c.physical_network == bindparam(f"p{i}"),
                _ALLOC.c.segmentation_id == bindparam(f"s{i}", type_=BigInteger()),
            )
            for i in range(n)
        ]
        stmt = _TAKEN_AMONG[n] = Prepared(branches[0] if n == 1 else union_all(*branches))
    return stmt


def count_allocated(
    session: Session, network_type: str, physical_network: str, first: int, last: int
) -> int:
    """Number of allocation rows with an id in ``[first, last]``."""
    stmt = select(func.count()).where(
        _ALLOC.c.network_type == network_type,
        _ALLOC.c.physical_network == physical_network,
        _ALLOC.c.segmentation_id >= first,
        _ALLOC.c.segmentation_id <= last,
    )
    return int(session.connection().execute(stmt).scalar_one())


# -- the template ---------------------------------------------------------------


class SegmentPoolTypeDriver(TypeDriver):
    """Base for types whose segments are ids drawn from configured ranges.

    A subclass sets :attr:`network_type`, :attr:`min_id`, :attr:`max_id` and
    :attr:`uses_physical_network`, calls :meth:`set_pools` from its
    constructor, and implements :meth:`validate_provider_segment`,
    :meth:`get_mtu` and :meth:`in_use_error`. Reservation, project
    allocation, release and counting are done here.

    Provider requests may name any legal id, inside the project ranges or
    not; project allocation only ever uses the ranges configured now.
    """

    #: Legal segmentation ids of the type (not the project ranges).
    min_id: ClassVar[int] = 1
    max_id: ClassVar[int]
    #: True when segments live on a named physical network (VLAN).
    uses_physical_network: ClassVar[bool] = False

    def __init__(
        self, options: Mapping[str, Any] | None = None, mtu: MtuSettings | None = None
    ) -> None:
        super().__init__(options, mtu)
        self._pools: dict[str, list[IdRange]] = {}
        self._all: list[IdRange] = []

    def set_pools(self, ranges: Mapping[str, Iterable[tuple[int, int]]]) -> None:
        """Set the project ranges, ``{physnet: [(first, last), ...]}`` ('' = no physnet).

        A physnet mapped to an empty list is known (provider networks may use
        it) but has no project pool.
        """
        self._pools = {
            physnet: [IdRange(physnet, f, last) for f, last in merge_ranges(r)]
            for physnet, r in sorted(ranges.items())
        }
        self._all = [piece for pieces in self._pools.values() for piece in pieces]

    @property
    def pools(self) -> dict[str, list[tuple[int, int]]]:
        """The project ranges per physnet, merged and sorted."""
        return {p: [(r.first, r.last) for r in pieces] for p, pieces in self._pools.items()}

    @abc.abstractmethod
    def in_use_error(self, physical_network: str | None, segmentation_id: int) -> NetplexError:
        """The 409 error for a provider request whose exact id is taken."""

    # -- helpers for subclasses' validation -----------------------------------

    def check_segmentation_id(self, segmentation_id: int) -> None:
        if not self.min_id <= segmentation_id <= self.max_id:
            raise InvalidInput(
                error_message=(
                    f"segmentation_id {segmentation_id} out of range "
                    f"({self.min_id} through {self.max_id}) for {self.network_type} "
                    "provider network"
                )
            )

    # -- TypeDriver ------------------------------------------------------------

    def is_partial_segment(self, request: SegmentRequest) -> bool:
        return request.segmentation_id is None

    def reserve_provider_segment(
        self, ctx: SegmentContext, request: SegmentRequest
    ) -> SegmentRequest:
        if request.segmentation_id is None:
            if request.physical_network is not None:
                pieces = self._pools.get(request.physical_network, [])
            else:
                pieces = self._all
            found = self._allocate(ctx, pieces)
            if found is None:
                raise NoNetworkAvailable()
            return found
        physnet = request.physical_network if self.uses_physical_network else None
        if not claim_allocation(
            ctx.session, self.network_type, physnet or "", request.segmentation_id,
            ctx.segment_id,
        ):
            raise self.in_use_error(physnet, request.segmentation_id)
        return SegmentRequest(self.network_type, physnet, request.segmentation_id)

    def allocate_project_segment(self, ctx: SegmentContext) -> SegmentRequest | None:
        return self._allocate(ctx, self._all)

    def release_segment(self, ctx: SegmentContext, segment: Segment) -> None:
        if segment.segmentation_id is None:
            return
        release_allocation(
            ctx.session, self.network_type, segment.physical_network or "",
            segment.segmentation_id, segment.id,
        )

    def count_free(self, session: Session, physical_network: str | None = None) -> int:
        pieces = self._all if physical_network is None else self._pools.get(physical_network, [])
        return sum(
            p.size - count_allocated(session, self.network_type, p.physical_network, p.first,
                                     p.last)
            for p in pieces
        )

    # -- allocation -------------------------------------------------------------

    def _allocate(self, ctx: SegmentContext, pieces: Sequence[IdRange]) -> SegmentRequest | None:
        if not pieces:
            return None
        for _ in range(MAX_CLAIM_ATTEMPTS):
            found = self._search(ctx.session, pieces)
            if found is None:
                return None
            physnet, sid = found
            if claim_allocation(ctx.session, self.network_type, physnet, sid, ctx.segment_id):
                return SegmentRequest(
                    self.network_type, physnet if self.uses_physical_network else None, sid
                )
            # Another transaction committed this id between our search and our
            # insert. Its row is visible to the next statement, so search again.
        raise RetryRequest(f"{self.network_type}: lost {MAX_CLAIM_ATTEMPTS} allocation races")

    def _search(self, session: Session, pieces: Sequence[IdRange]) -> tuple[str, int] | None:
        """A free id of ``pieces``, or None when every id in them is allocated.

        First a few random probes in one query: while the pool is not nearly
        full one of them is free, whatever the range size and however the
        allocated ids cluster. Then a scan from the first probe upwards,
        wrapping round, which either finds a hole or proves exhaustion.
        """
        total = sum(p.size for p in pieces)
        # The module-level generator (not a private Random()) is reseeded in
        # forked children, so server processes do not share a sequence.
        offsets = random.sample(range(total), min(PROBES, total))
        probes = [self._locate(pieces, off) for off in offsets]
        if total > PROBES:
            taken = taken_ids(session, self.network_type,
                              ((pieces[k].physical_network, sid) for k, sid in probes))
            for k, sid in probes:
                if (pieces[k].physical_network, sid) not in taken:
                    return pieces[k].physical_network, sid
        k, start = probes[0]
        order = [(pieces[k], start, pieces[k].last)]
        order += [(p, p.first, p.last) for p in pieces[k + 1 :]]
        order += [(p, p.first, p.last) for p in pieces[:k]]
        order.append((pieces[k], pieces[k].first, start - 1))
        for piece, first, last in order:
            free = first_free_id(session, self.network_type, piece.physical_network, first, last)
            if free is not None:
                return piece.physical_network, free
        return None

    @staticmethod
    def _locate(pieces: Sequence[IdRange], offset: int) -> tuple[int, int]:
        """The (piece index, id) at ``offset`` of the pieces laid end to end."""
        k = 0
        while offset >= pieces[k].size:
            offset -= pieces[k].size
            k += 1
        return k, pieces[k].first + offset
