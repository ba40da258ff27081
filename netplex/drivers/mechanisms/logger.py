"""Logger mechanism driver: records every call it receives, binds nothing.

For operators (``[ml2] mechanism_drivers = logger,openvswitch`` logs what
each API call implied, at INFO) and for tests (``driver.calls`` is the
ordered list of :class:`LoggedCall`, the last :data:`HISTORY` of them). In
bind_port it declines, so the binding diagnostics show it was asked.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netplex.core.mech_api import MechanismDriver, NetworkContext, PortContext, SubnetContext

__all__ = ["HISTORY", "LoggedCall", "LoggerMechanismDriver"]

LOG = logging.getLogger(__name__)

#: Calls kept in :attr:`LoggerMechanismDriver.calls`: a server that runs this
#: driver for weeks must not grow without bound; the log has every call.
HISTORY = 10_000


@dataclass(frozen=True)
class LoggedCall:
    """One call a driver received, with the context values it was given."""

    method: str
    current: Mapping[str, Any]
    original: Mapping[str, Any] | None
    #: Port calls only: the binding's host and vif_type before/after.
    host: str | None = None
    original_host: str | None = None
    vif_type: str | None = None
    original_vif_type: str | None = None
    #: bind_port only: ids of the segments offered.
    segments_to_bind: tuple[str, ...] = ()


class LoggerMechanismDriver(MechanismDriver):
    """``[ml2] mechanism_drivers = logger``. Thread-safe."""

    def __init__(self, history: int = HISTORY) -> None:
        self._lock = threading.Lock()
        self._calls: deque[LoggedCall] = deque(maxlen=history)

    @property
    def calls(self) -> list[LoggedCall]:
        """A copy of the last calls recorded (at most ``history``), oldest first."""
        with self._lock:
            return list(self._calls)

    def methods(self) -> list[str]:
        return [c.method for c in self.calls]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()

    def _record(self, call: LoggedCall) -> None:
        LOG.info(
            "%s: current=%s original=%s host=%s vif_type=%s",
            call.method,
            dict(call.current),
            dict(call.original) if call.original is not None else None,
            call.host,
            call.vif_type,
        )
        with self._lock:
            self._calls.append(call)

    def _plain(self, method: str, context: NetworkContext | SubnetContext) -> None:
        self._record(LoggedCall(method, context.current, context.original))

    def _port(self, method: str, context: PortContext) -> None:
        ob = context.original_binding
        self._record(
            LoggedCall(
                method,
                context.current,
                context.original,
                host=context.host,
                original_host=ob.host if ob else None,
                vif_type=context.vif_type,
                original_vif_type=ob.vif_type if ob else None,
            )
        )

    def create_network_precommit(self, context: NetworkContext) -> None:
        self._plain("create_network_precommit", context)

    def create_network_postcommit(self, context: NetworkContext) -> None:
        self._plain("create_network_postcommit", context)

    def update_network_precommit(self, context: NetworkContext) -> None:
        self._plain("update_network_precommit", context)

    def update_network_postcommit(self, context: NetworkContext) -> None:
        self._plain("update_network_postcommit", context)

    def delete_network_precommit(self, context: NetworkContext) -> None:
        self._plain("delete_network_precommit", context)

    def delete_network_postcommit(self, context: NetworkContext) -> None:
        self._plain("delete_network_postcommit", context)

    def create_subnet_precommit(self, context: SubnetContext) -> None:
        self._plain("create_subnet_precommit", context)

    def create_subnet_postcommit(self, context: SubnetContext) -> None:
        self._plain("create_subnet_postcommit", context)

    def update_subnet_precommit(self, context: SubnetContext) -> None:
        self._plain("update_subnet_precommit", context)

    def update_subnet_postcommit(self, context: SubnetContext) -> None:
        self._plain("update_subnet_postcommit", context)

    def delete_subnet_precommit(self, context: SubnetContext) -> None:
        self._plain("delete_subnet_precommit", context)

    def delete_subnet_postcommit(self, context: SubnetContext) -> None:
        self._plain("delete_subnet_postcommit", context)

    def create_port_precommit(self, context: PortContext) -> None:
        self._port("create_port_precommit", context)

    def create_port_postcommit(self, context: PortContext) -> None:
        self._port("create_port_postcommit", context)

    def update_port_precommit(self, context: PortContext) -> None:
        self._port("update_port_precommit", context)

    def update_port_postcommit(self, context: PortContext) -> None:
        self._port("update_port_postcommit", context)

    def delete_port_precommit(self, context: PortContext) -> None:
        self._port("delete_port_precommit", context)

    def delete_port_postcommit(self, context: PortContext) -> None:
        self._port("delete_port_postcommit", context)

    def bind_port(self, context: PortContext) -> None:
        self._record(
            LoggedCall(
                "bind_port",
                context.current,
                context.original,
                host=context.host,
                vif_type=context.vif_type,
                segments_to_bind=tuple(s.id for s in context.segments_to_bind),
            )
        )
        context.decline("records calls only; never binds")
