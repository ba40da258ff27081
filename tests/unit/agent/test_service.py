"""The host agent loop against an in-memory server and an in-memory kernel.

The fake server keeps Neutron-shaped networks/ports/agents and a revisioned
change feed with the same semantics as the real one (resume after a
revision, 410 when compacted, status changes appear on the feed); the fake
backend plans with the real Linux bridge planner and executes on
:class:`~tests.unit.agent.fakes.FakeKernel`. Tests ask behavioural
questions (is the tap on the right bridge? what status does the server
show? how many passes ran?) rather than checking call sequences.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import httpx
import pytest

from netplex.agent.api import FeedCompacted, FeedPage, HostState, HttpServerApi, parse_host_state
from netplex.agent.backoff import Backoff
from netplex.agent.cache import Effect, HostCache
from netplex.agent.events import Changes, Device, Resync
from netplex.agent.kernel import refresh
from netplex.agent.linuxbridge import LinuxBridgeConfig, plan_linuxbridge, port_status_linuxbridge
from netplex.agent.model import (
    FLOOD_MAC,
    FdbEntry,
    HostDesired,
    LinkState,
    LinuxObserved,
    bridge_name,
    tap_name,
)
from netplex.agent.monitor import DeviceMonitor, DeviceNews
from netplex.agent.ops import DetachPort, Op, Plan
from netplex.agent.reconcile import ApplyResult, Baseline, PortStatus
from netplex.agent.service import AgentError, AgentService
from netplex.agent.settings import AgentSettings
from netplex.client import ConnectionFailed, InvalidResponse, Unauthorized

from .fakes import FakeKernel, wait_for

HOST = "h1"
IPS = {"h1": "10.99.0.1", "h2": "10.99.0.2", "h3": "10.99.0.3"}


# --- fakes -------------------------------------------------------------------------------


class FakeServer:
    """The four agent endpoints over an in-memory cloud, with a real feed's semantics."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.networks: dict[str, dict[str, Any]] = {}
        self.ports: dict[str, dict[str, Any]] = {}
        self.agents: dict[str, dict[str, Any]] = {}
        self.feed: list[dict[str, Any]] = []
        self.revision = 0
        self.compacted = 0
        self.down = False
        self.reports: list[dict[str, Any]] = []
        self.status_calls: list[tuple[list[str], list[str]]] = []
        self.snapshots = 0
        self.snapshot_override: HostState | None = None
        for host, ip in IPS.items():
            self.agents[f"agent-{host}"] = {"id": f"agent-{host}", "host": host, "alive": True,
                                            "agent_type": "Linux bridge agent",
                                            "configurations": {"tunneling_ip": ip}}

    # --- cloud operations (what API users do) ---

    def _record(self, resource: str, rid: str, action: str, body: Mapping[str, Any]) -> None:
        self.revision += 1
        self.feed.append({"revision": self.revision, "resource": resource, "id": rid,
                          "action": action, "body": dict(body)})
        self.lock.notify_all()

    def add_network(self, vni: int) -> str:
        with self.lock:
            nid = str(uuid.uuid4())
            self.networks[nid] = {"id": nid, "mtu": 1450, "provider:network_type": "vxlan",
                                  "provider:physical_network": None,
                                  "provider:segmentation_id": vni}
            self._record("network", nid, "create", self.networks[nid])
            return nid

    def add_port(self, net: str, host: str = "", mac: str | None = None) -> str:
        with self.lock:
            pid = str(uuid.uuid4())
            n = len(self.ports) + 1
            self.ports[pid] = {
                "id": pid, "network_id": net, "admin_state_up": True, "status": "DOWN",
                "mac_address": mac or f"fa:16:3e:00:00:{n:02x}",
                "fixed_ips": [{"subnet_id": "s", "ip_address": f"10.0.0.{n}"}],
                "binding:host_id": host, "binding:vif_type": "bridge" if host else "unbound",
            }
            self._record("port", pid, "create", self.ports[pid])
            return pid

    def update_port(self, pid: str, **attrs: Any) -> None:
        with self.lock:
            self.ports[pid].update(attrs)
            if "binding:host_id" in attrs:
                self.ports[pid]["binding:vif_type"] = "bridge" if attrs["binding:host_id"] else "unbound"
                self.ports[pid]["status"] = "DOWN"
            self._record("port", pid, "update", self.ports[pid])

    def delete_port(self, pid: str) -> None:
        with self.lock:
            body = self.ports.pop(pid)
            self._record("port", pid, "delete", body)

    def compact(self) -> None:
        with self.lock:
            self.compacted = self.revision
            self.feed.clear()

    # --- ServerApi ---

    def _check(self) -> None:
        if self.down:
            raise ConnectionFailed("GET", "http://fake", "connection refused")

    def report(self, agent: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._check()
            self.reports.append(dict(agent))
            key = f"agent-{agent['host']}"
            body = {**self.agents.get(key, {}), "id": key, "host": agent["host"], "alive": True,
                    "agent_type": agent["agent_type"], "configurations": agent["configurations"]}
            if self.agents.get(key) != body:
                self.agents[key] = body
                self._record("agent", key, "update", body)
            return body

    def host_state(self, host: str) -> HostState:
        with self.lock:
            self._check()
            self.snapshots += 1
            if self.snapshot_override is not None:
                return self.snapshot_override
            local_nets = {p["network_id"] for p in self.ports.values()
                          if p["binding:host_id"] == host}
            ports = [dict(p) for p in self.ports.values()
                     if p["binding:host_id"] == host
                     or (p["network_id"] in local_nets and p["binding:host_id"])]
            return HostState(self.revision, tuple(dict(self.networks[n]) for n in local_nets),
                             tuple(ports), tuple(dict(a) for a in self.agents.values()))

    def changes(self, after: int, timeout: float) -> FeedPage:
        deadline = time.monotonic() + min(timeout, 0.5)
        with self.lock:
            while True:
                self._check()
                if after < self.compacted:
                    raise FeedCompacted(after)
                found = [c for c in self.feed if c["revision"] > after]
                if found or time.monotonic() >= deadline:
                    return FeedPage(tuple(found), self.revision)
                self.lock.wait(max(0.0, deadline - time.monotonic()))

    def device_status(self, host: str, up: Iterable[str], down: Iterable[str]) -> list[str]:
        with self.lock:
            self._check()
            up, down = list(up), list(down)
            self.status_calls.append((sorted(up), sorted(down)))
            updated = []
            for ids, status in ((up, "ACTIVE"), (down, "DOWN")):
                for pid in ids:
                    port = self.ports.get(pid)
                    if port is None or port["binding:host_id"] != host:
                        continue
                    if port["status"] != status:
                        port["status"] = status
                        updated.append(pid)
                        self._record("port", pid, "update", port)
            return updated

    def close(self) -> None:
        pass


class FakeBackend:
    """The real Linux bridge planner on a FakeKernel; counts passes; can be made to fail.

    ``observe_since`` is the real one too, reading devices from the FakeKernel.
    """

    name = "fake-linuxbridge"

    def __init__(self, kernel: FakeKernel | None = None) -> None:
        self.kernel = kernel or FakeKernel()
        self.cfg = LinuxBridgeConfig(local_ip=IPS[HOST])
        self.observes = 0
        #: Per incremental observe: the devices read again.
        self.reads: list[set[str]] = []
        self.applied: list[Op] = []
        self.broken: str | None = None

    def observe(self) -> LinuxObserved:
        if self.broken:
            raise RuntimeError(self.broken)
        self.observes += 1
        return self.kernel.observe()

    def observe_since(self, baseline: Baseline, desired: HostDesired,
                      devices: Collection[str]) -> LinuxObserved:
        if self.broken:
            raise RuntimeError(self.broken)
        self.reads.append(set())
        return refresh(baseline.observed, baseline.applied, desired, devices, self._read)

    def _read(self, names: Collection[str]) -> dict[str, LinkState | None]:
        self.reads[-1] |= set(names)
        return {n: self.kernel.links.get(n) for n in names}

    def plan(self, desired: HostDesired, observed: LinuxObserved) -> Plan:
        return plan_linuxbridge(desired, observed, self.cfg)

    def apply(self, ops: Sequence[Op]) -> ApplyResult:
        for op in ops:
            assert self.kernel.apply(op), op
        self.applied += ops
        return ApplyResult(applied=len(ops))

    def port_status(self, desired: HostDesired, observed: LinuxObserved,
                    converged: bool = False) -> dict[str, PortStatus]:
        return port_status_linuxbridge(desired, observed, self.cfg, converged)

    def plug(self, port_id: str) -> None:
        """What the compute side does: a tap for the port."""
        self.kernel.add_link(tap_name(port_id))


def settings(**kw: Any) -> AgentSettings:
    base = AgentSettings(host=HOST, mechanism="linuxbridge", local_ip=IPS[HOST],
                         report_interval=0.2, resync_interval=3600, poll_timeout=0.5,
                         coalesce=0.01, device_recheck=0.2)
    return base.with_overrides(**kw)


def make_agent(server: FakeServer, backend: FakeBackend | None = None,
               clock: Callable[[], float] = time.monotonic, **kw: Any) -> AgentService:
    return AgentService(settings(**kw), api_factory=lambda: server, backend=backend or FakeBackend(),
                        monitors=False, clock=clock)


class FakeMonitor(DeviceMonitor):
    """Stands in for ``ip monitor link``: the test tells it what the compute side did."""

    def __init__(self, notify: Callable[[DeviceNews], None]) -> None:
        super().__init__("fake-monitor", notify)
        self.running = False

    def start(self) -> None:
        self.running = True

    def alive(self) -> bool:
        return self.running

    def stop(self) -> None:
        self.running = False

    def says(self, device: str, what: str = "deleted") -> None:
        self.notify(DeviceNews(f"{device} {what}", device))


def make_watched_agent(server: FakeServer, backend: FakeBackend,
                       clock: Callable[[], float] = time.monotonic,
                       **kw: Any) -> tuple[AgentService, FakeMonitor]:
    """An agent whose device monitor runs (started, as ``run()`` would, before the first sync)."""
    monitors: list[FakeMonitor] = []

    def factory(notify: Callable[[DeviceNews], None]) -> FakeMonitor:
        monitors.append(FakeMonitor(notify))
        return monitors[-1]

    agent = AgentService(settings(**kw), api_factory=lambda: server, backend=backend,
                         monitors=True, clock=clock, monitor_factory=factory)
    agent.devices.start()
    return agent, monitors[-1]


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def running() -> Iterable[Callable[[AgentService], AgentService]]:
    started: list[AgentService] = []

    def start(agent: AgentService) -> AgentService:
        started.append(agent.start())
        assert agent.wait_ready(5)
        return agent

    yield start
    for a in started:
        a.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the cache ------------------------------------------------------------------------------


def test_cache_follows_feed_changes_within_its_scope(server: FakeServer) -> None:
    net = server.add_network(1001)
    mine = server.add_port(net, HOST)
    cache = HostCache(HOST)
    cache.load(server.host_state(HOST))
    rev = cache.revision
    remote = server.add_port(net, "h2")
    other_net = server.add_network(1002)
    stranger = server.add_port(other_net, "h2")
    server.update_port(mine, admin_state_up=False)
    effects = [cache.apply(c) for c in server.feed if c["revision"] > rev]
    assert effects == [Effect.APPLIED, Effect.IGNORED, Effect.IGNORED, Effect.APPLIED]
    assert set(cache.ports) == {mine, remote} and stranger not in cache.ports
    assert cache.ports[mine]["admin_state_up"] is False
    d = cache.desired()
    assert [r.tunnel_ip for r in d.remotes] == [IPS["h2"]]
    # Replaying old changes does nothing; revision only moves forward.
    assert all(cache.apply(c) is Effect.IGNORED for c in server.feed)
    server.delete_port(remote)
    assert cache.apply(server.feed[-1]) is Effect.APPLIED and remote not in cache.ports


def test_cache_recomputes_the_desired_state_only_when_it_can_change(server: FakeServer) -> None:
    net = server.add_network(1001)
    pid = server.add_port(net, HOST)
    cache = HostCache(HOST)
    cache.load(server.host_state(HOST))
    first = cache.desired()
    rev = server.revision
    server.update_port(pid, status="ACTIVE")  # an agent's report, echoed by the feed
    cache.apply_all(server.feed[rev:])
    assert cache.desired() is first
    rev = server.revision
    server.update_port(pid, admin_state_up=False)
    server.add_port(net, "h2")
    cache.apply_all(server.feed[rev:])
    again = cache.desired()
    assert again is not first and not again.ports[0].admin_state_up and len(again.remotes) == 1
    cache.load(server.host_state(HOST))
    assert cache.desired() is not again and cache.desired() == again


def test_cache_asks_for_resync_when_a_port_is_bound_here_on_a_new_network(server: FakeServer) -> None:
    cache = HostCache(HOST)
    cache.load(server.host_state(HOST))
    net = server.add_network(1001)
    pid = server.add_port(net)
    server.update_port(pid, **{"binding:host_id": HOST})
    effects = [cache.apply(c) for c in server.feed if c["revision"] > cache.revision]
    assert effects[-1] is Effect.RESYNC
    seg = {"revision": server.revision + 1, "resource": "segment", "id": "x", "action": "create",
           "body": {"network_id": net}}
    assert cache.apply(seg) is Effect.IGNORED  # not a network of this host


def test_malformed_snapshot_is_an_error_not_an_empty_host() -> None:
    with pytest.raises(InvalidResponse):
        parse_host_state({"revision": 3, "networks": []})
    with pytest.raises(InvalidResponse):
        parse_host_state({"revision": "3", "networks": [], "ports": [], "agents": []})
    assert parse_host_state({"revision": 3, "networks": [], "ports": [], "agents": []}).revision == 3


# --- the loop ---------------------------------------------------------------------------------


def test_start_registers_syncs_wires_and_reports_active(server: FakeServer, running: Any) -> None:
    net = server.add_network(1001)
    pid = server.add_port(net, HOST)
    remote = server.add_port(net, "h2", mac="fa:16:3e:aa:bb:cc")
    backend = FakeBackend()
    backend.plug(pid)
    running(make_agent(server, backend))
    assert server.reports[0]["start_flag"] is True
    assert server.reports[0]["configurations"]["tunneling_ip"] == IPS[HOST]
    assert backend.kernel.bridge_of(tap_name(pid)) == bridge_name(net)
    assert backend.kernel.fdb["vxlan-1001"] == {FdbEntry(FLOOD_MAC, IPS["h2"]),
                                                FdbEntry("fa:16:3e:aa:bb:cc", IPS["h2"])}
    wait_for(lambda: server.ports[pid]["status"] == "ACTIVE")
    assert server.ports[remote]["status"] == "DOWN"  # not ours to report
    wait_for(lambda: len(server.reports) >= 3)  # heartbeats continue
    assert all(r["start_flag"] is False for r in server.reports[1:])


def test_feed_changes_converge_without_restart(server: FakeServer, running: Any) -> None:
    net = server.add_network(1001)
    first = server.add_port(net, HOST)
    backend = FakeBackend()
    backend.plug(first)
    agent = running(make_agent(server, backend))
    # A port on another host appears: L2pop entry; then goes: entry removed.
    remote = server.add_port(net, "h3", mac="fa:16:3e:00:00:33")
    wait_for(lambda: FdbEntry("fa:16:3e:00:00:33", IPS["h3"]) in backend.kernel.fdb["vxlan-1001"])
    server.delete_port(remote)
    wait_for(lambda: backend.kernel.fdb["vxlan-1001"] == set())
    # The last local port leaves: bridge and VXLAN device go.
    server.delete_port(first)
    wait_for(lambda: bridge_name(net) not in backend.kernel.links)
    assert "vxlan-1001" not in backend.kernel.links
    # A port bound here on a network this host never had: resync widens the scope.
    net2 = server.add_network(1002)
    pid = server.add_port(net2)
    backend.plug(pid)
    server.update_port(pid, **{"binding:host_id": HOST})
    wait_for(lambda: server.ports[pid]["status"] == "ACTIVE")
    assert backend.kernel.bridge_of(tap_name(pid)) == bridge_name(net2)
    assert agent.stats().resyncs == 2


def test_a_burst_of_changes_costs_one_pass(server: FakeServer) -> None:
    net = server.add_network(1001)
    server.add_port(net, HOST)
    backend = FakeBackend()
    agent = make_agent(server, backend)
    assert agent.resyncs.full_sync(Resync("t"))
    passes = agent.stats().passes
    rev = server.revision
    for i in range(50):
        server.add_port(net, "h2", mac=f"fa:16:3e:01:00:{i:02x}")
    # The watcher delivers them in several pages; the worker drains the queue.
    for chunk in range(0, 50, 10):
        agent.events.put(Changes(tuple(server.feed[rev + chunk: rev + chunk + 10])))
    batch = agent.events.next_batch(0)
    assert len(batch) == 5
    agent.process(batch)
    assert agent.stats().passes == passes + 1
    assert len(backend.kernel.fdb["vxlan-1001"]) == 51  # 50 MACs + flood entry


def test_status_only_changes_cause_no_pass_and_reports_are_not_repeated(server: FakeServer) -> None:
    net = server.add_network(1001)
    pid = server.add_port(net, HOST)
    backend = FakeBackend()
    backend.plug(pid)
    agent = make_agent(server, backend)
    agent.resyncs.full_sync(Resync("t"))
    assert server.status_calls == [([pid], [])]
    passes = agent.stats().passes
    # The feed brings back our own status update: no pass, no second report.
    agent.process([Changes(tuple(server.feed[-1:]))])
    agent.process([Device("tapzzz appeared")])  # a pass, same result
    assert agent.stats().passes == passes + 1
    assert server.status_calls == [([pid], [])]
    # Someone (a re-bind) resets the status on the server: reported again.
    server.update_port(pid, **{"binding:host_id": HOST})
    agent.process([Changes(tuple(server.feed[-1:]))])
    assert server.status_calls[-1] == ([pid], [])
    assert server.ports[pid]["status"] == "ACTIVE"
    # The device disappears: DOWN, once.
    backend.kernel.delete(tap_name(pid))
    agent.process([Device("gone")])
    agent.process([Device("gone again")])
    assert server.status_calls[-1] == ([], [pid]) and len(server.status_calls) == 3


def test_device_appearing_later_is_wired_by_the_recheck_timer(server: FakeServer,
                                                               running: Any) -> None:
    net = server.add_network(1001)
    pid = server.add_port(net, HOST)
    backend = FakeBackend()
    agent = running(make_agent(server, backend))
    assert agent.stats().last_reasons[pid].endswith("not present")
    backend.plug(pid)  # no event at all (monitors are off): the timer finds it
    wait_for(lambda: server.ports[pid]["status"] == "ACTIVE")


def test_compacted_feed_means_full_resync_and_same_end_state(server: FakeServer,
                                                             running: Any) -> None:
    net = server.add_network(1001)
    pid = server.add_port(net, HOST)
    backend = FakeBackend()
    backend.plug(pid)
    agent = running(make_agent(server, backend))
    server.down = True  # the agent misses everything from here ...
    time.sleep(0.3)
    remote = server.add_port(net, "h2", mac="fa:16:3e:00:00:22")
    server.compact()  # ... and the server forgets it
    server.down = False
    wait_for(lambda: FdbEntry("fa:16:3e:00:00:22", IPS["h2"]) in backend.kernel.fdb["vxlan-1001"])
    assert agent.stats().resyncs >= 2
    # Afterwards the feed is followed from the snapshot's revision.
    server.delete_port(remote)
    wait_for(lambda: backend.kernel.fdb["vxlan-1001"] == set())


def test_server_down_leaves_the_data_plane_alone(server: FakeServer) -> None:
    clock = Clock()
    net = server.add_network(1001)
    pid = server.add_port(net, HOST)
    server.add_port(net, "h2")
    backend = FakeBackend()
    backend.plug(pid)
    agent = make_agent(server, backend, clock=clock, resync_interval=30)
    assert agent.resyncs.full_sync(Resync("start"))
    before = backend.kernel.observe()
    server.down = True
    clock.now += 31  # periodic resync due, but the server is gone
    agent.process([])
    agent.process([Device("x")])  # a pass from the cache is fine: same desired state
    assert backend.kernel.observe() == before
    assert agent.stats().resyncs == 1 and agent.resyncs.due is not None
    server.down = False
    clock.now += 11
    agent.process([])
    assert agent.stats().resyncs == 2 and backend.kernel.observe() == before


def test_watcher_is_back_on_the_feed_as_soon_as_the_server_answers_again(
        server: FakeServer, running: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    net = server.add_network(1001)
    pid = server.add_port(net, HOST)
    backend = FakeBackend()
    backend.plug(pid)
    agent = running(make_agent(server, backend))
    # From now on a failed long-poll would keep the watcher away for 60 s: only
    # the heartbeat's success (every 0.2 s here) can bring it back in time.
    monkeypatch.setattr(Backoff, "next", lambda self: 60.0)
    errors = agent.stats().server_errors
    server.down = True
    with server.lock:
        server.lock.notify_all()  # end the pending long-poll now
    wait_for(lambda: agent.stats().server_errors > errors)
    time.sleep(0.3)  # the watcher has failed and sits in its backoff
    server.down = False
    remote = server.add_port(net, "h3", mac="fa:16:3e:00:00:33")
    wait_for(lambda: FdbEntry("fa:16:3e:00:00:33", IPS["h3"]) in backend.kernel.fdb["vxlan-1001"])
    assert server.ports[remote]["binding:host_id"] == "h3"


def test_never_reconciles_before_a_snapshot(server: FakeServer) -> None:
    server.down = True
    backend = FakeBackend()
    backend.kernel.add_link(bridge_name("stale-net-000"), kind="bridge")
    agent = make_agent(server, backend).start()
    try:
        time.sleep(0.5)
        assert backend.observes == 0 and not agent.ready.is_set()
        server.down = False
        assert agent.wait_ready(5)
        # The server says: nothing here. Now (and only now) the stale bridge goes.
        assert bridge_name("stale-net-000") not in backend.kernel.links
    finally:
        agent.stop()


def test_older_snapshot_is_ignored_and_reset_cannot_silently_empty_a_host(server: FakeServer) -> None:
    net = server.add_network(1001)
    pid = server.add_port(net, HOST)
    backend = FakeBackend()
    backend.plug(pid)
    agent = make_agent(server, backend)
    agent.resyncs.full_sync(Resync("start"))
    wired = backend.kernel.observe()
    server.snapshot_override = HostState(revision=1)  # older than what we have, and empty
    assert agent.resyncs.full_sync(Resync("periodic"))
    assert backend.kernel.observe() == wired and pid in agent.cache.ports
    assert agent.resyncs.full_sync(Resync("feed reset", reset=True))
    assert backend.kernel.observe() == wired and pid in agent.cache.ports
    # Even once the new database's revisions pass ours, "nothing here" stays suspect.
    server.snapshot_override = HostState(revision=agent.cache.revision + 100)
    assert agent.resyncs.full_sync(Resync("periodic"))
    assert backend.kernel.observe() == wired and pid in agent.cache.ports


def test_restarted_agent_changes_nothing(server: FakeServer, running: Any) -> None:
    net = server.add_network(1001)
    pid = server.add_port(net, HOST)
    server.add_port(net, "h2")
    backend = FakeBackend()
    backend.plug(pid)
    first = running(make_agent(server, backend))
    wait_for(lambda: server.ports[pid]["status"] == "ACTIVE")
    first.stop()
    calls = len(server.status_calls)
    second = running(make_agent(server, FakeBackend(backend.kernel)))
    assert second.stats().ops == 0
    assert len(server.status_calls) == calls  # ACTIVE already: nothing to report


def test_failing_backend_is_retried_with_backoff(server: FakeServer, running: Any) -> None:
    net = server.add_network(1001)
    pid = server.add_port(net, HOST)
    backend = FakeBackend()
    backend.plug(pid)
    backend.broken = "ovs-vswitchd is not running"
    agent = running(make_agent(server, backend))
    assert agent.stats().passes == 0 and agent.passes.due is not None
    backend.broken = None
    wait_for(lambda: server.ports[pid]["status"] == "ACTIVE")


def test_refused_registration_is_fatal_with_a_hint(server: FakeServer) -> None:
    def refuse(agent: Mapping[str, Any]) -> dict[str, Any]:
        raise Unauthorized(401, "Unauthorized", "bad agent token")

    server.report = refuse  # type: ignore[method-assign]
    with pytest.raises(AgentError) as exc:
        make_agent(server).run()
    assert "agent_auth_token" in exc.value.hint


# --- HTTP wrapper ------------------------------------------------------------------------------


def test_http_api_speaks_the_contract() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path == "/v2.0/changes":
            if request.url.params["after"] == "1":
                return httpx.Response(410, json={"NeutronError": {
                    "type": "FeedCompacted", "message": "gone", "detail": ""}})
            return httpx.Response(200, json={"changes": [{"revision": 7}], "revision": 7})
        if path == "/v2.0/netplex/host-state":
            return httpx.Response(200, json={"revision": 5, "networks": [], "ports": [],
                                             "agents": []})
        if path == "/v2.0/netplex/agent-report":
            return httpx.Response(200, json={"agent": {"id": "a1", "alive": True}})
        if path == "/v2.0/netplex/device-status":
            return httpx.Response(200, json={"updated": ["p1"]})
        return httpx.Response(404)

    api = HttpServerApi("http://srv", agent_token="s3cret", transport=httpx.MockTransport(handler))
    assert api.report({"host": "h"})["id"] == "a1"
    assert api.host_state("h").revision == 5
    assert api.changes(3, 25).revision == 7
    with pytest.raises(FeedCompacted):
        api.changes(1, 25)
    assert api.device_status("h", ["p1"], []) == ["p1"]
    assert all(r.headers["X-Agent-Token"] == "s3cret" for r in seen)
    assert seen[1].url.params["host"] == "h"
    assert seen[2].url.params["timeout"] == "25"
    api.close()


def test_a_failed_status_report_is_sent_again_later(server: FakeServer) -> None:
    clock = Clock()
    net = server.add_network(1001)
    pid = server.add_port(net, HOST)
    backend = FakeBackend()
    agent = make_agent(server, backend, clock=clock)
    assert agent.resyncs.full_sync(Resync("start"))
    backend.plug(pid)
    server.down = True
    agent.process([Device("tap appeared")])  # wired, but the report fails
    assert server.ports[pid]["status"] == "DOWN" and agent.reports.due is not None
    server.down = False
    agent.process([])  # not due yet: nothing sent
    assert server.ports[pid]["status"] == "DOWN"
    clock.now += 11
    agent.process([])
    assert server.ports[pid]["status"] == "ACTIVE"


def test_reports_from_the_reporter_thread_keep_the_latest_state(server: FakeServer,
                                                                 running: Any) -> None:
    net = server.add_network(1001)
    pids = [server.add_port(net, HOST) for _ in range(20)]
    backend = FakeBackend()
    agent = running(make_agent(server, backend))
    for pid in pids:
        backend.plug(pid)
    wait_for(lambda: all(server.ports[p]["status"] == "ACTIVE" for p in pids))
    for pid in pids[:10]:
        backend.kernel.delete(tap_name(pid))
        agent.events.put(Device(f"{tap_name(pid)} deleted"))  # what the link monitor says
    wait_for(lambda: [server.ports[p]["status"] for p in pids] == ["DOWN"] * 10 + ["ACTIVE"] * 10)
    sent = [p for up, down in server.status_calls for p in up + down]
    assert len(sent) == 30  # each port up once, ten of them down once: nothing repeated


# --- event-driven passes from the last pass's baseline -------------------------------------


def test_event_passes_reread_only_devices_others_change_and_resync_reads_all(
        server: FakeServer) -> None:
    clock = Clock()
    net = server.add_network(1001)
    pids = [server.add_port(net, HOST) for _ in range(3)]
    backend = FakeBackend()
    for pid in pids:
        backend.plug(pid)
    agent, monitor = make_watched_agent(server, backend, clock=clock, resync_interval=30)
    assert agent.resyncs.full_sync(Resync("start"))
    assert backend.observes == 1 and backend.reads == []
    rev = server.revision
    # A remote port, and a port bound here whose device the compute side plugged.
    server.add_port(net, "h2", mac="fa:16:3e:00:00:99")
    new = server.add_port(net)
    backend.plug(new)
    server.update_port(new, **{"binding:host_id": HOST})
    agent.process([Changes(tuple(server.feed[rev:]))])
    assert backend.observes == 1 and backend.reads == [{tap_name(new)}]
    assert backend.kernel.bridge_of(tap_name(new)) == bridge_name(net)
    assert FdbEntry("fa:16:3e:00:00:99", IPS["h2"]) in backend.kernel.fdb["vxlan-1001"]
    assert server.ports[new]["status"] == "ACTIVE"
    # The compute side unplugs a VM; the monitor names the device.
    backend.kernel.delete(tap_name(pids[0]))
    monitor.says(tap_name(pids[0]), "deleted")
    agent.process(agent.events.next_batch(0))
    assert backend.observes == 1 and backend.reads[-1] == {tap_name(pids[0])}
    assert server.ports[pids[0]]["status"] == "DOWN"
    # Drift nobody reports is not seen by event passes ...
    backend.kernel.apply(DetachPort(tap_name(pids[1])))
    monitor.says(tap_name(pids[2]), "appeared")
    agent.process(agent.events.next_batch(0))
    assert backend.kernel.bridge_of(tap_name(pids[1])) is None
    # ... but the periodic resync reads everything and repairs it.
    clock.now += 31
    agent.process([])
    assert backend.observes == 2
    assert backend.kernel.bridge_of(tap_name(pids[1])) == bridge_name(net)


def _synced_watched_agent(server: FakeServer) -> tuple[AgentService, FakeMonitor, FakeBackend, str]:
    """One port bound and plugged here; the watched agent has done its first full sync."""
    pid = server.add_port(server.add_network(1001), HOST)
    backend = FakeBackend()
    backend.plug(pid)
    agent, monitor = make_watched_agent(server, backend)
    assert agent.resyncs.full_sync(Resync("start"))
    return agent, monitor, backend, pid


def test_without_a_running_monitor_every_pass_reads_everything(server: FakeServer) -> None:
    agent, monitor, backend, pid = _synced_watched_agent(server)
    monitor.running = False  # died: device events may be lost from now on
    backend.kernel.delete(tap_name(pid))
    agent.process([Device("re-check")])
    assert backend.observes == 2 and backend.reads == []
    assert server.ports[pid]["status"] == "DOWN"


def test_a_device_event_without_a_name_means_read_everything(server: FakeServer) -> None:
    agent, _, backend, pid = _synced_watched_agent(server)
    agent.process([Device("tap pid=1 changed")])
    assert backend.observes == 2 and backend.reads == []
    agent.process([Device("tapx appeared", "tapx")])
    assert backend.observes == 2 and backend.reads == [{"tapx"}]


def test_a_failed_pass_means_the_next_one_starts_from_a_fresh_snapshot(
        server: FakeServer) -> None:
    agent, monitor, backend, pid = _synced_watched_agent(server)
    backend.broken = "ip: cannot fork"
    monitor.says(tap_name(pid), "appeared")
    agent.process(agent.events.next_batch(0))
    assert agent.passes.baseline is None
    backend.broken = None
    agent.process([Device("again", tap_name(pid))])
    assert backend.observes == 2
