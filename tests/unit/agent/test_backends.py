"""A backend kind's own configuration section reaches its settings, checked like Netplex's options."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from netplex import config
from netplex.agent import backends
from netplex.agent.backend_api import Backend, BackendKind
from netplex.agent.settings import AgentSettings, SettingsError

SECTION = "npt_backend_x"


class XKind(BackendKind):
    name = "x"
    agent_type = "X agent"
    binary = "netplex-x-agent"
    options_section = SECTION

    def validate(self, settings: AgentSettings) -> None:
        if settings.backend_options["peers"] and settings.backend_options["mode"] != "bgp":
            raise SettingsError("peers need mode bgp", f"set [{SECTION}] mode = bgp")

    def configurations(self, settings: AgentSettings) -> dict[str, Any]:
        return {"mode": settings.backend_options["mode"]}

    def build(self, settings: AgentSettings) -> Backend[Any]:
        raise NotImplementedError


class PlainKind(XKind):
    name = "plain"
    options_section = None


@pytest.fixture
def kinds(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], BackendKind]]:
    """The two kinds above, as if installed; [npt_backend_x] declared as a plugin would declare it."""
    table: dict[str, BackendKind] = {"x": XKind(), "plain": PlainKind()}
    monkeypatch.setattr(backends, "backend_kind", table.__getitem__)
    config.register_options(SECTION, [
        config.Opt("mode", config.parse_choice("feed", "bgp"), "feed", "Route distribution."),
        config.Opt("peers", config.parse_list, [], "BGP peers."),
    ])
    try:
        yield table.__getitem__
    finally:
        config.SCHEMA.pop(SECTION, None)


def test_a_kind_gets_its_own_section_parsed(kinds: Callable[[str], BackendKind]) -> None:
    cfg = config.load(text=f"[DEFAULT]\nhost = h\n[{SECTION}]\nmode = bgp\npeers = 10.0.0.1, 10.0.0.2\n")
    s = backends.settings_from_config(cfg, "x")
    assert dict(s.backend_options) == {"mode": "bgp", "peers": ["10.0.0.1", "10.0.0.2"]}
    assert not cfg.unknown
    backends.validate(s)
    assert backends.configurations(s)["mode"] == "bgp"


def test_defaults_when_the_file_does_not_name_the_section(kinds: Callable[[str], BackendKind]) -> None:
    s = backends.settings_from_config(config.load(text="[DEFAULT]\nhost = h\n"), "x")
    assert dict(s.backend_options) == {"mode": "feed", "peers": []}


def test_an_invalid_value_is_a_config_error_naming_it(kinds: Callable[[str], BackendKind]) -> None:
    with pytest.raises(config.ConfigError, match=rf"\[{SECTION}\] mode = 'ospf'"):
        config.load(text=f"[{SECTION}]\nmode = ospf\n")


def test_an_unknown_option_of_the_section_is_reported(kinds: Callable[[str], BackendKind]) -> None:
    cfg = config.load(text=f"[{SECTION}]\nmodes = bgp\n")
    assert any(f"[{SECTION}] modes" in u for u in cfg.unknown)


def test_the_kind_validates_its_own_options(kinds: Callable[[str], BackendKind]) -> None:
    cfg = config.load(text=f"[DEFAULT]\nhost = h\n[{SECTION}]\npeers = 10.0.0.1\n")
    with pytest.raises(SettingsError) as exc:
        backends.validate(backends.settings_from_config(cfg, "x"))
    assert "mode = bgp" in exc.value.hint


def test_a_section_nobody_declared_is_a_settings_error(kinds: Callable[[str], BackendKind]) -> None:
    cfg = config.load(text="[DEFAULT]\nhost = h\n")
    config.SCHEMA.pop(SECTION)
    cfg.values.pop(SECTION, None)
    with pytest.raises(SettingsError) as exc:
        backends.settings_from_config(cfg, "x")
    assert "netplex.config_options" in exc.value.hint


def test_a_kind_without_a_section_gets_an_empty_mapping(kinds: Callable[[str], BackendKind]) -> None:
    s = backends.settings_from_config(config.load(text="[DEFAULT]\nhost = h\n"), "plain")
    assert dict(s.backend_options) == {}
    assert dict(AgentSettings(host="h", mechanism="plain").backend_options) == {}
