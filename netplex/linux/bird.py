"""A BIRD 2 daemon of one's own: start it in a namespace, reload its config, stop it by PID.

Everything of one daemon lives in its work directory (:class:`BirdFiles`:
config, control socket, pidfile, log), so several daemons (one per lab
host) coexist and a caller only ever touches the one it started: a process
counts as ours only if the pidfile names it *and* its command line names our
config file. Reloading is ``birdc configure`` (BIRD keeps its sessions and
routes), never a restart. Nothing here imports the rest of Netplex.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BirdError", "BirdFiles", "birdc", "configure", "running_pid", "start", "stop"]

_TIMEOUT = 30


class BirdError(RuntimeError):
    """BIRD refused (bad config, not running, could not start)."""


@dataclass(frozen=True)
class BirdFiles:
    workdir: Path

    @property
    def conf(self) -> Path:
        return self.workdir / "bird.conf"

    @property
    def sock(self) -> Path:
        return self.workdir / "bird.ctl"

    @property
    def pid(self) -> Path:
        return self.workdir / "bird.pid"

    @property
    def log(self) -> Path:
        return self.workdir / "bird.log"


def running_pid(files: BirdFiles) -> int | None:
    """The PID of our daemon if it runs (pidfile + its command line names our config), else None."""
    try:
        pid = int(files.pid.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if str(files.conf).encode() in cmdline else None


def start(files: BirdFiles, netns: str | None, bird: str = "bird", timeout: float = 10.0) -> int:
    """Start BIRD with ``files.conf`` inside ``netns``; returns its PID once it answers."""
    files.workdir.mkdir(parents=True, exist_ok=True)
    argv = [*(["ip", "netns", "exec", netns] if netns else []), bird, "-c", str(files.conf),
            "-s", str(files.sock), "-P", str(files.pid)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise BirdError(f"{bird} did not start: {(proc.stderr or proc.stdout).strip()}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = running_pid(files)
        if pid is not None and files.sock.exists():
            return pid
        time.sleep(0.05)
    raise BirdError(f"{bird} started but did not write {files.pid} within {timeout:g}s")


def birdc(files: BirdFiles, *args: str, birdc_path: str = "birdc") -> str:
    """Run ``birdc -s <socket> ARGS`` (the socket has no namespace) and return its output."""
    proc = subprocess.run([birdc_path, "-s", str(files.sock), *args], capture_output=True, text=True,
                          timeout=_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise BirdError(f"birdc {' '.join(args)}: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


def configure(files: BirdFiles, birdc_path: str = "birdc") -> None:
    """Reload ``files.conf`` into the running daemon (sessions and routes are kept)."""
    out = birdc(files, "configure", birdc_path=birdc_path)
    if "Reconfigured" not in out and "Reconfiguration in progress" not in out:
        raise BirdError(f"birdc configure: {out.strip()}")


def stop(files: BirdFiles, timeout: float = 5.0) -> bool:
    """Stop our daemon (SIGTERM, then SIGKILL after ``timeout``); False if it was not running."""
    pid = running_pid(files)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running_pid(files) != pid:  # gone (a zombie's command line is empty)
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True
