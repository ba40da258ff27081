"""The device monitor of a host, kept running: started before the first pass, restarted when it dies.

While it runs, it names the VM devices that appeared or went, so an event
pass re-reads only those; while it does not, every pass reads everything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from netplex.agent.monitor import DeviceMonitor, DeviceNews

__all__ = ["DeviceWatch", "MonitorFactory"]

LOG = logging.getLogger(__name__)

#: Makes the device monitor of a host from where to send news (default: the backend's).
MonitorFactory = Callable[[Callable[[DeviceNews], None]], DeviceMonitor]

#: At most this often (seconds) is a dead monitor restarted.
_RECHECK = 5.0


class DeviceWatch:
    """Owns the host's device monitor. Worker thread only (:meth:`stop`: any thread).

    :param enabled: False (unit tests): no monitor, every pass reads everything.
    :param factory: makes the monitor; news go to ``notify``.
    :param recheck: how often the agent looks again for missing devices (logged).
    """

    def __init__(self, factory: MonitorFactory, notify: Callable[[DeviceNews], None], *,
                 enabled: bool, clock: Callable[[], float], recheck: float) -> None:
        self.enabled = enabled
        self._factory = factory
        self._notify = notify
        self._clock = clock
        self._recheck = recheck
        self.monitors: list[DeviceMonitor] = []
        self._checked = 0.0

    def start(self) -> None:
        mon = self._factory(self._notify)
        self._checked = self._clock()
        try:
            mon.start()
            self.monitors = [mon]
        except OSError as exc:
            LOG.warning("cannot start device monitor %s (%s); devices are re-checked every %gs",
                        mon.name, exc, self._recheck)

    def watched(self) -> bool:
        """Whether a running monitor tells us when VM devices change."""
        return bool(self.monitors) and all(m.alive() for m in self.monitors)

    def check(self) -> bool:
        """Restart a monitor that died (e.g. ovsdb-server restarted), at most every 5 s.

        True when it did: news may have been missed meanwhile, so the next
        pass must look at everything.
        """
        if not self.enabled or self._clock() - self._checked < _RECHECK:
            return False
        self._checked = self._clock()
        if self.watched():
            return False
        for m in self.monitors:
            m.stop()
        LOG.info("restarting the device monitor")
        self.start()
        return True

    def stop(self) -> None:
        for m in self.monitors:
            m.stop()
