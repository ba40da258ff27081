"""Shared base of the tunnel types (VXLAN, GRE, Geneve): no physnet, an id, an overhead."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

from netplex.config import ConfigError
from netplex.core.segments_model import SegmentRequest
from netplex.core.type_api import MtuSettings
from netplex.drivers.types.pool import SegmentPoolTypeDriver, config_error, parse_id_range
from netplex.errors import InvalidInput, NetplexError, TunnelIdInUse

#: Bytes of the outer IP header, by ``overlay_ip_version``.
IP_HEADER_LENGTH = {4: 20, 6: 40}

#: Smallest MTU an IPv4 link may have (RFC 791); less is a configuration error.
MIN_LINK_MTU = 68


class TunnelTypeDriver(SegmentPoolTypeDriver):
    """A tunnel type: ids from ``<ranges_option>`` (``min:max`` entries), no physnet.

    Subclasses set :attr:`network_type`, :attr:`config_section`,
    :attr:`ranges_option`, :attr:`max_id` and implement :meth:`encap_overhead`.
    """

    #: Option of :attr:`config_section` holding the project ranges.
    ranges_option: ClassVar[str]

    def __init__(
        self, options: Mapping[str, Any] | None = None, mtu: MtuSettings | None = None
    ) -> None:
        super().__init__(options, mtu)
        entries = self.options.get(self.ranges_option, [])
        if isinstance(entries, str):
            entries = entries.split(",")
        ranges: list[tuple[int, int]] = []
        for entry in entries:
            if not entry.strip():
                continue
            try:
                ranges.append(parse_id_range(entry.strip(), lo=self.min_id, hi=self.max_id))
            except ValueError as exc:
                raise config_error(self.config_section, self.ranges_option, entry.strip(),
                                   f"{exc} (expected <min>:<max>)") from None
        self.set_pools({"": ranges})
        underlay, mtu_now = self.underlay_mtu(), self.get_mtu(None)
        if underlay > 0 and mtu_now < MIN_LINK_MTU:
            raise ConfigError(
                f"[DEFAULT] global_physnet_mtu / [ml2] path_mtu = {underlay} is invalid: "
                f"after the {self.network_type} overhead ({underlay - mtu_now} bytes) "
                f"networks would get an MTU of {mtu_now}, below {MIN_LINK_MTU}"
            )

    @abc.abstractmethod
    def encap_overhead(self) -> int:
        """Bytes the encapsulation adds on top of the outer IP header."""

    def underlay_mtu(self) -> int:
        """MTU of the path tunnels cross: the smaller of global_physnet_mtu and path_mtu."""
        s = self.mtu_settings
        mtus = [m for m in (s.global_physnet_mtu, s.path_mtu) if m > 0]
        return min(mtus) if mtus else 0

    def get_mtu(self, physical_network: str | None) -> int:
        # Neutron's formula: tunnels ignore physical_network_mtus; the outer
        # IP header and the encapsulation come off the underlay MTU.
        underlay = self.underlay_mtu()
        if not underlay:
            return 0
        ip_header = IP_HEADER_LENGTH[self.mtu_settings.overlay_ip_version]
        return underlay - ip_header - self.encap_overhead()

    def validate_provider_segment(self, request: SegmentRequest) -> SegmentRequest:
        if request.physical_network is not None:
            raise InvalidInput(
                error_message=(
                    f"provider:physical_network specified for {self.network_type} network"
                )
            )
        if request.segmentation_id is not None:
            self.check_segmentation_id(request.segmentation_id)
        return SegmentRequest(self.network_type, None, request.segmentation_id)

    def in_use_error(self, physical_network: str | None, segmentation_id: int) -> NetplexError:
        return TunnelIdInUse(tunnel_id=segmentation_id)
