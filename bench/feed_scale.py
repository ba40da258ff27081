"""The change feed at scale: N simulated agents follow the feed while 8 clients create and bind ports.

Run: ``.venv/bin/python bench/feed_scale.py --agents 0,10,100 [--ports 1000] [--postgres]``

For each N a fresh ``netplex server`` (default API workers, embedded SQLite
unless ``--postgres``) and N simulated agents in this process. Each agent is
the agent's own follower code (:class:`netplex.agent.feed.FeedWatcher` over
:class:`netplex.agent.api.HttpServerApi`, the real HTTP client) with a fake
backend: pages are only counted, nothing is programmed. Agents register and
heartbeat with the real report body (Linux bridge, a VXLAN tunnel address
each) every ``--report-interval`` seconds. Then 8 clients create ports bound
to the agents' hosts in turn (``binding:host_id``), and the script prints:

* port creates/s and p50/p99 create latency;
* server CPU per create (all its processes, during the create phase) and
  server RSS at the end;
* follower wake-up latency p50/p99: from a create's response to the moment
  a follower whose host should see the port holds it (every follower when
  the feed is not filtered per host);
* feed bytes per follower (the JSON of the changes it received);
* agents the server reported dead although they heartbeat.

Every follower follows the whole feed (per-host interest is not built yet).

Wake-up latency is measured in this process, which shares the 2 CPUs with
the server: at thousands of followers the client's own threads are part of
the figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import Conn, Server, cpu_seconds, pct, run  # noqa: E402

from netplex.agent.api import FeedPage, HttpServerApi  # noqa: E402
from netplex.agent.backends import report_body  # noqa: E402
from netplex.agent.events import Changes, Event  # noqa: E402
from netplex.agent.feed import FeedWatcher  # noqa: E402
from netplex.agent.health import ServerHealth  # noqa: E402
from netplex.agent.settings import AgentSettings  # noqa: E402
from netplex.agent.stats import StatsBook  # noqa: E402

CONF = """
[DEFAULT]
agent_down_time = 75
[ml2]
type_drivers = local,vxlan
tenant_network_types = vxlan
mechanism_drivers = linuxbridge
[ml2_type_vxlan]
vni_ranges = 1:1000000
[quotas]
quota_port = -1
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class SharedApi:
    """One HttpServerApi shared by many simulated agents (one connection pool
    without a limit): thousands of httpx clients would cost this process more
    memory and CPU than the server. ``close`` is a no-op; the owner closes it."""

    def __init__(self, api: HttpServerApi) -> None:
        self._api = api

    def changes(self, after: int, timeout: float) -> FeedPage:
        return self._api.changes(after, timeout)

    def close(self) -> None:
        pass


_SIZES: dict[int, int] = {}


def change_size(ch: dict[str, Any]) -> int:
    """The JSON size of a feed entry, computed once per revision: thousands of
    followers re-encoding every page would make this process the bottleneck."""
    rev = int(ch.get("revision", -1))
    size = _SIZES.get(rev)
    if size is None:
        size = _SIZES[rev] = len(json.dumps(ch)) + 2
    return size


class Follower:
    """One simulated agent: its host name, what it saw and when."""

    def __init__(self, idx: int) -> None:
        self.host = f"fs-host-{idx}"
        self.local_ip = f"10.{100 + idx // 65536}.{idx // 256 % 256}.{idx % 256 or 1}"
        self.seen: dict[str, float] = {}
        self.bytes = 0
        self.pages = 0

    def put(self, ev: Event) -> None:
        if not isinstance(ev, Changes):
            return
        now = time.perf_counter()
        self.pages += 1
        for ch in ev.changes:
            self.bytes += change_size(ch)
            if ch.get("resource") == "port":
                self.seen.setdefault(str(ch.get("id")), now)


