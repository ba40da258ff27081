"""Noticing VM devices appear and go, so a port is wired as soon as it is plugged.

The feed says *that* a port is bound here; the compute side plugs its device
a moment later, and nothing on the feed marks that moment. Neutron's agents
poll (Linux bridge) or watch OVSDB (Open vSwitch); we watch:

* Linux bridge hosts: ``ip [-n NS] -o monitor link`` - a line per link event;
  a ``tap*`` name we have not seen yet, or a deleted one, is news;
* Open vSwitch hosts: the backend's own OVSDB connection
  (:class:`netplex.linux.ovsdb.OvsdbClient`), which monitors the Interface
  table anyway; only rows carrying an ``iface-id`` (VM ports) count, and each
  change names its interface. The news arrives after the replica holds the
  row, so the pass it causes sees the port.

Our own changes to existing taps (set master, set up, re-tag) are therefore
not news, and do not cause a second pass. A link event names its device, so
the next pass re-reads just that device (see
:meth:`netplex.agent.reconcile.Backend.observe_since`). Each monitor command is a child
process (:class:`netplex.linux.watch.LineWatcher`) that dies with the agent, so a
SIGKILLed agent leaves no stray monitors behind. The loop also re-checks missing devices on a timer,
so a monitor that dies (or an event that is lost) only delays wiring.
After an OVSDB reconnect the monitor says "anything may have changed"
(``device=None``): what happened while the connection was down is unknown.
"""

from __future__ import annotations

import abc
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from netplex.linux.ovs import decode_ovsdb
from netplex.linux.ovsdb import OvsdbClient
from netplex.linux.watch import LineWatcher, link_monitor_argv

__all__ = ["CommandMonitor", "DeviceMonitor", "DeviceNews", "LinkMonitor", "OvsdbMonitor"]

LOG = logging.getLogger(__name__)

# "12: tapabc@if3: <...>" or "Deleted 12: tapabc@if3: <...>"
_LINK_LINE = re.compile(r"^(Deleted\s+)?\d+:\s+([^:@\s]+)")


@dataclass(frozen=True, slots=True)
class DeviceNews:
    """Something happened to a VM device."""

    why: str
    #: The device, when the monitor can tell (None: anything may have changed).
    device: str | None = None


class DeviceMonitor(abc.ABC):
    """Calls ``notify`` with :class:`DeviceNews` when VM devices of the host change.

    ``notify`` may be called from any thread (it queues the news).
    """

    def __init__(self, name: str, notify: Callable[[DeviceNews], None]) -> None:
        self.name = name
        self.notify = notify

    @abc.abstractmethod
    def start(self) -> None:
        """Begin watching (news from now on)."""

    @abc.abstractmethod
    def alive(self) -> bool:
        """Whether news still come (False: the agent must look at everything itself)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop watching. Idempotent."""


class CommandMonitor(DeviceMonitor):
    """Runs one monitor command and calls ``notify`` for lines that are news.

    :meth:`interesting` decides per line; subclasses define it.
    """

    def __init__(self, argv: Sequence[str], notify: Callable[[DeviceNews], None]) -> None:
        super().__init__(argv[0], notify)
        self._watcher = LineWatcher(argv, self._line)

    @property
    def argv(self) -> list[str]:
        return self._watcher.argv

    def interesting(self, line: str) -> DeviceNews | None:
        """What ``line`` tells, when it is news; else None."""
        raise NotImplementedError

    def _line(self, line: str) -> None:
        try:
            news = self.interesting(line)
        except Exception:  # noqa: BLE001 - a parse problem must not kill the monitor
            LOG.exception("monitor %s: cannot parse %r", self.argv[0], line[:200])
            news = DeviceNews("unparsed event")
        if news is not None:
            self.notify(news)

    def start(self) -> None:
        self._watcher.start()

    def alive(self) -> bool:
        return self._watcher.alive()

    def stop(self) -> None:
        self._watcher.stop()


class LinkMonitor(CommandMonitor):
    """``ip monitor link`` in namespace ``netns``: new or deleted ``tap*`` devices."""

    def __init__(self, netns: str | None, notify: Callable[[DeviceNews], None],
                 prefix: str = "tap") -> None:
        super().__init__(link_monitor_argv(netns), notify)
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
    """VM ports (Interface rows with an ``iface-id``) added, removed, renumbered or re-keyed.

    Listens on ``client``, the OVS backend's own connection, whose monitor
    covers the Interface columns the backend reads.
    """

    def __init__(self, client: OvsdbClient, notify: Callable[[DeviceNews], None]) -> None:
        super().__init__(f"OVSDB {client.remote}", notify)
        self.client = client
        self._started = False

    def start(self) -> None:
        self.client.add_listener(self._on_update)
        self.client.start()
        self._started = True

    def alive(self) -> bool:
        return self._started and self.client.running

    def stop(self) -> None:
        self._started = False
        self.client.remove_listener(self._on_update)

    def _on_update(self, updates: Mapping[str, Any], initial: bool, connection: int) -> None:
        for news in interface_news(updates, initial, connection):
            self.notify(news)


def interface_news(updates: Mapping[str, Any], initial: bool,
                   connection: int) -> list[DeviceNews]:
    """What one OVSDB update says about VM ports (RFC 7047 table-updates, monitor v1).

    A connection's first initial contents are no news (nobody can have read
    OVSDB before them); a later one is a reconnect, after which anything may
    have changed.
    """
    if initial:
        return [DeviceNews("OVSDB connection re-established")] if connection > 1 else []
    out: list[DeviceNews] = []
    for change in updates.get("Interface", {}).values():
        new, old = change.get("new"), change.get("old")
        row = new if new is not None else old
        if row is None:
            continue
        ids = [decode_ovsdb(r.get("external_ids", ["map", []])) for r in (new, old) if r]
        if not any(isinstance(i, dict) and "iface-id" in i for i in ids):
            continue
        name = row.get("name")
        if not isinstance(name, str):  # a modify whose "new" lacks it: should not happen
            out.append(DeviceNews("OVS interface changed"))
            continue
        what = "added" if old is None else "removed" if new is None else "changed"
        out.append(DeviceNews(f"OVS interface {name} {what}", name))
    return out
