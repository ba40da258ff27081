"""Routed (L3, calico-style) host backend: ``netplex agent --mechanism routed``.

The pure part - what a routed host must contain and the operations that get
it there - is :mod:`netplex.agent.routed_plan`; this module is the I/O shell
(observe through iproute2 and sysctl, apply in one ``ip -batch`` plus one
``sysctl`` process per pass) and the :class:`RoutedKind` the agent and the
server see (``agent_type`` "Routed L3 agent", the one
:class:`netplex.drivers.mechanisms.routed.RoutedMechanismDriver` binds against).

Options are the ``[routed]`` section, declared in
:mod:`netplex.drivers.mechanisms.routed_options` (the agent may not import
the configuration module) and read here by name from ``settings.backend_options``.
Route distribution ``feed`` (the default) installs the other routed hosts'
endpoints from the change feed; ``bgp`` leaves that to a BIRD 2 daemon the
agent starts in the host's namespace (:mod:`netplex.agent.routed_bird`):
the agent writes its config, reloads it with ``birdc configure`` when it
changed, and starts it when it is not running; it never stops it (a
restarting agent keeps the host's routes), ``netplex lab down`` or the
operator does, by the PID in its work directory.

Two facts a routed host needs are not in the agents' change feed: the
gateway IPs of its networks' subnets and the other hosts' IPv6 underlay
addresses. :class:`HttpServerFacts` reads them from the API at each observe
(``GET /v2.0/subnets``, ``GET /v2.0/agents``, the agent's token); when the
server cannot be asked, the last answer is kept.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from netplex.agent.backend_api import ApplyResult, Backend, BackendKind, Baseline, PortStatus, SettingsError
from netplex.agent.model import HostDesired
from netplex.agent.monitor import DeviceMonitor, DeviceNews, LinkMonitor
from netplex.agent.ops import Op, Plan, SetLinkDown, SetLinkUp
from netplex.agent.routed_bird import BgpSettings, render_bird_config
from netplex.agent.routed_plan import (
    GLOBAL_SYSCTLS,
    ROUTE_PROTO,
    RULE_LOOKUP,
    RULE_PROHIBIT,
    TAP_ALIAS,
    TAP_PREFIX,
    AddAddress,
    AddNeighbour,
    AddProxy,
    AddRoute,
    AddRule,
    CreateTap,
    DelAddress,
    DeleteTap,
    DelNeighbour,
    DelProxy,
    DelRoute,
    DelRule,
    RoutedObserved,
    RoutedPlanConfig,
    RunBird,
    SetSysctl,
    advance,
    plan_routed,
    port_status_routed,
    tap_sysctls,
    with_taps,
)
from netplex.agent.secgroups_backend import FilteredBackend, with_filter
from netplex.agent.settings import AgentSettings
from netplex.client import ClientError, NeutronClient
from netplex.linux import bird as birdd
from netplex.linux.neigh import neigh_line, proxy_line, read_neighbours, read_proxies
from netplex.linux.routing import (
    address_line,
    read_devices,
    read_routes,
    read_rules,
    route_line,
    rule_line,
    run_ip_batch,
    tuntap_line,
)
from netplex.linux.sysctl import read_sysctls, write_sysctls

__all__ = ["AGENT_TYPE", "SECTION", "HttpServerFacts", "RoutedBackend", "RoutedKind",
           "ServerFacts", "apply_routed", "op_lines"]

LOG = logging.getLogger(__name__)

#: Must equal netplex.drivers.mechanisms.routed.AGENT_TYPE_ROUTED (a test checks;
#: agent/ may not import drivers/).
AGENT_TYPE = "Routed L3 agent"
#: The options section (declared in netplex.drivers.mechanisms.routed_options).
SECTION = "routed"


class ServerFacts(Protocol):
    """What a routed host reads from the server besides its host state."""

    def gateways(self) -> Mapping[str, tuple[str, ...]]:
        """network id -> gateway IPs of its subnets."""

    def next_hops6(self) -> Mapping[str, str]:
        """host -> IPv6 underlay address of its routed agent."""


class HttpServerFacts:
    """:class:`ServerFacts` over the v2.0 API; the last good answer when the server fails."""

    def __init__(self, client: NeutronClient) -> None:
        self._client = client
        self._gateways: dict[str, tuple[str, ...]] = {}
        self._hops6: dict[str, str] = {}

    def gateways(self) -> Mapping[str, tuple[str, ...]]:
        try:
            out: dict[str, list[str]] = {}
            for s in self._client.iter_resources("subnet", fields=["network_id", "gateway_ip"]):
                if s.get("network_id"):  # a network without gateways is known too: ()
                    gws = out.setdefault(str(s["network_id"]), [])
                    if s.get("gateway_ip"):
                        gws.append(str(s["gateway_ip"]))
            self._gateways = {k: tuple(sorted(v)) for k, v in out.items()}
        except ClientError as exc:
            LOG.warning("cannot read subnet gateways (keeping the last ones): %s", exc)
        return self._gateways

    def next_hops6(self) -> Mapping[str, str]:
        try:
            hops: dict[str, str] = {}
            for a in self._client.iter_resources("agent", agent_type=AGENT_TYPE,
                                                 fields=["host", "configurations"]):
                ip6 = (a.get("configurations") or {}).get("tunneling_ip6")
                if ip6 and a.get("host"):
                    hops[str(a["host"])] = str(ip6)
            self._hops6 = hops
        except ClientError as exc:
            LOG.warning("cannot read the routed agents' IPv6 addresses (keeping the last ones): %s", exc)
        return self._hops6

    def close(self) -> None:
        self._client.close()


# --- apply --------------------------------------------------------------------------------


def op_lines(op: Op) -> list[str]:
    """The ``ip -batch`` lines of one operation (ValueError on data that cannot be a line)."""
    match op:
        case CreateTap(name):
            return tuntap_line(name, TAP_ALIAS)
        case DeleteTap(name):
            return [f"link del dev {name}"]
        case SetLinkUp(name):
            return [f"link set dev {name} up"]
        case SetLinkDown(name):
            return [f"link set dev {name} down"]
        case AddRoute(route):
            return [route_line("replace", route, ROUTE_PROTO)]
        case DelRoute(route):
            return [route_line("del", route, ROUTE_PROTO)]
        case AddNeighbour(entry):
            return [neigh_line("replace", entry)]
        case DelNeighbour(entry):
            return [neigh_line("del", entry)]
        case AddProxy(entry):
            return [proxy_line("add", entry)]
        case DelProxy(entry):
            return [proxy_line("del", entry)]
        case AddAddress(dev, ip):
            return [address_line("replace", dev, ip)]
        case DelAddress(dev, ip):
            return [address_line("del", dev, ip)]
        case AddRule(rule):
            return [rule_line("add", rule)]
        case DelRule(rule):
            return [rule_line("del", rule)]
    raise TypeError(f"not a routed-host operation: {op}")


_LINK_OPS = (CreateTap, DeleteTap, SetLinkUp, SetLinkDown)


def apply_routed(netns: str | None, ops: Sequence[Op]) -> ApplyResult:
    """Links first (one ``ip -batch``), then kernel parameters (one ``sysctl``), then
    addresses, neighbours and routes (one ``ip -batch``); failures per operation."""
    failed: dict[int, str] = {}
    sysctls = {i: op for i, op in enumerate(ops) if isinstance(op, SetSysctl)}
    first = [i for i, op in enumerate(ops) if isinstance(op, _LINK_OPS)]
    # Rules go last (after the routes of their tables) and per family (ip -6 for IPv6 rules).
    rules = {i: op.rule.family for i, op in enumerate(ops) if isinstance(op, AddRule | DelRule)}
    rest = [i for i in range(len(ops)) if i not in sysctls and i not in set(first) and i not in rules]

    def batch(indices: list[int], family: int | None = None) -> None:
        lines: list[str] = []
        owner: list[int] = []
        for i in indices:
            try:
                got = op_lines(ops[i])
            except (TypeError, ValueError) as exc:
                failed[i] = f"{type(exc).__name__}: {exc}"
                continue
            lines += got
            owner += [i] * len(got)
        for i, err in zip(owner, run_ip_batch(netns, lines, family=family), strict=True):
            if err is not None and i not in failed:
                failed[i] = err

    batch(first)
    if sysctls:
        values = {op.key: op.value for op in sysctls.values()}
        try:
            errors = write_sysctls(netns, values)
        except ValueError as exc:
            errors = {k: str(exc) for k in values}
        for i, op in sysctls.items():
            if op.key in errors:
                failed[i] = errors[op.key]
    batch(rest)
    batch([i for i, f in rules.items() if f == 4], family=4)
    batch([i for i, f in rules.items() if f == 6], family=6)
    return ApplyResult(applied=len(ops) - len(failed),
                       errors=tuple((ops[i], failed[i]) for i in sorted(failed)))


# --- the backend --------------------------------------------------------------------------


class BirdDaemon:
    """The host's own BIRD (BGP mode): its files, and how to run it."""

    def __init__(self, files: birdd.BirdFiles, netns: str | None, bird: str = "bird",
                 birdc: str = "birdc") -> None:
        self.files = files
        self.netns = netns
        self.bird = bird
        self.birdc = birdc

    def running_config(self) -> str | None:
        if birdd.running_pid(self.files) is None:
            return None
        try:
            return self.files.conf.read_text()
        except OSError:
            return ""

    def run(self, config: str) -> None:
        """Write ``config``; reload the running daemon, or start one (BirdError on failure)."""
        self.files.workdir.mkdir(parents=True, exist_ok=True)
        tmp = self.files.conf.with_suffix(".tmp")
        tmp.write_text(config)
        os.replace(tmp, self.files.conf)
        if birdd.running_pid(self.files) is not None:
            birdd.configure(self.files, birdc_path=self.birdc)
        else:
            birdd.start(self.files, self.netns, bird=self.bird)


