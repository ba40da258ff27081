"""The API side of service plugins: their collections, extended attributes, extensions and rules.

A plugin describes what it serves as data (:mod:`netplex.core.service_api`);
this module turns that into the same :class:`~netplex.api.collections.Collection`
the core's resources use, so validation, Neutron's list semantics, policy and
error bodies are identical for ``/v2.0/ports`` and ``/v2.0/security-groups``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from netplex.api.collections import Collection
from netplex.config import ConfigError
from netplex.core.attr_map import Attr
from netplex.core.service_api import Resource, ServicePlugin

__all__ = ["extended_collections", "plugin_extensions", "plugin_policy_defaults"]

def _collection(plugin: ServicePlugin, res: Resource) -> Collection:
    if res.has_tags:
        raise ConfigError(f"service plugin {plugin.name!r}: tags on {res.plural} are not supported yet")
    return Collection(
        member=res.member, plural=res.plural, attrs=dict(res.attributes), service_name=f"{plugin.name}:{res.plural}",
        allow_create=res.allow_create, allow_update=res.allow_update, allow_delete=res.allow_delete,
        service=res.service, actions=dict(res.actions), path=res.path,
    )


def extended_collections(core: Sequence[Collection], plugins: Sequence[ServicePlugin]) -> tuple[Collection, ...]:
    """The core's collections with the attributes plugins add, then the plugins' own collections.

    Two plugins (or a plugin and the core) claiming one attribute or one collection is a
    configuration error: the operator has to choose.
    """
    added: dict[str, dict[str, Attr]] = {}
    for plugin in plugins:
        for ext in plugin.resource_extensions():
            target = added.setdefault(ext.resource, {})
            for name, attr in ext.attributes().items():
                if name in target:
                    raise ConfigError(f"service plugin {plugin.name!r} adds attribute {name!r} to "
                                      f"{ext.resource}, which another plugin already adds")
                target[name] = attr
    out: list[Collection] = []
    plurals = {c.plural for c in core}
    for coll in core:
        extra = added.pop(coll.plural, {})
        clash = sorted(set(extra) & set(coll.attrs))
        if clash:
            raise ConfigError(f"a service plugin redefines {coll.plural} attribute(s) {clash}")
        if extra:
            coll = dataclasses.replace(coll, attrs={**coll.attrs, **extra})  # its defaults follow
        out.append(coll)
    if added:
        raise ConfigError(f"service plugins extend collections that do not exist: {sorted(added)}")
    for plugin in plugins:
        for res in plugin.resources():
            if res.plural in plurals:
                raise ConfigError(f"service plugin {plugin.name!r} serves {res.plural}, which already exists")
            plurals.add(res.plural)
            out.append(_collection(plugin, res))
    return tuple(out)


def plugin_extensions(plugins: Sequence[ServicePlugin]) -> dict[str, tuple[str, str]]:
    """alias -> (name, description) for ``GET /v2.0/extensions``."""
    return {e.alias: (e.name, e.description) for p in plugins for e in p.extensions()}


def plugin_policy_defaults(plugins: Sequence[ServicePlugin]) -> Mapping[str, str]:
    out: dict[str, str] = {}
    for p in plugins:
        for name, check in p.policy_defaults().items():
            if name in out and out[name] != check:
                raise ConfigError(f"service plugins disagree on the default of policy rule {name!r}")
            out[name] = check
    return out
