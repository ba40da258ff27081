"""Type-driver configuration: Neutron's formats, and errors that name option and value."""

from __future__ import annotations

import pytest

from netplex.config import ConfigError
from netplex.core.type_api import MtuSettings
from netplex.drivers.types.flat import FlatTypeDriver
from netplex.drivers.types.geneve import GeneveTypeDriver
from netplex.drivers.types.gre import GreTypeDriver
from netplex.drivers.types.vlan import VlanTypeDriver
from netplex.drivers.types.vxlan import VxlanTypeDriver


def test_vlan_ranges_bare_physnet_means_whole_range_and_ranges_merge() -> None:
    d = VlanTypeDriver({"network_vlan_ranges": [
        "physnet1:100:199", "physnet2", "physnet1:150:250", "physnet1:251:260", "physnet3:5:5",
    ]})
    assert d.pools == {
        "physnet1": [(100, 260)],
        "physnet2": [(1, 4094)],
        "physnet3": [(5, 5)],
    }


def test_vlan_no_ranges_means_no_physnets() -> None:
    assert VlanTypeDriver({}).pools == {}


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("physnet1:5:3", "minimum 5 is greater than maximum 3"),
        ("physnet1:0:10", "ids must lie in 1..4094"),
        ("physnet1:1:4095", "ids must lie in 1..4094"),
        ("physnet1:100", "expected <min>:<max>"),
        ("physnet1:a:b", "must be integers"),
        (":1:10", "name is empty"),
        ("p" * 65 + ":1:2", "longer than 64"),
    ],
)
def test_vlan_bad_ranges_name_option_and_value(entry: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        VlanTypeDriver({"network_vlan_ranges": ["physnet0", entry]})
    msg = str(err.value)
    assert "[ml2_type_vlan] network_vlan_ranges" in msg
    assert repr(entry) in msg
    assert reason in msg


@pytest.mark.parametrize(
    ("cls", "option", "good", "bad"),
    [
        (VxlanTypeDriver, "vni_ranges", "1:16777215", "1:16777216"),
        (GeneveTypeDriver, "vni_ranges", "1:16777215", "1:16777216"),
        (GreTypeDriver, "tunnel_id_ranges", "1:4294967295", "1:4294967296"),
    ],
)
def test_tunnel_ranges_accept_the_full_id_space_and_no_more(
    cls: type[VxlanTypeDriver], option: str, good: str, bad: str
) -> None:
    driver = cls({option: [good]})
    lo, hi = good.split(":")
    assert driver.pools == {"": [(int(lo), int(hi))]}
    for entry in (bad, "0:10", "10:5", "10", "x:y"):
        with pytest.raises(ConfigError) as err:
            cls({option: [entry]})
        assert f"[{cls.config_section}] {option} = {entry!r}" in str(err.value)


def test_tunnel_mtu_that_leaves_no_room_stops_start_up() -> None:
    with pytest.raises(ConfigError, match="path_mtu"):
        VxlanTypeDriver({}, MtuSettings(global_physnet_mtu=1500, path_mtu=100))


def test_flat_networks_star_empty_and_names() -> None:
    assert FlatTypeDriver({"flat_networks": ["*"]}).flat_networks is None
    assert FlatTypeDriver({"flat_networks": ["a", "*"]}).flat_networks is None
    assert FlatTypeDriver({"flat_networks": []}).flat_networks == frozenset()
    assert FlatTypeDriver({"flat_networks": ["a", "b"]}).flat_networks == {"a", "b"}
    with pytest.raises(ConfigError, match=r"\[ml2_type_flat\] flat_networks"):
        FlatTypeDriver({"flat_networks": ["x" * 65]})
