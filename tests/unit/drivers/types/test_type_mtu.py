"""MTU per type, the way Neutron computes it."""

from __future__ import annotations

import pytest

from netplex.core.type_api import MtuSettings
from netplex.drivers.types.flat import FlatTypeDriver
from netplex.drivers.types.geneve import GeneveTypeDriver
from netplex.drivers.types.gre import GreTypeDriver
from netplex.drivers.types.local import LocalTypeDriver
from netplex.drivers.types.tunnel import TunnelTypeDriver
from netplex.drivers.types.vlan import VlanTypeDriver
from netplex.drivers.types.vxlan import VxlanTypeDriver

PHYS = {"physnet1": 9000, "physnet2": 1400}


@pytest.mark.parametrize("cls", [VlanTypeDriver, FlatTypeDriver])
def test_physnet_types_take_the_smaller_of_global_and_physnet_mtu(
    cls: type[VlanTypeDriver] | type[FlatTypeDriver],
) -> None:
    d = cls({}, MtuSettings(global_physnet_mtu=1500, physical_network_mtus=PHYS))
    # physical_network_mtus lowers a physnet's MTU; it cannot raise it (Neutron).
    assert d.get_mtu("physnet1") == 1500
    assert d.get_mtu("physnet2") == 1400
    assert d.get_mtu("other") == 1500
    big = cls({}, MtuSettings(global_physnet_mtu=9000, physical_network_mtus=PHYS))
    assert big.get_mtu("physnet1") == 9000
    assert big.get_mtu("physnet2") == 1400


@pytest.mark.parametrize(
    ("cls", "options", "overhead"),
    [
        (VxlanTypeDriver, {}, 30),
        (GreTypeDriver, {}, 22),
        (GeneveTypeDriver, {}, 30),
        (GeneveTypeDriver, {"max_header_size": 50}, 50),
    ],
)
@pytest.mark.parametrize(("ip_version", "ip_header"), [(4, 20), (6, 40)])
def test_tunnel_mtu_is_underlay_minus_ip_header_and_encapsulation(
    cls: type[TunnelTypeDriver], options: dict[str, int], overhead: int,
    ip_version: int, ip_header: int,
) -> None:
    def mtu(global_mtu: int, path_mtu: int) -> int:
        settings = MtuSettings(
            global_physnet_mtu=global_mtu, path_mtu=path_mtu,
            physical_network_mtus=PHYS, overlay_ip_version=ip_version,
        )
        return cls(options, settings).get_mtu(None)

    assert mtu(1500, 0) == 1500 - ip_header - overhead
    # path_mtu caps the underlay; physical_network_mtus play no part for tunnels.
    assert mtu(1500, 1400) == 1400 - ip_header - overhead
    assert mtu(9000, 1500) == 1500 - ip_header - overhead
    assert mtu(1450, 9000) == 1450 - ip_header - overhead


def test_neutron_defaults_give_the_familiar_numbers() -> None:
    assert VxlanTypeDriver().get_mtu(None) == 1450
    assert GreTypeDriver().get_mtu(None) == 1458
    assert GeneveTypeDriver().get_mtu(None) == 1450
    assert VxlanTypeDriver({}, MtuSettings(overlay_ip_version=6)).get_mtu(None) == 1430


def test_local_has_no_limit_of_its_own() -> None:
    assert LocalTypeDriver().get_mtu(None) == 0
