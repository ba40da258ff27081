"""Start daemons and stop only the ones we started, even after a crash.

Each daemon is started in its own session, so it leads a process group
that also holds its helpers (uvicorn worker processes, an agent's monitors);
signals go to that whole group.

A process is recorded as (pid, start time, marker): the start time is the
kernel's (``/proc/<pid>/stat`` field 22, clock ticks since boot) and the
marker is a string that must appear in its command line (the lab's state
directory). Before any signal is sent, both are checked against ``/proc``,
so a recycled pid - after a reboot, or long after a crash - is never
signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Proc", "is_ours", "signal_only", "spawn", "stop"]


@dataclass(frozen=True)
class Proc:
    pid: int
    start: int
    marker: str
    log: str = ""

    def to_json(self) -> dict[str, object]:
        return {"pid": self.pid, "start": self.start, "marker": self.marker, "log": self.log}

    @classmethod
    def from_json(cls, d: Mapping[str, object]) -> Proc:
        return cls(int(d["pid"]), int(d["start"]), str(d["marker"]), str(d.get("log", "")))  # type: ignore[call-overload]


def _start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None  # a zombie is as good as gone
    return int(fields[19])  # field 22 overall; 3..N after the ")"


def is_ours(proc: Proc) -> bool:
    """Alive, same start time, marker on the command line."""
    if _start_time(proc.pid) != proc.start:
        return False
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return proc.marker.encode() in cmdline


def spawn(argv: Sequence[str], log: Path, marker: str,
          env: Mapping[str, str] | None = None) -> Proc:
    """Start ``argv`` detached (own session), output appended to ``log``."""
    if not any(marker in a for a in argv):
        raise ValueError(f"marker {marker!r} must appear in the command line")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        p = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, start_new_session=True,
                             env=dict(env) if env is not None else None)
    start = None
    for _ in range(100):
        start = _start_time(p.pid)
        if start is not None:
            break
        time.sleep(0.01)
    if start is None:
        raise RuntimeError(f"{argv[0]} exited at once; see {log}")
    return Proc(p.pid, start, marker, str(log))


def _kill(proc: Proc, sig: int) -> None:
    """Signal the process group ``proc`` leads (its session, see :func:`spawn`)."""
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
    except ProcessLookupError:
        pass


def signal_only(proc: Proc, sig: int) -> None:
    """Send ``sig`` if ``proc`` is ours; do not wait."""
    if is_ours(proc):
        _kill(proc, sig)


def stop(proc: Proc, sig: int = signal.SIGTERM, timeout: float = 10.0) -> bool:
    """Signal ``proc`` if it is ours and wait for it to go; SIGKILL after ``timeout``.

    Returns True if a process was signalled.
    """
    if not is_ours(proc):
        return False
    _kill(proc, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _start_time(proc.pid) != proc.start:
            _reap(proc.pid)
            return True
        _reap(proc.pid)
        time.sleep(0.02)
    if is_ours(proc):
        _kill(proc, signal.SIGKILL)
        for _ in range(250):
            if _start_time(proc.pid) != proc.start:
                break
            _reap(proc.pid)
            time.sleep(0.02)
    _reap(proc.pid)
    return True


def _reap(pid: int) -> None:
    """Collect our own child's exit status (no-op for a process we did not fork)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
