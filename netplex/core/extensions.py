"""The attributes service plugins add to one core resource (networks, subnets or ports).

The core services hold one :class:`ResourceExtensions` each and call it at the
three points of Neutron's extension-driver model: inside the create and the
update transaction (after the core's own rows are written, before the feed
entry), and wherever the resource is rendered, for many dicts at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from netplex.core.context import Context
from netplex.core.service_api import ResourceExtension
from netplex.db.engine import Txn

__all__ = ["NO_EXTENSIONS", "ResourceExtensions"]


class ResourceExtensions:
    """The :class:`~netplex.core.service_api.ResourceExtension` objects of one resource, in plugin order."""

    def __init__(self, extensions: Sequence[ResourceExtension] = ()) -> None:
        self._extensions = tuple(extensions)
        self.names = frozenset(n for e in self._extensions for n in e.attributes())

    def __bool__(self) -> bool:
        return bool(self._extensions)

    def split(self, attrs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the core's attributes, the extensions') of a request body."""
        if not self.names:
            return dict(attrs), {}
        core = {k: v for k, v in attrs.items() if k not in self.names}
        ext = {k: v for k, v in attrs.items() if k in self.names}
        return core, ext

    def create(self, txn: Txn, ctx: Context, request: Mapping[str, Any], result: dict[str, Any]) -> None:
        for e in self._extensions:
            e.process_create(txn, ctx, request, result)

    def update(self, txn: Txn, ctx: Context, request: Mapping[str, Any], result: dict[str, Any]) -> None:
        for e in self._extensions:
            e.process_update(txn, ctx, request, result)

    def extend(self, conn: Connection, results: Sequence[dict[str, Any]]) -> None:
        if results:
            for e in self._extensions:
                e.extend(conn, results)


NO_EXTENSIONS = ResourceExtensions()
