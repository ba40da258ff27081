"""The worker's event queue: batches, and when it waits for more."""

from __future__ import annotations

import threading

import pytest

from netplex.agent.events import Changes, Device, EventQueue


def test_events_that_queued_during_a_pass_are_taken_without_waiting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    events = EventQueue(threading.Event(), coalesce=3600)

    def no_wait(timeout: float | None = None) -> bool:
        raise AssertionError("waited for more events")

    monkeypatch.setattr(events.stop, "wait", no_wait)
    events.put(Changes(()))
    events.put(Device("tapx appeared", "tapx"))
    assert len(events.next_batch(0)) == 2

