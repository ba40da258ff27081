"""The plugin registry: built-ins, entry points, conflicts, unsupported types."""

from __future__ import annotations

from importlib import metadata
from typing import Any, ClassVar

import pytest

from netplex.vif import InstanceInfo, PluginError, PluginRegistry, UnsupportedVifType, VifPlugin
from netplex.vif.binding import vif_from_port
from netplex.vif.model import VIF
from netplex.vif.ops import Op
from netplex.vif.plugins import BridgePlugin, OvsPlugin
from netplex.vif.registry import ENTRY_POINT_GROUP
from tests.unit.vif.factories import PORT_ID, port


class MacvtapPlugin(VifPlugin):
    name: ClassVar[str] = "macvtap"
    vif_types: ClassVar[tuple[str, ...]] = ("macvtap",)

    def plan_plug(self, vif: VIF, instance: InstanceInfo) -> list[Op]:
        return []

    def plan_unplug(self, vif: VIF, instance: InstanceInfo) -> list[Op]:
        return []


class AnotherOvs(MacvtapPlugin):
    name: ClassVar[str] = "other-ovs"
    vif_types: ClassVar[tuple[str, ...]] = ("ovs",)


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, eps: list[metadata.EntryPoint]) -> None:
    real = metadata.entry_points

    def entry_points(**kwargs: Any) -> Any:
        if kwargs.get("group") == ENTRY_POINT_GROUP:
            return eps
        return real(**kwargs)

    monkeypatch.setattr(metadata, "entry_points", entry_points)


def ep(name: str, value: str) -> metadata.EntryPoint:
    return metadata.EntryPoint(name, value, ENTRY_POINT_GROUP)


def test_builtin_types() -> None:
    reg = PluginRegistry.default(entry_points=False)
    assert reg.vif_types == ("bridge", "ovs", "tap", "vhostuser")
    assert [i.name for i in reg.describe()] == ["bridge", "ovs", "tap", "vhostuser"]
    assert isinstance(reg.get("ovs"), OvsPlugin)


def test_unknown_vif_type_lists_supported_ones() -> None:
    reg = PluginRegistry.default(entry_points=False)
    vif = vif_from_port(port("midonet"))
    with pytest.raises(UnsupportedVifType) as info:
        reg.plan_plug(vif, InstanceInfo("u", netns="vm1"))
    err = info.value
    assert err.vif_type == "midonet" and err.port_id == PORT_ID
    assert err.supported == ("bridge", "ovs", "tap", "vhostuser")
    assert "'midonet'" in str(err) and "bridge, ovs, tap, vhostuser" in str(err)
    assert PORT_ID in str(err)


def test_conflicting_plugins_fail_at_build_time() -> None:
    with pytest.raises(PluginError, match="'ovs' is claimed by plugins 'ovs'"):
        PluginRegistry([OvsPlugin(), AnotherOvs()])


def test_third_party_plugin_from_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, [
        ep("macvtap", f"{__name__}:MacvtapPlugin"),
        # Netplex's own registration of a built-in is not loaded twice.
        ep("bridge", "netplex.vif.plugins.bridge:BridgePlugin"),
    ])
    reg = PluginRegistry.default()
    assert reg.vif_types == ("bridge", "macvtap", "ovs", "tap", "vhostuser")
    assert isinstance(reg.get("bridge"), BridgePlugin)


def test_broken_entry_point_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, [ep("broken", "no_such_module_xyz:Plugin")])
    with pytest.raises(PluginError, match="'broken'.*failed to load"):
        PluginRegistry.default()


def test_entry_point_that_is_not_a_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, [ep("odd", "os:path")])
    with pytest.raises(PluginError, match="not a VifPlugin"):
        PluginRegistry.default()
