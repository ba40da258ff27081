"""service_plugins = ...: resolved by entry point; Neutron's names accepted with a reason; others refused."""

from __future__ import annotations

import pytest

from netplex.config import Config, ConfigError
from netplex.core.service_api import CoreAccess, ServicePlugin
from netplex.services import registry


class _Demo(ServicePlugin):
    name = "demo"

    @classmethod
    def build(cls, cfg: Config, core: CoreAccess) -> ServicePlugin:
        return cls()


def test_neutron_names_are_accepted_with_the_reason() -> None:
    sel = registry.select(["tag", "router", "revisions", "tag"])
    assert sel.plugins == ()
    names = [n for n, _ in sel.accepted]
    assert names == ["tag", "router", "revisions"]  # in order, duplicates once
    why = dict(sel.accepted)
    assert "always on" in why["tag"] and "does not build" in why["router"]


def test_unknown_name_says_what_is_installed_and_what_to_do() -> None:
    with pytest.raises(ConfigError) as err:
        registry.select(["no-such-plugin"])
    msg = str(err.value)
    assert "no-such-plugin" in msg and "installed:" in msg and "remove it" in msg


def test_classes_given_directly_are_added_once() -> None:
    sel = registry.select([], extra=[_Demo, _Demo])
    assert sel.plugins == (_Demo,)


def test_an_entry_point_that_is_not_a_plugin_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class _EP:
        name = "bad"
        value = "somewhere:Thing"

        def load(self) -> object:
            return object

    monkeypatch.setattr(registry, "entry_points", lambda **kw: [_EP()] if kw.get("name") == "bad" else [])
    with pytest.raises(ConfigError, match="not a ServicePlugin"):
        registry.select(["bad"])
