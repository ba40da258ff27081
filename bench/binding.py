"""Port-binding benchmark: PUT ``binding:host_id`` until the response carries a bound vif_type.

Runs a real ``netplex server`` (embedded SQLite unless ``--db`` says
otherwise) with the ``openvswitch`` and ``linuxbridge`` mechanism drivers and
one VXLAN network, registers agents (one per host, alternating Open vSwitch
and Linux bridge, all with ``tunnel_types: [vxlan]``) and measures, with 10
and then 1,000 registered agents, and with 1 and 8 concurrent keep-alive
clients:

* bind: ``PUT /v2.0/ports/{id} {"port": {"binding:host_id": H}}`` on an
  unbound port;
* move: the same on a bound port, to another host (unbind + bind).

Every measured response must carry the vif_type of H's agent (``ovs`` or
``bridge``); anything else aborts the run. One latency sample is one whole
HTTP request: the port update transaction, the drivers' decision, the
compare-and-swap commit and the port read-back. Progress goes to stderr, the
markdown table to stdout.

    .venv/bin/python bench/binding.py [--ports 1000] [--agents 10,1000]

Target (issue 4): p50 under 5 ms on SQLite. Neutron 29 on this kind of
machine: about 100-140 ms p50, 6-15 binds/s.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Conn, Server, cpu_seconds, run  # noqa: E402

CONF = """
[DEFAULT]
agent_down_time = 3600
{default}
[quotas]
quota_network = -1
quota_subnet = -1
quota_port = -1
[ml2]
type_drivers = local,vlan,vxlan
project_network_types = vxlan
mechanism_drivers = openvswitch,linuxbridge
[ml2_type_vxlan]
vni_ranges = 1:1000
"""

OVS = ("Open vSwitch agent", "netplex-openvswitch-agent", "ovs")
LB = ("Linux bridge agent", "netplex-linuxbridge-agent", "bridge")


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def expect(status: int, want: int, body: Any) -> None:
    if status != want:
        raise SystemExit(f"unexpected HTTP {status}: {body}")


def host_name(i: int) -> str:
    return f"bench-host-{i:04d}"


def agent_kind(i: int) -> tuple[str, str, str]:
    return OVS if i % 2 == 0 else LB


def register_agents(conn: Conn, first: int, last: int) -> None:
    """Report agents for hosts ``first`` .. ``last - 1``."""
    for i in range(first, last):
        agent_type, binary, _ = agent_kind(i)
        body = {
            "agent": {
                "agent_type": agent_type,
                "binary": binary,
                "host": host_name(i),
                "topic": "N/A",
                "start_flag": True,
                "configurations": {"tunnel_types": ["vxlan"], "tunneling_ip": f"10.{i // 250}.{i % 250}.1"},
            }
        }
        expect(*conn.call("POST", "/v2.0/netplex/agent-report", body)[:1], 200, None)
        if (i + 1) % 100 == 0 or i + 1 == last:
            progress(f"  agents registered: {i + 1}")


def create_ports(conn: Conn, net_id: str, n: int) -> list[str]:
    ids: list[str] = []
    batch = 250
    for start in range(0, n, batch):
        count = min(batch, n - start)
        status, body = conn.call("POST", "/v2.0/ports", {"ports": [{"network_id": net_id}] * count})
        expect(status, 201, body)
        ids.extend(p["id"] for p in body["ports"])
    return ids


def bind_op(port_ids: list[str], hosts: int, offset: int) -> Callable[[Conn, int], None]:
    """PUT port i to host (i + offset) % hosts and check the response is bound correctly."""

    def op(conn: Conn, i: int) -> None:
        h = (i + offset) % hosts
        status, body = conn.call("PUT", f"/v2.0/ports/{port_ids[i]}", {"port": {"binding:host_id": host_name(h)}})
        expect(status, 200, body)
        got = body["port"]
        want = agent_kind(h)[2]
        if got["binding:host_id"] != host_name(h) or got["binding:vif_type"] != want:
            raise SystemExit(
                f"port {got['id']} on {got['binding:host_id']}: vif_type {got['binding:vif_type']!r}, "
                f"wanted {want!r} ({got.get('binding:diagnostics')})"
            )

    return op


Row = tuple[int, int, str, float, float, float, float, float]


def load1() -> float:
    """The 1-minute load average (other jobs on the machine skew the figures)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ports", type=int, default=1000, help="binds per measured run (default 1000)")
    ap.add_argument("--agents", default="10,1000", help="registered-agent counts, ascending (default 10,1000)")
    ap.add_argument("--clients", default="1,8", help="concurrent client counts (default 1,8)")
    ap.add_argument("--db", default="", help="[database] connection (default: SQLite under the state dir)")
    ap.add_argument("--workers", type=int, default=0, help="[DEFAULT] api_workers (default: the server's)")
    ap.add_argument("--warmup", type=int, default=50, help="unmeasured binds before each agent count")
    args = ap.parse_args()
    agent_counts = sorted(int(x) for x in args.agents.split(","))
    client_counts = [int(x) for x in args.clients.split(",")]
    conf = CONF.format(default=f"api_workers = {args.workers}" if args.workers else "")
    conf += f"[database]\nconnection = {args.db}\n" if args.db else ""
    rows: list[Row] = []
    with Server(conf) as srv:
        assert srv.proc is not None
        pids = srv.pids()
        admin = Conn(srv.port)  # used right away; later steps open their own (idle ones get closed)
        workers = max(1, len(pids) - 2) if len(pids) > 1 else 1  # minus the resource tracker
        progress(f"server on :{srv.port} ({args.db or 'SQLite'}), {workers} worker(s), RSS {srv.rss_mib():.0f} MiB")
        status, body = admin.call("POST", "/v2.0/networks", {"network": {"name": "bench-binding"}})
        expect(status, 201, body)
        net = body["network"]
        if net.get("provider:network_type") != "vxlan":
            raise SystemExit(f"expected a VXLAN project network, got {net}")
        status, body = admin.call(
            "POST", "/v2.0/subnets", {"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.64.0.0/12"}}
        )
        expect(status, 201, body)
        registered = 0
        for n_agents in agent_counts:
            progress(f"registering agents {registered}..{n_agents - 1}")
            register_agents(Conn(srv.port), registered, n_agents)
            registered = n_agents
            warm = create_ports(Conn(srv.port), net["id"], args.warmup)
            run(srv.port, 1, len(warm), bind_op(warm, n_agents, 0))
            for clients in client_counts:
                progress(f"{n_agents} agents, {clients} client(s): creating {args.ports} unbound ports")
                ids = create_ports(Conn(srv.port), net["id"], args.ports)
                for name, offset in (("bind", 0), ("move", 1)):
                    cpu0 = cpu_seconds(pids)
                    res = run(srv.port, clients, len(ids), bind_op(ids, n_agents, offset))
                    cpu_ms = (cpu_seconds(pids) - cpu0) * 1000 / len(ids)
                    rows.append((n_agents, clients, name, *res, cpu_ms, load1()))
                    progress(
                        f"  {name:4} x{clients}: {res[0]:7.0f} binds/s  p50 {res[1]:6.2f} ms  p99 {res[2]:6.2f} ms"
                        f"  server CPU {cpu_ms:5.2f} ms/bind  (load {rows[-1][-1]:.1f})"
                    )
        rss = srv.rss_mib()
    print()
    print(
        f"Port binding over HTTP ({args.db.split(':', 1)[0] if args.db else 'SQLite'}; "
        f"{os.cpu_count()} CPUs, {workers} API worker(s), "
        f"{platform.python_implementation()} {platform.python_version()}; "
        f"{args.ports} binds per row; server RSS {rss:.0f} MiB; CPU = server CPU time (all processes) per bind; "
        "load = 1-min load average after the row)"
    )
    print()
    print("| agents | clients | operation | binds/s | p50 ms | p99 ms | CPU ms | load |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for n_agents, clients, name, ops, p50, p99, cpu_ms, load in rows:
        print(f"| {n_agents} | {clients} | {name} | {ops:.0f} | {p50:.2f} | {p99:.2f} | {cpu_ms:.2f} | {load:.1f} |")
    single = [p50 for _, clients, _, _, p50, _, _, _ in rows if clients == 1]
    verdict = "met" if single and max(single) < 5 else "NOT met"
    print(
        f"\nTarget p50 < 5 ms on SQLite (one client): {verdict}. "
        "Neutron 29: ~100-140 ms p50, 6-15 binds/s."
    )


if __name__ == "__main__":
    main()
