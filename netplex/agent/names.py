"""Names of the host devices the agents make (Neutron's conventions), shared by every backend and the filter."""

from __future__ import annotations

__all__ = ["bridge_name", "tap_name", "vxlan_name"]


def tap_name(port_id: str) -> str:
    """Host-side device of a port: ``tap`` + first 11 chars of its id (Neutron's convention)."""
    return f"tap{port_id[:11]}"


def bridge_name(network_id: str) -> str:
    """Linux bridge of a network: ``brq`` + first 11 chars of its id (Neutron's convention)."""
    return f"brq{network_id[:11]}"


def vxlan_name(vni: int) -> str:
    """Kernel VXLAN device of a VNI, shared by both backends (<= 14 chars for 24-bit VNIs)."""
    return f"vxlan-{vni}"
