"""Geneve: 24-bit VNIs with a variable-length header (``max_header_size``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from netplex.core.type_api import MtuSettings
from netplex.drivers.types.tunnel import TunnelTypeDriver

#: Geneve header 8 + UDP 8 + inner Ethernet 14 bytes, without options.
GENEVE_ENCAP_MIN_OVERHEAD = 30


class GeneveTypeDriver(TunnelTypeDriver):
    """Geneve segments; project VNIs come from ``[ml2_type_geneve] vni_ranges``.

    The overhead is ``[ml2_type_geneve] max_header_size``: Geneve options make
    the header longer, and the operator knows how long theirs get.
    """

    network_type = "geneve"
    config_section = "ml2_type_geneve"
    ranges_option = "vni_ranges"
    max_id = 2**24 - 1

    def __init__(
        self, options: Mapping[str, Any] | None = None, mtu: MtuSettings | None = None
    ) -> None:
        # Read before the base constructor checks the resulting MTU.
        self.max_header_size = int(
            (options or {}).get("max_header_size", GENEVE_ENCAP_MIN_OVERHEAD)
        )
        super().__init__(options, mtu)

    def encap_overhead(self) -> int:
        return self.max_header_size
