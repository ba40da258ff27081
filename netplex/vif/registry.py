"""Which plugin plugs which vif_type: built-ins plus the ``netplex.vif_plugins`` entry points.

A registry is an ordinary object built once (by the caller, at start-up) and
passed to whoever plugs: there is no module-level plugin table to reset in
tests. Building it fails fast: a plugin that does not load, or two plugins
claiming one vif_type, raise :class:`~netplex.vif.errors.PluginError` then,
not at the first plug.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib import metadata

from netplex.vif.errors import PluginError, UnsupportedVifType
from netplex.vif.model import VIF, InstanceInfo
from netplex.vif.ops import Op
from netplex.vif.plugin import PluginInfo, VifPlugin
from netplex.vif.plugins import BUILTIN_PLUGINS

__all__ = ["ENTRY_POINT_GROUP", "PluginRegistry"]

LOG = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "netplex.vif_plugins"


class PluginRegistry:
    """Maps each vif_type to the one plugin that plugs it."""

    def __init__(self, plugins: Iterable[VifPlugin]) -> None:
        self._plugins: list[VifPlugin] = []
        self._by_type: dict[str, VifPlugin] = {}
        for plugin in plugins:
            for vif_type in plugin.vif_types:
                other = self._by_type.get(vif_type)
                if other is not None:
                    raise PluginError(
                        f"vif_type {vif_type!r} is claimed by plugins {other.name!r} "
                        f"({type(other).__module__}) and {plugin.name!r} "
                        f"({type(plugin).__module__})"
                    )
                self._by_type[vif_type] = plugin
            self._plugins.append(plugin)

    @classmethod
    def default(cls, *, entry_points: bool = True) -> PluginRegistry:
        """The built-in plugins plus those installed under ``netplex.vif_plugins``.

        An entry point naming a built-in class (Netplex's own registration) is
        not loaded twice.
        """
        classes: list[type[VifPlugin]] = list(BUILTIN_PLUGINS)
        if entry_points:
            for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
                try:
                    loaded = ep.load()
                except Exception as exc:  # any import error of a third-party plugin
                    raise PluginError(
                        f"VIF plugin {ep.name!r} ({ep.value}) failed to load: {exc}"
                    ) from exc
                if not (isinstance(loaded, type) and issubclass(loaded, VifPlugin)):
                    raise PluginError(
                        f"VIF plugin {ep.name!r} ({ep.value}) is not a VifPlugin subclass"
                    )
                if loaded not in classes:
                    LOG.info("loaded VIF plugin %s from %s", ep.name, ep.value)
                    classes.append(loaded)
        return cls(c() for c in classes)

    @property
    def vif_types(self) -> tuple[str, ...]:
        """Every vif_type some plugin handles, sorted."""
        return tuple(sorted(self._by_type))

    def describe(self) -> list[PluginInfo]:
        """What this host can plug (one entry per plugin)."""
        return [p.describe() for p in self._plugins]

    def get(self, vif_type: str, *, port_id: str | None = None) -> VifPlugin:
        """The plugin for ``vif_type``; raises UnsupportedVifType listing the supported ones."""
        try:
            return self._by_type[vif_type]
        except KeyError:
            raise UnsupportedVifType(vif_type, self.vif_types, port_id) from None

    def plan_plug(self, vif: VIF, instance: InstanceInfo) -> list[Op]:
        return self.get(vif.vif_type, port_id=vif.id).plan_plug(vif, instance)

    def plan_unplug(self, vif: VIF, instance: InstanceInfo) -> list[Op]:
        return self.get(vif.vif_type, port_id=vif.id).plan_unplug(vif, instance)

    def vm_device(self, vif: VIF, instance: InstanceInfo) -> str | None:
        return self.get(vif.vif_type, port_id=vif.id).vm_device(vif, instance)
