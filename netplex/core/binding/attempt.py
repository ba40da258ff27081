"""One binding attempt: snapshot, decide, compare-and-swap commit.

The rule that shapes it: **no database transaction stays open while drivers
think.**

1. *Snapshot* (a read-only transaction): the port, its network's segments,
   the binding row being bound (with its ``attempt`` counter N) and the
   agents registered on the binding's host.
2. *Decide* (no transaction): :meth:`MechanismManager.bind_port` asks the
   drivers. A driver that needs a dynamic segment gets it in its own short
   transaction (:class:`~netplex.core.binding.segments.DynamicSegments`).
3. *Commit* (a short write transaction): store the result only if the
   binding's ``attempt`` is still N, and bump it to N + 1. If someone changed
   the binding meanwhile nothing is written, the attempt's dynamic segments
   are released if unused, and the attempt starts again from step 1 with the
   latest port, up to ``max_tries`` times.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from netplex.core.agents import AgentService
from netplex.core.binding.collaborators import PortRecords
from netplex.core.binding.contexts import basic_network_dict, binding_info, network_segments
from netplex.core.binding.segments import DynamicSegments
from netplex.core.binding.statements import (
    ACTIVE_BINDING_ROW,
    CAS_BINDING,
    DELETE_LEVELS,
    HOST_BINDING_ROW,
    INSERT_LEVELS,
    NETWORK_ROW,
    PORT_ROW,
)
from netplex.core.binding.views import BindingView
from netplex.core.mech_api import (
    BINDING_ACTIVE,
    NetworkContext,
    PortBindingInfo,
    PortContext,
    frozen_mapping,
)
from netplex.core.mech_manager import BindingRequest, BindingResult, MechanismManager
from netplex.db.engine import Database, Txn
from netplex.db.models import NetworkSegment, PortBinding
from netplex.errors import NetplexError, NetworkNotFound, PortBindingNotFound, PortNotFound

LOG = logging.getLogger(__name__)


class _SegmentGone(Exception):
    """A dynamic segment the result uses was released meanwhile: retry."""


@dataclass(frozen=True)
class _Snapshot:
    port_id: str
    host: str
    status: str
    attempt: int
    request: BindingRequest


@dataclass(frozen=True)
class Committed:
    view: BindingView
    context: PortContext | None
    #: The port as committed with the result (None where not rendered).
    port: dict[str, Any] | None = None


class BindingAttempts:
    """Runs binding attempts until one commits (or ``max_tries`` is reached)."""

    def __init__(
        self,
        db: Database,
        mech: MechanismManager,
        agents: AgentService,
        ports: PortRecords,
        segments: DynamicSegments,
        *,
        max_tries: int = 10,
    ) -> None:
        self.db = db
        self.mech = mech
        self.agents = agents
        self.ports = ports
        self.segments = segments
        self.max_tries = max_tries

    def bind(
        self, port_id: str, host: str | None, *, force: bool
    ) -> tuple[BindingView, dict[str, Any] | None]:
        for _ in range(self.max_tries):
            snap = self._snapshot(port_id, host, force=force)
            if isinstance(snap, BindingView):
                return snap, None
            result = self.mech.bind_port(snap.request, self.segments)
            try:
                committed = self._commit(snap, result, run_precommit=True)
            except _SegmentGone:
                committed = None
            except NetplexError as exc:
                LOG.warning("binding of port %s rejected in update_port_precommit: %s",
                            port_id, exc)
                self.segments.release_unused(s.id for s in result.dynamic_segments)
                result = result.failed(f"update_port_precommit rejected the binding: {exc}")
                committed = self._commit(snap, result, run_precommit=False)
            if committed is None:
                LOG.debug("binding of port %s on %s changed meanwhile; retrying",
                          port_id, snap.host)
                self.segments.release_unused(s.id for s in result.dynamic_segments)
                continue
            if committed.context is not None and self.mech.implements("update_port_postcommit"):
                self.mech.call_postcommit("update_port_postcommit", committed.context)
            return committed.view, committed.port
        LOG.warning("gave up binding port %s after %d tries (it kept changing)",
                    port_id, self.max_tries)
        with self.db.read() as s:
            row = self.binding_row(s, port_id, host)
            if row is None:
                raise PortBindingNotFound(port_id=port_id, host=host or "")
            return BindingView.from_row(row), None

    @staticmethod
    def binding_row(session: Session, port_id: str, host: str | None) -> PortBinding | None:
        if host is None:
            return session.scalars(
                select(PortBinding).where(
                    PortBinding.port_id == port_id, PortBinding.status == BINDING_ACTIVE
                )
            ).one_or_none()
        return session.get(PortBinding, (port_id, host))

    def _snapshot(self, port_id: str, host: str | None, *, force: bool) -> _Snapshot | BindingView:
        with self.db.read_conn() as conn:
            port = PORT_ROW.first(conn, {"port_id": port_id})
            if port is None:
                raise PortNotFound(port_id=port_id)
            if host is None:
                row = ACTIVE_BINDING_ROW.first(conn, {"port_id": port_id})
            else:
                row = HOST_BINDING_ROW.first(conn, {"port_id": port_id, "host": host})
            if row is None:
                raise PortBindingNotFound(port_id=port_id, host=host or "")
            view = BindingView.from_row(row)
            if not row.host or (view.is_bound and not force):
                return view
            net = NETWORK_ROW.first(conn, {"network_id": port.network_id})
            if net is None:
                raise NetworkNotFound(net_id=port.network_id)
            network = NetworkContext(
                current=frozen_mapping(basic_network_dict(net)),
                segments=network_segments(conn, port.network_id),
            )
            # Levels exist only on bound bindings; skip the query otherwise.
            info = binding_info(conn, row) if view.is_bound else PortBindingInfo(
                host=row.host,
                vnic_type=row.vnic_type,
                profile=frozen_mapping(row.profile),
                vif_type=row.vif_type,
                vif_details=frozen_mapping(row.vif_details),
                status=row.status,
            )
            request = BindingRequest(
                port=frozen_mapping(self.ports.render(conn, port_id)),
                network=network,
                binding=info,
                agents=self.agents.agents_on_host(conn, row.host),
            )
            return _Snapshot(port_id, row.host, row.status, row.attempt, request)

    def _commit(
        self, snap: _Snapshot, result: BindingResult, *, run_precommit: bool
    ) -> Committed | None:
        want_pre = run_precommit and self.mech.implements("update_port_precommit")
        want_ctx = want_pre or self.mech.implements("update_port_postcommit")
        new_attempt = snap.attempt + 1

        def fn(txn: Txn) -> Committed | None:
            conn = txn.conn
            res = CAS_BINDING.execute(
                conn,
                {
                    "b_port_id": snap.port_id,
                    "b_host": snap.host,
                    "b_attempt": snap.attempt,
                    "b_vif_type": result.vif_type,
                    "b_vif_details": dict(result.vif_details),
                    "b_diagnostics": list(result.diagnostics),
                    "b_new_attempt": new_attempt,
                },
            )
            if res.rowcount != 1:
                return None
            dyn = {seg.id for seg in result.dynamic_segments}
            if dyn:
                found = set(
                    txn.session.scalars(
                        select(NetworkSegment.id)
                        .where(NetworkSegment.id.in_(list(dyn)))
                        .with_for_update(read=True)
                    ).all()
                )
                if found != dyn:
                    raise _SegmentGone()
            # The CAS succeeded, so the levels are still the ones the snapshot read.
            old = {lv.segment_id for lv in snap.request.binding.levels if lv.segment_id}
            if snap.request.binding.levels:
                DELETE_LEVELS.rows(conn, {"port_id": snap.port_id, "host": snap.host})
            if result.levels:
                INSERT_LEVELS.executemany(
                    conn,
                    [
                        {
                            "port_id": snap.port_id,
                            "host": snap.host,
                            "level": lv.level,
                            "driver": lv.driver,
                            "segment_id": lv.segment_id,
                        }
                        for lv in result.levels
                    ],
                )
            still_used = {lv.segment_id for lv in result.levels}
            for sid in old - still_used:
                self.segments.release_if_unused(txn.session, sid)
            status = result.status if result.status and snap.status == BINDING_ACTIVE else None
            rendered = self.ports.port_changed(txn, snap.port_id, status=status)
            view = BindingView(
                port_id=snap.port_id,
                host=snap.host,
                vnic_type=snap.request.binding.vnic_type,
                profile=dict(snap.request.binding.profile),
                vif_type=result.vif_type,
                vif_details=dict(result.vif_details),
                status=snap.status,
                diagnostics=tuple(result.diagnostics),
                attempt=new_attempt,
            )
            ctx = None
            if want_ctx:
                ctx = PortContext(
                    current=frozen_mapping(rendered),
                    original=snap.request.port,
                    network=snap.request.network,
                    binding=binding_info(conn, view),
                    original_binding=snap.request.binding,
                )
                if want_pre:
                    self.mech.call_precommit("update_port_precommit", ctx)
            return Committed(view, ctx, rendered)

        return self.db.transaction(fn)
