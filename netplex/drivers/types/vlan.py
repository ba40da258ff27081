"""VLAN: 802.1Q tags 1..4094 on named physical networks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from netplex.core.segments_model import SegmentRequest
from netplex.core.type_api import MtuSettings
from netplex.drivers.types.pool import (
    SegmentPoolTypeDriver,
    check_physnet_name,
    config_error,
    parse_id_range,
    physical_network_mtu,
)
from netplex.errors import InvalidInput, NetplexError, SegmentationIdInUse

MIN_VLAN_TAG = 1
MAX_VLAN_TAG = 4094


def parse_network_vlan_ranges(
    entries: Iterable[str], *, section: str = "ml2_type_vlan"
) -> dict[str, list[tuple[int, int]]]:
    """Parse ``network_vlan_ranges`` entries into ``{physnet: [(min, max), ...]}``.

    ``["physnet1:100:199", "physnet2"]`` -> ``{"physnet1": [(100, 199)],
    "physnet2": [(1, 4094)]}``.

    A bare physnet name means its whole VLAN range, as current Neutron reads
    it. A physnet may be listed several times; its ranges are joined.
    """
    out: dict[str, list[tuple[int, int]]] = {}
    for entry in entries:
        entry = entry.strip()
        name, sep, rest = entry.partition(":")
        name = name.strip()
        try:
            check_physnet_name(name)
            whole = (MIN_VLAN_TAG, MAX_VLAN_TAG)
            rng = parse_id_range(rest, lo=MIN_VLAN_TAG, hi=MAX_VLAN_TAG) if sep else whole
        except ValueError as exc:
            raise config_error(
                section, "network_vlan_ranges", entry,
                f"{exc} (expected <physnet> or <physnet>:<vlan_min>:<vlan_max>)",
            ) from None
        out.setdefault(name, []).append(rng)
    return out


class VlanTypeDriver(SegmentPoolTypeDriver):
    """VLAN segments: provider networks on any listed physnet, project pools from ranges."""

    network_type = "vlan"
    config_section = "ml2_type_vlan"
    min_id = MIN_VLAN_TAG
    max_id = MAX_VLAN_TAG
    uses_physical_network = True

    def __init__(
        self, options: Mapping[str, Any] | None = None, mtu: MtuSettings | None = None
    ) -> None:
        super().__init__(options, mtu)
        entries = self.options.get("network_vlan_ranges", [])
        if isinstance(entries, str):
            entries = entries.split(",")
        self.set_pools(parse_network_vlan_ranges(e for e in entries if e.strip()))

    def validate_provider_segment(self, request: SegmentRequest) -> SegmentRequest:
        physnet, sid = request.physical_network, request.segmentation_id
        if physnet is None:
            if sid is not None:
                raise InvalidInput(
                    error_message="segmentation_id requires physical_network for VLAN "
                    "provider network"
                )
            if not self.pools:
                raise InvalidInput(
                    error_message="no physical network is configured for VLAN networks "
                    "([ml2_type_vlan] network_vlan_ranges is empty)"
                )
            return SegmentRequest(self.network_type, None, None)
        if physnet not in self.pools:
            raise InvalidInput(
                error_message=f"physical_network '{physnet}' unknown for VLAN provider network"
            )
        if sid is not None:
            self.check_segmentation_id(sid)
        return SegmentRequest(self.network_type, physnet, sid)

    def get_mtu(self, physical_network: str | None) -> int:
        return physical_network_mtu(self.mtu_settings, physical_network)

    def in_use_error(self, physical_network: str | None, segmentation_id: int) -> NetplexError:
        return SegmentationIdInUse(
            network_type=self.network_type,
            segmentation_id=segmentation_id,
            physical_network=physical_network,
        )
