"""Noticing VM devices appear and go, so a port is wired as soon as it is plugged.

The feed says *that* a port is bound here; the compute side plugs its device
a moment later, and nothing on the feed marks that moment. Neutron's agents
poll (Linux bridge) or watch OVSDB (Open vSwitch); we watch:

* Linux bridge hosts: ``ip [-n NS] -o monitor link`` - a line per link event;
  a ``tap*`` name we have not seen yet, or a deleted one, is news;
* Open vSwitch hosts: ``ovsdb-client monitor <db> Open_vSwitch Interface``
  - a line per row change; only rows carrying an ``iface-id`` (VM ports) count.

Our own changes to existing taps (set master, set up, re-tag) are therefore
not news, and do not cause a second pass. A link event names its device, so
the next pass re-reads just that device (see
:meth:`netplex.agent.reconcile.Backend.observe_since`). Each monitor is a child process
that dies with the agent (``PR_SET_PDEATHSIG``), so a SIGKILLed agent leaves
no stray monitors behind. The loop also re-checks missing devices on a timer,
so a monitor that dies (or an event that is lost) only delays wiring.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["DeviceMonitor", "DeviceNews", "LinkMonitor", "OvsdbMonitor", "set_pdeathsig"]

LOG = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
# "12: tapabc@if3: <...>" or "Deleted 12: tapabc@if3: <...>"
_LINK_LINE = re.compile(r"^(Deleted\s+)?\d+:\s+([^:@\s]+)")


def set_pdeathsig() -> None:
    """preexec_fn: the child gets SIGTERM when its parent dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass(frozen=True, slots=True)
class DeviceNews:
    """Something happened to a VM device."""

    why: str
    #: The device, when the monitor can tell (None: anything may have changed).
    device: str | None = None


class DeviceMonitor:
    """Runs one monitor command and calls ``notify`` for lines that are news.

    :meth:`interesting` decides per line; subclasses define it.
    """

    def __init__(self, argv: Sequence[str], notify: Callable[[DeviceNews], None]) -> None:
        self.argv = list(argv)
        self.notify = notify
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def interesting(self, line: str) -> DeviceNews | None:
        """What ``line`` tells, when it is news; else None."""
        raise NotImplementedError

    def start(self) -> None:
        self._proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            preexec_fn=set_pdeathsig,
        )
        self._thread = threading.Thread(target=self._read, name=f"monitor-{self.argv[0]}",
                                        daemon=True)
        self._thread.start()

    def _read(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            try:
                news = self.interesting(line)
            except Exception:  # noqa: BLE001 - a parse problem must not kill the monitor
                LOG.exception("monitor %s: cannot parse %r", self.argv[0], line[:200])
                news = DeviceNews("unparsed event")
            if news is not None:
                self.notify(news)
        if not self._stopped.is_set():
            LOG.warning("device monitor %r exited (code %s); relying on periodic checks",
                        " ".join(self.argv), proc.poll())

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        self._stopped.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(2)


class LinkMonitor(DeviceMonitor):
    """``ip monitor link`` in namespace ``netns``: new or deleted ``tap*`` devices."""

    def __init__(self, netns: str | None, notify: Callable[[DeviceNews], None],
                 prefix: str = "tap") -> None:
        super().__init__(["ip", *(["-n", netns] if netns else []), "-o", "monitor", "link"],
                         notify)
        self.prefix = prefix
        self._seen: set[str] = set()

    def interesting(self, line: str) -> DeviceNews | None:
        m = _LINK_LINE.match(line.strip())
        if m is None:
            return None
        deleted, name = bool(m.group(1)), m.group(2)
        if not name.startswith(self.prefix):
            return None
        if deleted:
            self._seen.discard(name)
            return DeviceNews(f"{name} deleted", name)
        if name in self._seen:
            return None
        self._seen.add(name)
        return DeviceNews(f"{name} appeared", name)


class OvsdbMonitor(DeviceMonitor):
    """``ovsdb-client monitor`` of the Interface table: VM ports added, removed, given an ofport."""

    def __init__(self, db_socket: str, notify: Callable[[DeviceNews], None]) -> None:
        super().__init__(["ovsdb-client", "monitor", db_socket, "Open_vSwitch", "Interface",
                          "name,external_ids,ofport", "--format=json"], notify)

    def interesting(self, line: str) -> DeviceNews | None:
        if '"initial"' in line:
            return None  # the dump at start: the first pass reads everything anyway
        return DeviceNews("OVS interface changed") if "iface-id" in line else None
