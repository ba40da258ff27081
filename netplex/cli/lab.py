"""``netplex lab up|status|ping|down``: a multi-host Netplex lab in network namespaces.

See :mod:`netplex.lab.lab` for what it builds and where each part runs.
Needs root, ``ip`` and Open vSwitch (``ovsdb-server``, ``ovs-vswitchd``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from netplex.client import ClientError
from netplex.lab import procs, secdemo
from netplex.lab.lab import DEFAULT_DIR, DEFAULT_HOSTS, Lab, LabError, Progress, parse_hosts
from netplex.lab.matrix import network_colours, render_matrix, render_summary
from netplex.linux import netns

lab_app = typer.Typer(help="A multi-host lab: server, Linux bridge, OVS and routed hosts, VMs, "
                      "ping matrix, security groups proven by traffic.",
                      no_args_is_help=True)
out = Console()
err = Console(stderr=True)

DirOpt = Annotated[Path, typer.Option("--dir", help="State directory (keep it short: Unix socket paths).")]


def _fail(exc: LabError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(str(exc))}")
    if exc.hint:
        err.print(f"[yellow]next:[/] {escape(exc.hint)}")
    return typer.Exit(1)


def _preflight() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, Open vSwitch)", "run it with sudo")
    missing = [t for t in ("ip", "ping", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl")
               if shutil.which(t) is None]
    if missing:
        raise LabError(f"missing tools: {', '.join(missing)}",
                       "install iproute2, iputils-ping and openvswitch-switch")


@contextlib.contextmanager
def _step(title: str) -> Iterator[Progress]:
    """A spinner with the step's latest message; a ✓ line with its duration when done."""
    start = time.monotonic()
    last = [""]
    with out.status(f"[bold]{escape(title)}[/]") as status:
        def say(message: str) -> None:
            last[0] = message
            status.update(f"[bold]{escape(title)}[/]: {escape(message)}")

        try:
            yield say
        except BaseException:
            out.print(f"[red]✗[/] {escape(title)} [dim]({time.monotonic() - start:.1f}s)[/]")
            raise
    detail = f" [dim]— {escape(last[0])}[/]" if last[0] else ""
    out.print(f"[green]✓[/] {escape(title)} [dim]({time.monotonic() - start:.1f}s)[/]{detail}")


@lab_app.command("up")
def up(
    dir: DirOpt = DEFAULT_DIR,
    hosts: Annotated[str, typer.Option(
        help="Host kinds in order (lb, ovs, routed), e.g. lb,ovs,ovs or lb,ovs,routed,routed.",
    )] = ",".join(DEFAULT_HOSTS),
    flat: Annotated[bool, typer.Option(help="Also a flat provider network (physnet1) with a VM per host.")] = False,
    fabric: Annotated[str, typer.Option(
        help="flat: one underlay subnet, routed hosts install each other's routes from the feed; "
             "bgp: routed hosts in two subnets behind a BIRD router, routes learned over BGP.",
    )] = "flat",
    keep_on_failure: Annotated[bool, typer.Option(help="Leave everything in place if a step fails.")] = False,
    prefix: Annotated[str, typer.Option(help="Namespace name prefix.", hidden=True)] = "npl",
) -> None:
    """Start a server, hosts (namespaces) with their agents, two overlapping VXLAN networks, a routed
    network on the routed hosts, and VMs."""
    try:
        lab = Lab(dir, prefix=prefix, fabric=fabric)
    except LabError as exc:
        raise _fail(exc) from None
    try:
        _preflight()
        kinds = parse_hosts(hosts)
        lab.check_dir()
        with lab.locked():
            if lab.exists:
                raise LabError(f"a lab already exists in {lab.dir}",
                               "see it with 'netplex lab status', remove it with 'netplex lab down'")
            try:
                lab.up(kinds, flat=flat, step=_step)
            except BaseException as exc:
                if not lab.exists:
                    lab.remove_files()  # nothing was made yet
                elif keep_on_failure:
                    err.print(f"[yellow]left in place for debugging; remove with:[/] netplex lab down --dir {dir}")
                else:
                    with _step("cleaning up after the failure") as say:
                        lab.down(keep_logs=True, say=say)
                    err.print(f"[yellow]logs kept in[/] {lab.dir / 'logs'}")
                if isinstance(exc, LabError | ClientError):
                    hint = getattr(exc, "hint", "") or f"see the logs in {lab.dir / 'logs'}"
                    raise LabError(str(exc), hint) from exc
                raise
    except LabError as exc:
        raise _fail(exc) from None
    out.print(f"[bold green]lab up[/] in {lab.state.up_seconds:.1f}s "
              f"([dim]{escape(str(lab.dir))}[/])")
    _print_topology(lab)
    ok = _print_matrix(lab)
    ok = _print_secgroups(lab) and ok
    out.print("next: [bold]netplex lab ping[/] (again), [bold]netplex lab status[/], "
              "[bold]netplex lab down[/]")
    if not ok:
        raise typer.Exit(1)


