"""Binding values: validation of what a port asks for, and the ``binding:*`` views.

The one renderer of a binding: the port dict (:mod:`netplex.core.port_rows`),
``/ports/{id}/bindings`` and ``explain`` all use these.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from netplex.core.mech_api import (
    BINDING_ACTIVE,
    VIF_TYPE_BINDING_FAILED,
    VIF_TYPE_UNBOUND,
    VNIC_NORMAL,
    VNIC_TYPES,
)
from netplex.db.models import PortBinding
from netplex.errors import InvalidInput

PORT_STATUS_ACTIVE = "ACTIVE"
PORT_STATUS_DOWN = "DOWN"


class _Unset(enum.Enum):
    UNSET = "UNSET"


#: "Not given" for :meth:`PortBindingService.stage_binding` keyword arguments.
UNSET = _Unset.UNSET
Unset = _Unset


def validate_vnic_type(value: Any) -> str:
    if value is None:
        return VNIC_NORMAL
    if not isinstance(value, str) or value not in VNIC_TYPES:
        raise InvalidInput(
            error_message=(
                f"binding:vnic_type {value!r} is not one of {', '.join(sorted(VNIC_TYPES))}"
            )
        )
    return value


def validate_profile(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(error_message="binding:profile must be a JSON object")
    return dict(value)


def validate_host(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 255:
        raise InvalidInput(error_message="binding:host_id must be a string of at most 255 chars")
    return value.strip()


@dataclass(frozen=True)
class BindingView:
    """A port binding row's values, detached from any session."""

    port_id: str
    host: str
    vnic_type: str
    profile: dict[str, Any]
    vif_type: str
    vif_details: dict[str, Any]
    status: str
    diagnostics: tuple[str, ...]
    attempt: int

    @classmethod
    def from_row(cls, row: Any) -> BindingView:
        """From a :class:`PortBinding` or a Core row of ``port_bindings``."""
        return cls(
            port_id=row.port_id,
            host=row.host,
            vnic_type=row.vnic_type,
            profile=dict(row.profile or {}),
            vif_type=row.vif_type,
            vif_details=dict(row.vif_details or {}),
            status=row.status,
            diagnostics=tuple(row.diagnostics or ()),
            attempt=row.attempt,
        )

    @property
    def is_bound(self) -> bool:
        return self.vif_type not in (VIF_TYPE_UNBOUND, VIF_TYPE_BINDING_FAILED)


def binding_dict(row: PortBinding | BindingView | None) -> dict[str, Any]:
    """The ``binding:*`` attributes of a port, from its ACTIVE binding.

    ``binding:diagnostics`` is an admin-only extension attribute: the API
    layer drops it for other callers (as it does ``binding:profile`` etc.
    under Neutron's policy).
    """
    if row is None:
        return {
            "binding:host_id": "",
            "binding:vnic_type": VNIC_NORMAL,
            "binding:profile": {},
            "binding:vif_type": VIF_TYPE_UNBOUND,
            "binding:vif_details": {},
            "binding:diagnostics": [],
        }
    return {
        "binding:host_id": row.host,
        "binding:vnic_type": row.vnic_type,
        "binding:profile": dict(row.profile or {}),
        "binding:vif_type": row.vif_type,
        "binding:vif_details": dict(row.vif_details or {}),
        "binding:diagnostics": list(row.diagnostics or ()),
    }


def binding_entry_dict(row: PortBinding | BindingView) -> dict[str, Any]:
    """One entry of ``/v2.0/ports/{id}/bindings`` (binding-extended)."""
    return {
        "host": row.host,
        "vif_type": row.vif_type,
        "vif_details": dict(row.vif_details or {}),
        "vnic_type": row.vnic_type,
        "profile": dict(row.profile or {}),
        "status": row.status,
    }


def binding_dicts(session: Session, port_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``binding:*`` attributes for many ports in one query (port lists)."""
    out = {pid: binding_dict(None) for pid in port_ids}
    if not port_ids:
        return out
    rows = session.scalars(
        select(PortBinding).where(
            PortBinding.port_id.in_(list(port_ids)), PortBinding.status == BINDING_ACTIVE
        )
    )
    for row in rows:
        out[row.port_id] = binding_dict(row)
    return out
