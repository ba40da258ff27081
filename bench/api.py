"""API benchmark: create/list/update/delete of networks, subnets and ports.

Runs a real ``netplex server`` (embedded SQLite, or with --postgres a
scratch database on a PostgreSQL server, created and dropped here) and
drives it with 1 and 8 concurrent keep-alive clients. Prints ops/s,
p50/p99 latency and the server's resident memory.

    .venv/bin/python bench/api.py [--ports 2000] [--list-ports 10000] [--postgres [URL]]

The big list is timed as admin and as the tenant owning its ports (policy
filtering of every row).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Conn, Server, cpu_seconds, run  # noqa: E402

CONF = """
[quotas]
# Throughput, not limits: Neutron's default quotas (500 ports) would stop the run.
default_quota = -1
quota_network = -1
quota_subnet = -1
quota_port = -1
[ml2]
type_drivers = local,vxlan
project_network_types = vxlan
[ml2_type_vxlan]
vni_ranges = 1:1000000
"""
#: The project owning the big list's ports (listed by it and by the admin).
TENANT = "bench-tenant"


@contextlib.contextmanager
def scratch_postgres(server_url: str) -> Iterator[str]:
    """A fresh database on ``server_url`` (dropped afterwards); yields its URL."""
    import psycopg

    name = f"netplex_bench_{os.getpid()}"
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{server_url}/{name}"
    finally:
        with psycopg.connect(f"{server_url}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def expect(status: int, want: int, body: Any) -> None:
    if status != want:
        raise SystemExit(f"unexpected {status}: {body}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ports", type=int, default=2000, help="ports per create/update/delete run")
    ap.add_argument("--nets", type=int, default=300, help="networks per run")
    ap.add_argument("--list-ports", type=int, default=10000, help="ports present for the list test")
    ap.add_argument("--postgres", nargs="?", const="postgresql://postgres@127.0.0.1:5432", metavar="SERVER_URL",
                    help="use a scratch database on this PostgreSQL server instead of SQLite")
    ap.add_argument("--conf", action="append", default=[], metavar="INI",
                    help="extra configuration text, e.g. '[securitygroup]\\nenable_security_group = false' "
                         "(\\n for new lines; repeatable)")
    args = ap.parse_args()
    with contextlib.ExitStack() as stack:
        conf = CONF + "".join("\n" + c.replace("\\n", "\n") + "\n" for c in args.conf)
        if args.postgres:
            url = stack.enter_context(scratch_postgres(args.postgres.rstrip("/")))
            conf += f"[database]\nconnection = {url}\n"
            print(f"database: {url}", flush=True)
        bench(args, conf)


def show(row: tuple[str, int, float, float, float, float]) -> None:
    name, clients, ops, _, _, cpu = row
    print(f"  {name:16} x{clients}: {ops:8.0f} ops/s, server CPU {cpu:.2f} ms/op", flush=True)


def bench(args: argparse.Namespace, conf: str) -> None:
    rows: list[tuple[str, int, float, float, float, float]] = []
    with Server(conf) as srv:
        pids = srv.pids()

        def measured(clients: int, n: int, op: Any) -> tuple[float, float, float, float]:
            """run() plus the server's CPU time per operation (ms), all its processes."""
            cpu0 = cpu_seconds(pids)
            ops, p50, p99 = run(srv.port, clients, n, op)
            return ops, p50, p99, (cpu_seconds(pids) - cpu0) * 1000 / n

        admin = Conn(srv.port)
        print(f"server on :{srv.port}, RSS at start {srv.rss_mib():.0f} MiB", flush=True)
        for clients in (1, 8):
            net_ids: list[str] = [""] * args.nets

            def net_create(c: Conn, i: int) -> None:
                s, b = c.call("POST", "/v2.0/networks", {"network": {"name": f"n{i}"}})
                expect(s, 201, b)
                net_ids[i] = b["network"]["id"]

            def net_update(c: Conn, i: int) -> None:
                s, b = c.call("PUT", f"/v2.0/networks/{net_ids[i]}", {"network": {"name": f"m{i}"}})
                expect(s, 200, b)

            def net_delete(c: Conn, i: int) -> None:
                s, b = c.call("DELETE", f"/v2.0/networks/{net_ids[i]}")
                expect(s, 204, b)

            for name, op in (("network create", net_create), ("network update", net_update)):
                rows.append((name, clients, *measured(clients, args.nets, op)))
                show(rows[-1])
            rows.append(
                ("network list", clients, *measured(clients, 50, lambda c, i: c.call("GET", "/v2.0/networks")))
            )
            rows.append(("network delete", clients, *measured(clients, args.nets, net_delete)))
            show(rows[-1])

            s, b = admin.call("POST", "/v2.0/networks", {"network": {"name": "ports"}})
            net = b["network"]["id"]
            subnet_ids: list[str] = [""] * 50

            def sub_create(c: Conn, i: int) -> None:
                s, b = c.call(
                    "POST", "/v2.0/subnets", {"subnet": {"network_id": net, "ip_version": 4, "cidr": f"10.{i}.0.0/16"}}
                )
                expect(s, 201, b)
                subnet_ids[i] = b["subnet"]["id"]

            def sub_update(c: Conn, i: int) -> None:
                s, b = c.call("PUT", f"/v2.0/subnets/{subnet_ids[i]}", {"subnet": {"name": f"s{i}"}})
                expect(s, 200, b)

            rows.append(("subnet create", clients, *measured(clients, 50, sub_create)))
            rows.append(("subnet update", clients, *measured(clients, 50, sub_update)))
            rows.append(
                ("subnet list", clients, *measured(clients, 50, lambda c, i: c.call("GET", "/v2.0/subnets")))
            )
            port_ids: list[str] = [""] * args.ports

            def port_create(c: Conn, i: int) -> None:
                s, b = c.call(
                    "POST",
                    "/v2.0/ports",
                    {"port": {"network_id": net, "fixed_ips": [{"subnet_id": subnet_ids[i % 50]}]}},
                )
                expect(s, 201, b)
                port_ids[i] = b["port"]["id"]

            def port_update(c: Conn, i: int) -> None:
                s, b = c.call("PUT", f"/v2.0/ports/{port_ids[i]}", {"port": {"name": f"p{i}"}})
                expect(s, 200, b)

            def port_delete(c: Conn, i: int) -> None:
                s, b = c.call("DELETE", f"/v2.0/ports/{port_ids[i]}")
                expect(s, 204, b)

            def port_list(c: Conn, i: int) -> None:
                s, b = c.call("GET", f"/v2.0/ports?network_id={net}")
                expect(s, 200, b)

            for name, op in (("port create", port_create), ("port update", port_update)):
                rows.append((name, clients, *measured(clients, args.ports, op)))
                show(rows[-1])
            # A list of this run's ports (--ports of them) on their network.
            rows.append(("port list", clients, *measured(clients, 20, port_list)))
            rows.append(("port delete", clients, *measured(clients, args.ports, port_delete)))
            show(rows[-1])
            rows.append(
                (
                    "subnet delete",
                    clients,
                    *measured(
                        clients,
                        50,
                        lambda c, i: expect(*c.call("DELETE", f"/v2.0/subnets/{subnet_ids[i]}")[:1], 204, None),
                    ),
                )
            )
            admin.call("DELETE", f"/v2.0/networks/{net}")

        # The big list.
        s, b = admin.call("POST", "/v2.0/networks", {"network": {"name": "list"}})
        net = b["network"]["id"]
        admin.call("POST", "/v2.0/subnets", {"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.128.0.0/16"}})
        print(f"creating {args.list_ports} ports for the list test ...", flush=True)
        batch = 500
        for start in range(0, args.list_ports, batch):
            # Owned by a tenant, so the same list is timed as admin and as that tenant.
            item = {"network_id": net, "project_id": TENANT}
            s, b = admin.call("POST", "/v2.0/ports", {"ports": [item] * min(batch, args.list_ports - start)})
            expect(s, 201, b)
            print(f"  {start + batch}/{args.list_ports}", end="\r", flush=True)
        tenant = Conn(srv.port, {"X-Project-Id": TENANT, "X-Roles": "member"})
        times: dict[str, list[float]] = {"admin": [], "tenant": []}
        for _ in range(5):
            for who, conn in (("admin", admin), ("tenant", tenant)):
                t = time.perf_counter()
                s, b = conn.call("GET", "/v2.0/ports")
                times[who].append(time.perf_counter() - t)
                expect(s, 200, b)
                assert len(b["ports"]) == args.list_ports
        rss = srv.rss_mib()
    print()
    print("| operation | clients | ops/s | p50 ms | p99 ms | server CPU ms/op |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, clients, ops, p50, p99, cpu in rows:
        print(f"| {name} | {clients} | {ops:.0f} | {p50:.1f} | {p99:.1f} | {cpu:.2f} |")
    print()
    for who, ts in times.items():
        print(
            f"list of {args.list_ports} ports as {who}: median {statistics.median(ts) * 1000:.0f} ms "
            f"(min {min(ts) * 1000:.0f} ms)"
        )
    print(f"server RSS after the run: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
