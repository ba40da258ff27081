"""Abusive requests against a real ``netplex server``: what each costs, and what others feel meanwhile.

Prints, per abuse: the abuser's answer (status, seconds) and the slowest port
create of another project running alongside (the "others' write stall").
Scenarios: a port with 40,000 allowed_address_pairs; a subnet with 20,000
host_routes + 20,000 dns_nameservers; an 8,000-port bulk; a 256 MB body
(server RSS growth); 200 connections trickling their headers (still open
after 10 s?, and does a fresh request still work?).

    .venv/bin/python bench/abuse.py
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Conn, Server  # noqa: E402

CONF = """
[ml2]
type_drivers = local,vxlan
project_network_types = vxlan
[ml2_type_vxlan]
vni_ranges = 1:1000
"""


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def with_bystander(port: int, network_id: str, abuse: Any) -> tuple[Any, float, float]:
    """Run ``abuse()`` while another project creates ports; (result, abuse s, worst bystander ms)."""
    stop = threading.Event()
    worst = [0.0]

    def bystander() -> None:
        conn = Conn(port, {"X-Project-Id": "p-bystander", "X-Roles": "member"})
        while not stop.is_set():
            t0 = time.monotonic()
            conn.call("POST", "/v2.0/ports", {"port": {"network_id": network_id}})
            worst[0] = max(worst[0], (time.monotonic() - t0) * 1000)
        conn.close()

    th = threading.Thread(target=bystander)
    th.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    try:
        result = abuse()
    finally:
        took = time.monotonic() - t0
        time.sleep(0.3)
        stop.set()
        th.join()
    return result, took, worst[0]


def big_body(port: int, size: int) -> int:
    """Send a declared ``size``-byte body as fast as the server takes it; the status it answers."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    head = (
        f"POST /v2.0/networks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\n\r\n"
    )
    sock.sendall(head.encode())
    chunk = b"x" * (1 << 20)
    sent = 0
    try:
        sock.settimeout(0.5)
        while sent < size:
            try:
                sock.sendall(chunk)
                sent += len(chunk)
            except TimeoutError:
                break
    except (BrokenPipeError, ConnectionResetError):
        pass
    sock.settimeout(120)
    try:
        data = sock.recv(4096)
    except OSError:
        data = b""
    sock.close()
    return int(data.split()[1]) if data.startswith(b"HTTP/") else 0


def trickle(port: int, n: int, hold: float) -> tuple[int, bool]:
    """``n`` connections sending half a request line; how many are still open after ``hold`` s."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"POST /v2.0/networks HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    time.sleep(hold)
    fresh_ok = False
    try:
        status, _ = Conn(port).call("GET", "/v2.0/networks")
        fresh_ok = status == 200
    except OSError:
        pass
    still_open = 0
    for s in socks:
        s.setblocking(False)
        try:
            still_open += s.recv(1) != b""
        except BlockingIOError:
            still_open += 1
        except OSError:
            pass
        s.close()
    return still_open, fresh_ok


def main() -> None:
    with Server(CONF) as srv:
        admin = Conn(srv.port)
        _, net = admin.call("POST", "/v2.0/networks", {"network": {"name": "shared", "shared": True}})
        nid = net["network"]["id"]
        admin.call("POST", "/v2.0/subnets", {"subnet": {"network_id": nid, "cidr": "10.0.0.0/16", "ip_version": 4}})
        member = Conn(srv.port, {"X-Project-Id": "p-abuser", "X-Roles": "member"})

        def pairs() -> int:
            body = {"port": {"network_id": nid, "allowed_address_pairs": [{"ip_address": "10.0.0.1"}] * 40_000}}
            return member.call("POST", "/v2.0/ports", body)[0]

        def routes() -> int:
            net2 = admin.call("POST", "/v2.0/networks", {"network": {"name": "r"}})[1]["network"]["id"]
            body = {
                "subnet": {
                    "network_id": net2, "cidr": "10.1.0.0/16", "ip_version": 4,
                    "host_routes": [{"destination": f"10.{2 + i // 250}.{i % 250}.0/24", "nexthop": "10.1.0.9"}
                                    for i in range(20_000)],
                    "dns_nameservers": [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(20_000)],
                }
            }
            return admin.call("POST", "/v2.0/subnets", body)[0]

        def bulk() -> int:
            return admin.call("POST", "/v2.0/ports", {"ports": [{"network_id": nid}] * 8000})[0]

        for name, abuse in (("40,000 allowed_address_pairs", pairs), ("20,000 routes + 20,000 dns", routes),
                            ("8,000-port bulk", bulk)):
            status, took, worst = with_bystander(srv.port, nid, abuse)
            print(f"{name:32} -> {status} in {took:6.2f} s; other project's slowest create {worst:7.1f} ms",
                  flush=True)

        pids = srv.pids()
        before = rss_kib(pids)
        t0 = time.monotonic()
        status = big_body(srv.port, 256 << 20)
        print(f"{'256 MB body':32} -> {status} in {time.monotonic() - t0:6.2f} s; server RSS "
              f"+{(rss_kib(pids) - before) / 1024:.0f} MiB", flush=True)

        still, fresh = trickle(srv.port, 200, 10.0)
        print(f"{'200 trickling connections':32} -> {still} still open after 10 s; fresh request ok: {fresh}",
              flush=True)
        print(json.dumps({"done": True}))


if __name__ == "__main__":
    main()