@contextlib.contextmanager
def scratch_postgres(server: str) -> Iterator[str]:
    import uuid

    import psycopg

    name = f"netplex_feedbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{server.split('://', 1)[1]}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_point(n: int, args: argparse.Namespace, conf: str) -> dict[str, Any]:
    with Server(conf) as srv:
        pids = srv.pids()
        transport = httpx.HTTPTransport(limits=httpx.Limits(max_connections=None, max_keepalive_connections=None))
        shared = HttpServerApi(srv.url, transport=transport)
        followers = [Follower(i) for i in range(n)]
        stop = threading.Event()
        settings = [AgentSettings(host=f.host, mechanism="linuxbridge", local_ip=f.local_ip) for f in followers]
        log(f"N={n}: server :{srv.port}, registering {n} agents")
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda s: shared.report(report_body(s, True)), settings))
        dead_seen: list[str] = []

        def heartbeat(mine: list[AgentSettings]) -> None:
            # Each agent reports once per interval, spread over it (as real agents drift).
            while not stop.is_set():
                t0 = time.monotonic()
                for i, s in enumerate(mine):
                    if stop.is_set():
                        return
                    try:
                        got = shared.report(report_body(s, False))
                        if not got.get("alive", True):
                            dead_seen.append(s.host)
                    except Exception as exc:  # noqa: BLE001 - a benchmark counts, never stops
                        dead_seen.append(f"{s.host}: {exc}")
                    target = t0 + args.report_interval * (i + 1) / max(1, len(mine))
                    stop.wait(max(0.0, target - time.monotonic()))

        # One heartbeat thread per 50 agents: one thread alone falls behind
        # agent_down_time when this process is busy with thousands of followers.
        hb_count = (n + 49) // 50
        hb_threads = [threading.Thread(target=heartbeat, args=(settings[k::hb_count],), daemon=True)
                      for k in range(hb_count)]
        threading.stack_size(256 * 1024)
        watchers: list[tuple[FeedWatcher, threading.Thread]] = []
        for f in followers:
            api = SharedApi(shared)
            w = FeedWatcher(lambda api=api: api, f.put, stop,  # type: ignore[misc]
                            ServerHealth(srv.url, StatsBook()), poll_timeout=25)
            t = threading.Thread(target=w.watch, daemon=True)
            watchers.append((w, t))
        for t in hb_threads:
            t.start()
        for _w, t in watchers:
            t.start()
        settle = 2 + n / 500
        log(f"N={n}: {n} followers started; settling {settle:.0f} s")
        time.sleep(settle)

        admin = Conn(srv.port)
        s, b = admin.call("POST", "/v2.0/networks", {"network": {"name": "fs"}})
        assert s == 201, b
        net = b["network"]["id"]
        s, b = admin.call("POST", "/v2.0/subnets",
                          {"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/16"}})
        assert s == 201, b
        created: dict[str, tuple[float, str]] = {}
        lock = threading.Lock()

        def create(c: Conn, i: int) -> None:
            port: dict[str, Any] = {"network_id": net}
            host = followers[i % n].host if n and args.bind else ""
            if host:
                port["binding:host_id"] = host
            s, b = c.call("POST", "/v2.0/ports", {"port": port})
            if s != 201:
                raise SystemExit(f"port create: {s} {b}")
            with lock:
                created[b["port"]["id"]] = (time.perf_counter(), host)

        log(f"N={n}: creating {args.ports} ports with 8 clients")
        cpu0 = cpu_seconds(pids)
        ops, p50, p99 = run(srv.port, 8, args.ports, create)
        cpu = (cpu_seconds(pids) - cpu0) * 1000 / args.ports
        log(f"N={n}: {ops:.0f} creates/s; waiting for followers to see them")

        def expected(f: Follower) -> list[str]:
            return list(created)  # no per-host interest yet: every follower gets every port

        deadline = time.monotonic() + 60 + n / 50
        while time.monotonic() < deadline:
            missing = sum(1 for f in followers for pid in expected(f) if pid not in f.seen)
            if not missing:
                break
            log(f"N={n}:   {missing} (follower, port) pairs not seen yet")
            time.sleep(2)
        lat: list[float] = []
        missing = 0
        for f in followers:
            for pid in expected(f):
                if pid in f.seen:
                    lat.append(max(0.0, f.seen[pid] - created[pid][0]))
                else:
                    missing += 1
        rss = srv.rss_mib()
        s, b = admin.call("GET", "/v2.0/agents?fields=host&fields=alive")
        dead = [a["host"] for a in b.get("agents", []) if not a.get("alive")] if s == 200 else ["?"]
        stop.set()
        shared.close()
        return {
            "n": n, "ops": ops, "p50": p50, "p99": p99, "cpu": cpu, "rss": rss,
            "wake50": pct(lat, 0.5) if lat else 0.0, "wake99": pct(lat, 0.99) if lat else 0.0,
            "bytes": sum(f.bytes for f in followers) / n if n else 0.0,
            "missing": missing, "dead": len(dead) + len(dead_seen),
        }


def main() -> None:
    # A follower cut off when its point ends logs a warning per poll: not news.
    logging.getLogger("netplex").setLevel(logging.ERROR)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", default="0,10,100", help="comma-separated follower counts (0,1,10,100,1000,5000)")
    ap.add_argument("--ports", type=int, default=1000, help="ports created per point")
    ap.add_argument("--report-interval", type=float, default=30.0, help="seconds between an agent's heartbeats")
    ap.add_argument("--no-bind", dest="bind", action="store_false",
                    help="create unbound ports (no binding cost: the feed's cost alone, comparable with 0 followers)")
    ap.add_argument("--postgres", nargs="?", const="postgresql://postgres@127.0.0.1:5432", metavar="SERVER_URL",
                    help="a scratch database on this PostgreSQL server instead of SQLite")
    args = ap.parse_args()
    rows = []
    for n in (int(x) for x in args.agents.split(",")):
        with contextlib.ExitStack() as stack:
            conf = CONF
            if args.postgres:
                url = stack.enter_context(scratch_postgres(args.postgres.rstrip("/")))
                conf += f"[database]\nconnection = {url}\n"
            rows.append(bench_point(n, args, conf))
            r = rows[-1]
            log(f"N={n}: done: {r}")
    print(f"\nfeed scale ({'PostgreSQL' if args.postgres else 'SQLite'}, "
          f"{args.ports} port creates by 8 clients, {'bound' if args.bind else 'unbound'})\n")
    print("| followers | creates/s | p50 / p99 ms | server CPU ms/create | server RSS MiB "
          "| wake-up p50 / p99 ms | feed bytes/follower | missed | dead agents |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']} | {r['ops']:.0f} | {r['p50']:.1f} / {r['p99']:.1f} | {r['cpu']:.2f} | {r['rss']:.0f} "
              f"| {r['wake50']:.0f} / {r['wake99']:.0f} | {r['bytes']:.0f} | {r['missing']} | {r['dead']} |")


if __name__ == "__main__":
    main()

