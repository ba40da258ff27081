"""What the agent's threads tell its worker: the events on its one queue, and how it takes them.

The heartbeat, the feed watcher, the device monitors and the status
reporters never touch the worker's state; they put one of these on the
:class:`EventQueue`. The worker takes a batch: everything already queued
(events that waited while the last pass ran have waited long enough), or
else the first event to come plus whatever arrives within ``coalesce``
(10 ms), and does at most one reconcile pass for the whole batch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Changes", "Device", "Event", "EventQueue", "Reported", "Resync", "Stop"]


@dataclass(frozen=True)
class Changes:
    """A page of the change feed."""

    changes: tuple[Any, ...]


@dataclass(frozen=True)
class Device:
    """A device monitor's news."""

    why: str
    #: The device concerned; None: any device may have changed.
    device: str | None = None


@dataclass(frozen=True)
class Resync:
    """A full resync is wanted (``why`` is logged)."""

    why: str
    #: The server's feed went backwards: accept an older snapshot.
    reset: bool = False


@dataclass(frozen=True)
class Reported:
    """A reporter thread finished a device-status call (``error`` None: success)."""

    changes: Mapping[str, bool]
    error: Exception | None = None


class Stop:
    """The agent is stopping: the worker ends its loop."""


Event = Changes | Device | Resync | Reported | Stop


class EventQueue:
    """The worker's queue; any thread may :meth:`put`, only the worker takes batches.

    :param stop: set when the agent stops; the coalescing wait ends early then.
    :param coalesce: after a change or device event reaches an idle worker,
        wait this long for more before handing out the batch.
    """

    def __init__(self, stop: threading.Event, coalesce: float) -> None:
        self.stop = stop
        self.coalesce = coalesce
        self._q: queue.Queue[Event] = queue.Queue()

    def put(self, event: Event) -> None:
        self._q.put(event)

    def next_batch(self, timeout: float) -> list[Event]:
        """The next batch (empty when nothing came within ``timeout`` seconds)."""
        batch: list[Event] = []
        self._drain(batch)
        if batch:
            return batch  # they waited while the last pass ran: no point waiting more
        try:
            batch.append(self._q.get(timeout=max(0.0, timeout)))
        except queue.Empty:
            return []
        self._drain(batch)
        if self.coalesce > 0 and any(isinstance(e, Changes | Device) for e in batch):
            self.stop.wait(self.coalesce)
            self._drain(batch)
        return batch

    def _drain(self, batch: list[Event]) -> None:
        while True:
            try:
                batch.append(self._q.get_nowait())
            except queue.Empty:
                return
