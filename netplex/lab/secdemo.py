"""The lab's security-group demonstration: groups proven by traffic.

Every ordinary lab VM is in its project's ``default`` group (members admit
each other), so the ping matrix is unchanged. Next to them, on the first
Linux-bridge host and the first routed host (the kinds that enforce groups;
Open vSwitch hosts do not filter yet, so no demo VM goes there):

* ``web-*`` in group ``web``: ingress ICMP and TCP 22 from the ``default``
  group's members only;
* ``isolated-*`` in group ``isolated``: no ingress rule at all.

Each demo VM runs a small TCP listener on ports 22 and 23 (a Python process
in its namespace, recorded in the lab's state and stopped by ``down``), so a
TCP check tells *dropped* (no answer: the host's nftables) from *refused*
(the packet arrived, nobody listens) and *open*. Every default-group VM of
the demo VM's network probes it; expected: web ping and tcp/22 open, tcp/23
dropped; isolated: everything dropped. The target port's drop counter (chain
``i-<tap>`` of ``inet netplex`` on its host) shows that the drops are the
filter's, not a wiring fault.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rich.table import Table

from netplex.agent.names import tap_name
from netplex.client import NeutronClient
from netplex.lab import procs
from netplex.lab.matrix import VmInfo
from netplex.lab.state import LabError, LabState, VmRec
from netplex.linux import netns


class Lab(Protocol):
    """What the demo needs of :class:`netplex.lab.lab.Lab` (named here so this module does
    not import the lab that imports it)."""

    dir: Path

    @property
    def state(self) -> LabState: ...

    def save(self) -> None: ...

    def client(self, timeout: float = 30.0) -> NeutronClient: ...

    def add_vm(self, name: str, host: str, network: str, ip: str,
               progress: Callable[[str], None] | None = None, timeout: float = 60.0,
               wait_active: bool = True, ip6: str = "", port_security: bool = True,
               security_groups: Sequence[str] | None = None, demo_group: str = "") -> VmRec: ...

    @staticmethod
    def routed_ip6(vm: str, network: str, ip: str) -> str: ...

    def vm_infos(self, demo: bool = False) -> list[VmInfo]: ...

__all__ = [
    "CHECKS",
    "DEMO_GROUPS",
    "EXPECTED",
    "LISTENER",
    "Probe",
    "demo_plan",
    "drop_count",
    "ping_once",
    "build",
    "check",
    "ensure_listeners",
    "render_probes",
    "run_probes",
    "stop_listeners",
    "tcp_probe",
]

#: The demo's groups: name -> (description, ingress rules; remote group "default" = the project's).
DEMO_GROUPS: dict[str, tuple[str, list[dict[str, object]]]] = {
    "web": ("ICMP + TCP 22 from default", [
        {"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp", "remote_group": "default"},
        {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22,
         "port_range_max": 22, "remote_group": "default"},
    ]),
    "isolated": ("no ingress rule", []),
}
CHECKS = ("ping", "tcp/22", "tcp/23")
#: group -> check -> observed outcome the group's rules call for.
EXPECTED: dict[str, dict[str, str]] = {
    "web": {"ping": "reply", "tcp/22": "open", "tcp/23": "dropped"},
    "isolated": {"ping": "dropped", "tcp/22": "dropped", "tcp/23": "dropped"},
}
LISTEN_PORTS = (22, 23)

#: argv[1] is the lab's marker (its state directory, so ``down`` knows the process), then ports.
LISTENER = """
import selectors, socket, sys
sel = selectors.DefaultSelector()
for port in sys.argv[2:]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(port))); s.listen(16); sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        conn, _ = key.fileobj.accept()
        conn.sendall(b"hello\\n"); conn.close()
"""

_CLIENT = """
import socket, sys
s = socket.socket(); s.settimeout(float(sys.argv[3]))
try:
    s.connect((sys.argv[1], int(sys.argv[2]))); print("open" if s.recv(16).startswith(b"hello") else "other")
except ConnectionRefusedError:
    print("refused")
except OSError:
    print("dropped")
