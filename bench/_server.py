"""A real ``netplex server`` for benchmarks, and a light keep-alive client to drive it."""

from __future__ import annotations

import json
import os
import socket
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


class _Closed(Exception):
    """The server closed the connection (idle keep-alive timeout)."""


class Conn:
    """A keep-alive JSON connection over a plain socket.

    Not http.client: it parses every response's headers with the email
    package, which costs the client threads (8 of them sharing one GIL, on
    the same 2 CPUs as the server) a third more CPU per request; the client's
    share of the machine should be as small as possible.
    """

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.port = port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=120)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = sock, b""
        return sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n{self.extra}\r\n"
        )
        for attempt in (1, 2):
            try:
                sock = self.sock or self._connect()
                sock.sendall(head.encode() + data)
                return self._response(sock)
            except (_Closed, ConnectionResetError, BrokenPipeError):
                # The server closes idle keep-alive connections: reconnect once.
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _recv(self, sock: socket.socket) -> None:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise _Closed()
        self.buf += chunk

    def _response(self, sock: socket.socket) -> tuple[int, Any]:
        while b"\r\n\r\n" not in self.buf:
            self._recv(sock)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next((int(h[15:]) for h in lines[1:] if h[:15].lower() == b"content-length:"), 0)
        while len(self.buf) < length:
            self._recv(sock)
        raw, self.buf = self.buf[:length], self.buf[length:]
        return status, (json.loads(raw) if raw else None)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by ``pids`` (processes that are gone count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


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
