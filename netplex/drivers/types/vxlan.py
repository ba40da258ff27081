"""VXLAN: 24-bit VNIs 1..16,777,215 over UDP."""

from __future__ import annotations

from netplex.drivers.types.tunnel import TunnelTypeDriver

#: VXLAN header 8 + UDP 8 + inner Ethernet 14 bytes (the outer IP header is extra).
VXLAN_ENCAP_OVERHEAD = 30


class VxlanTypeDriver(TunnelTypeDriver):
    """VXLAN segments; project VNIs come from ``[ml2_type_vxlan] vni_ranges``."""

    network_type = "vxlan"
    config_section = "ml2_type_vxlan"
    ranges_option = "vni_ranges"
    # A VNI has 24 bits; 0 is reserved. (Neutron also accepts 2**24, which
    # does not fit in the header.)
    max_id = 2**24 - 1

    def encap_overhead(self) -> int:
        return VXLAN_ENCAP_OVERHEAD
