"""Event streams from monitor commands (``ip monitor link``): a child process, a line per event.

The child dies with its parent (``PR_SET_PDEATHSIG``), so a SIGKILLed agent
leaves no stray monitors behind. Lines are handed to a callback on a reader
thread of their own; what a line means is the caller's business.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence

__all__ = ["LineWatcher", "link_monitor_argv", "set_pdeathsig"]

LOG = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def set_pdeathsig() -> None:
    """preexec_fn: the child gets SIGTERM when its parent dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def link_monitor_argv(netns: str | None) -> list[str]:
    """``ip [-n NS] -o monitor link``: one line per link event in ``netns``."""
    return ["ip", *(["-n", netns] if netns else []), "-o", "monitor", "link"]


class LineWatcher:
    """Runs ``argv`` and calls ``on_line`` with each line it prints, until it exits or is stopped.

    ``on_line`` runs on the watcher's reader thread; an exception it raises
    is logged and the watching goes on.
    """

    def __init__(self, argv: Sequence[str], on_line: Callable[[str], None]) -> None:
        self.argv = list(argv)
        self.on_line = on_line
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

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
                self.on_line(line)
            except Exception:  # noqa: BLE001 - one bad line must not end the watching
                LOG.exception("monitor %s: cannot handle %r", self.argv[0], line[:200])
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
