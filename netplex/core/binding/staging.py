"""Binding requests: what a port asks for (host, vnic_type, profile), in the port's transaction.

Whoever changes a binding's inputs bumps its ``attempt`` here and, after
commit, binds (:mod:`netplex.core.binding.attempt`): an in-flight binder's
result for the old inputs is then discarded by its compare-and-swap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from netplex.core.binding.collaborators import PortRecords
from netplex.core.binding.segments import DynamicSegments
from netplex.core.binding.statements import (
    BINDING_EXISTS,
    DELETE_ALL_BINDINGS,
    DELETE_ALL_LEVELS,
    INSERT_BINDING,
    LOCK_ACTIVE_BINDING,
    RESTAGE_BINDING,
)
from netplex.core.binding.views import UNSET, Unset, validate_host, validate_profile, validate_vnic_type
from netplex.core.mech_api import BINDING_ACTIVE, VIF_TYPE_BINDING_FAILED, VIF_TYPE_UNBOUND, VNIC_NORMAL
from netplex.errors import PortBindingAlreadyExists


class BindingRequests:
    """Stores, changes and removes the binding rows a port's own create/update/delete asks for."""

    def __init__(self, ports: PortRecords, segments: DynamicSegments) -> None:
        self.ports = ports
        self.segments = segments

    def stage_binding(
        self,
        session: Session,
        port_id: str,
        *,
        host: str | None | Unset = UNSET,
        vnic_type: str | None | Unset = UNSET,
        profile: Mapping[str, Any] | None | Unset = UNSET,
    ) -> bool:
        """Record the binding a port asks for; return whether to bind after commit.

        Call in every port update that carries ``binding:host_id``,
        ``binding:vnic_type`` or ``binding:profile`` (unset arguments keep
        their values); a port without a binding row gets its ACTIVE one (unset
        arguments take defaults; port create uses :meth:`insert_request`).
        When any of the three changes, the old levels are dropped (dynamic
        segments released if unused), ``vif_type`` becomes ``unbound``,
        ``attempt`` is bumped (an in-flight binder's result is discarded), and
        a host change sets the port DOWN. Returns True when the caller must
        bind after commit (:meth:`PortBindingService.bind_port`): a host is set
        and it changed, or the binding had failed (any update of a failed port
        retries it). Raises ``InvalidInput`` for bad values,
        ``PortBindingAlreadyExists`` when moving to a host that already has
        an inactive binding of this port.
        """
        new_host_arg = None if host is UNSET else validate_host(host)
        new_vnic_arg = None if vnic_type is UNSET else validate_vnic_type(vnic_type)
        new_profile_arg = None if profile is UNSET else validate_profile(profile)
        conn = session.connection()
        row = LOCK_ACTIVE_BINDING.first(conn, {"port_id": port_id})
        if row is None:
            INSERT_BINDING.execute(
                conn,
                {
                    "port_id": port_id,
                    "host": new_host_arg or "",
                    "vnic_type": new_vnic_arg or VNIC_NORMAL,
                    "profile": new_profile_arg if new_profile_arg is not None else {},
                    "vif_type": VIF_TYPE_UNBOUND,
                    "vif_details": {},
                    "status": BINDING_ACTIVE,
                    "diagnostics": [],
                    "attempt": 0,
                },
            )
            return bool(new_host_arg)
        new_host = row.host if new_host_arg is None else new_host_arg
        new_vnic = row.vnic_type if new_vnic_arg is None else new_vnic_arg
        new_profile = dict(row.profile or {}) if new_profile_arg is None else new_profile_arg
        if (new_host, new_vnic, new_profile) == (row.host, row.vnic_type, dict(row.profile or {})):
            return bool(row.host) and row.vif_type == VIF_TYPE_BINDING_FAILED
        old_host = row.host
        if new_host != old_host and new_host:
            if BINDING_EXISTS.first(conn, {"port_id": port_id, "host": new_host}) is not None:
                raise PortBindingAlreadyExists(port_id=port_id, host=new_host)
        released = self.segments.delete_levels(session, port_id, old_host)
        if new_host != old_host:
            self.ports.set_down(conn, port_id)
        RESTAGE_BINDING.execute(
            conn,
            {
                "b_port_id": port_id,
                "b_old_host": old_host,
                "b_host": new_host,
                "b_vnic_type": new_vnic,
                "b_profile": new_profile,
                "b_vif_details": {},
                "b_diagnostics": [],
            },
        )
        for sid in released:
            self.segments.release_if_unused(session, sid)
        return bool(new_host)

    def insert_request(
        self, conn: Connection, port_id: str, host: str, vnic_type: str, profile: Mapping[str, Any]
    ) -> None:
        """The ACTIVE binding row of a port being created (the port create hot path:
        one INSERT, no lookup; the caller has validated the values). Bind after
        commit when ``host`` is set."""
        INSERT_BINDING.execute(
            conn,
            {
                "port_id": port_id,
                "host": host,
                "vnic_type": vnic_type,
                "profile": dict(profile),
                "vif_type": VIF_TYPE_UNBOUND,
                "vif_details": {},
                "status": BINDING_ACTIVE,
                "diagnostics": [],
                "attempt": 0,
            },
        )

    def release_port_bindings(self, session: Session, port_id: str) -> None:
        """Delete all of a port's bindings and levels, releasing dynamic segments
        no other port uses. Call in the port delete transaction, *before*
        deleting the port row (the cascade would hide the levels)."""
        conn = session.connection()
        seg_ids = [row[0] for row in DELETE_ALL_LEVELS.rows(conn, {"port_id": port_id})]
        DELETE_ALL_BINDINGS.execute(conn, {"port_id": port_id})
        for sid in set(seg_ids):
            if sid:
                self.segments.release_if_unused(session, sid)
