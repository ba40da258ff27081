"""Adapts the mechanism manager to the services' pre/postcommit seam.

Contexts are built only when some configured driver overrides the method
being called, so the default drivers (which act through the change feed
and agents) cost nothing on the API's hot paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from netplex.core.binding.contexts import port_context
from netplex.core.mech_api import (
    NetworkContext,
    PortBindingInfo,
    PortContext,
    SubnetContext,
    frozen_mapping,
)
from netplex.core.mech_manager import MechanismManager
from netplex.core.segments_model import Segment


def _binding_from_dict(d: Mapping[str, Any] | None) -> PortBindingInfo:
    if not d:
        return PortBindingInfo()
    return PortBindingInfo(
        host=str(d.get("binding:host_id") or ""),
        vnic_type=str(d.get("binding:vnic_type") or "normal"),
        profile=frozen_mapping(d.get("binding:profile")),
        vif_type=str(d.get("binding:vif_type") or "unbound"),
        vif_details=frozen_mapping(d.get("binding:vif_details")),
    )


class MechanismHooks:
    """:class:`~netplex.core.hooks.ResourceHooks` over the configured mechanism drivers."""

    def __init__(self, mech: MechanismManager) -> None:
        self.mech = mech
        self._wants: dict[tuple[str, str], bool] = {}

    def wants(self, resource: str, event: str) -> bool:
        """Whether any mechanism driver overrides ``{event}_{resource}_pre/postcommit``
        (cached: the driver set is fixed once the manager is initialized)."""
        key = (resource, event)
        cached = self._wants.get(key)
        if cached is None:
            cached = any(
                self.mech.implements(f"{event}_{resource}_{phase}") for phase in ("precommit", "postcommit")
            )
            self._wants[key] = cached
        return cached

    def _network_ctx(self, network_id: str, segments: Sequence[Segment]) -> NetworkContext:
        return NetworkContext(current=frozen_mapping({"id": network_id}), segments=tuple(segments))

    def _context(
        self,
        session: Session | None,
        resource: str,
        current: dict[str, Any],
        original: dict[str, Any] | None,
        segments: Sequence[Segment],
    ) -> Any:
        if resource == "network":
            return NetworkContext(
                current=frozen_mapping(current),
                original=frozen_mapping(original) if original is not None else None,
                segments=tuple(segments),
            )
        net = self._network_ctx(current["network_id"], segments)
        if resource == "subnet":
            return SubnetContext(
                current=frozen_mapping(current),
                original=frozen_mapping(original) if original is not None else None,
                network=net,
            )
        if session is not None and resource == "port":
            try:
                return port_context(session, current, original, network=net.current)
            except Exception:  # the port row may already be gone (delete)
                pass
        return PortContext(
            current=frozen_mapping(current),
            original=frozen_mapping(original) if original is not None else None,
            network=net,
            binding=_binding_from_dict(current),
            original_binding=_binding_from_dict(original) if original is not None else None,
        )

    def precommit(
        self,
        session: Session,
        event: str,
        resource: str,
        current: dict[str, Any],
        original: dict[str, Any] | None,
        segments: Sequence[Segment],
    ) -> None:
        method = f"{event}_{resource}_precommit"
        if self.mech.implements(method):
            self.mech.call_precommit(method, self._context(session, resource, current, original, segments))

    def postcommit(
        self,
        event: str,
        resource: str,
        current: dict[str, Any],
        original: dict[str, Any] | None,
        segments: Sequence[Segment],
    ) -> None:
        method = f"{event}_{resource}_postcommit"
        if self.mech.implements(method):
            # Raises MechanismDriverError for create_* failures (the service undoes the create).
            self.mech.call_postcommit(method, self._context(None, resource, current, original, segments))
