"""Provider validation per type: what an operator may ask for, and clear 400s otherwise."""

from __future__ import annotations

import pytest

from netplex.core.segments_model import SegmentRequest as R
from netplex.core.type_api import TypeDriver
from netplex.drivers.types.flat import FlatTypeDriver
from netplex.drivers.types.geneve import GeneveTypeDriver
from netplex.drivers.types.gre import GreTypeDriver
from netplex.drivers.types.local import LocalTypeDriver
from netplex.drivers.types.vlan import VlanTypeDriver
from netplex.drivers.types.vxlan import VxlanTypeDriver
from netplex.errors import InvalidInput

DRIVERS: dict[str, TypeDriver] = {
    "local": LocalTypeDriver(),
    "flat": FlatTypeDriver({"flat_networks": ["physnet1", "physnet2"]}),
    "vlan": VlanTypeDriver({"network_vlan_ranges": ["physnet1:100:109", "physnet2"]}),
    "vxlan": VxlanTypeDriver({"vni_ranges": ["1:1000"]}),
    "gre": GreTypeDriver({"tunnel_id_ranges": ["1:1000"]}),
    "geneve": GeneveTypeDriver({"vni_ranges": ["1:1000"]}),
}

VALID = [
    (R("local"), R("local"), False),
    (R("flat", "physnet1"), R("flat", "physnet1"), False),
    (R("vlan", "physnet1", 100), R("vlan", "physnet1", 100), False),
    # Provider ids outside the project ranges are fine; only legality counts.
    (R("vlan", "physnet1", 4094), R("vlan", "physnet1", 4094), False),
    (R("vlan", "physnet2", 1), R("vlan", "physnet2", 1), False),
    (R("vlan", "physnet1"), R("vlan", "physnet1"), True),
    (R("vlan"), R("vlan"), True),
    (R("vxlan", None, 16777215), R("vxlan", None, 16777215), False),
    (R("vxlan"), R("vxlan"), True),
    (R("geneve", None, 5000), R("geneve", None, 5000), False),
    (R("gre", None, 4294967295), R("gre", None, 4294967295), False),
]


@pytest.mark.parametrize(("request_", "expected", "partial"), VALID, ids=str)
def test_valid_provider_segments(request_: R, expected: R, partial: bool) -> None:
    assert request_.network_type is not None
    driver = DRIVERS[request_.network_type]
    assert driver.validate_provider_segment(request_) == expected
    assert driver.is_partial_segment(expected) is partial


INVALID = [
    (R("local", "physnet1"), "physical_network prohibited for local"),
    (R("local", None, 5), "segmentation_id prohibited for local"),
    (R("flat"), "physical_network required for flat"),
    (R("flat", "physnet9"), "physical_network 'physnet9' unknown for flat"),
    (R("flat", "physnet1", 5), "segmentation_id prohibited for flat"),
    (R("vlan", "physnet9", 5), "physical_network 'physnet9' unknown for VLAN"),
    (R("vlan", None, 5), "segmentation_id requires physical_network"),
    (R("vlan", "physnet1", 0), "out of range (1 through 4094)"),
    (R("vlan", "physnet1", 4095), "out of range (1 through 4094)"),
    (R("vxlan", "physnet1", 5), "physical_network specified for vxlan"),
    (R("vxlan", None, 0), "out of range (1 through 16777215)"),
    # 2**24 does not fit a VNI (Neutron accepts it; we do not).
    (R("vxlan", None, 2**24), "out of range (1 through 16777215)"),
    (R("geneve", None, 2**24), "out of range (1 through 16777215)"),
    (R("gre", None, 2**32), "out of range (1 through 4294967295)"),
    (R("gre", None, -1), "out of range"),
]


@pytest.mark.parametrize(("request_", "message"), INVALID, ids=str)
def test_invalid_provider_segments(request_: R, message: str) -> None:
    assert request_.network_type is not None
    with pytest.raises(InvalidInput) as err:
        DRIVERS[request_.network_type].validate_provider_segment(request_)
    assert err.value.status == 400
    assert message in str(err.value)


def test_flat_disabled_and_star() -> None:
    with pytest.raises(InvalidInput, match="Flat provider networks are disabled"):
        FlatTypeDriver({"flat_networks": []}).validate_provider_segment(R("flat", "physnet1"))
    anything = FlatTypeDriver({"flat_networks": ["*"]})
    assert anything.validate_provider_segment(R("flat", "whatever")) == R("flat", "whatever")


def test_vlan_without_physnets_cannot_pick_one() -> None:
    with pytest.raises(InvalidInput, match="network_vlan_ranges is empty"):
        VlanTypeDriver({}).validate_provider_segment(R("vlan"))
