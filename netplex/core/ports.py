"""Ports: MACs, fixed IPs (IPAM), binding requests, allowed address pairs.

Port create is the hottest write path, so it issues few statements: one
read of the network's subnets, one probe per IP family, one MAC probe,
then the inserts. Binding (choosing a mechanism) never runs inside this
transaction: the service commits the request and then asks the binding
service (:mod:`netplex.core.binding`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any, cast

import anyio.to_thread
from sqlalchemy import Connection, Table, bindparam, delete, insert, select
from sqlalchemy.orm import Session

from netplex.core.binding import UNSET, PortBindingService
from netplex.core.common import check_revision, resolve_project
from netplex.core.context import Context
from netplex.core.hooks import ResourceHooks
from netplex.core.listing import ListQuery
from netplex.core.plugin_hooks import NO_PORT_HOOKS, PortPluginHooks
from netplex.core.port_addresses import PortAddresses, normalize_mac
from netplex.core.port_listing import find_ports
from netplex.core.port_rows import PortTable, to_dict
from netplex.core.segments_model import Segment
from netplex.core.service_api import PortBinding, PortChange
from netplex.core.type_manager import TypeManager
from netplex.db.base import new_id, utcnow
from netplex.db.engine import Database, Txn
from netplex.db.models import IPAllocation, Network, Port, Tag
from netplex.db.prepared import Prepared
from netplex.errors import (
    InvalidInput,
    MechanismDriverError,
    NetworkNotFound,
    PortNotFound,
)

LOG = logging.getLogger(__name__)


_NETWORKS = cast(Table, Network.__table__)
_NETWORK_FOR_PORT = Prepared(
    select(_NETWORKS.c.id, _NETWORKS.c.project_id, _NETWORKS.c.shared, _NETWORKS.c.router_external).where(
        _NETWORKS.c.id == bindparam("id")
    )
)
_NETWORK_OWNER = Prepared(select(_NETWORKS.c.project_id).where(_NETWORKS.c.id == bindparam("id")))
_IPS = cast(Table, IPAllocation.__table__)
_TAGS = cast(Table, Tag.__table__)
_DELETE_PORT_IPS = Prepared(delete(_IPS).where(_IPS.c.port_id == bindparam("id")))
_DELETE_PORT_TAGS = Prepared(
    delete(_TAGS).where(_TAGS.c.resource_type == "ports", _TAGS.c.resource_id == bindparam("id"))
)
_INSERT_IP = Prepared(insert(_IPS), keys=["subnet_id", "ip_address", "port_id", "network_id"])


BINDING_KEYS = ("binding:host_id", "binding:vnic_type", "binding:profile")
class PortService:
    """Ports: create/read/update/delete; binding is asked for after each commit."""

    def __init__(
        self,
        db: Database,
        types: TypeManager,
        hooks: ResourceHooks,
        bindings: PortBindingService,
        rows: PortTable,
        addresses: PortAddresses,
        plugin_hooks: PortPluginHooks = NO_PORT_HOOKS,
    ) -> None:
        self.db = db
        self.types = types
        self.hooks = hooks
        self.bindings = bindings
        self.rows = rows
        self.addresses = addresses
        #: Service plugins' port hooks (refuse a delete/update, learn about changes).
        self.plugin_hooks = plugin_hooks

    def touched(self, txn: Txn, port_id: str) -> None:
        """The port changed through something it shows (tags): new revision, on the feed."""
        self.rows.port_changed(txn, port_id)

    # -- visibility ----------------------------------------------------------

    def _visible(self, s: Session, ctx: Context, row: Port) -> bool:
        if ctx.is_admin or ctx.is_agent or row.project_id == ctx.project_id:
            return True
        owner = s.execute(select(Network.project_id).where(Network.id == row.network_id)).scalar()
        return owner is not None and owner == ctx.project_id

    def _row(self, conn: Connection, ctx: Context, port_id: str) -> Any:
        """The port's row (a named tuple) if ``ctx`` may see it."""
        row = self.rows.row(conn, port_id)
        if row is None or not (ctx.is_admin or ctx.is_agent or row.project_id == ctx.project_id):
            if row is None or _NETWORK_OWNER.scalar(conn, {"id": row.network_id}) != ctx.project_id:
                raise PortNotFound(port_id=port_id)
        return row

    def get_row(self, s: Session, ctx: Context, port_id: str) -> Port:
        row = s.get(Port, port_id)
        if row is None or not self._visible(s, ctx, row):
            raise PortNotFound(port_id=port_id)
        return row

    # -- create ----------------------------------------------------------------

    def create(self, ctx: Context, attrs: dict[str, Any]) -> dict[str, Any]:
        return self.create_bulk(ctx, [attrs])[0]

    def create_bulk(self, ctx: Context, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._after_create(self.db.transaction(self._create_fn(ctx, items)))

    async def create_bulk_async(self, ctx: Context, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`create_bulk` for an event loop. The transaction goes straight to
        the database's writer; only when mechanism drivers want postcommit calls
        or ports are to be bound (which may block) does the rest go to a worker
        thread."""
        created = await self.db.transaction_async(self._create_fn(ctx, items))
        if (self.hooks.wants("port", "create") or self.plugin_hooks.wants_changes
                or any(p["binding:host_id"] for p, _ in created)):
            return await anyio.to_thread.run_sync(self._after_create, created)
        return [port for port, _ in created]

    def _create_fn(self, ctx: Context, items: list[dict[str, Any]],
                   ) -> Callable[[Txn], list[tuple[dict[str, Any], list[Segment]]]]:
        def fn(txn: Txn) -> list[tuple[dict[str, Any], list[Segment]]]:
            return [self._create_in_txn(txn, ctx, a) for a in items]

        return fn

    def _after_create(self, created: list[tuple[dict[str, Any], list[Segment]]]) -> list[dict[str, Any]]:
        """Postcommit calls and binding of freshly created ports (may block)."""
        out: list[dict[str, Any]] = []
        want_post = self.hooks.wants("port", "create")
        for i, (port, segs) in enumerate(created):
            try:
                if want_post:
                    self.hooks.postcommit("create", "port", port, None, segs)
            except Exception as exc:
                LOG.exception("create_port_postcommit failed; removing port %s", port["id"])
                for other, _ in created[i:]:
                    self._delete_quietly(other["id"])
                raise MechanismDriverError(method="create_port_postcommit", reason=str(exc)) from exc
            if port["binding:host_id"]:
                port = self._bind(port["id"]) or port
            out.append(port)
        if self.plugin_hooks.wants_changes:
            self.plugin_hooks.changed([PortChange("create", None, self.plugin_hooks.binding_now(p["id"]))
                                       for p in out])
        return out

    def _create_in_txn(self, txn: Txn, ctx: Context, attrs: dict[str, Any]) -> tuple[dict[str, Any], list[Segment]]:
        conn = txn.conn
        net = _NETWORK_FOR_PORT.first(conn, {"id": attrs["network_id"]})
        if net is None or not (ctx.is_admin or net.project_id == ctx.project_id or net.shared or net.router_external):
            raise NetworkNotFound(net_id=attrs["network_id"])
        requested = attrs.get("fixed_ips")
        subnets = self.addresses.subnets_for_create(conn, net.id, requested)
        project_id = resolve_project(ctx, attrs, "port")
        owner = attrs.get("device_owner", "")
        # Who may choose the MAC, the addresses or the binding is policy (api/policy.py):
        # create_port:mac_address, create_port:fixed_ips:ip_address, create_port:binding:*.
        mac = self.addresses.pick_mac(conn, net.id, attrs.get("mac_address"))
        if requested is None:
            ips = self.addresses.auto_ips(conn, net.id, subnets, mac, owner)
        else:
            ips = self.addresses.requested_ips(conn, net.id, subnets, requested, mac, owner, None)
        now = utcnow()
        values = {
            "id": new_id(),
            "network_id": net.id,
            "project_id": project_id,
            "name": attrs.get("name", ""),
            "description": attrs.get("description", ""),
            "mac_address": mac,
            "admin_state_up": attrs.get("admin_state_up", True),
            "status": "DOWN",
            "device_id": attrs.get("device_id", ""),
            "device_owner": owner,
            "allowed_address_pairs": self.addresses.address_pairs(attrs.get("allowed_address_pairs", []), mac),
            "revision_number": 0,
            "created_at": now,
            "updated_at": now,
        }
        self.rows.insert(conn, values)
        _INSERT_IP.executemany(
            conn,
            [{"subnet_id": sid, "ip_address": ip, "port_id": values["id"], "network_id": net.id} for sid, ip in ips],
        )
        host = attrs.get("binding:host_id") or ""
        vnic_type = attrs.get("binding:vnic_type", "normal")
        profile = attrs.get("binding:profile") or {}
        self.bindings.insert_request(conn, values["id"], host, vnic_type, profile)
        port = to_dict(SimpleNamespace(**values), ips, None, [])
        port.update({"binding:host_id": host, "binding:vnic_type": vnic_type, "binding:profile": profile})
        if self.rows.extensions:
            self.rows.extensions.create(txn, ctx, attrs, port)
        segments = self._hook_segments(txn, net.id, "create")
        if segments is not None:
            self.hooks.precommit(txn.session, "create", "port", port, None, segments)
        txn.record("port", values["id"], "create", port)
        return port, segments or []

    def _hook_segments(self, txn: Txn, network_id: str, event: str) -> list[Segment] | None:
        """The segments for driver contexts, or None when no driver wants this event."""
        if not self.hooks.wants("port", event):
            return None
        return self.types.get_segments(txn.session, network_id)

    # -- read ------------------------------------------------------------------

    def get(self, ctx: Context, port_id: str) -> dict[str, Any]:
        with self.db.read_conn() as conn:
            return self.rows.render_row(conn, self._row(conn, ctx, port_id))

    def find(self, ctx: Context, query: ListQuery) -> list[dict[str, Any]]:
        return find_ports(self.db, self.rows, ctx, query)

    # -- update ----------------------------------------------------------------

    def update(
        self, ctx: Context, port_id: str, attrs: dict[str, Any], *, if_revision: int | None = None
    ) -> dict[str, Any]:
        # Who may change what is policy (update_port, update_port:<attribute>, api/policy.py);
        # visibility (404) stays here.
        def fn(txn: Txn) -> tuple[dict[str, Any], dict[str, Any] | None, list[Segment], bool, PortBinding | None]:
            conn = txn.conn
            row = self._row(conn, ctx, port_id)
            check_revision(if_revision, row.revision_number)
            before = self.plugin_hooks.before_update(txn, ctx, port_id, attrs)
            want_hooks = self.hooks.wants("port", "update")
            # The "before" view is only for drivers (and the MAC check): skip it otherwise.
            original = self.rows.render_row(conn, row) if want_hooks or "mac_address" in attrs else None
            changes: dict[str, Any] = {}
            if "mac_address" in attrs:
                mac = normalize_mac(attrs["mac_address"])
                if mac != row.mac_address:
                    assert original is not None
                    if original["binding:vif_type"] not in ("unbound", "binding_failed"):
                        raise InvalidInput(error_message="Cannot change the MAC address of a bound port")
                    self.addresses.pick_mac(conn, row.network_id, mac)
                    changes["mac_address"] = mac
            for key in ("name", "description", "admin_state_up", "device_id", "device_owner"):
                if key in attrs:
                    changes[key] = attrs[key]
            row = row._replace(**changes)
            if "fixed_ips" in attrs:
                self.addresses.replace_fixed_ips(txn.session, row, attrs["fixed_ips"] or [])
            if "allowed_address_pairs" in attrs:
                changes["allowed_address_pairs"] = self.addresses.address_pairs(
                    attrs["allowed_address_pairs"] or [], row.mac_address
                )
            if "status" in attrs:  # internal callers only: the API does not accept it in a body
                changes["status"] = attrs["status"]
            self.rows.update(conn, port_id, changes)
            # After the row update: a host change sets the port DOWN, whatever it asked.
            rebind = self._stage_binding(txn, port_id, attrs)
            txn.flush()
            current = self.rows.render(conn, port_id)
            if self.rows.extensions:
                # After the core's changes, so an extension sees the port's new addresses.
                self.rows.extensions.update(txn, ctx, attrs, current)
            segments: list[Segment] = []
            if want_hooks:
                segments = self.types.get_segments(txn.session, row.network_id)
                self.hooks.precommit(txn.session, "update", "port", current, original, segments)
            txn.record("port", port_id, "update", current)
            return current, original, segments, rebind, before

        current, original, segments, rebind, before = self.db.transaction(fn)
        if self.hooks.wants("port", "update"):
            try:
                self.hooks.postcommit("update", "port", current, original, segments)
            except Exception:
                LOG.exception("update_port_postcommit failed for %s", port_id)
        if rebind and current["binding:host_id"]:
            current = self._bind(port_id) or current
        if self.plugin_hooks.wants_changes:
            self.plugin_hooks.changed([PortChange("update", before, self.plugin_hooks.binding_now(port_id))])
        return current

    # -- binding -----------------------------------------------------------------

    def _stage_binding(self, txn: Txn, port_id: str, attrs: dict[str, Any]) -> bool:
        """Store changed binding:host_id/vnic_type/profile; True when a (re)bind is needed."""
        if not any(k in attrs for k in BINDING_KEYS):
            return False
        return self.bindings.stage_binding(
            txn.session,
            port_id,
            host=attrs.get("binding:host_id", UNSET),
            vnic_type=attrs.get("binding:vnic_type", UNSET),
            profile=attrs.get("binding:profile", UNSET),
        )

    def _bind(self, port_id: str) -> dict[str, Any] | None:
        """Bind outside any transaction; the port as it is afterwards (None: gone)."""
        committed = self.bindings.bind_port_returning_port(port_id)
        if committed is not None:
            return committed
        try:
            return self.get(Context.admin(), port_id)
        except PortNotFound:
            return None

    # -- delete ----------------------------------------------------------------

    def delete(self, ctx: Context, port_id: str, *, if_revision: int | None = None) -> None:
        changes: list[PortChange] = []

        def fn(txn: Txn) -> tuple[dict[str, Any], list[Segment]]:
            changes.clear()  # a retried transaction starts over
            conn = txn.conn
            row = self._row(conn, ctx, port_id)
            check_revision(if_revision, row.revision_number)
            segments = self._hook_segments(txn, row.network_id, "delete") or []
            return self.delete_in_txn(txn, port_id, segments, ctx=ctx, changes=changes), segments

        original, segments = self.db.transaction(fn)
        self.postcommit_delete_logged(original, segments)
        self.plugin_hooks.changed(changes)

    def delete_in_txn(self, txn: Txn, port_id: str, segments: list[Segment] | None = None, *,
                      ctx: Context | None = None, changes: list[PortChange] | None = None) -> dict[str, Any]:
        """Delete the port in ``txn``; ``segments`` of its network for drivers (read if None).

        Service plugins may refuse (``check_port_delete``, as ``ctx``; the core's own cascades
        act as admin); the deletion is appended to ``changes`` for their after-commit hook."""
        conn = txn.conn
        before = self.plugin_hooks.before_delete(txn, ctx or Context.admin(), port_id)
        if before is not None and changes is not None:
            changes.append(PortChange("delete", before, None))
        original = self.rows.render(conn, port_id)
        if self.hooks.wants("port", "delete"):
            if segments is None:
                segments = self.types.get_segments(txn.session, original["network_id"])
            self.hooks.precommit(txn.session, "delete", "port", original, None, segments)
        # Bindings and levels first (the cascade would hide which dynamic segments to release).
        self.bindings.release_port_bindings(txn.session, port_id)
        for stmt in (_DELETE_PORT_IPS, _DELETE_PORT_TAGS):
            stmt.execute(conn, {"id": port_id})
        self.rows.delete(conn, port_id)
        txn.record("port", port_id, "delete", original)
        return original

    def postcommit_delete_logged(self, port: dict[str, Any], segments: Sequence[Segment]) -> None:
        if not self.hooks.wants("port", "delete"):
            return
        try:
            self.hooks.postcommit("delete", "port", port, None, segments)
        except Exception:
            LOG.exception("delete_port_postcommit failed for %s", port["id"])

    def _delete_quietly(self, port_id: str) -> None:
        try:
            self.delete(Context.admin(), port_id)
        except PortNotFound:
            pass
