"""Flat: a whole physical network, untagged; at most one network per physnet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from netplex.core.segments_model import Segment, SegmentRequest
from netplex.core.type_api import UNLIMITED, MtuSettings, SegmentContext, TypeDriver
from netplex.db.models import SegmentAllocation
from netplex.drivers.types.pool import (
    check_physnet_name,
    claim_allocation,
    config_error,
    physical_network_mtu,
    release_allocation,
)
from netplex.errors import FlatNetworkInUse, InvalidInput

#: Flat segments have no id; the allocation row of a physnet uses this one.
FLAT_ID = 0


class FlatTypeDriver(TypeDriver):
    """Flat segments: provider networks only (projects cannot get one).

    ``[ml2_type_flat] flat_networks`` lists the physnets allowed; ``*``
    allows any, an empty list disables flat networks.
    """

    network_type = "flat"
    config_section = "ml2_type_flat"

    def __init__(
        self, options: Mapping[str, Any] | None = None, mtu: MtuSettings | None = None
    ) -> None:
        super().__init__(options, mtu)
        names = self.options.get("flat_networks", ["*"])
        if isinstance(names, str):
            names = names.split(",")
        names = [n.strip() for n in names if n.strip()]
        #: None means any physnet ('*').
        self.flat_networks: frozenset[str] | None
        if "*" in names:
            self.flat_networks = None
        else:
            for name in names:
                try:
                    check_physnet_name(name)
                except ValueError as exc:
                    raise config_error(self.config_section, "flat_networks", name,
                                       str(exc)) from None
            self.flat_networks = frozenset(names)

    def is_partial_segment(self, request: SegmentRequest) -> bool:
        return False

    def validate_provider_segment(self, request: SegmentRequest) -> SegmentRequest:
        physnet = request.physical_network
        if physnet is None:
            raise InvalidInput(
                error_message="physical_network required for flat provider network"
            )
        if self.flat_networks is not None and not self.flat_networks:
            raise InvalidInput(error_message="Flat provider networks are disabled")
        if self.flat_networks is not None and physnet not in self.flat_networks:
            raise InvalidInput(
                error_message=f"physical_network '{physnet}' unknown for flat provider network"
            )
        if request.segmentation_id is not None:
            raise InvalidInput(
                error_message="provider:segmentation_id prohibited for flat provider network"
            )
        return SegmentRequest(self.network_type, physnet, None)

    def reserve_provider_segment(
        self, ctx: SegmentContext, request: SegmentRequest
    ) -> SegmentRequest:
        physnet = request.physical_network or ""
        if not claim_allocation(ctx.session, self.network_type, physnet, FLAT_ID,
                                ctx.segment_id):
            raise FlatNetworkInUse(physical_network=physnet)
        return SegmentRequest(self.network_type, physnet, None)

    def allocate_project_segment(self, ctx: SegmentContext) -> SegmentRequest | None:
        # As in Neutron: a project cannot be given a whole physical network.
        return None

    def release_segment(self, ctx: SegmentContext, segment: Segment) -> None:
        release_allocation(
            ctx.session, self.network_type, segment.physical_network or "", FLAT_ID, segment.id
        )

    def get_mtu(self, physical_network: str | None) -> int:
        return physical_network_mtu(self.mtu_settings, physical_network)

    def count_free(self, session: Session, physical_network: str | None = None) -> int:
        """Free physnets: 0 or 1 for a named one; with ``*`` and none named, UNLIMITED."""
        if physical_network is None and self.flat_networks is None:
            return UNLIMITED
        if physical_network is not None:
            if self.flat_networks is not None and physical_network not in self.flat_networks:
                return 0
            names = [physical_network]
        else:
            names = sorted(self.flat_networks or ())
        if not names:
            return 0
        taken = session.execute(
            select(func.count()).where(
                SegmentAllocation.network_type == self.network_type,
                SegmentAllocation.physical_network.in_(names),
            )
        ).scalar_one()
        return len(names) - int(taken)
