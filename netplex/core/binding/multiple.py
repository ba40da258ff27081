"""Multiple bindings per port (Neutron's ``binding-extended``): create, activate, delete.

A live migration binds the port on the destination host (INACTIVE) while the
source binding stays ACTIVE, then activates the new one in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from netplex.core.binding.attempt import BindingAttempts, Committed
from netplex.core.binding.collaborators import PortRecords
from netplex.core.binding.contexts import binding_info, network_context, read_network_dict
from netplex.core.binding.segments import DynamicSegments
from netplex.core.binding.views import (
    PORT_STATUS_DOWN,
    BindingView,
    binding_entry_dict,
    validate_host,
    validate_profile,
    validate_vnic_type,
)
from netplex.core.mech_api import (
    BINDING_ACTIVE,
    BINDING_INACTIVE,
    VIF_TYPE_BINDING_FAILED,
    VIF_TYPE_UNBOUND,
    PortContext,
    frozen_mapping,
)
from netplex.core.mech_manager import MechanismManager
from netplex.db.engine import Database, Txn
from netplex.db.models import Port, PortBinding
from netplex.errors import (
    InvalidInput,
    InvalidState,
    PortBindingAlreadyActive,
    PortBindingAlreadyExists,
    PortBindingError,
    PortBindingNotFound,
    PortNotFound,
)


class MultipleBindings:
    """The ``/v2.0/ports/{id}/bindings`` operations."""

    def __init__(
        self,
        db: Database,
        mech: MechanismManager,
        ports: PortRecords,
        segments: DynamicSegments,
        attempts: BindingAttempts,
    ) -> None:
        self.db = db
        self.mech = mech
        self.ports = ports
        self.segments = segments
        self.attempts = attempts

    def create_binding(
        self,
        port_id: str,
        host: str,
        vnic_type: str | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``POST /v2.0/ports/{id}/bindings``: an INACTIVE binding on ``host``, bound now.

        If no driver can bind it the new row is removed again and
        ``PortBindingError`` carries the drivers' reasons. Raises
        ``PortBindingAlreadyExists`` if the port already has a binding there.
        """
        host = validate_host(host)
        if not host:
            raise InvalidInput(error_message="a port binding needs a host")
        vnic = validate_vnic_type(vnic_type)
        prof = validate_profile(profile)

        def create(txn: Txn) -> None:
            s = txn.session
            if s.get(Port, port_id) is None:
                raise PortNotFound(port_id=port_id)
            if s.get(PortBinding, (port_id, host)) is not None:
                raise PortBindingAlreadyExists(port_id=port_id, host=host)
            s.add(
                PortBinding(
                    port_id=port_id,
                    host=host,
                    vnic_type=vnic,
                    profile=prof,
                    vif_type=VIF_TYPE_UNBOUND,
                    vif_details={},
                    status=BINDING_INACTIVE,
                    diagnostics=[],
                    attempt=0,
                )
            )

        self.db.transaction(create)
        view = self.attempts.bind(port_id, host, force=False)[0]
        if view.is_bound:
            return binding_entry_dict(view)

        def remove(txn: Txn) -> None:
            row = txn.session.get(PortBinding, (port_id, host))
            if (
                row is not None
                and row.status == BINDING_INACTIVE
                and row.vif_type in (VIF_TYPE_UNBOUND, VIF_TYPE_BINDING_FAILED)
            ):
                self.segments.drop_binding(txn.session, port_id, host)

        self.db.transaction(remove)
        reasons = "; ".join(view.diagnostics) or "no reason recorded"
        raise PortBindingError(port_id=port_id, reason=f"no driver could bind on {host}: {reasons}")

    def activate_binding(self, port_id: str, host: str) -> dict[str, Any]:
        """``PUT /v2.0/ports/{id}/bindings/{host}/activate``: in one transaction the
        binding on ``host`` becomes ACTIVE and the previously active one INACTIVE.

        Raises ``PortBindingNotFound``, ``PortBindingAlreadyActive``, or
        ``InvalidState`` (409) if the binding is not bound (its diagnostics
        say why). The port goes DOWN until the new host's agent reports it.
        """
        want_ctx = self.mech.implements("update_port_precommit") or self.mech.implements(
            "update_port_postcommit"
        )

        def fn(txn: Txn) -> Committed:
            s = txn.session
            port = s.get(Port, port_id)
            if port is None:
                raise PortNotFound(port_id=port_id)
            target = s.get(PortBinding, (port_id, host), with_for_update=True)
            if target is None or not host:
                raise PortBindingNotFound(port_id=port_id, host=host)
            if target.status == BINDING_ACTIVE:
                raise PortBindingAlreadyActive(port_id=port_id, host=host)
            if target.vif_type in (VIF_TYPE_UNBOUND, VIF_TYPE_BINDING_FAILED):
                why = "; ".join(target.diagnostics or ()) or "not bound yet"
                raise InvalidState(
                    reason=(
                        f"binding of port {port_id} on host {host} is {target.vif_type} "
                        f"and cannot be activated: {why}"
                    )
                )
            active = s.scalars(
                select(PortBinding)
                .where(PortBinding.port_id == port_id, PortBinding.status == BINDING_ACTIVE)
                .with_for_update()
            ).one_or_none()
            original = None
            original_info = None
            if want_ctx:
                original = frozen_mapping(self.ports.render(txn.conn, port_id))
                original_info = binding_info(s, active)
            if active is not None:
                active.status = BINDING_INACTIVE
                active.attempt = active.attempt + 1
                s.flush()  # one ACTIVE row at a time
            target.status = BINDING_ACTIVE
            target.attempt = target.attempt + 1
            s.flush()
            rendered = self.ports.port_changed(txn, port_id, status=PORT_STATUS_DOWN)
            ctx = None
            if want_ctx:
                ctx = PortContext(
                    current=frozen_mapping(rendered),
                    original=original,
                    network=network_context(s, read_network_dict(s, port.network_id)),
                    binding=binding_info(s, target),
                    original_binding=original_info,
                )
                if self.mech.implements("update_port_precommit"):
                    self.mech.call_precommit("update_port_precommit", ctx)
            return Committed(BindingView.from_row(target), ctx)

        committed = self.db.transaction(fn)
        if committed.context is not None and self.mech.implements("update_port_postcommit"):
            self.mech.call_postcommit("update_port_postcommit", committed.context)
        return binding_entry_dict(committed.view)

    def delete_binding(self, port_id: str, host: str) -> None:
        """``DELETE /v2.0/ports/{id}/bindings/{host}``: remove an INACTIVE binding
        (and its levels, releasing unused dynamic segments). The ACTIVE binding
        cannot be deleted this way (``InvalidState``, 409): clear
        ``binding:host_id`` instead."""

        def fn(txn: Txn) -> None:
            s = txn.session
            row = s.get(PortBinding, (port_id, host), with_for_update=True)
            if row is None or not host:
                if s.get(Port, port_id) is None:
                    raise PortNotFound(port_id=port_id)
                raise PortBindingNotFound(port_id=port_id, host=host)
            if row.status == BINDING_ACTIVE:
                raise InvalidState(
                    reason=(
                        f"binding of port {port_id} on host {host} is the active one; "
                        "unbind the port by clearing binding:host_id instead"
                    )
                )
            self.segments.drop_binding(s, port_id, host)
            if s.get(Port, port_id) is not None:
                self.ports.port_changed(txn, port_id)

        self.db.transaction(fn)
