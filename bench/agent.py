"""Host agent benchmark: PUT binding:host_id -> port ACTIVE, and full-resync time.

Run (root): ``.venv/bin/python bench/agent.py [--sizes 1,100,1000] [--mechanism linuxbridge]``

Builds a one-host lab (real ``netplex server`` with SQLite, one host
namespace, the real agent process for it), then for each size N:

1. creates N ports on a VXLAN network (unbound) and, in the host namespace,
   the device the compute side would have plugged for each (``tap<id>``: a
   veth for Linux bridge, an internal port with ``iface-id`` on br-int
   for Open vSwitch), so the measurement is the control plane + agent path,
   not device creation;
2. watches the change feed and PUTs ``binding:host_id`` on all N ports (8
   client threads; for N=1, 20 rounds one after another);
3. latency per port = first feed entry showing it ACTIVE - start of its PUT.

Then the agent process is stopped and a fresh in-process agent does a full
resync of the host with every port (1,100 for the default sizes): once on
an already-correct host (what an agent restart costs) and once after the
networks' bridges were deleted (every tap to re-attach). Each size gets
its own network: a Linux bridge holds at most 1,024 ports. Targets (issue 5):
p50 < 200 ms, resync < 10 s.

Everything is created under ``npl-bench-<hex>`` / ``/tmp/npl-bench-<hex>``
and removed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from netplex.agent.model import bridge_name, tap_name
from netplex.agent.service import AgentService
from netplex.client import NeutronClient
from netplex.lab.lab import HostRec, Lab, NetRec
from netplex.linux import netns

err = Console(stderr=True)
out = Console()


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=False)


class FeedWatch:
    """Records when each port is first seen ACTIVE on the change feed."""

    def __init__(self, url: str) -> None:
        self.client = NeutronClient(url, timeout=60)
        self.active: dict[str, float] = {}
        self.cond = threading.Condition()
        self._stop = threading.Event()
        head = self.client.request("GET", "/changes", params={"after": 2**61, "timeout": 0})
        self.after = int(head["revision"])
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                page = self.client.request("GET", "/changes",
                                           params={"after": self.after, "timeout": 5})
            except Exception:  # noqa: BLE001 - the bench just retries
                time.sleep(0.1)
                continue
            now = time.monotonic()
            with self.cond:
                for ch in page.get("changes") or []:
                    body = ch.get("body") or {}
                    if ch.get("resource") == "port" and body.get("status") == "ACTIVE":
                        self.active.setdefault(str(ch["id"]), now)
                self.after = int(page["revision"])
                self.cond.notify_all()

    def wait(self, ids: set[str], timeout: float, tick: Any = None) -> None:
        end = time.monotonic() + timeout
        with self.cond:
            while not ids <= set(self.active):
                if tick:
                    tick(len(ids & set(self.active)))
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(ids - set(self.active))} port(s) not ACTIVE "
                                       f"after {timeout:g}s")
                self.cond.wait(min(left, 0.5))
        if tick:
            tick(len(ids))

    def stop(self) -> None:
        self._stop.set()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def make_devices(host: HostRec, port_ids: list[str]) -> None:
    """What the compute side would have plugged: one device per port, before binding."""
    if host.kind == "lb":
        # (No dummy links in every kernel: a veth pair, its VM end left alone.)
        script = "".join(f"link add {tap_name(p)} type veth peer name vm{p[:11]}\n"
                         f"link set {tap_name(p)} up\n" for p in port_ids)
        subprocess.run(["ip", "-n", host.ns, "-batch", "-"], input=script, text=True,
                       check=True, capture_output=True)
        return
    per_port = [["--may-exist", "add-port", "br-int", tap_name(p), "tag=4095", "protected=true", "--", "set",
                 "Interface", tap_name(p), "type=internal", f"external_ids:iface-id={p}",
                 "external_ids:iface-status=active"] for p in port_ids]
    for i in range(0, len(per_port), 100):  # 100 ports per OVSDB transaction
        args: list[str] = []
        for cmd in per_port[i:i + 100]:
            args += [*(["--"] if args else []), *cmd]
        proc = subprocess.run(["ovs-vsctl", f"--db={host.ovs_db}", "--timeout=120", *args],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"ovs-vsctl add-port failed: {proc.stderr.strip()[:300]}")


def create_ports(client_url: str, net_id: str, n: int) -> list[str]:
    ids: list[str] = []
    lock = threading.Lock()
    with progress() as prog:
        task = prog.add_task(f"creating {n} port(s)", total=n)

        def one(_: int) -> None:
            with NeutronClient(client_url) as c:
                pid = c.create_port({"network_id": net_id, "device_owner": "compute:bench"})["id"]
            with lock:
                ids.append(pid)
            prog.advance(task)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(n)))
    return ids


def bind(lab: Lab, host: str, ids: list[str], watch: FeedWatch,
         timeout: float) -> tuple[list[float], list[float]]:
    """PUT binding:host_id on every port (8 threads).

    Returns per port (PUT start -> ACTIVE, PUT answered -> ACTIVE).
    """
    started: dict[str, float] = {}
    answered: dict[str, float] = {}
    clients = threading.local()

    def put(pid: str) -> None:
        if not hasattr(clients, "c"):
            clients.c = NeutronClient(lab.url)
        started[pid] = time.monotonic()
        clients.c.update_port(pid, {"binding:host_id": host})
        answered[pid] = time.monotonic()

    with progress() as prog:
        task = prog.add_task(f"binding {len(ids)} port(s) -> ACTIVE", total=len(ids))
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, ids))
        watch.wait(set(ids), timeout, tick=lambda k: prog.update(task, completed=k))
    return ([watch.active[p] - started[p] for p in ids],
            [max(0.0, watch.active[p] - answered[p]) for p in ids])


def run(sizes: list[int], mechanism: str, rounds_single: int, keep_log: str | None = None) -> None:
    tag = uuid.uuid4().hex[:4]
    root = Path(tempfile.mkdtemp(prefix=f"npl-bench-{tag}-"))
    lab = Lab(root / "lab", prefix=f"npl-bench{tag}", report_interval=5)
    kind = "lb" if mechanism == "linuxbridge" else "ovs"
    rows: list[tuple[str, str, str, str, str]] = []
    resync_rows: list[tuple[str, str, str, str, str]] = []
    try:
        with err.status("server, host namespace, agent"):
            lab.init()
            lab.start_server()
            lab.add_underlay()
            host = lab.add_host("host-1", kind)
            lab.start_agent("host-1")
            lab.wait_agents()
        err.print(f"[green]✓[/] server {lab.url}, {mechanism} host {host.ns}")
        watch = FeedWatch(lab.url)
        all_ids: list[str] = []
        nets: list[NetRec] = []
        for n in sizes:
            # A network per size: a Linux bridge takes at most 1,024 ports (kernel
            # BR_MAX_PORTS), so 1,000 VMs of one network is about the limit per host.
            net = lab.create_network(f"bench-{n}", f"10.{64 + len(nets)}.0.0/16")
            nets.append(net)
            if n == 1:
                ids = create_ports(lab.url, net.id, rounds_single)
                make_devices(host, ids)
                lat: list[float] = []
                after: list[float] = []
                with progress() as prog:
                    task = prog.add_task(f"1 port at a time x {rounds_single}", total=rounds_single)
                    for pid in ids:
                        with NeutronClient(lab.url) as c:
                            t0 = time.monotonic()
                            c.update_port(pid, {"binding:host_id": "host-1"})
                            t1 = time.monotonic()
                        watch.wait({pid}, 30)
                        lat.append(watch.active[pid] - t0)
                        after.append(max(0.0, watch.active[pid] - t1))
                        prog.advance(task)
                label = f"1 (x{rounds_single})"
            else:
                ids = create_ports(lab.url, net.id, n)
                with err.status(f"plugging {n} device(s) in {host.ns}"):
                    make_devices(host, ids)
                lat, after = bind(lab, "host-1", ids, watch, timeout=120 + n / 5)
                label = str(n)
            all_ids += ids
            rows.append((label, f"{statistics.median(lat) * 1000:.0f}",
                         f"{percentile(lat, 99) * 1000:.0f}", f"{max(lat) * 1000:.0f}",
                         f"{statistics.median(after) * 1000:.0f}"))
            err.print(f"[green]✓[/] {label}: p50 {rows[-1][1]} ms, p99 {rows[-1][2]} ms")
        watch.stop()

        # Full resync by a fresh agent (the running one is stopped first).
        lab.stop_agent("host-1")
        settings = lab.agent_settings("host-1")
        for case in ("restart (host already right)", "from scratch (bridges deleted)"):
            if case.startswith("from scratch"):
                if kind == "lb":
                    for net in nets:
                        netns.run(host.ns, ["ip", "link", "del", bridge_name(net.id)])
                else:
                    # A bare br-int with the VM ports re-plugged: no tags, no flows.
                    subprocess.run(["ovs-vsctl", f"--db={host.ovs_db}", "del-br", "br-int", "--",
                                    "add-br", "br-int", "--", "set", "Bridge", "br-int",
                                    "datapath_type=netdev"], check=True, capture_output=True)
                    make_devices(host, all_ids)
            agent = AgentService(settings, monitors=False)
            with err.status(f"full resync: {case}"):
                assert agent.resync_now("bench")
            st = agent.stats()
            resync_rows.append((case, str(st.local_ports), f"{st.last_resync_seconds:.2f}",
                                f"{st.last_snapshot_seconds:.2f}", str(st.ops)))
            agent.api.close()
            agent.stop()  # closes its backend (the OVS one holds an OVSDB connection)
            err.print(f"[green]✓[/] resync {case}: {st.last_resync_seconds:.2f}s, {st.ops} ops")
    finally:
        log = lab.dir / "logs" / "agent-host-1.log"
        if keep_log and log.exists():
            import shutil as _sh

            _sh.copy(log, keep_log)
            err.print(f"agent log copied to {keep_log}")
        with err.status("cleaning up"):
            lab.down()
            import shutil

            shutil.rmtree(root, ignore_errors=True)

    table = Table(title=f"PUT binding:host_id -> ACTIVE ({mechanism}, one host; target p50 < 200 ms)",
                  title_justify="left")
    for col in ("ports", "p50 ms", "p99 ms", "max ms", "p50 after PUT answered ms"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(*r)
    out.print(table)
    table = Table(title="agent full resync (target < 10 s)", title_justify="left")
    for col in ("case", "local ports", "total s", "snapshot s", "operations"):
        table.add_column(col, justify="right")
    for rr in resync_rows:
        table.add_row(*rr)
    out.print(table)
    out.print(f"[dim]{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
              f"python {sys.version.split()[0]}[/]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1,100,1000", help="comma-separated port counts")
    ap.add_argument("--mechanism", choices=("linuxbridge", "openvswitch"), default="linuxbridge")
    ap.add_argument("--single-rounds", type=int, default=20, help="rounds for the size 1 case")
    ap.add_argument("--keep-log", metavar="PATH", help="copy the agent's log here before cleanup")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/agent.py needs root (network namespaces); run it with sudo")
    run([int(s) for s in args.sizes.split(",") if s.strip()], args.mechanism, args.single_rounds,
        args.keep_log)


if __name__ == "__main__":
    main()
