"""A real ``netplex server`` for benchmarks, and a light keep-alive client to drive it."""

from __future__ import annotations

import http.client
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netplex.lab.server_process import ServerProcess


class Server(ServerProcess):
    """``netplex server`` with the default number of API workers, in a fresh directory."""

    def __init__(self, conf: str = "", workdir: str | None = None) -> None:
        super().__init__(Path(workdir or tempfile.mkdtemp(prefix="netplex-bench-")), conf, workers=None)


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
