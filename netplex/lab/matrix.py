"""The ping matrix: every VM pings every other VM's address; same network must answer.

With overlapping subnets a reply alone proves nothing: vm-a1 pinging
10.0.0.12 may be answered by a VM of *its own* network that happens to have
that address. So each cell also reads the neighbour entry the ping created
and names who answered, by MAC:

======  ==========================================================
ok      the target itself answered
other   someone else answered (same IP on the source's network)
none    no answer at all
self    the target has the source's own address (not tested)
======  ==========================================================

Expected: ``ok`` within a network, anything but ``ok`` across networks.

A routed VM (kind ``routed``) has no L2 neighbour but its host: every
address it reaches is answered, at the MAC level, by its host's tap (proxy
ARP). Its pings are therefore judged by address: a reply to an address that
exactly one VM of the lab holds came from that VM (the routed network's
addresses overlap nobody's); a reply to an address several VMs hold is
``other``. Routed VMs and L2 VMs are on different networks with no router
between them, so they are expected to be isolated - and are (the routed
host has no route to the L2 networks' subnets, the L2 VMs none to the
routed one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from rich.table import Table

from netplex.linux import netns

__all__ = ["Cell", "VmInfo", "network_colours", "ping_from", "render_matrix", "render_summary", "run_matrix"]


@dataclass(frozen=True)
class VmInfo:
    name: str
    ns: str
    host: str
    kind: str  # "lb" | "ovs" | "routed"
    network: str
    ip: str
    mac: str


@dataclass(frozen=True)
class Cell:
    src: VmInfo
    dst: VmInfo
    result: str  # ok | other | none | self
    answered_by: str | None = None

    @property
    def expected(self) -> bool:
        """Should ``src`` reach ``dst``?"""
        return self.src.network == self.dst.network

    @property
    def good(self) -> bool:
        if self.result == "self":
            return not self.expected
        return (self.result == "ok") == self.expected

    @property
    def category(self) -> str:
        if self.src.host == self.dst.host:
            return "same host"
        names = {"lb": "LB", "ovs": "OVS", "routed": "routed"}
        return "-".join(sorted(names.get(k, k) for k in (self.src.kind, self.dst.kind)))


#: (replied, MAC of whoever answered) for ``ping`` from one VM to an address.
PingFn = Callable[[VmInfo, str], tuple[bool, str | None]]


def ping_from(vm: VmInfo, ip: str, count: int = 3) -> tuple[bool, str | None]:
    """Ping ``ip`` from ``vm``'s namespace; then read who answered from its neighbour table."""
    proc = netns.run(vm.ns, ["ping", "-c", str(count), "-i", "0.2", "-W", "1", "-q", ip],
                     check=False, timeout=15)
    replied = proc.returncode == 0
    neigh = netns.run(vm.ns, ["ip", "neigh", "show", ip], check=False).stdout
    m = re.search(r"lladdr ([0-9a-f:]{17})", neigh)
    return replied, (m.group(1) if m else None)


def run_matrix(vms: Sequence[VmInfo], ping: PingFn = ping_from, workers: int = 16) -> list[Cell]:
    """Every ordered pair of distinct VMs, pinged in parallel."""
    by_mac = {vm.mac.lower(): vm for vm in vms}
    holders: dict[str, list[VmInfo]] = {}
    for vm in vms:
        holders.setdefault(vm.ip, []).append(vm)

    def one(pair: tuple[VmInfo, VmInfo]) -> Cell:
        src, dst = pair
        if src.ip == dst.ip:
            return Cell(src, dst, "self")
        replied, mac = ping(src, dst.ip)
        who = by_mac.get((mac or "").lower())
        if src.kind == "routed" and who is None:
            # The MAC is the host's (L3 hop): who answered is known by address only.
            only = holders[dst.ip]
            if replied and len(only) == 1:
                return Cell(src, dst, "ok", dst.name)
            return Cell(src, dst, "other", "?") if replied else Cell(src, dst, "none")
        if replied and who is not None and who.name == dst.name:
            return Cell(src, dst, "ok", dst.name)
        if replied or (mac and who is not None and who.name != dst.name):
            return Cell(src, dst, "other", who.name if who else mac)
        return Cell(src, dst, "none")

    pairs = [(s, d) for s in vms for d in vms if s.name != d.name]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, pairs))


def _mark(cell: Cell) -> str:
    colour = "green" if cell.good else "bold red"
    text = {"ok": "✓", "none": "✗", "self": "[dim]own IP[/]",
            "other": f"→{cell.answered_by}"}[cell.result]
    return f"[{colour}]{text}[/]"


_COLOURS = ("cyan", "magenta", "yellow", "blue", "green")


def network_colours(vms: Sequence[VmInfo]) -> dict[str, str]:
    nets = sorted({vm.network for vm in vms})
    return {n: _COLOURS[i % len(_COLOURS)] for i, n in enumerate(nets)}


def render_matrix(vms: Sequence[VmInfo], cells: Sequence[Cell]) -> Table:
    """Rows: source VM; columns: target VM (coloured by network). Green: as expected."""
    colour = network_colours(vms)
    legend = ", ".join(f"[{c}]{n}[/]" for n, c in colour.items())
    table = Table(title=f"ping matrix: row pings column ({legend}); ✓ reached, ✗ no answer, "
                  "→x answered by x", title_justify="left")
    table.add_column("from", style="bold")
    for vm in vms:
        table.add_column(f"[{colour[vm.network]}]{vm.name}[/]\n{vm.ip}", justify="center")
    index = {(c.src.name, c.dst.name): c for c in cells}
    for src in vms:
        row = [f"[{colour[src.network]}]{src.name}[/]"]
        for dst in vms:
            row.append("[dim]·[/]" if src.name == dst.name else _mark(index[(src.name, dst.name)]))
        table.add_row(*row)
    return table


def render_summary(cells: Sequence[Cell]) -> tuple[Table, bool]:
    """Per pair category: same-network pairs reached, cross-network pairs isolated."""
    cats: dict[str, list[int]] = {}
    for c in cells:
        if c.result == "self":
            continue  # the target has the source's own address: nothing to test
        counts = cats.setdefault(c.category, [0, 0, 0, 0])
        if c.expected:
            counts[0] += 1
            counts[1] += c.good
        else:
            counts[2] += 1
            counts[3] += c.good
    table = Table(title="connectivity by host pair", title_justify="left")
    for col in ("hosts", "same network: reached", "different networks: isolated"):
        table.add_column(col)
    order = ["LB-LB", "OVS-OVS", "LB-OVS", "routed-routed", "LB-routed", "OVS-routed", "same host"]
    for cat in sorted(cats, key=lambda k: order.index(k) if k in order else 99):
        same, same_ok, cross, cross_ok = cats[cat]
        table.add_row(cat, _ratio(same_ok, same), _ratio(cross_ok, cross))
    return table, all(c.good for c in cells)


def _ratio(good: int, total: int) -> str:
    if total == 0:
        return "[dim]-[/]"
    colour = "green" if good == total else "bold red"
    return f"[{colour}]{good}/{total}[/]"