"""


def demo_plan(host_kinds: Mapping[str, str]) -> list[tuple[str, str, str, str, str]]:
    """(vm, host, network, ip, group): web + isolated on the first LB host and the first routed host."""
    plan: list[tuple[str, str, str, str, str]] = []
    lb = next((h for h, k in host_kinds.items() if k == "lb"), None)
    routed = next((h for h, k in host_kinds.items() if k == "routed"), None)
    if lb:
        plan += [("web-lb1", lb, "net-a", "10.0.0.41", "web"),
                 ("isolated-lb1", lb, "net-a", "10.0.0.42", "isolated")]
    if routed:
        plan += [("web-r1", routed, "net-r", "10.50.0.41", "web"),
                 ("isolated-r1", routed, "net-r", "10.50.0.42", "isolated")]
    return plan


@dataclass(frozen=True)
class Probe:
    src: VmInfo
    dst: VmInfo
    group: str
    check: str  # one of CHECKS
    observed: str  # reply | dropped | open | refused | other

    @property
    def expected(self) -> str:
        return EXPECTED[self.group][self.check]

    @property
    def good(self) -> bool:
        return self.observed == self.expected


PingFn = Callable[[VmInfo, str], bool]
TcpFn = Callable[[VmInfo, str, int], str]


def ping_once(vm: VmInfo, ip: str) -> bool:
    proc = netns.run(vm.ns, ["ping", "-c", "2", "-i", "0.2", "-W", "1", "-q", ip], check=False, timeout=15)
    return proc.returncode == 0


def tcp_probe(vm: VmInfo, ip: str, port: int, timeout: float = 1.5) -> str:
    """``open`` (the listener's greeting), ``refused`` (RST: reached, nobody listens) or ``dropped``."""
    out = netns.run(vm.ns, [sys.executable, "-c", _CLIENT, ip, str(port), str(timeout)],
                    check=False, timeout=15).stdout.strip()
    return out or "other"


def run_probes(targets: Sequence[tuple[VmInfo, str]], sources: Sequence[VmInfo],
               ping: PingFn = ping_once, tcp: TcpFn = tcp_probe, workers: int = 16,
               tries: int = 3) -> list[Probe]:
    """Each ``(target, group)`` probed with every check from each source of the target's network.

    A result short of the expected *pass* is retried (``tries``): right after plugging, a
    neighbour entry or a remote-group set may still be on its way. An expected drop is
    never retried: no timing makes a filtered packet arrive."""
    def one(job: tuple[VmInfo, VmInfo, str, str]) -> Probe:
        src, dst, group, check = job
        want = EXPECTED[group][check]
        for _ in range(tries if want in ("reply", "open") else 1):
            if check == "ping":
                seen = "reply" if ping(src, dst.ip) else "dropped"
            else:
                seen = tcp(src, dst.ip, int(check.split("/")[1]))
            if seen == want:
                break
        return Probe(src, dst, group, check, seen)

    jobs = [(s, d, g, c) for d, g in targets for s in sources if s.network == d.network for c in CHECKS]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, jobs))


def drop_count(host_ns: str, tap: str) -> int | None:
    """Packets the port's ingress chain dropped so far (None: no such chain, i.e. not filtered)."""
    proc = netns.run(host_ns, ["nft", "list", "chain", "inet", "netplex", f"i-{tap}"], check=False)
    if proc.returncode != 0:
        return None
    m = re.search(r"counter packets (\d+) bytes \d+ drop", proc.stdout)
    return int(m.group(1)) if m else 0


_MARK = {"reply": "✓ reply", "open": "✓ open", "dropped": "✗ dropped", "refused": "refused",
         "other": "?"}


def render_probes(probes: Sequence[Probe], drops: Mapping[str, int | None],
                  hosts: Mapping[str, str]) -> tuple[Table, bool]:
    """One row per (demo VM, check): expected, then what each default-group VM observed.

    ``drops``: demo VM -> packets its port's chain dropped during the run; ``hosts``: host -> mechanism."""
    table = Table(title="security groups: default-group VMs probe the demo VMs (green: as expected)",
                  title_justify="left")
    for col in ("to", "group (ingress)", "enforced by", "check", "expected", "observed, from each default VM",
                "nft drops"):
        table.add_column(col)
    rows: dict[tuple[str, str], list[Probe]] = {}
    for p in probes:
        rows.setdefault((p.dst.name, p.check), []).append(p)
    for (dst, check), cells in rows.items():
        first = cells[0]
        seen = "  ".join(f"[{'green' if p.good else 'bold red'}]{p.src.name} {_MARK[p.observed]}[/]"
                         for p in sorted(cells, key=lambda p: p.src.name))
        lead = check == CHECKS[0]
        dropped = drops.get(dst)
        table.add_row(
            dst if lead else "",
            f"{first.group} ({DEMO_GROUPS[first.group][0]})" if lead else "",
            f"{first.dst.host} ({hosts.get(first.dst.host, '?')}, nftables)" if lead else "",
            check, _MARK[first.expected], seen,
            ("-" if dropped is None else f"+{dropped}") if lead else "")
    return table, bool(probes) and all(p.good for p in probes)


# --- on a lab -----------------------------------------------------------------------------