@lab_app.command("status")
def status(
    dir: DirOpt = DEFAULT_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print the lab as one JSON object.")] = False,
) -> None:
    """Show the lab's processes, hosts, networks and VMs, live from the server."""
    lab = Lab(dir)
    if not lab.exists:
        if as_json:
            raise _fail(LabError(f"no lab in {lab.dir}", "start one with: netplex lab up"))
        _no_lab(lab)
        return
    if as_json:
        print(json.dumps(lab.describe(), indent=1))
        return
    try:
        _print_topology(lab)
    except LabError as exc:
        raise _fail(exc) from None
    gone = [x for x in lab.leftovers() if not x.startswith("process")]
    missing = [ns for ns in lab.state.namespaces if ns not in gone]
    if missing:
        err.print(f"[yellow]warning:[/] namespaces missing: {', '.join(missing)}")


@lab_app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def exec_(
    name: Annotated[str, typer.Argument(help="A VM (vm-a1) or host (host-lb1) of the lab.")],
    command: Annotated[list[str], typer.Argument(help="The command, after --.")],
    dir: DirOpt = DEFAULT_DIR,
) -> None:
    """Run a command inside a VM's or host's namespace: netplex lab exec vm-r1 -- ping 10.50.0.12."""
    lab = Lab(dir)
    try:
        ns = lab.namespace_of(name)
    except LabError as exc:
        raise _fail(exc) from None
    proc = netns.run(ns, command, check=False, timeout=3600)
    out.file.write(proc.stdout)
    err.file.write(proc.stderr)
    raise typer.Exit(proc.returncode)


@lab_app.command("ping")
def ping(dir: DirOpt = DEFAULT_DIR) -> None:
    """Run the ping matrix again (every VM to every VM), and the security-group checks."""
    lab = Lab(dir)
    if not lab.exists:
        _no_lab(lab)
        raise typer.Exit(1)
    try:
        ok = _print_matrix(lab)
        ok = _print_secgroups(lab) and ok
    except LabError as exc:
        raise _fail(exc) from None
    if not ok:
        raise typer.Exit(1)


@lab_app.command("down")
def down(
    dir: DirOpt = DEFAULT_DIR,
    keep_logs: Annotated[bool, typer.Option(help="Keep <dir>/logs.")] = False,
) -> None:
    """Remove every process, OVS instance, namespace and file of the lab (also after a crash)."""
    lab = Lab(dir)
    try:
        with lab.locked():
            if not lab.exists:
                _no_lab(lab)
                if not keep_logs:
                    lab.remove_files()  # logs of a failed 'up', the lock file
                return
            with _step("removing the lab") as say:
                done = lab.down(keep_logs=keep_logs, say=say)
                say(f"{len(done)} item(s)")
    except LabError as exc:
        raise _fail(exc) from None
    for item in done:
        out.print(f"  removed {escape(item)}")
    out.print("[green]lab down[/]" + (f" (logs in {lab.dir / 'logs'})" if keep_logs else ""))


def _no_lab(lab: Lab) -> None:
    out.print(f"no lab in {lab.dir}")
    strays = [n for n in netns.list_names() if n.startswith(f"{lab.prefix}-")]
    if strays:
        err.print(f"[yellow]warning:[/] namespaces {', '.join(strays)} exist but no lab state "
                  f"is in {lab.dir}; if they are leftovers remove them with 'ip netns del NAME'")


def _alive(rec: dict[str, Any] | None) -> str:
    if not rec:
        return "[dim]-[/]"
    running = procs.is_ours(procs.Proc.from_json(rec))
    return f"{rec['pid']} " + ("[green]✓[/]" if running else "[red]stopped[/]")


