"""``netplex lab up --fabric bgp``: routed hosts in two underlay subnets behind a BGP "top-of-rack".

::

      br-u  10.99.0.0/24, fd99::/64  ── L2 hosts, odd routed hosts ──┐
                                                                    tor (<prefix>-tor): .254 / ::fe on both,
      br-r2 10.98.0.0/24, fd98::/64  ── even routed hosts ──────────┘  forwarding, BIRD route reflector

Each routed host's agent runs its own BIRD with the router as its only BGP
peer (``[routed] route_distribution = bgp``, ``bgp_peers`` = the router's
address in the host's subnet); the router reflects every host's endpoint
routes to the others with itself as next hop. Hosts in different subnets
have no route to each other but their default route to the router, so their
VMs reach each other only because the routes were learned over BGP.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from netplex.linux import bird, netns

__all__ = ["FABRICS", "SECOND_BRIDGE", "SECOND_NET", "SECOND_NET6", "TOR", "render_tor_config",
           "router_address", "start_tor", "stop_tor"]

FABRICS = ("flat", "bgp")
TOR = "tor"
SECOND_BRIDGE = "br-r2"
SECOND_NET, SECOND_NET6 = "10.98.0", "fd98::"
AS_NUMBER = 64512


def router_address(subnet: str) -> tuple[str, str]:
    """The router's (IPv4, IPv6) address on the underlay subnet ``10.99.0`` or ``10.98.0``."""
    third = subnet.split(".")[1]
    return f"{subnet}.254", f"fd{third}::fe"


def render_tor_config(router_id: str, clients: Iterable[str], log_file: str) -> str:
    """BIRD config of the router: route reflector for every routed host (IPv4 and IPv6 sessions)."""
    lines = [f"router id {router_id};", f'log "{log_file}" all;', "protocol device { scan time 10; }",
             "protocol kernel { ipv4 { import none; export all; }; }",
             "protocol kernel { ipv6 { import none; export all; }; }"]
    for i, ip in enumerate(clients):
        family = "ipv6" if ":" in ip else "ipv4"
        lines += [f"protocol bgp host{i} {{", f"  local as {AS_NUMBER};", f"  neighbor {ip} as {AS_NUMBER};",
                  "  rr client;", "  direct;", "  hold time 9;", "  connect retry time 2;",
                  f"  {family} {{ import all; export all; next hop self; }};", "}"]
    return "\n".join(lines) + "\n"


def start_tor(ns: str, underlay: str, workdir: Path, clients: Iterable[str]) -> None:
    """Wire the router namespace ``ns`` into both underlay bridges and start its BIRD."""
    for br, subnet in (("br-u", "10.99.0"), (SECOND_BRIDGE, SECOND_NET)):
        dev, outer = f"eth-{subnet.split('.')[1]}", f"{br[-2:]}-{TOR}"
        if netns.run(ns, ["ip", "link", "show", dev], check=False).returncode != 0:
            netns.run(None, ["ip", "link", "add", "name", outer, "netns", underlay, "type", "veth",
                             "peer", "name", dev, "netns", ns])
        netns.run(underlay, ["ip", "link", "set", outer, "master", br, "up"])
        ip4, ip6 = router_address(subnet)
        netns.run(ns, ["ip", "addr", "replace", f"{ip4}/24", "dev", dev])
        netns.run(ns, ["ip", "addr", "replace", f"{ip6}/64", "dev", dev, "nodad"])
        netns.run(ns, ["ip", "link", "set", dev, "up"])
    netns.run(ns, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"])
    files = bird.BirdFiles(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    files.conf.write_text(render_tor_config(router_address("10.99.0")[0], clients, str(files.log)))
    if bird.running_pid(files) is None:
        bird.start(files, ns)
    else:
        bird.configure(files)


def stop_tor(workdir: Path) -> bool:
    return bird.stop(bird.BirdFiles(workdir))
