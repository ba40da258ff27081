"""Calling service plugins' port hooks from the port service.

Only plugins that override a hook are called for it, and the port's
:class:`~netplex.core.service_api.PortBinding` is read only when some plugin
wants it, so a cloud without such plugins pays nothing on the port paths.
In-transaction hooks (``check_port_delete``, ``check_port_update``) may raise
to refuse; ``port_changed`` runs after commit and never fails the request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from netplex.core.context import Context
from netplex.core.service_access import CorePortAccess
from netplex.core.service_api import PortBinding, PortChange, ServicePlugin
from netplex.db.engine import Txn

__all__ = ["NO_PORT_HOOKS", "PortPluginHooks"]

LOG = logging.getLogger(__name__)


def _overrides(plugin: ServicePlugin, method: str) -> bool:
    return getattr(type(plugin), method) is not getattr(ServicePlugin, method)


class PortPluginHooks:
    """The port hooks of the built service plugins, with the core's read access for their bindings."""

    def __init__(self, plugins: Sequence[ServicePlugin] = (), access: CorePortAccess | None = None) -> None:
        self._delete = [p for p in plugins if _overrides(p, "check_port_delete")]
        self._update = [p for p in plugins if _overrides(p, "check_port_update")]
        self._changed = [p for p in plugins if _overrides(p, "port_changed")]
        if (self._delete or self._update or self._changed) and access is None:
            raise ValueError("port hooks need the core's access to read bindings")
        self._access = access

    @property
    def wants_changes(self) -> bool:
        return bool(self._changed)

    def binding(self, txn: Txn, port_id: str) -> PortBinding | None:
        """The port's binding as ``txn`` sees it, when some plugin will want it."""
        if self._access is None:
            return None
        txn.flush()
        return self._access.port_bindings(txn, [port_id]).get(port_id)

    def binding_now(self, port_id: str) -> PortBinding | None:
        """The port's committed binding (after a bind that ran outside the request's transaction)."""
        if self._access is None or not self._changed:
            return None
        with self._access.db.read() as s:
            return self._access.port_bindings_in(s, [port_id]).get(port_id)

    def before_delete(self, txn: Txn, ctx: Context, port_id: str) -> PortBinding | None:
        if not (self._delete or self._changed):
            return None
        before = self.binding(txn, port_id)
        if before is not None:
            for p in self._delete:
                p.check_port_delete(txn, ctx, before)
        return before

    def before_update(self, txn: Txn, ctx: Context, port_id: str, changes: Mapping[str, Any]) -> PortBinding | None:
        if not (self._update or self._changed):
            return None
        before = self.binding(txn, port_id)
        if before is not None:
            for p in self._update:
                p.check_port_update(txn, ctx, before, changes)
        return before

    def changed(self, changes: Sequence[PortChange]) -> None:
        if not changes:
            return
        for p in self._changed:
            try:
                p.port_changed(changes)
            except Exception:
                LOG.exception("service plugin %s failed on port changes; its resync repairs it", p.name)


NO_PORT_HOOKS = PortPluginHooks()
