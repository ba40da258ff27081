"""Networks: create/read/update/delete, segments via the type manager."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from netplex.core.common import (
    bump,
    check_revision,
    iso,
    resolve_project,
    tags_for,
)
from netplex.core.context import Context
from netplex.core.extensions import NO_EXTENSIONS, ResourceExtensions
from netplex.core.hooks import ResourceHooks
from netplex.core.listing import ListQuery, filter_clauses, finish_in_python, paginate
from netplex.core.network_access import (
    AUTO_DELETE_OWNERS,
    can_see,
    is_auto_delete_owner,
    network_ids_visible,
    visible_clause,
    visible_network,
)
from netplex.core.ports import PortService
from netplex.core.segments_model import Segment
from netplex.core.service_api import PortChange
from netplex.core.subnets import SubnetService
from netplex.core.type_manager import TypeManager
from netplex.db.engine import Database, Txn
from netplex.db.models import Network, Port, Subnet, Tag
from netplex.errors import (
    InvalidInput,
    InvalidSharedSetting,
    MechanismDriverError,
    NetworkInUse,
    NetworkNotFound,
)

LOG = logging.getLogger(__name__)

COLUMNS = {
    "id": Network.id,
    "name": Network.name,
    "description": Network.description,
    "project_id": Network.project_id,
    "tenant_id": Network.project_id,
    "admin_state_up": Network.admin_state_up,
    "status": Network.status,
    "shared": Network.shared,
    "router:external": Network.router_external,
    "mtu": Network.mtu,
    "revision_number": Network.revision_number,
    "created_at": Network.created_at,
    "updated_at": Network.updated_at,
}

class NetworkService:
    """Networks; deleting one deletes its auto-delete ports and its subnets."""

    def __init__(
        self,
        db: Database,
        types: TypeManager,
        hooks: ResourceHooks,
        subnets: SubnetService,
        ports: PortService,
        extensions: ResourceExtensions = NO_EXTENSIONS,
    ) -> None:
        self.db = db
        self.types = types
        self.hooks = hooks
        self.subnets = subnets
        self.ports = ports
        #: Attributes service plugins add to networks (port_security_enabled, ...).
        self.extensions = extensions

    # -- dict building ---------------------------------------------------

    def _to_dict(
        self,
        row: Network,
        subnets: list[str],
        tags: list[str],
        segments: Sequence[Segment],
    ) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": row.id,
            "name": row.name,
            "description": row.description,
            "project_id": row.project_id,
            "tenant_id": row.project_id,
            "admin_state_up": row.admin_state_up,
            "status": row.status,
            "shared": row.shared,
            "router:external": row.router_external,
            "mtu": row.mtu,
            "subnets": subnets,
            "revision_number": row.revision_number,
            "created_at": iso(row.created_at),
            "updated_at": iso(row.updated_at),
            "tags": tags,
            "availability_zone_hints": list(row.availability_zone_hints or []),
            "availability_zones": [],
            "ipv4_address_scope": None,
            "ipv6_address_scope": None,
            "l2_adjacency": True,
        }
        self.types.extend_network_dict(d, list(segments))
        return d

    def _dicts(self, session: Session, rows: Sequence[Network]) -> list[dict[str, Any]]:
        ids = [r.id for r in rows]
        subnets: dict[str, list[str]] = {i: [] for i in ids}
        for i in range(0, len(ids), 5000):
            chunk = ids[i : i + 5000]
            for nid, sid in session.execute(
                select(Subnet.network_id, Subnet.id)
                .where(Subnet.network_id.in_(chunk))
                .order_by(Subnet.created_at, Subnet.id)
            ):
                subnets[nid].append(sid)
        tags = tags_for(session, "networks", ids)
        segs = self.types.get_segments_for_networks(session, ids)
        nets = [self._to_dict(r, subnets[r.id], tags.get(r.id, []), segs.get(r.id, [])) for r in rows]
        self.extensions.extend(session.connection(), nets)
        return nets

    def dict_in_session(self, session: Session, network_id: str) -> dict[str, Any]:
        row = session.get(Network, network_id)
        if row is None:
            raise NetworkNotFound(net_id=network_id)
        return self._dicts(session, [row])[0]

    def dicts_in_session(self, session: Session, rows: Sequence[Network]) -> list[dict[str, Any]]:
        """API dicts of ``rows`` as this transaction sees them."""
        return self._dicts(session, rows)

    def touched(self, txn: Txn, network_id: str) -> None:
        """The network changed through something it shows (tags, segments): new
        revision, and its new view on the feed."""
        row = txn.session.get(Network, network_id)
        if row is None:
            return
        bump(row)
        txn.session.flush()
        txn.record("network", network_id, "update", self.dict_in_session(txn.session, network_id))

    # -- visibility ------------------------------------------------------

    visible_clause = staticmethod(visible_clause)
    can_see = staticmethod(can_see)

    def get_row(self, session: Session, ctx: Context, network_id: str) -> Network:
        return visible_network(session, ctx, network_id)

    # -- create ----------------------------------------------------------

    def create(self, ctx: Context, attrs: dict[str, Any]) -> dict[str, Any]:
        return self.create_bulk(ctx, [attrs])[0]

    def create_bulk(self, ctx: Context, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        prepared = [self._prepare_create(ctx, a) for a in items]

        def fn(txn: Txn) -> list[tuple[dict[str, Any], list[Segment]]]:
            return [self._create_in_txn(txn, ctx, a, reqs) for a, reqs in prepared]

        created = self.db.transaction(fn)
        out = []
        for i, (net, segs) in enumerate(created):
            try:
                self.hooks.postcommit("create", "network", net, None, segs)
            except Exception as exc:
                LOG.exception("create_network_postcommit failed; removing network %s", net["id"])
                for other, _ in created[i:]:
                    self._delete_quietly(other["id"])
                raise MechanismDriverError(method="create_network_postcommit", reason=str(exc)) from exc
            out.append(net)
        return out

    def _prepare_create(self, ctx: Context, attrs: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        # Who may set shared / router:external / provider attributes is policy (api/policy.py).
        requests = self.types.validate_provider_request(attrs)
        attrs = dict(attrs)
        attrs["project_id"] = resolve_project(ctx, attrs, "network")
        return attrs, requests

    def _create_in_txn(
        self, txn: Txn, ctx: Context, attrs: dict[str, Any], requests: Any
    ) -> tuple[dict[str, Any], list[Segment]]:
        s = txn.session
        row = Network(
            project_id=attrs["project_id"],
            name=attrs.get("name", ""),
            description=attrs.get("description", ""),
            admin_state_up=attrs.get("admin_state_up", True),
            shared=attrs.get("shared", False),
            router_external=attrs.get("router:external", False),
            availability_zone_hints=attrs.get("availability_zone_hints", []),
            status="ACTIVE",
        )
        s.add(row)
        s.flush()
        segments = self.types.create_network_segments(s, row.id, requests, external=bool(row.router_external))
        max_mtu = self.types.network_mtu(segments)
        wanted = attrs.get("mtu")
        if wanted is not None:
            if wanted > max_mtu:
                raise InvalidInput(error_message=f"Requested MTU is too big, maximum is {max_mtu}")
            row.mtu = wanted
        else:
            row.mtu = max_mtu
        net = self._to_dict(row, [], [], segments)
        self.extensions.create(txn, ctx, attrs, net)
        self.hooks.precommit(s, "create", "network", net, None, segments)
        txn.record("network", row.id, "create", net)
        return net, segments

    # -- read ------------------------------------------------------------

    def get(self, ctx: Context, network_id: str) -> dict[str, Any]:
        with self.db.read() as s:
            row = self.get_row(s, ctx, network_id)
            return self._dicts(s, [row])[0]

    def find(self, ctx: Context, query: ListQuery) -> list[dict[str, Any]]:
        sql_filters, rest = query.split_filters(COLUMNS)
        with self.db.read() as s:
            stmt = select(Network).where(*filter_clauses(COLUMNS, sql_filters))
            vis = self.visible_clause(ctx)
            if vis is not None:
                stmt = stmt.where(vis)
            stmt = paginate(s, stmt, COLUMNS, Network.id, query, resource="network", apply_limit=not rest)
            rows = list(s.execute(stmt).scalars())
            items = self._dicts(s, rows)
        return finish_in_python(items, rest, query)

    # -- update ----------------------------------------------------------

    def update(
        self,
        ctx: Context,
        network_id: str,
        attrs: dict[str, Any],
        *,
        if_revision: int | None = None,
    ) -> dict[str, Any]:
        if any(k.startswith("provider:") or k == "segments" for k in attrs):
            raise InvalidInput(error_message="Plugin does not support updating provider attributes")

        def fn(txn: Txn) -> tuple[dict[str, Any], dict[str, Any], list[Segment]]:
            s = txn.session
            row = self.get_row(s, ctx, network_id)
            check_revision(if_revision, row.revision_number)
            original = self._dicts(s, [row])[0]
            if attrs.get("shared") is False and row.shared:
                self._check_unshare(s, row)
            mapping = {
                "name": "name",
                "description": "description",
                "admin_state_up": "admin_state_up",
                "shared": "shared",
                "router:external": "router_external",
            }
            for key, col in mapping.items():
                if key in attrs:
                    setattr(row, col, attrs[key])
            segments = self.types.get_segments(s, row.id)
            if "mtu" in attrs:
                max_mtu = self.types.network_mtu(segments)
                if attrs["mtu"] > max_mtu:
                    raise InvalidInput(error_message=f"Requested MTU is too big, maximum is {max_mtu}")
                row.mtu = attrs["mtu"]
            bump(row)
            s.flush()
            current = self._dicts(s, [row])[0]
            self.extensions.update(txn, ctx, attrs, current)
            self.hooks.precommit(s, "update", "network", current, original, segments)
            txn.record("network", row.id, "update", current)
            return current, original, segments

        current, original, segments = self.db.transaction(fn)
        self._postcommit_logged("update", current, original, segments)
        return current

    def _check_unshare(self, s: Session, row: Network) -> None:
        other = s.execute(
            select(Port.id)
            .where(Port.network_id == row.id, Port.project_id != row.project_id)
            .where(~Port.device_owner.like("network:%"))
            .limit(1)
        ).first()
        if other is not None:
            raise InvalidSharedSetting(network=row.id, reason="Other projects have ports on it.")

    def _postcommit_logged(
        self,
        event: str,
        current: dict[str, Any],
        original: dict[str, Any] | None,
        segments: Sequence[Segment],
    ) -> None:
        try:
            self.hooks.postcommit(event, "network", current, original, segments)
        except Exception:
            # The change is committed; the driver is expected to catch up
            # from the change feed (see the README's "postcommit" section).
            LOG.exception("%s_network_postcommit failed for %s", event, current["id"])

    # -- delete ----------------------------------------------------------

    def delete(self, ctx: Context, network_id: str, *, if_revision: int | None = None) -> None:
        port_changes: list[PortChange] = []

        def fn(txn: Txn) -> tuple[dict[str, Any], list[Segment], list[dict[str, Any]]]:
            port_changes.clear()  # a retried transaction starts over
            s = txn.session
            row = self.get_row(s, ctx, network_id)
            check_revision(if_revision, row.revision_number)
            ports = s.execute(select(Port.id, Port.device_owner).where(Port.network_id == row.id)).all()
            if any(not is_auto_delete_owner(owner) for _, owner in ports):
                raise NetworkInUse(net_id=network_id)
            original = self._dicts(s, [row])[0]
            segments = self.types.get_segments(s, row.id)
            self.hooks.precommit(s, "delete", "network", original, None, segments)
            removed_ports = [self.ports.delete_in_txn(txn, pid, ctx=ctx, changes=port_changes) for pid, _ in ports]
            for sid in s.execute(select(Subnet.id).where(Subnet.network_id == row.id)).scalars():
                self.subnets.delete_in_txn(txn, sid, force=True)
            self.types.release_network_segments(s, row.id)
            s.execute(delete(Tag).where(Tag.resource_type == "networks", Tag.resource_id == row.id))
            s.execute(delete(Network).where(Network.id == row.id))
            txn.record("network", row.id, "delete", original)
            return original, segments, removed_ports

        original, segments, removed = self.db.transaction(fn)
        for port in removed:
            self.ports.postcommit_delete_logged(port, segments)
        self.ports.plugin_hooks.changed(port_changes)
        self._postcommit_logged("delete", original, None, segments)

    def _delete_quietly(self, network_id: str) -> None:
        try:
            self.delete(Context.admin(), network_id)
        except NetworkNotFound:
            pass


__all__ = ["AUTO_DELETE_OWNERS", "NetworkService", "is_auto_delete_owner", "network_ids_visible"]
