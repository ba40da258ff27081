"""GRE: 32-bit keys 1..4,294,967,295."""

from __future__ import annotations

from netplex.drivers.types.tunnel import TunnelTypeDriver

#: GRE header with key 8 + inner Ethernet 14 bytes (the outer IP header is extra).
GRE_ENCAP_OVERHEAD = 22


class GreTypeDriver(TunnelTypeDriver):
    """GRE segments; project keys come from ``[ml2_type_gre] tunnel_id_ranges``."""

    network_type = "gre"
    config_section = "ml2_type_gre"
    ranges_option = "tunnel_id_ranges"
    max_id = 2**32 - 1

    def encap_overhead(self) -> int:
        return GRE_ENCAP_OVERHEAD
