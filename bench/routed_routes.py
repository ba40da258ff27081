"""Routed host: how long 10,000 remote endpoints (feed mode) take to install, and a resync after.

Run as root: ``.venv/bin/python bench/routed_routes.py [--endpoints N] [--local N] [--v6]``. One
namespace plays the routed host (an underlay veth with 192.0.2.1/24 and
2001:db8:ff::1/64), with one local VM tap; N remote endpoints of the same
network sit on other hosts (192.0.2.2..). The figures are the real backend's
observe, plan and apply (one ``ip -batch``), the no-op resync pass that
follows, and the removal of everything. The namespace is deleted afterwards.
"""

from __future__ import annotations

import argparse
import ipaddress
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping

from netplex.agent.model import HostDesired, NetworkSpec, PortSpec, RoutedEndpoint, tap_name
from netplex.agent.routed import RoutedBackend
from netplex.agent.routed_plan import RoutedPlanConfig

NET = "0e7c6a1b-0000-4000-8000-000000000001"
PORT = "5b9e2f3c-0000-4000-8000-000000000001"


class Facts:
    def gateways(self) -> Mapping[str, tuple[str, ...]]:
        return {NET: ("10.0.0.1", "fd00::1")}

    def next_hops6(self) -> Mapping[str, str]:
        return {f"h{i}": f"2001:db8:ff::{i + 2:x}" for i in range(8)}


def ip(ns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", ns, *args], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoints", type=int, default=10_000)
    ap.add_argument("--v6", action="store_true", help="each remote endpoint also has an IPv6 address")
    ap.add_argument("--rounds", type=int, default=3, help="install / resync / remove this many times")
    ap.add_argument("--local", type=int, default=1, help="local VM taps (1,000: the issue's resync case)")
    args = ap.parse_args()
    ns = f"npb-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        ip(ns, "link", "add", "u0", "type", "veth", "peer", "name", "u1")
        ip(ns, "addr", "add", "192.0.2.1/24", "dev", "u0")
        ip(ns, "addr", "add", "2001:db8:ff::1/64", "dev", "u0", "nodad")
        ip(ns, "link", "set", "u0", "up")
        ip(ns, "link", "set", "u1", "up")
        locals_ = [PORT] + [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(1, args.local)]
        subprocess.run(["ip", "-n", ns, "-batch", "-"], check=True, text=True, input="".join(
            f"link add {tap_name(p)} type veth peer name vm{i}\n" for i, p in enumerate(locals_)))
        base = int(ipaddress.ip_address("10.128.0.0"))
        remotes = tuple(
            RoutedEndpoint(port_id=f"r{i}", network_id=NET, host=f"h{i % 8}",
                           ips=(str(ipaddress.ip_address(base + i)),
                                *((f"fd00::{i + 0x1000:x}",) if args.v6 else ())),
                           next_hop=f"192.0.2.{i % 8 + 2}")
            for i in range(args.endpoints))
        first = int(ipaddress.ip_address("10.0.0.5"))
        desired = HostDesired(host="h-local", networks=(NetworkSpec(NET, "local"),),
                              ports=tuple(PortSpec(p, NET, f"fa:16:3e:00:{i >> 8:02x}:{i & 255:02x}",
                                                   (str(ipaddress.ip_address(first + i)),))
                                          for i, p in enumerate(locals_)),
                              routed_remotes=remotes)
        backend = RoutedBackend(RoutedPlanConfig(local_ip="192.0.2.1", local_ip6="2001:db8:ff::1"),
                                Facts(), netns=ns)

        def one_pass(d: HostDesired) -> tuple[float, float, float, int, int]:
            t0 = time.perf_counter()
            observed = backend.observe()
            t1 = time.perf_counter()
            plan = backend.plan(d, observed)
            t2 = time.perf_counter()
            result = backend.apply(plan.ops)
            t3 = time.perf_counter()
            return t1 - t0, t2 - t1, t3 - t2, len(plan.ops), len(result.errors)

        routes = args.endpoints * (2 if args.v6 else 1)
        print(f"{args.local} local port(s), {args.endpoints} remote endpoints")
        for _ in range(args.rounds):
            rounds(one_pass, desired, routes)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def rounds(one_pass: Callable[[HostDesired], tuple[float, float, float, int, int]],
           desired: HostDesired, routes: int) -> None:
    """One install, one no-op resync, one removal, each printed."""
    obs, plan, apply, n, errors = one_pass(desired)
    print(f"install {routes} remote routes: observe {obs * 1e3:.0f} ms, plan {plan * 1e3:.0f} ms, "
          f"apply {apply * 1e3:.0f} ms ({n} ops, {errors} errors); "
          f"total {(obs + plan + apply) * 1e3:.0f} ms")
    obs, plan, apply, n, errors = one_pass(desired)
    print(f"resync of the converged host: observe {obs * 1e3:.0f} ms, plan {plan * 1e3:.0f} ms, "
          f"{n} ops; total {(obs + plan + apply) * 1e3:.0f} ms")
    obs, plan, apply, n, errors = one_pass(HostDesired(host="h-local"))
    print(f"remove everything: {(obs + plan + apply) * 1e3:.0f} ms ({n} ops, {errors} errors)")

if __name__ == "__main__":
    main()
