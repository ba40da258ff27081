"""Errors of the VIF library.

::

    VifError
    ├── PortNotBound            no usable binding (unbound, or no binding data) and no default
    ├── BindingFailed           the server says binding_failed; .reasons per mechanism driver
    ├── UnsupportedVifType      no plugin for this vif_type; .supported lists the ones we have
    ├── InvalidVifDetails       the binding lacks something the plugin needs
    ├── InstanceNotSupported    this vif_type cannot serve this kind of VM (e.g. vhostuser
    │                           for a namespace VM)
    ├── PluginError             a plugin failed to load, or two claim one vif_type
    ├── ExecutionError          a dataplane operation failed; .op is the failing operation
    │   └── NamespaceNotFound   a host or VM namespace does not exist
    └── AttachError             the attach/detach flow could not finish
        └── AttachTimeout       a wait (binding, ACTIVE) ran out; .step says which

Every error carries ``port_id`` when it is about one port (None otherwise), so
callers can print it without parsing messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AttachError",
    "AttachTimeout",
    "BindingFailed",
    "BindingReason",
    "ExecutionError",
    "InvalidVifDetails",
    "InstanceNotSupported",
    "NamespaceNotFound",
    "PluginError",
    "PortNotBound",
    "UnsupportedVifType",
    "VifError",
]


class VifError(Exception):
    """Base class of the VIF library's errors."""

    def __init__(self, message: str, *, port_id: str | None = None) -> None:
        self.port_id = port_id
        super().__init__(message)


class PortNotBound(VifError):
    """The port has no binding the compute side can use, and no default is configured."""

    def __init__(self, port_id: str, vif_type: str | None, host: str | None, why: str) -> None:
        self.vif_type = vif_type
        self.host = host
        super().__init__(
            f"port {port_id} is not bound (binding:vif_type={vif_type!r}, "
            f"binding:host_id={host!r}): {why}",
            port_id=port_id,
        )


@dataclass(frozen=True)
class BindingReason:
    """Why one mechanism driver (or the server) did not bind the port."""

    #: Mechanism driver name, or None when the server gave a bare reason.
    driver: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.driver}: {self.reason}" if self.driver else self.reason


class BindingFailed(VifError):
    """The server tried to bind the port on ``host`` and no mechanism driver could."""

    def __init__(self, port_id: str, host: str | None, reasons: Sequence[BindingReason]) -> None:
        self.host = host
        self.vif_type = "binding_failed"
        self.reasons = tuple(reasons)
        lines = [
            f"binding failed for port {port_id} on host {host!r} (binding:vif_type=binding_failed)"
        ]
        if self.reasons:
            lines += [f"  - {r}" for r in self.reasons]
        else:
            lines.append("  (the server gave no reasons: binding:diagnostics is missing)")
        super().__init__("\n".join(lines), port_id=port_id)


class UnsupportedVifType(VifError):
    """No plugin handles ``vif_type``."""

    def __init__(self, vif_type: str, supported: Sequence[str], port_id: str | None = None) -> None:
        self.vif_type = vif_type
        self.supported = tuple(sorted(supported))
        subject = f"port {port_id}: " if port_id else ""
        super().__init__(
            f"{subject}vif_type {vif_type!r} is not supported here; "
            f"supported vif types: {', '.join(self.supported) or '(none)'}",
            port_id=port_id,
        )


class InvalidVifDetails(VifError):
    """``binding:vif_details`` (or the instance) lacks what the plugin needs."""


class InstanceNotSupported(VifError):
    """The vif_type cannot be plugged for this kind of instance (namespace vs hypervisor VM)."""


class PluginError(VifError):
    """A plugin could not be loaded, or two plugins claim one vif_type (registry build)."""


class ExecutionError(VifError):
    """A dataplane operation failed. ``op`` is the operation (None for a query)."""

    def __init__(self, message: str, *, op: object | None = None, port_id: str | None = None):
        self.op = op
        super().__init__(message, port_id=port_id)


class NamespaceNotFound(ExecutionError):
    """A network namespace named by the caller does not exist (we never create one)."""

    def __init__(self, netns: str, *, op: object | None = None) -> None:
        self.netns = netns
        super().__init__(
            f"network namespace {netns!r} does not exist (create it first: ip netns add {netns})",
            op=op,
        )


class AttachError(VifError):
    """The attach or detach flow could not finish; the message says what to check."""


class AttachTimeout(AttachError):
    """A wait ran out. ``step`` is ``"binding"`` or ``"active"``; ``status`` the last seen."""

    def __init__(self, message: str, *, port_id: str, step: str, status: str | None) -> None:
        self.step = step
        self.status = status
        super().__init__(message, port_id=port_id)
