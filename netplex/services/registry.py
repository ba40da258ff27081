"""Finding the service plugins an operator selected with ``[DEFAULT] service_plugins``.

Names are looked up in the ``netplex.service_plugins`` entry-point group. Neutron
deployments also list plugins whose behaviour Netplex has built in (``tag``,
``revisions``, ``timestamp``, ``segments``: always on) or has not built yet; those
are accepted with one start-up line each saying which, so an existing
``neutron.conf`` starts. Any other unknown name stops the server with the list of
installed plugins.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points

from netplex.config import ConfigError
from netplex.core.service_api import ENTRY_POINT_GROUP, ServicePlugin

__all__ = ["BUILT_IN", "NOT_BUILT", "Selection", "installed_names", "select"]

log = logging.getLogger(__name__)

#: Neutron service plugin names whose behaviour is part of Netplex's core.
BUILT_IN = {
    "tag": "tags are always on (the standard-attr-tag extension)",
    "revisions": "revision_number and If-Match are always on",
    "timestamp": "created_at/updated_at are always on",
    "segments": "segments are always on (/v2.0/segments, multi-segment networks)",
    "ml2": "ml2 is the only core plugin",
}

#: Neutron service plugin names Netplex does not implement (yet).
NOT_BUILT = frozenset({
    "router", "neutron.services.l3_router.l3_router_plugin.L3RouterPlugin", "qos", "trunk", "metering",
    "port_forwarding", "network_segment_range", "placement", "log", "auto_allocate", "flavors",
    "network_ip_availability", "conntrack_helper", "ovn-router", "local_ip", "ndp_proxy", "bgp",
})


@dataclass(frozen=True)
class Selection:
    """What ``service_plugins`` resolved to: classes to build, and names only accepted."""

    plugins: tuple[type[ServicePlugin], ...]
    accepted: tuple[tuple[str, str], ...]  # (name, why it has no effect)


@cache
def installed_names() -> tuple[str, ...]:
    return tuple(sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}))


def _load(name: str) -> type[ServicePlugin] | None:
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
        try:
            cls = ep.load()
        except Exception as exc:
            raise ConfigError(f"service plugin {name!r} ({ep.value}) cannot be loaded: {exc}; "
                              "fix or uninstall the package that provides it") from exc
        if not (isinstance(cls, type) and issubclass(cls, ServicePlugin)):
            raise ConfigError(f"service plugin {name!r} ({ep.value}) is not a ServicePlugin subclass")
        return cls
    return None


def select(names: Iterable[str], *, extra: Iterable[type[ServicePlugin]] = ()) -> Selection:
    """Resolve configured names (in order, duplicates dropped); ``extra`` are plugin classes
    given directly (tests, embedders), added after the configured ones."""
    plugins: list[type[ServicePlugin]] = []
    accepted: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        cls = _load(name)
        if cls is not None:
            plugins.append(cls)
        elif name in BUILT_IN:
            accepted.append((name, f"accepted, no effect: {BUILT_IN[name]}"))
        elif name in NOT_BUILT:
            accepted.append((name, "accepted, no effect: Netplex does not build this service plugin yet "
                                   "(see the README's status table)"))
        else:
            have = ", ".join(installed_names()) or "none"
            raise ConfigError(f"[DEFAULT] service_plugins: no service plugin named {name!r} "
                              f"(installed: {have}); remove it or install the package that provides it")
    for cls in extra:
        if cls.name not in seen:
            seen.add(cls.name)
            plugins.append(cls)
    return Selection(plugins=tuple(plugins), accepted=tuple(accepted))


def log_selection(selection: Selection) -> None:
    for name, why in selection.accepted:
        log.warning("service_plugins: %s: %s", name, why)
    for cls in selection.plugins:
        log.info("service plugin %s loaded", cls.name)
