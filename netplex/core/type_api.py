"""The type-driver contract: what a network type (vlan, vxlan, ...) must answer.

This module is the one to read before writing a type driver. It holds no
implementation: :class:`TypeDriver` is an abstract base class, and the two
small value types passed to it (:class:`SegmentContext`,
:class:`MtuSettings`) are plain frozen dataclasses.
``netplex.drivers.types.pool.SegmentPoolTypeDriver`` is a ready-made base for
types whose segments are numbered from configured ranges.

How a driver is found and built
    The :class:`~netplex.core.type_manager.TypeManager` loads the classes named
    in ``[ml2] type_drivers`` from the entry-point group
    ``netplex.type_drivers`` and calls ``cls(options, mtu)`` once per process:
    ``options`` holds the typed values of the driver's own INI section
    (:attr:`TypeDriver.config_section`; empty when it has none) and ``mtu`` the
    deployment-wide MTU settings. Drivers never read configuration anywhere
    else. A third-party driver declares the options of its section through
    the ``netplex.config_options`` entry-point group (a mapping
    ``{section: [netplex.config.Opt, ...]}``, see
    :data:`netplex.config.OPTIONS_ENTRY_POINT_GROUP`): they are then parsed,
    typed and checked like Netplex's own, and misspelt ones are reported.
    Bad configuration raises :class:`netplex.config.ConfigError` from the
    constructor, naming the option and the bad value; that stops the server.
    :meth:`TypeDriver.initialize` is then called once, before any request.

Transactions
    Every method that takes a :class:`SegmentContext` runs inside the caller's
    write transaction (``ctx.session``), nested in a SAVEPOINT by the type
    manager. It must not commit, must not block on anything but the database,
    and must not call out to other services. Raising any exception undoes
    everything the driver wrote in that call; a
    :class:`netplex.errors.NetplexError` reaches the API client as
    its status code, and :class:`netplex.errors.RetryRequest` makes
    the whole transaction run again.

Concurrency
    Several server processes may call the same driver on one database at the
    same time. Uniqueness must come from the database (a primary key, a
    guarded insert or update), never from a check-then-write done in Python.
"""

from __future__ import annotations

import abc
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from netplex.core.segments_model import Segment, SegmentRequest

__all__ = ["UNLIMITED", "MtuSettings", "SegmentContext", "TypeDriver"]

#: What :meth:`TypeDriver.count_free` reports for a type without a finite pool.
UNLIMITED = sys.maxsize


@dataclass(frozen=True, slots=True)
class MtuSettings:
    """Deployment-wide MTU inputs (``[DEFAULT]`` and ``[ml2]``), already validated."""

    #: ``[DEFAULT] global_physnet_mtu``: MTU of the underlying physical network.
    global_physnet_mtu: int = 1500
    #: ``[ml2] physical_network_mtus``: per-physnet MTU, physnet -> MTU.
    physical_network_mtus: Mapping[str, int] = field(default_factory=dict)
    #: ``[ml2] path_mtu``: largest IP packet the overlay path carries; 0 = unset.
    path_mtu: int = 0
    #: ``[ml2] overlay_ip_version``: 4 or 6, the IP version of tunnel underlays.
    overlay_ip_version: int = 4


@dataclass(frozen=True, slots=True)
class SegmentContext:
    """What a driver gets for work on one segment inside a write transaction.

    ``segment_id`` is the id the segment row has (or will get once the
    driver returns); drivers store it with anything they allocate, so that
    a release can only ever free what this very segment holds.
    """

    session: Session
    network_id: str
    segment_id: str


class TypeDriver(abc.ABC):
    """One network type: validates provider requests, owns its pool of segments.

    Subclasses set :attr:`network_type` (and :attr:`config_section` if they
    have options) and implement the abstract methods. All methods may be
    called from several threads at once: keep per-request state off ``self``.
    """

    #: The ``provider:network_type`` value this driver serves, e.g. ``"vlan"``.
    network_type: ClassVar[str]
    #: INI section whose typed values the constructor receives, or None.
    config_section: ClassVar[str | None] = None

    def __init__(
        self, options: Mapping[str, Any] | None = None, mtu: MtuSettings | None = None
    ) -> None:
        """Parse ``options`` (this driver's section) and keep ``mtu``.

        Raises :class:`netplex.config.ConfigError` for a bad value.
        """
        self.options: Mapping[str, Any] = dict(options or {})
        self.mtu_settings = mtu or MtuSettings()

    def initialize(self) -> None:
        """Called once at start-up, after every driver was constructed.

        No transaction is open and none may be needed: pools cost nothing up
        front. Raising ``ConfigError`` stops the server.
        """
        return None  # noqa: B027 - optional hook, deliberately not abstract

    @abc.abstractmethod
    def is_partial_segment(self, request: SegmentRequest) -> bool:
        """True when ``request`` leaves something for the driver to pick.

        A partial request (e.g. VLAN on physnet1 without an id) is served
        from the type's project pool; a full one names one exact segment.
        Only called with requests this driver has validated.
        """

    @abc.abstractmethod
    def validate_provider_segment(self, request: SegmentRequest) -> SegmentRequest:
        """Check a provider request; return it normalised.

        Called outside any transaction, before anything is written, for
        ``provider:*`` attributes, each entry of ``segments`` and segment
        API creates. ``request.network_type`` equals :attr:`network_type`;
        ``segmentation_id`` is already an ``int`` or None. Must not touch the
        database (whether an id is free is decided by the reserve call).

        :raises netplex.errors.InvalidInput: with a message an
            operator understands ("physical_network 'x' unknown for VLAN
            provider network").
        """

    @abc.abstractmethod
    def reserve_provider_segment(
        self, ctx: SegmentContext, request: SegmentRequest
    ) -> SegmentRequest:
        """Reserve what a validated provider request names; return the full segment.

        Runs in the caller's transaction. For a full request, reserve exactly
        that segment, even when it lies outside the project ranges; when it is
        taken raise the type's ``*InUse`` error (409). For a partial request,
        allocate any free segment that matches it; when there is none raise
        :class:`~netplex.errors.NoNetworkAvailable` (503).
        """

    @abc.abstractmethod
    def allocate_project_segment(self, ctx: SegmentContext) -> SegmentRequest | None:
        """Allocate a free segment from the project pool; None when it is exhausted.

        Runs in the caller's transaction. Returning None (never raising for
        an empty pool) lets the manager fall back to the next project type.
        Must only hand out ids inside the ranges configured *now*.
        """

    @abc.abstractmethod
    def release_segment(self, ctx: SegmentContext, segment: Segment) -> None:
        """Give back what ``segment`` holds; ``ctx.segment_id == segment.id``.

        Runs in the caller's transaction, before the segment row is deleted.
        Must be idempotent and must only free what this segment reserved: a
        second call, or a call after the id went to another segment, frees
        nothing. Ids outside today's ranges are released the same way.
        """

    @abc.abstractmethod
    def get_mtu(self, physical_network: str | None) -> int:
        """Largest MTU a segment of this type on ``physical_network`` can carry.

        0 means "no limit from this type" (local): the network then takes
        ``global_physnet_mtu``. Pure function of the configuration.
        """

    def count_free(self, session: Session, physical_network: str | None = None) -> int:
        """How many project-pool segments are free (on one physnet, or all).

        For diagnostics and tests ("no id leaked"). Types without a finite
        pool return :data:`UNLIMITED`. Read-only; any session will do.
        """
        return UNLIMITED
