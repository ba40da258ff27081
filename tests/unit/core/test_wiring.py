"""The composition root: every core service is built with its collaborators, none receives the record."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from netplex import config as config_mod
from netplex.core.plugin import Core, CoreServices
from netplex.db.engine import Database
from netplex.server import build_core

CONF = "[ml2]\ntype_drivers = local\nproject_network_types = local\nmechanism_drivers =\n"


@pytest.fixture
def core(sqlite_url: str, tmp_path: Path) -> Iterator[CoreServices]:
    cfg = config_mod.load(text=CONF + f"[DEFAULT]\nstate_path = {tmp_path}\n")
    built = build_core(cfg, Database(sqlite_url))
    yield built
    built.db.dispose()


def _reachable(obj: object, seen: set[int]) -> Iterator[object]:
    """``obj`` and every object reachable through instance attributes (not into containers of data)."""
    if id(obj) in seen or not hasattr(obj, "__dict__"):
        return
    seen.add(id(obj))
    yield obj
    for value in vars(obj).values():
        values = value.values() if isinstance(value, dict) else [value]
        for v in values:
            if type(v).__module__.startswith("netplex."):
                yield from _reachable(v, seen)


def test_the_record_is_plain_and_no_service_holds_it(core: CoreServices) -> None:
    assert Core is CoreServices
    with pytest.raises(dataclasses.FrozenInstanceError):
        core.ports = core.ports  # type: ignore[misc]
    seen: set[int] = set()
    for f in dataclasses.fields(core):
        service = getattr(core, f.name)
        for obj in _reachable(service, seen):
            assert not isinstance(obj, CoreServices), f"{f.name} reaches the services record"


def test_services_share_their_collaborators(core: CoreServices) -> None:
    assert core.ports.bindings is core.bindings
    assert core.networks.ports is core.ports and core.networks.subnets is core.subnets
    assert core.ports.hooks is core.hooks and core.subnets.hooks is core.hooks
    assert core.agents_api.bindings is core.bindings and core.agents_api.agents is core.agents
    assert core.subnets.ports is core.ports.rows
