"""Type drivers from the configuration: loading them by name and checking ``[ml2]`` against them.

All of it runs at start-up; bad configuration raises
:class:`~netplex.config.ConfigError` before the server takes requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points

from netplex.config import Config, ConfigError
from netplex.core.type_api import MtuSettings, TypeDriver

#: Where type drivers are found by name.
ENTRY_POINT_GROUP = "netplex.type_drivers"


def mtu_settings(config: Config) -> MtuSettings:
    """The deployment MTU inputs from ``[DEFAULT]`` and ``[ml2]``, validated."""
    physnet_mtus: dict[str, int] = {}
    for physnet, raw in dict(config.get("ml2", "physical_network_mtus")).items():
        try:
            mtu = int(str(raw).strip())
        except ValueError:
            mtu = 0
        if mtu < 1:
            raise ConfigError(
                f"[ml2] physical_network_mtus = '{physnet}:{raw}' is invalid: "
                "the MTU must be a positive integer"
            )
        physnet_mtus[physnet] = mtu
    return MtuSettings(
        global_physnet_mtu=int(config.get("DEFAULT", "global_physnet_mtu")),
        physical_network_mtus=physnet_mtus,
        path_mtu=int(config.get("ml2", "path_mtu")),
        overlay_ip_version=int(config.get("ml2", "overlay_ip_version")),
    )


def load_entry_points(names: Sequence[str]) -> dict[str, type[TypeDriver]]:
    found: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, []).append(ep)
    classes: dict[str, type[TypeDriver]] = {}
    for name in names:
        eps = found.get(name, [])
        if not eps:
            raise ConfigError(
                f"[ml2] type_drivers: no type driver named {name!r} "
                f"(installed: {', '.join(sorted(found)) or 'none'})"
            )
        if len({ep.value for ep in eps}) > 1:
            raise ConfigError(
                f"[ml2] type_drivers: {name!r} is provided by several packages: "
                + ", ".join(sorted({ep.value for ep in eps}))
            )
        try:
            cls = eps[0].load()
        except Exception as exc:
            raise ConfigError(
                f"[ml2] type_drivers: cannot load {name!r} ({eps[0].value}): {exc}"
            ) from exc
        if not (isinstance(cls, type) and issubclass(cls, TypeDriver)):
            raise ConfigError(
                f"[ml2] type_drivers: {name!r} ({eps[0].value}) is not a TypeDriver"
            )
        classes[name] = cls
    return classes


def configured_drivers(config: Config, mtu: MtuSettings) -> list[tuple[str, TypeDriver]]:
    """The drivers ``[ml2] type_drivers`` names, constructed with their options: (name, driver)."""
    names = list(config.get("ml2", "type_drivers"))
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(
            f"[ml2] type_drivers = {','.join(names)} is invalid: "
            f"{', '.join(dupes)} listed more than once"
        )
    out: list[tuple[str, TypeDriver]] = []
    for name, cls in load_entry_points(names).items():
        section = cls.config_section
        options = config.values.get(section, {}) if section else {}
        out.append((name, cls(options, mtu)))
    return out


def network_types(config: Config, drivers: Mapping[str, TypeDriver]) -> tuple[list[str], str | None]:
    """``[ml2] project_network_types`` and ``external_network_type``, checked against the drivers."""
    project_network_types: list[str] = list(config.get("ml2", "project_network_types"))
    dupes = sorted({t for t in project_network_types
                    if project_network_types.count(t) > 1})
    if dupes:
        raise ConfigError(
            f"[ml2] project_network_types = {','.join(project_network_types)} is "
            f"invalid: {', '.join(dupes)} listed more than once"
        )
    for t in project_network_types:
        if t not in drivers:
            raise ConfigError(
                f"[ml2] project_network_types = {','.join(project_network_types)} is "
                f"invalid: no type driver for {t!r} is loaded "
                f"(type_drivers: {', '.join(drivers) or 'none'})"
            )
    external = str(config.get("ml2", "external_network_type") or "").strip()
    external_network_type = external or None
    if external and external not in drivers:
        raise ConfigError(
            f"[ml2] external_network_type = {external!r} is invalid: no type driver for "
            f"it is loaded (type_drivers: {', '.join(drivers) or 'none'})"
        )
    return project_network_types, external_network_type
