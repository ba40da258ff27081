"""Run a real ``netplex server`` process for end-to-end tests."""

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

    def __init__(self, workdir: Path, conf: str = "", port: int | None = None) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = self.dir / f"netplex-{self.port}.conf"
        # One worker unless a test asks for more: test machines are small.
        workers = "" if "api_workers" in conf else "api_workers = 1\n"
        self.conf.write_text(f"[DEFAULT]\nbind_port = {self.port}\nstate_path = {self.dir}\n{workers}{conf}")
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
