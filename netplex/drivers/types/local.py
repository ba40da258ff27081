"""Local: a network that exists on one host only; nothing to allocate."""

from __future__ import annotations

from netplex.core.segments_model import Segment, SegmentRequest
from netplex.core.type_api import SegmentContext, TypeDriver
from netplex.errors import InvalidInput


class LocalTypeDriver(TypeDriver):
    """Local segments: no physnet, no id, unlimited; the template for a new type."""

    network_type = "local"

    def is_partial_segment(self, request: SegmentRequest) -> bool:
        return False

    def validate_provider_segment(self, request: SegmentRequest) -> SegmentRequest:
        if request.physical_network is not None:
            raise InvalidInput(
                error_message="provider:physical_network prohibited for local provider network"
            )
        if request.segmentation_id is not None:
            raise InvalidInput(
                error_message="provider:segmentation_id prohibited for local provider network"
            )
        return SegmentRequest(self.network_type, None, None)

    def reserve_provider_segment(
        self, ctx: SegmentContext, request: SegmentRequest
    ) -> SegmentRequest:
        return SegmentRequest(self.network_type, None, None)

    def allocate_project_segment(self, ctx: SegmentContext) -> SegmentRequest | None:
        return SegmentRequest(self.network_type, None, None)

    def release_segment(self, ctx: SegmentContext, segment: Segment) -> None:
        return None

    def get_mtu(self, physical_network: str | None) -> int:
        # No wire, no limit: the network takes global_physnet_mtu (Neutron does the same).
        return 0
