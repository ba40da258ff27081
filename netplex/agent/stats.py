"""The agent's counters, written by its threads under one lock and read as a copy."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["AgentStats", "StatsBook"]


@dataclass
class AgentStats:
    """Counters for logs, tests and the benchmark (read with :meth:`AgentService.stats`)."""

    passes: int = 0
    resyncs: int = 0
    changes: int = 0
    ops: int = 0
    apply_errors: int = 0
    reports: int = 0
    server_errors: int = 0
    last_pass_seconds: float = 0.0
    last_resync_seconds: float = 0.0
    #: Of that, reading the host-state snapshot from the server.
    last_snapshot_seconds: float = 0.0
    revision: int = 0
    local_ports: int = 0
    up: int = 0
    last_reasons: dict[str, str] = field(default_factory=dict)


class StatsBook:
    """One :class:`AgentStats`, shared by the agent's parts; any thread may update it."""

    def __init__(self) -> None:
        self._stats = AgentStats()
        self._lock = threading.Lock()

    @contextmanager
    def update(self) -> Iterator[AgentStats]:
        """The counters, locked for the ``with`` block."""
        with self._lock:
            yield self._stats

    def snapshot(self) -> AgentStats:
        with self._lock:
            return dataclasses.replace(self._stats, last_reasons=dict(self._stats.last_reasons))