class RoutedBackend(Backend[RoutedObserved]):
    """The routed data plane of one host (network namespace ``netns``; None = current)."""

    name = "routed"

    def __init__(self, config: RoutedPlanConfig, facts: ServerFacts, netns: str | None = None,
                 bird: BirdDaemon | None = None) -> None:
        self.config = config
        self.facts = facts
        self.netns = netns
        self.bird = bird

    def observe(self) -> RoutedObserved:
        taps = read_devices(self.netns, TAP_PREFIX)
        keys = set(GLOBAL_SYSCTLS)
        for name in taps:
            keys |= set(tap_sysctls(name))
        return RoutedObserved(
            taps=taps,
            routes=read_routes(self.netns, ROUTE_PROTO),
            neighbours=read_neighbours(self.netns, TAP_PREFIX),
            proxies=read_proxies(self.netns, TAP_PREFIX),
            sysctls=read_sysctls(self.netns, keys),
            gateways=dict(self.facts.gateways()),
            next_hops6=dict(self.facts.next_hops6()),
            bird_config=self.bird.running_config() if self.bird is not None else None,
            rules=read_rules(self.netns, TAP_PREFIX, (RULE_LOOKUP, RULE_PROHIBIT)),
        )

    def observe_since(self, baseline: Baseline[RoutedObserved], desired: HostDesired,
                      devices: Collection[str]) -> RoutedObserved:
        """The last snapshot plus the agent's own operations; only the taps (which the compute
        side plugs and unplugs) are read again, and the server facts when a network or remote
        host is new to them. Everything else here is only ever changed by this agent."""
        now = advance(baseline.observed, baseline.applied)
        taps = read_devices(self.netns, TAP_PREFIX)
        keys: set[str] = set()
        for name in taps.keys() - now.taps.keys():
            keys |= set(tap_sysctls(name))
        now = with_taps(now, taps, read_sysctls(self.netns, keys) if keys else {})
        nets = {p.network_id for p in desired.ports}
        hosts6 = {r.host for r in desired.routed_remotes if any(":" in ip for ip in r.ips)}
        if not nets <= now.gateways.keys() or not hosts6 <= now.next_hops6.keys():
            now = dataclasses.replace(now, gateways=dict(self.facts.gateways()),
                                      next_hops6=dict(self.facts.next_hops6()))
        return now

    def plan(self, desired: HostDesired, observed: RoutedObserved) -> Plan:
        return plan_routed(desired, observed, self.config)

    def apply(self, ops: Sequence[Op]) -> ApplyResult:
        kernel = [op for op in ops if not isinstance(op, RunBird)]
        result = apply_routed(self.netns, kernel)
        errors = list(result.errors)
        for op in ops:
            if isinstance(op, RunBird):
                try:
                    if self.bird is None:
                        raise birdd.BirdError("no BIRD configured for this backend")
                    self.bird.run(op.config)
                except (birdd.BirdError, OSError) as exc:
                    errors.append((op, str(exc)))
        return ApplyResult(applied=len(ops) - len(errors), errors=tuple(errors))

    def port_status(self, desired: HostDesired, observed: RoutedObserved,
                    converged: bool = False) -> dict[str, PortStatus]:
        return port_status_routed(desired, observed, converged)

    def device_monitor(self, notify: Callable[[DeviceNews], None]) -> DeviceMonitor:
        return LinkMonitor(self.netns, notify)

    def close(self) -> None:
        close = getattr(self.facts, "close", None)
        if callable(close):
            close()


