"""A real ``netplex server`` process on a free loopback port, for tests and benchmarks.

(The lab starts its server through :mod:`netplex.lab.procs` instead: it must
find and stop it again after its own crash.)
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``netplex server`` on a free loopback port with its own state directory."""

    def __init__(self, workdir: Path, conf: str = "", port: int | None = None, *, workers: int | None = 1) -> None:
        """``workers``: ``api_workers`` unless ``conf`` sets it (None: the server's default,
        one per CPU); tests default to one, test machines being small."""
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = self.dir / f"netplex-{self.port}.conf"
        workers_line = "" if "api_workers" in conf or workers is None else f"api_workers = {workers}\n"
        self.conf.write_text(f"[DEFAULT]\nbind_port = {self.port}\nstate_path = {self.dir}\n{workers_line}{conf}")
        self.log = self.dir / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> ServerProcess:
        exe = Path(sys.executable).with_name("netplex")
        self.proc = subprocess.Popen(
            [str(exe), "server", "--config", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "ab"),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/")
                if c.getresponse().status == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def pids(self) -> list[int]:
        """The server process and its worker processes."""
        assert self.proc is not None
        pids = [self.proc.pid]
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                try:
                    fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.proc.pid:
                    pids.append(int(p.name))
        return pids

    def rss_mib(self) -> float:
        """Resident memory of the server and its worker processes together."""
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total / 1024
