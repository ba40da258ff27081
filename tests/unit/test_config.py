from __future__ import annotations

from pathlib import Path

import pytest

from netplex import config


def test_defaults_and_neutron_names(tmp_path: Path) -> None:
    f = tmp_path / "neutron.conf"
    f.write_text(
        "[DEFAULT]\nbind_port = 9797\nbase_mac = FA:16:3E:00:00:00\napi_workers = 2\n"
        "[database]\nconnection = postgresql://u@h/db\n"
        "[ml2]\ntenant_network_types = vlan,vxlan\nmechanism_drivers = openvswitch\n"
        "[ml2_type_vlan]\nnetwork_vlan_ranges = physnet1:100:199,physnet2\n"
    )
    cfg = config.load([f])
    assert cfg.get("DEFAULT", "bind_port") == 9797
    assert cfg.get("DEFAULT", "base_mac") == "fa:16:3e:00:00:00"
    assert cfg.get("ml2", "project_network_types") == ["vlan", "vxlan"]  # old alias accepted
    assert cfg.database_url == "postgresql://u@h/db"
    assert cfg.unknown == []


def test_unknown_options_are_reported(tmp_path: Path) -> None:
    cfg = config.load(text="[DEFAULT]\nbogus = 1\n[nosuch]\nx = 1\n")
    assert any("bogus" in u for u in cfg.unknown)
    assert any("nosuch" in u for u in cfg.unknown)


@pytest.mark.parametrize(
    "text,needle",
    [
        ("[DEFAULT]\nbind_port = 70000\n", "bind_port"),
        ("[DEFAULT]\nbase_mac = 01:00:00:00:00:00\n", "base_mac"),
        ("[DEFAULT]\ndebug = perhaps\n", "debug"),
        ("[ovs]\nbridge_mappings = physnet1\n", "bridge_mappings"),
    ],
)
def test_bad_values_name_option_and_value(text: str, needle: str) -> None:
    with pytest.raises(config.ConfigError, match=needle):
        config.load(text=text)


def test_missing_file() -> None:
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load(["/nonexistent/netplex.conf"])