def create_groups(lab: Lab) -> dict[str, str]:
    """The demo's groups in the project of the lab's VMs (their ``default`` group as remote group)."""
    st = lab.state
    if all(g in st.groups for g in DEMO_GROUPS):
        return st.groups
    any_vm = next(v for v in st.vms.values() if not v.security_group)
    with lab.client() as c:
        port = c.get_port(any_vm.port_id)
        project, default = port["project_id"], port["security_groups"][0]
        for name, (desc, rules) in DEMO_GROUPS.items():
            if name in st.groups:
                continue
            body = {"name": name, "description": f"netplex lab demo: {desc}", "project_id": project}
            gid = str(c.request("POST", "/security-groups", json={"security_group": body})
                      ["security_group"]["id"])
            for r in rules:
                attrs: dict[str, Any] = {k: v for k, v in r.items() if k != "remote_group"}
                attrs.update(security_group_id=gid, remote_group_id=default)
                c.request("POST", "/security-group-rules", json={"security_group_rule": attrs})
            st.groups[name] = gid
            lab.save()
    return st.groups


def build(lab: Lab, say: Callable[[str], None]) -> None:
    """Groups, the demo VMs (plugged in parallel) and their listeners."""
    st = lab.state
    plan = demo_plan({h: rec.kind for h, rec in st.hosts.items()})
    if not plan:
        say("no Linux bridge or routed host: nothing enforces groups (OVS hosts do not yet)")
        return
    groups = create_groups(lab)

    def one(args: tuple[str, str, str, str, str]) -> None:
        vm, host, net, ip, group = args
        lab.add_vm(vm, host, net, ip, ip6=lab.routed_ip6(vm, net, ip), security_groups=[groups[group]],
                   demo_group=group, progress=lambda m: say(f"{vm}: {m}"))
        say(f"{vm}: ACTIVE on {host}, group {group}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, plan))
    ensure_listeners(lab)
    say(f"{', '.join(p[0] for p in plan)}; TCP listeners on 22 and 23")


def _listener_argv(lab: Lab, ns: str) -> list[str]:
    return netns.exec_in(ns, [sys.executable, "-c", LISTENER, str(lab.dir), *map(str, LISTEN_PORTS)])


def ensure_listeners(lab: Lab, timeout: float = 10.0) -> None:
    """A listener in each demo VM (started again if it is gone), each ready before returning."""
    st = lab.state
    started: list[tuple[str, Path]] = []
    for vm in [v for v in st.vms.values() if v.security_group]:
        rec = st.listeners.get(vm.name)
        if rec and procs.is_ours(procs.Proc.from_json(rec)):
            continue
        log = lab.dir / "logs" / f"listener-{vm.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        proc = procs.spawn(_listener_argv(lab, vm.ns), log, marker=str(lab.dir))
        st.listeners[vm.name] = proc.to_json()
        lab.save()
        started.append((vm.name, log))
    deadline = time.monotonic() + timeout
    for name, log in started:
        while "ready" not in log.read_text():
            if not procs.is_ours(procs.Proc.from_json(st.listeners[name])) or time.monotonic() > deadline:
                raise LabError(f"the TCP listener of {name} did not start", f"see {log}")
            time.sleep(0.05)


class _WithState(Protocol):
    @property
    def state(self) -> LabState: ...


def stop_listeners(lab: _WithState) -> list[str]:
    """Stop the demo's listeners (by recorded pid + start time); what was stopped."""
    done = []
    for name, rec in lab.state.listeners.items():
        if procs.stop(procs.Proc.from_json(rec), timeout=5):
            done.append(f"TCP listener of {name} (pid {rec['pid']})")
    return done


def check(lab: Lab) -> tuple[list[Probe], dict[str, int | None]]:
    """Probe every demo VM from the default-group VMs of its network; and the drops its chain counted."""
    st = lab.state
    demo = sorted((v for v in st.vms.values() if v.security_group),
                  key=lambda v: (v.network, v.security_group != "web", v.name))
    if not demo:
        return [], {}
    ensure_listeners(lab)
    infos = {v.name: v for v in lab.vm_infos(demo=True)}
    targets = [(infos[v.name], v.security_group) for v in demo]
    sources = lab.vm_infos()

    def count(name: str) -> int | None:
        v = st.vms[name]
        return drop_count(st.hosts[v.host].ns, tap_name(v.port_id))

    before = {v.name: count(v.name) for v in demo}
    probes = run_probes(targets, sources)
    drops: dict[str, int | None] = {}
    for v in demo:
        after, was = count(v.name), before[v.name]
        drops[v.name] = None if after is None else after - (was or 0)
    return probes, drops
