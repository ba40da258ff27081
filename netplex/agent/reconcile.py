"""One reconcile pass: observe, plan, apply, observe again, report port status.

The host agent loop (which talks to the server) calls :func:`reconcile`
whenever the feed says something changed for this host, and periodically as a
full resync: both paths are the same function (events are hints, the resync is
truth — STYLE "What to absorb" 10). A pass on an already-correct host makes no
change at all, which is what keeps VMs' traffic undisturbed across agent
restarts.

Observing everything is the expensive part of a pass on a big host, so an
event-driven pass may start from the :class:`Baseline` the previous pass left
(its snapshot plus the operations it applied) and let the backend re-read
only what others change (:meth:`Backend.observe_since`). A pass without a
baseline - the first one, every full resync, after any error - observes
everything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from netplex.agent.backend_api import ApplyResult, Backend, Baseline, PortStatus
from netplex.agent.model import HostDesired
from netplex.agent.ops import Plan

__all__ = ["ApplyResult", "Backend", "Baseline", "PortStatus", "ReconcileResult", "reconcile"]

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileResult:
    plan: Plan
    apply: ApplyResult
    #: port_id -> status after this pass.
    ports: dict[str, PortStatus] = field(default_factory=dict)
    seconds: float = 0.0
    #: Where the next pass may start from.
    baseline: Baseline[Any] | None = None
    #: Whether this pass read everything (no baseline given).
    full: bool = True
    #: Seconds spent per phase (observe, plan, apply, status), for the log.
    phases: Mapping[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.plan.ops)

    @property
    def up(self) -> set[str]:
        return {pid for pid, st in self.ports.items() if st.up}

    @property
    def down(self) -> set[str]:
        return {pid for pid, st in self.ports.items() if not st.up}


def reconcile(backend: Backend[Any], desired: HostDesired, baseline: Baseline[Any] | None = None,
              devices: Collection[str] = ()) -> ReconcileResult:
    """Make ``backend``'s host match ``desired``; return what was done and port status.

    :param baseline: what the previous pass left (:attr:`ReconcileResult.baseline`);
        None observes everything.
    :param devices: devices a monitor reported since the baseline was taken.
    """
    phases = _Phases()
    observed = (backend.observe() if baseline is None
                else backend.observe_since(baseline, desired, devices))
    phases.done("observe")
    plan = backend.plan(desired, observed)
    phases.done("plan")
    result = ApplyResult()
    converged = True
    after = Baseline(observed)
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
            after = Baseline(observed)
        else:
            after = Baseline(observed, plan.ops)
    phases.done("apply")
    for nid, why in plan.problems.items():
        LOG.warning("%s: network %s not built: %s", backend.name, nid, why)
    # After an error-free apply the host matches the plan by construction, so
    # a second snapshot (the slowest part of a pass on a big host) is skipped;
    # the periodic full resync catches anything the kernel quietly undid.
    ports = backend.port_status(desired, observed, converged)
    phases.done("status")
    return ReconcileResult(plan=plan, apply=result, ports=ports, seconds=phases.total(),
                           baseline=after, full=baseline is None, phases=phases.seconds)


class _Phases:
    def __init__(self) -> None:
        self.start = self._last = time.monotonic()
        self.seconds: dict[str, float] = {}

    def done(self, phase: str) -> None:
        now = time.monotonic()
        self.seconds[phase], self._last = now - self._last, now

    def total(self) -> float:
        return self._last - self.start
