"""Start and stop a real ``netplex server`` for benchmarks."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, conf: str = "", workdir: str | None = None) -> None:
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="netplex-bench-"))
        self.port = free_port()
        self.conf = self.dir / "netplex.conf"
        self.conf.write_text(f"[DEFAULT]\nbind_port = {self.port}\nstate_path = {self.dir}\n" + conf)
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        exe = Path(sys.executable).with_name("netplex")
        self.proc = subprocess.Popen(
            [str(exe), "server", "--config", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "server.log", "wb"),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/")
                if c.getresponse().status == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start; see {self.dir / 'server.log'}")

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    def rss_mib(self) -> float:
        """Resident memory of the server and its worker processes together."""
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
        total = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total / 1024


class Conn:
    """A keep-alive JSON connection (http.client: the lightest client in the stdlib)."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.port = port
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Content-Type": "application/json", **(headers or {})}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            try:
                self.c.request(method, path, body=data, headers=self.headers)
                r = self.c.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closes idle keep-alive connections: reconnect once.
                self.c.close()
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")



def pct(values: list[float], p: float) -> float:
    """The p-th quantile of ``values`` (seconds) in milliseconds (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def run(port: int, clients: int, n: int, op: Callable[[Conn, int], object]) -> tuple[float, float, float]:
    """Run ``op(conn, i)`` for i in 0..n-1 over ``clients`` threads: (ops/s, p50 ms, p99 ms)."""
    lat: list[float] = []
    lock = threading.Lock()
    counter = iter(range(n))
    failures: list[BaseException] = []

    def worker() -> None:
        conn = Conn(port)
        mine: list[float] = []
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
                t = time.perf_counter()
                op(conn, i)
                mine.append(time.perf_counter() - t)
        except BaseException as exc:  # SystemExit from expect() included
            failures.append(exc)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if failures:
        raise SystemExit(f"benchmark client failed: {failures[0]}")
    return n / wall, pct(lat, 0.5), pct(lat, 0.99)


os.environ.setdefault("PYTHONUNBUFFERED", "1")
