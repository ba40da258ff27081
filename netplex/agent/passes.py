"""Reconcile passes as the agent runs them: when one is needed, where it starts, what it leaves.

An event pass starts from the :class:`~netplex.agent.reconcile.Baseline`
the previous one left and re-reads only the devices the monitor named
(:mod:`netplex.agent.reconcile`); the first pass, every full resync and any
pass after an error or a monitor restart read everything. A failed pass is
retried with backoff; a bound port whose device is not there yet is looked
at again after ``device_recheck`` (the monitors usually tell first).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from netplex.agent.backoff import Backoff
from netplex.agent.events import Device
from netplex.agent.model import HostDesired
from netplex.agent.reconcile import Backend, Baseline, PortStatus, ReconcileResult, reconcile
from netplex.agent.stats import StatsBook

__all__ = ["PassRunner"]

LOG = logging.getLogger(__name__)


class PassRunner:
    """Runs the passes of one agent. Worker thread only.

    :param watched: whether a running device monitor names the devices that
        change (if not, every pass reads everything).
    """

    def __init__(self, backend: Backend[Any], *, device_recheck: float, watched: Callable[[], bool],
                 stats: StatsBook, clock: Callable[[], float]) -> None:
        self.backend = backend
        self._device_recheck = device_recheck
        self._watched = watched
        self._stats = stats
        self._clock = clock
        #: The desired state the last good pass made true (None: no pass yet).
        self.desired: HostDesired | None = None
        #: Each local port's status after the last good pass.
        self.status: dict[str, PortStatus] = {}
        #: Where the next event-driven pass starts (None: observe everything).
        self.baseline: Baseline[Any] | None = None
        #: Devices the monitor named since the last pass.
        self.devices: set[str] = set()
        self.needed = False
        #: When a pass is due whatever happens (retry, device re-check); None: not.
        self.due: float | None = None
        self._backoff = Backoff(0.5, 10.0)

    def device_news(self, ev: Device) -> None:
        LOG.debug("device event: %s", ev.why)
        self.needed = True
        if ev.device is None:
            self.baseline = None
        else:
            self.devices.add(ev.device)

    def look_at_everything(self) -> None:
        """The next pass reads the whole data plane (news may have been missed)."""
        self.needed, self.baseline = True, None

    def run_if_needed(self, desired: HostDesired, now: float) -> None:
        """A pass when one is due, asked for, or ``desired`` changed since the last one."""
        if self.due is not None and now >= self.due:
            self.needed = True
        if self.needed or (desired is not self.desired and desired != self.desired):
            self.run(desired)

    def run(self, desired: HostDesired, full: bool = False) -> ReconcileResult | None:
        """One pass; ``full`` (or no monitor to say which devices changed) reads everything."""
        now = self._clock()
        baseline = None if full or not self._watched() else self.baseline
        try:
            res = reconcile(self.backend, desired, baseline, frozenset(self.devices))
        except Exception as exc:  # noqa: BLE001 - e.g. ovs-vswitchd down: retry later
            delay = self._backoff.next()
            LOG.warning("reconcile failed (%s: %s); retrying in %.1fs", type(exc).__name__,
                        exc, delay)
            self.needed, self.due, self.baseline = True, now + delay, None
            return None
        self.baseline = res.baseline
        self.devices.clear()
        self.desired = desired
        self.needed = False
        self.status = dict(res.ports)
        self.due = self._next_due(desired, res)
        self._log(res)
        return res

    def _next_due(self, desired: HostDesired, res: ReconcileResult) -> float | None:
        if res.apply.errors:
            return self._clock() + self._backoff.next()
        self._backoff.reset()
        pending = {pid for pid, st in res.ports.items() if not st.up}
        admin_up = {p.port_id for p in desired.ports if p.admin_state_up}
        problem_nets = set(res.plan.problems)
        waiting = {p.port_id for p in desired.ports if p.port_id in pending
                   and p.port_id in admin_up and p.network_id not in problem_nets}
        # A bound port without its device yet: the monitors usually tell us
        # first; the timer is the safety net.
        return (self._clock() + self._device_recheck) if waiting else None

    def _log(self, res: ReconcileResult) -> None:
        kind = "full" if res.full else "event"
        phases = ", ".join(f"{k} {v * 1000:.0f}" for k, v in res.phases.items())
        if res.plan.ops:
            LOG.info("%s pass: %d operation(s) in %.0f ms (%s), %d error(s); ports up %d, down %d",
                     kind, len(res.plan.ops), res.seconds * 1000, phases, len(res.apply.errors),
                     len(res.up), len(res.down))
        else:
            LOG.debug("%s pass: nothing to do (%.0f ms: %s)", kind, res.seconds * 1000, phases)
        with self._stats.update() as st:
            st.passes += 1
            st.ops += len(res.plan.ops)
            st.apply_errors += len(res.apply.errors)
            st.last_pass_seconds = res.seconds
            st.local_ports = len(res.ports)
            st.up = len(res.up)
            st.last_reasons = {pid: s.reason for pid, s in res.ports.items() if not s.up}