def _print_topology(lab: Lab) -> None:
    st = lab.state
    agents: dict[str, dict[str, Any]] = {}
    ports: dict[str, dict[str, Any]] = {}
    try:
        with lab.client(timeout=5) as c:
            agents = {str(a.get("host")): a for a in c.list_resources("agent")}
            ports = {p["id"]: p for p in c.list_ports()}
    except ClientError as exc:
        err.print(f"[yellow]warning:[/] server not reachable ({escape(str(exc))}); showing recorded state")
    out.print(f"server {lab.url}  pid {_alive(st.server)}  logs {lab.dir / 'logs'}")
    if st.up_seconds:
        out.print(f"hosts are namespaces {lab.prefix}-host-*, VMs {lab.prefix}-vm-*; underlay in "
                  f"{lab.prefix}-underlay (10.99.0.0/24); try: ip netns exec {lab.prefix}-vm-a1 ping 10.0.0.12")
    hosts = Table(title="hosts", title_justify="left")
    for col in ("host", "mechanism", "namespace", "underlay", "agent pid", "alive"):
        hosts.add_column(col)
    for h in st.hosts.values():
        a = agents.get(h.name)
        alive = "[dim]?[/]" if a is None else ("[green]yes[/]" if a.get("alive") else "[red]no[/]")
        hosts.add_row(h.name, h.mechanism, h.ns, h.ip, _alive(st.agents.get(h.name)), alive)
    out.print(hosts)
    nets = Table(title="networks", title_justify="left")
    for col in ("network", "id", "type", "segment", "subnet"):
        nets.add_column(col)
    for n in st.networks.values():
        nets.add_row(n.name, n.id[:8], n.network_type, str(n.segmentation_id or "-"), n.cidr)
    out.print(nets)
    vms = Table(title="VMs (namespaces plugged by netplex.vif)", title_justify="left")
    for col in ("vm", "host", "network", "IP", "MAC", "vif_type", "status", "security group"):
        vms.add_column(col)
    colours = network_colours([*lab.vm_infos(), *lab.vm_infos(demo=True)])
    for v in sorted(st.vms.values(), key=lambda v: (v.network, v.name)):
        p = ports.get(v.port_id, {})
        status = str(p.get("status", "?"))
        colour = "green" if status == "ACTIVE" else "red"
        net = f"[{colours.get(v.network, 'white')}]{v.network}[/]"
        vms.add_row(v.name, v.host, net, v.ip, v.mac, str(p.get("binding:vif_type", "?")),
                    f"[{colour}]{status}[/]", v.security_group or "default")
    out.print(vms)


def _print_matrix(lab: Lab) -> bool:
    vms = lab.vm_infos()
    with _step(f"ping matrix ({len(vms)} VMs, {len(vms) * (len(vms) - 1)} pairs)") as say:
        cells = lab.matrix()
        say("done")
    out.print(render_matrix(vms, cells))
    table, ok = render_summary(cells)
    out.print(table)
    if ok:
        out.print("[bold green]PASS[/]: every VM reaches every VM of its network across hosts and "
                  "mechanisms; no VM reaches one of the other network, overlapping addresses included")
    else:
        bad = [c for c in cells if not c.good]
        out.print(f"[bold red]FAIL[/]: {len(bad)} unexpected result(s), e.g. "
                  f"{bad[0].src.name} → {bad[0].dst.name}: {bad[0].result}")
    return ok


def _print_secgroups(lab: Lab) -> bool:
    """The security-group demo's checks (true if there is none: nothing to prove)."""
    demo = lab.vm_infos(demo=True)
    if not demo:
        out.print("[dim]security groups: no demo (it needs a Linux bridge or routed host; Open vSwitch "
                  "hosts do not enforce groups yet)[/]")
        return True
    with _step(f"security groups ({len(demo)} demo VMs probed from the default group)") as say:
        probes, drops = secdemo.check(lab)
        say("done")
    hosts = {h.name: h.mechanism for h in lab.state.hosts.values()}
    table, ok = secdemo.render_probes(probes, drops, hosts)
    out.print(table)
    if ok:
        out.print("[bold green]PASS[/]: group web admits ICMP and TCP 22 from the default group and "
                  "drops TCP 23; group isolated drops everything; the drops are counted by the hosts' "
                  "nftables (Open vSwitch hosts do not enforce groups yet: no demo VM there)")
    else:
        bad = [p for p in probes if not p.good]
        out.print(f"[bold red]FAIL[/]: {len(bad)} unexpected security-group result(s), e.g. "
                  f"{bad[0].src.name} → {bad[0].dst.name} {bad[0].check}: {bad[0].observed} "
                  f"(expected {bad[0].expected})" if bad else "[bold red]FAIL[/]: no probe ran")
    return ok
