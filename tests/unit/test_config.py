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


@pytest.fixture
def schema(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, config.Opt]]:
    """A private copy of the schema, so registering options does not leak into other tests."""
    copy = {section: dict(opts) for section, opts in config.SCHEMA.items()}
    monkeypatch.setattr(config, "SCHEMA", copy)
    monkeypatch.setattr(config, "_plugins_loaded", False)
    return copy


class _EntryPoint:
    def __init__(self, name: str, target: object) -> None:
        self.name, self.value, self._target = name, f"acme:{name}", target

    def load(self) -> object:
        if isinstance(self._target, Exception):
            raise self._target
        return self._target


def _entry_points(monkeypatch: pytest.MonkeyPatch, *eps: _EntryPoint) -> None:
    import importlib.metadata

    def fake(group: str) -> list[_EntryPoint]:
        return list(eps) if group == config.OPTIONS_ENTRY_POINT_GROUP else []

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)


def test_third_party_options_come_from_entry_points(
    schema: dict[str, dict[str, config.Opt]], monkeypatch: pytest.MonkeyPatch
) -> None:
    opts = {"ml2_type_acme": [config.Opt("acme_ranges", config.parse_list, [], "Acme ranges.")]}
    _entry_points(monkeypatch, _EntryPoint("acme", lambda: opts))
    cfg = config.load(text="[ml2_type_acme]\nacme_ranges = a, b\nacme_typo = 1\n")
    assert cfg.get("ml2_type_acme", "acme_ranges") == ["a", "b"]
    assert cfg.unknown == ["[ml2_type_acme] acme_typo (<text>)"]
    # Without a file setting it, the declared default is there.
    assert config.load().get("ml2_type_acme", "acme_ranges") == []


def test_conflicting_or_broken_declarations_are_errors(
    schema: dict[str, dict[str, config.Opt]], monkeypatch: pytest.MonkeyPatch
) -> None:
    config.register_options("acme", [config.Opt("x", int, 1, "")])
    config.register_options("acme", [config.Opt("x", int, 1, "same again: fine")])
    with pytest.raises(config.ConfigError, match=r"\[acme\] x is declared twice"):
        config.register_options("acme", [config.Opt("x", int, 2, "")])
    _entry_points(monkeypatch, _EntryPoint("broken", ImportError("no module named acme_netplex")))
    with pytest.raises(config.ConfigError, match="cannot load the options of 'broken'.*uninstall"):
        config.load()


def test_oslo_policy_file_option() -> None:
    assert config.load().get("oslo_policy", "policy_file") == "policy.yaml"
    cfg = config.load(text="[oslo_policy]\npolicy_file = /etc/neutron/policy.json\n")
    assert cfg.get("oslo_policy", "policy_file") == "/etc/neutron/policy.json"
    assert cfg.unknown == []