class RoutedKind(BackendKind):
    """Routed L3 hosts (entry point ``routed``; options in ``[routed]``)."""

    name = "routed"
    agent_type = AGENT_TYPE
    binary = "netplex-routed-agent"
    options_section = SECTION

    def local_ip(self, cfg: Any) -> str:
        return str(cfg.get(SECTION, "local_ip") or cfg.get("vxlan", "local_ip") or "")

    def validate(self, settings: AgentSettings) -> None:
        opts = settings.backend_options
        if opts.get("route_distribution", "feed") == "bgp":
            if not opts.get("bgp_peers"):
                raise SettingsError("route_distribution = bgp but no BGP peers",
                                    "set [routed] bgp_peers = IP[,IP...] (other hosts or a route reflector)")
            for prog in (str(opts.get("bird") or "bird"), str(opts.get("birdc") or "birdc")):
                if shutil.which(prog) is None:
                    raise SettingsError(f"route_distribution = bgp needs {prog!r}, which is not installed",
                                        "install BIRD 2 (Debian: apt-get install bird2) or set [routed] bird/birdc")
        if not settings.local_ip:
            raise SettingsError("a routed host needs its underlay address (the next hop of its endpoints)",
                                "pass --local-ip IP or set [routed] local_ip")

    def configurations(self, settings: AgentSettings) -> dict[str, Any]:
        opts = settings.backend_options
        return {
            # Routed hosts terminate no overlay, whatever the common settings derive.
            "tunnel_types": [],
            "tunneling_ip6": str(opts.get("local_ip6") or "") or None,
            "route_distribution": str(opts.get("route_distribution", "feed")),
        }

    def build(self, settings: AgentSettings) -> FilteredBackend:
        opts = settings.backend_options
        config = RoutedPlanConfig(
            local_ip=settings.local_ip,
            local_ip6=str(opts.get("local_ip6") or ""),
            create_taps=bool(opts.get("create_taps", False)),
            install_remote_routes=opts.get("route_distribution", "feed") == "feed",
        )
        client = NeutronClient(settings.server_url, agent_token=settings.agent_token or None)
        bird: BirdDaemon | None = None
        if opts.get("route_distribution", "feed") == "bgp":
            files = birdd.BirdFiles(Path(str(opts.get("bird_dir") or "")
                                         or f"/run/netplex/routed-bird-{settings.host}"))
            text = render_bird_config(BgpSettings(
                router_id=settings.local_ip, local_as=int(opts.get("bgp_as", 64512)),
                peers=tuple(opts.get("bgp_peers") or ()), proto=ROUTE_PROTO, log_file=str(files.log)))
            config = dataclasses.replace(config, bird_config=text)
            bird = BirdDaemon(files, settings.netns or None, bird=str(opts.get("bird") or "bird"),
                              birdc=str(opts.get("birdc") or "birdc"))
        backend = RoutedBackend(config, HttpServerFacts(client), netns=settings.netns or None, bird=bird)
        # Security groups: nftables on the taps, in the same pass (netplex.agent.secgroups_backend).
        return with_filter(backend, "routed", netns=settings.netns or None)
