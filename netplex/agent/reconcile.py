"""One reconcile pass: observe, plan, apply, observe again, report port status.

The host agent loop (which talks to the server) calls :func:`reconcile`
whenever the feed says something changed for this host, and periodically as a
full resync: both paths are the same function (events are hints, the resync is
truth — STYLE "What to absorb" 10). A pass on an already-correct host makes no
change at all, which is what keeps VMs' traffic undisturbed across agent
restarts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from netplex.agent.model import HostDesired
from netplex.agent.ops import Op, Plan

__all__ = ["ApplyResult", "Backend", "PortStatus", "ReconcileResult", "reconcile"]

LOG = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PortStatus:
    """Whether a local port is wired (``up``: report ACTIVE) and, if not, why (DOWN)."""

    up: bool
    reason: str = ""


@dataclass(frozen=True)
class ApplyResult:
    applied: int = 0
    #: (operation, error text) for operations that failed; the next pass retries them.
    errors: tuple[tuple[Op, str], ...] = ()


class Backend(Protocol):
    """What every data-plane backend offers. ``plan`` and ``port_status`` are pure."""

    name: str

    def observe(self) -> Any:
        """Read the current data-plane state of this host."""
        ...

    def plan(self, desired: HostDesired, observed: Any) -> Plan:
        """Operations that turn ``observed`` into ``desired``; no I/O."""
        ...

    def apply(self, ops: Sequence[Op]) -> ApplyResult:
        """Execute ``ops`` in order; a failing op is recorded and the rest still run."""
        ...

    def port_status(self, desired: HostDesired, observed: Any,
                    converged: bool = False) -> dict[str, PortStatus]:
        """For each local port of ``desired``: wired or not, judged from ``observed``.

        ``converged=True`` says ``observed`` predates a plan that applied without
        error, so only presence, admin state and buildability are checked.
        """
        ...


@dataclass(frozen=True)
class ReconcileResult:
    plan: Plan
    apply: ApplyResult
    #: port_id -> status after this pass.
    ports: dict[str, PortStatus] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.plan.ops)

    @property
    def up(self) -> set[str]:
        return {pid for pid, st in self.ports.items() if st.up}

    @property
    def down(self) -> set[str]:
        return {pid for pid, st in self.ports.items() if not st.up}


def reconcile(backend: Backend, desired: HostDesired) -> ReconcileResult:
    """Make ``backend``'s host match ``desired``; return what was done and port status."""
    start = time.monotonic()
    observed = backend.observe()
    plan = backend.plan(desired, observed)
    result = ApplyResult()
    converged = True
    if plan.ops:
        LOG.info("%s: applying %d operation(s)", backend.name, len(plan.ops))
        for op in plan.ops:
            LOG.debug("%s: %s", backend.name, op)
        result = backend.apply(plan.ops)
        for op, err in result.errors:
            LOG.warning("%s: %s failed: %s", backend.name, op, err)
        if result.errors:
            # Something did not happen: judge ports by what is really there.
            observed = backend.observe()
            converged = False
    for nid, why in plan.problems.items():
        LOG.warning("%s: network %s not built: %s", backend.name, nid, why)
    # After an error-free apply the host matches the plan by construction, so
    # a second snapshot (the slowest part of a pass on a big host) is skipped;
    # the periodic full resync catches anything the kernel quietly undid.
    ports = backend.port_status(desired, observed, converged)
    return ReconcileResult(plan=plan, apply=result, ports=ports,
                           seconds=time.monotonic() - start)
