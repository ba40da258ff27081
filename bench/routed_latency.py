"""Routed hosts: PUT binding:host_id -> port ACTIVE, and -> the route on the *other* host (feed mode).

Run (root): ``.venv/bin/python bench/routed_latency.py [--sizes 1,100,1000] [--bgp]``

``--bgp``: route distribution ``bgp`` (each host's own BIRD, iBGP between the two):
the route on the other host is then BIRD's (protocol ``bird``).

Builds a two-host lab (real server, two routed host namespaces, the real
agent processes), then for each size N creates N ports with an IPv4 address
on a ``local`` network (on which ``host-r2`` has one port: a host routes only
the networks it serves), plugs their taps on ``host-r1`` (veths: the compute
side's part, not measured), PUTs ``binding:host_id = host-r1`` (8 client
threads; size 1: 20 rounds one after another) and records, per port, when
the change feed first shows it ACTIVE and when ``host-r2`` first has its
/32 (polled every 10 ms). Targets (issue 12): ACTIVE p50 < 100 ms for one
port, remote route p50 < 200 ms. Everything is removed at the end.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from netplex.agent.model import tap_name
from netplex.agent.routed_plan import ROUTE_PROTO
from netplex.client import NeutronClient
from netplex.lab.lab import Lab
from netplex.linux.routing import read_routes

#: ``proto bird`` (/etc/iproute2/rt_protos): the routes BIRD installs.
BIRD_PROTO = 12


class FeedWatch:
    """When each port is first seen ACTIVE on the change feed."""

    def __init__(self, url: str) -> None:
        self.client = NeutronClient(url, timeout=60)
        self.active: dict[str, float] = {}
        self._stop = threading.Event()
        self.after = int(self.client.request("GET", "/changes", params={"after": 2**61, "timeout": 0})["revision"])
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                page = self.client.request("GET", "/changes", params={"after": self.after, "timeout": 5})
            except Exception:  # noqa: BLE001 - the bench just retries
                time.sleep(0.1)
                continue
            now = time.monotonic()
            for ch in page.get("changes") or []:
                if ch.get("resource") == "port" and (ch.get("body") or {}).get("status") == "ACTIVE":
                    self.active.setdefault(str(ch["id"]), now)
            self.after = int(page["revision"])

    def stop(self) -> None:
        self._stop.set()


class RouteWatch:
    """When each /32 first appears on a host (our protocol's routes, polled)."""

    def __init__(self, ns: str, proto: int) -> None:
        self.ns = ns
        self.proto = proto
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            routes = read_routes(self.ns, self.proto)
            now = time.monotonic()
            for r in routes:
                self.seen.setdefault(r.dst.split("/")[0], now)
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()


def wait(cond: object, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > end:
            raise TimeoutError("not converged")
        time.sleep(0.02)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,100,1000")
    ap.add_argument("--single-rounds", type=int, default=20)
    ap.add_argument("--bgp", action="store_true", help="route distribution bgp (BIRD) instead of feed")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    tag = uuid.uuid4().hex[:4]
    root = Path(tempfile.mkdtemp(prefix=f"npr-bench-{tag}-"))
    lab = Lab(root / "lab", prefix=f"nprb{tag}", report_interval=5,
              route_distribution="bgp" if args.bgp else "feed")
    results: list[str] = []
    try:
        lab.init()
        lab.start_server()
        lab.add_underlay()
        for name in ("host-r1", "host-r2"):
            lab.add_host(name, "routed")
        for name in ("host-r1", "host-r2"):  # BGP peers are known once both exist
            lab.start_agent(name)
        lab.wait_agents()
        net = lab.create_network("bench", "10.80.0.0/16", {"provider:network_type": "local"})
        h1, h2 = lab.state.hosts["host-r1"], lab.state.hosts["host-r2"]
        # host-r2 routes only networks it has a port on: give it one.
        with NeutronClient(lab.url) as c:
            anchor = c.create_port({"network_id": net.id, "fixed_ips": [{"subnet_id": net.subnet_id,
                                                                          "ip_address": "10.80.0.2"}]})
            subprocess.run(["ip", "-n", h2.ns, "link", "add", tap_name(anchor["id"]), "type", "veth",
                            "peer", "name", "vanchor"], check=True)
            subprocess.run(["ip", "-n", h2.ns, "link", "set", tap_name(anchor["id"]), "up"], check=True)
            c.update_port(anchor["id"], {"binding:host_id": "host-r2"})
        feed, remote = FeedWatch(lab.url), RouteWatch(h2.ns, BIRD_PROTO if args.bgp else ROUTE_PROTO)
        next_ip = int(ipaddress.ip_address("10.80.1.1"))
        for n in (int(s) for s in args.sizes.split(",") if s.strip()):
            count = args.single_rounds if n == 1 else n
            ports: dict[str, str] = {}
            with NeutronClient(lab.url) as c:
                for _ in range(count):
                    ip = str(ipaddress.ip_address(next_ip))
                    next_ip += 1
                    p = c.create_port({"network_id": net.id, "fixed_ips": [{"subnet_id": net.subnet_id,
                                                                             "ip_address": ip}]})
                    ports[p["id"]] = ip
            subprocess.run(["ip", "-n", h1.ns, "-batch", "-"], check=True, text=True, input="".join(
                f"link add {tap_name(p)} type veth peer name v{p[:11]}\nlink set {tap_name(p)} up\n"
                for p in ports))
            started: dict[str, float] = {}
            local = threading.local()

            def put(pid: str) -> None:
                if not hasattr(local, "c"):
                    local.c = NeutronClient(lab.url)
                started[pid] = time.monotonic()
                local.c.update_port(pid, {"binding:host_id": "host-r1"})

            if n == 1:
                for pid in ports:
                    put(pid)
                    wait(lambda pid=pid: pid in feed.active and ports[pid] in remote.seen, 30)
            else:
                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(put, ports))
                wait(lambda: all(p in feed.active and ip in remote.seen for p, ip in ports.items()), 120 + n / 5)
            active = [feed.active[p] - started[p] for p in ports]
            routed = [remote.seen[ip] - started[p] for p, ip in ports.items()]
            label = f"1 (x{count})" if n == 1 else str(n)
            results.append(f"{label:>8}  ACTIVE p50 {statistics.median(active) * 1e3:5.0f} ms  "
                           f"p99 {pct(active, 99) * 1e3:5.0f} ms   route on the other host "
                           f"p50 {statistics.median(routed) * 1e3:5.0f} ms  p99 {pct(routed, 99) * 1e3:5.0f} ms")
            print(results[-1], flush=True)
        feed.stop()
        remote.stop()
    finally:
        lab.down()
        shutil.rmtree(root, ignore_errors=True)
    print(f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
