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
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from netplex.agent.model import HostDesired
from netplex.agent.monitor import DeviceMonitor, DeviceNews
from netplex.agent.ops import Op, Plan

__all__ = ["ApplyResult", "Backend", "Baseline", "PortStatus", "ReconcileResult", "reconcile"]

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


@dataclass(frozen=True)
class Baseline:
    """What a pass leaves for the next: the host as it saw it, and the operations it
    then applied without error (so ``observed`` plus ``applied`` is the host now,
    as far as the agent's own doing goes)."""

    observed: Any
    applied: tuple[Op, ...] = ()


class Backend(Protocol):
    """What every data-plane backend offers. ``plan`` and ``port_status`` are pure."""

    name: str

    def observe(self) -> Any:
        """Read the current data-plane state of this host, all of it."""
        ...

    def observe_since(self, baseline: Baseline, desired: HostDesired,
                      devices: Collection[str]) -> Any:
        """The current state, starting from ``baseline`` instead of reading everything.

        What only the agent changes is taken from the baseline; what others
        change (VM devices plugged or unplugged) is read again: at least the
        devices of ``desired``'s ports the baseline lacks, and ``devices``
        (named by a device monitor since). A backend that cannot do this
        more cheaply returns :meth:`observe`.
        """
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

    def device_monitor(self, notify: Callable[[DeviceNews], None]) -> DeviceMonitor:
        """A monitor (not started) that tells ``notify`` when VM devices come and go.

        Its news let event passes re-read only the devices it names; without a
        running monitor every pass reads everything.
        """
        ...


@dataclass(frozen=True)
class ReconcileResult:
    plan: Plan
    apply: ApplyResult
    #: port_id -> status after this pass.
    ports: dict[str, PortStatus] = field(default_factory=dict)
    seconds: float = 0.0
    #: Where the next pass may start from.
    baseline: Baseline | None = None
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


def reconcile(backend: Backend, desired: HostDesired, baseline: Baseline | None = None,
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
