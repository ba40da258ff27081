"""Binding under concurrency: 16 clients, 1,000 ports, 50 hosts, agents coming and going.

One real ``netplex server`` (two API worker processes; SQLite, and PostgreSQL) with the openvswitch and
linuxbridge mechanism drivers and one VXLAN network. Every host has a fixed
agent kind (even hosts Open vSwitch, odd hosts Linux bridge), so a port bound
with the other kind's vif_type is a binding left over from a previous host.

While 16 client threads bind, move and unbind ports (each thread owns a
slice of 900 ports and gives each of them a host once, in random order;
every fourth PUT, and at least :data:`MIN_EXTRA` more until :data:`CHURN`
seconds have passed, is a random move, unbind or repeat on its own ports or
on the 100 "hot" ports all threads share), one thread changes the agents on
a schedule: agents appear on hosts that had none, are disabled and enabled
(``PUT /v2.0/agents/{id}``), deleted (``DELETE``) and reported again, stop
heartbeating for longer than ``agent_down_time`` and come back; heartbeat
threads report every present agent every :data:`HEARTBEAT` seconds (on a
loaded machine some are late, so agents also die and revive unplanned: the
summary line counts them). Host groups (by index) decide each host's story and
its final state:

====================  ======  ==========================================
group                 hosts   story -> final state
====================  ======  ==========================================
never                 0-3     never an agent -> unusable
late                  4-11    no agent, one appears mid-run -> usable
admin flap            12-19   disabled and enabled every second or so -> usable
delete flap           20-27   deleted, reported again -> usable
die flap              28-33   silent > agent_down_time, revived -> usable
stable                34-43   always there -> usable
end disabled          44-45   disabled mid-run -> unusable
end deleted           46-47   deleted mid-run -> unusable
end dead              48-49   stops reporting mid-run -> unusable
====================  ======  ==========================================

Quiescing: the clients stop and the agent schedule has run (heartbeats go
on to the end); every usable host's agent reports once more (one that
missed agent_down_time revives, which rebinds its host's failed ports) and
``/v2.0/agents`` must show each host's final state. No port gets a retry
update on a usable host: a failed binding there means a missed rebind.
Ports on the end-unusable hosts may keep a binding made while their agent
was usable (bindings survive their agent, by design); such ports must carry
that host's vif_type, and are then unbound and bound again once (the last
host the test set stays the same) to check that a new binding there now
fails with reasons.

Afterwards, for every port: ``binding:host_id`` is the last host the test
set (for hot ports: the last host one of the threads set), ``unbound`` iff
no host, the host's vif_type (with the right vif_details) iff the host has a
usable agent, else ``binding_failed`` with both drivers' reasons in
``binding:diagnostics``; ``/v2.0/ports?binding:host_id=H`` lists exactly the
ports on H; in the database every port has one ACTIVE binding, bound
bindings have exactly one level through the matching driver on the port's
network segment and the same host, other bindings none, and no dynamic
segment exists (these drivers never allocate one).
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from netplex.lab.server_process import ServerProcess

pytestmark = pytest.mark.slow

SEED = 20240614
CLIENTS = 16
N_PORTS = 1000
N_HOT = 100
N_HOSTS = 50
#: The agent schedule spans this many seconds; clients keep going at least as long.
CHURN = 20.0
#: Random operations each client does after its first pass, even past CHURN.
MIN_EXTRA = 8
AGENT_DOWN_TIME = 5
HEARTBEAT = 2.0
HEARTBEAT_THREADS = 4
#: API worker processes: two, so that binders also race across processes (as in production).
WORKERS = 2
#: A "dead" pause lasts this much longer than agent_down_time.
DEAD_MARGIN = 1.5

CONF = f"""
agent_down_time = {AGENT_DOWN_TIME}
api_workers = {{workers}}
[ml2]
type_drivers = local,vlan,vxlan
project_network_types = vxlan
mechanism_drivers = openvswitch,linuxbridge
[ml2_type_vxlan]
vni_ranges = 1:1000
[database]
connection = {{url}}
[quotas]
# Load, not limits: Neutron's default quotas (100 networks, 500 ports) would stop the run.
quota_network = -1
quota_subnet = -1
quota_port = -1
"""

OVS: dict[str, Any] = {
    "agent_type": "Open vSwitch agent",
    "binary": "netplex-openvswitch-agent",
    "topic": "N/A",
    "configurations": {"tunnel_types": ["vxlan"], "bridge_mappings": {}, "integration_bridge": "br-int"},
}
LB: dict[str, Any] = {
    "agent_type": "Linux bridge agent",
    "binary": "netplex-linuxbridge-agent",
    "topic": "N/A",
    "configurations": {"tunnel_types": ["vxlan"], "interface_mappings": {}},
}
UNBOUND, FAILED = "unbound", "binding_failed"

HOSTS = [f"stress-host-{i:02d}" for i in range(N_HOSTS)]
NEVER = range(0, 4)
LATE = range(4, 12)
ADMIN_FLAP = range(12, 20)
DELETE_FLAP = range(20, 28)
DIE_FLAP = range(28, 34)
STABLE = range(34, 44)
END_DISABLED = range(44, 46)
END_DELETED = range(46, 48)
END_DEAD = range(48, 50)
USABLE_AT_END = frozenset(
    HOSTS[i] for r in (LATE, ADMIN_FLAP, DELETE_FLAP, DIE_FLAP, STABLE) for i in r
)
NEVER_HOSTS = frozenset(HOSTS[i] for i in NEVER)


def vif_type_of(host: str) -> str:
    return "ovs" if int(host.rsplit("-", 1)[1]) % 2 == 0 else "bridge"


def template_of(host: str) -> dict[str, Any]:
    return OVS if vif_type_of(host) == "ovs" else LB


def driver_of(vif_type: str) -> str:
    return {"ovs": "openvswitch", "bridge": "linuxbridge"}[vif_type]


class Http:
    """A keep-alive JSON connection, reopened when idle (the server drops idle ones)."""

    IDLE = 2.0

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None
        self.last = 0.0

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        if self.conn is None or time.monotonic() - self.last > self.IDLE:
            if self.conn is not None:
                self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        raw = resp.read()
        self.last = time.monotonic()
        return resp.status, (json.loads(raw) if raw else None)

    def ok(self, method: str, path: str, body: Any = None, status: int | None = None) -> Any:
        want = status or {"POST": 201, "DELETE": 204}.get(method, 200)
        got, out = self.call(method, path, body)
        assert got == want, f"{method} {path}: HTTP {got} {out}"
        return out

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# --- agents ------------------------------------------------------------------------------


@dataclass
class HostAgent:
    """The test's model of the one agent a host may have."""

    host: str
    agent_id: str | None = None
    admin_up: bool = True
    #: The heartbeat thread reports this agent (false while deleted or "dead").
    reporting: bool = False
    #: time.monotonic() of the last successful report.
    reported_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Agents:
    """Reports, updates and deletes agents over the API and keeps the model in step."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.hosts = {h: HostAgent(h) for h in HOSTS}
        self.errors: list[str] = []
        #: Heartbeats that came later than agent_down_time (the agent was dead meanwhile).
        self.lapses = 0
        self._local = threading.local()

    def _http(self) -> Http:
        conn = getattr(self._local, "http", None)
        if conn is None:
            conn = self._local.http = Http(self.port)
        return conn

    def report(self, a: HostAgent, *, start: bool = False) -> None:
        """Register or heartbeat; caller holds ``a.lock``."""
        body = {"agent": {**template_of(a.host), "host": a.host, "start_flag": start}}
        body["agent"]["configurations"] = {
            **template_of(a.host)["configurations"],
            "tunneling_ip": f"192.0.2.{HOSTS.index(a.host) + 1}",
        }
        status, out = self._http().call("POST", "/v2.0/netplex/agent-report", body)
        if status != 200:
            self.errors.append(f"report {a.host}: HTTP {status} {out}")
            return
        now = time.monotonic()
        if a.reporting and now - a.reported_at > AGENT_DOWN_TIME:
            self.lapses += 1
        a.reported_at = now
        if a.agent_id is None:
            a.admin_up = True
        a.agent_id = out["agent"]["id"]
        if out["agent"]["admin_state_up"] != a.admin_up:
            self.errors.append(f"report {a.host}: admin_state_up {out['agent']['admin_state_up']} != model")
        a.reporting = True

    def set_admin(self, a: HostAgent, up: bool) -> None:
        assert a.agent_id is not None
        status, out = self._http().call("PUT", f"/v2.0/agents/{a.agent_id}", {"agent": {"admin_state_up": up}})
        if status != 200:
            self.errors.append(f"admin {a.host} -> {up}: HTTP {status} {out}")
            return
        a.admin_up = up

    def delete(self, a: HostAgent) -> None:
        assert a.agent_id is not None
        status, out = self._http().call("DELETE", f"/v2.0/agents/{a.agent_id}")
        if status != 204:
            self.errors.append(f"delete {a.host}: HTTP {status} {out}")
        a.agent_id = None
        a.reporting = False
        a.admin_up = True

    def apply(self, host: str, action: str) -> None:
        a = self.hosts[host]
        with a.lock:
            if action == "appear" or action == "revive":
                self.report(a, start=action == "appear")
            elif action == "disable":
                self.set_admin(a, False)
            elif action == "enable":
                self.set_admin(a, True)
            elif action == "delete":
                self.delete(a)
            elif action == "die":
                a.reporting = False
            else:
                raise AssertionError(action)

    def heartbeat(self, hosts: list[str]) -> None:
        for host in hosts:
            a = self.hosts[host]
            with a.lock:
                if a.reporting:
                    self.report(a)


def agent_schedule(rng: random.Random) -> list[tuple[float, str, str]]:
    """(seconds after the churn starts, host, action), sorted."""
    ev: list[tuple[float, str, str]] = []
    for i in LATE:
        ev.append((rng.uniform(0.1, 0.8) * CHURN, HOSTS[i], "appear"))
    for i in ADMIN_FLAP:  # short disabled spells, over and over: each enable races with binders
        t = rng.uniform(0.02, 0.1) * CHURN
        while t < 0.85 * CHURN:
            back = t + rng.uniform(0.3, 1.5)
            ev += [(t, HOSTS[i], "disable"), (back, HOSTS[i], "enable")]
            t = back + rng.uniform(0.3, 2.0)
    for n, i in enumerate(DELETE_FLAP):
        t = rng.uniform(0.05, 0.5) * CHURN
        back = t + rng.uniform(0.5, 4.0)
        ev += [(t, HOSTS[i], "delete"), (back, HOSTS[i], "appear")]
        if n % 2 == 0:
            again = back + rng.uniform(0.5, 2.0)
            ev += [(again, HOSTS[i], "delete"), (again + rng.uniform(0.5, 3.0), HOSTS[i], "appear")]
    for i in DIE_FLAP:
        t = rng.uniform(0.05, 0.4) * CHURN
        ev += [(t, HOSTS[i], "die"), (t + AGENT_DOWN_TIME + DEAD_MARGIN + rng.uniform(0, 2), HOSTS[i], "revive")]
    for i in END_DISABLED:
        ev.append((rng.uniform(0.2, 0.6) * CHURN, HOSTS[i], "disable"))
    for i in END_DELETED:
        ev.append((rng.uniform(0.2, 0.6) * CHURN, HOSTS[i], "delete"))
    for i in END_DEAD:
        ev.append((rng.uniform(0.2, 0.5) * CHURN, HOSTS[i], "die"))
    return sorted(ev)


# --- clients --------------------------------------------------------------------------------


@dataclass
class ClientLog:
    """What one client thread did and saw."""

    #: owned port -> the last host this thread set (the port's desired host).
    owned_last: dict[str, str] = field(default_factory=dict)
    #: hot port -> the last host this thread set on it.
    hot_last: dict[str, str] = field(default_factory=dict)
    ops: int = 0
    errors: list[str] = field(default_factory=list)


def check_response(port: dict[str, Any], asked: str | None, errors: list[str]) -> None:
    """A PUT response must be self-consistent; for owned ports (``asked`` given) it
    must also be the result of binding the host just set."""
    host, vif = port["binding:host_id"], port["binding:vif_type"]
    where = f"PUT {port['id']} (asked {asked!r}): host {host!r} vif {vif!r}"
    if asked is not None and host != asked:
        errors.append(f"{where}: response host differs")
    if not host and vif != UNBOUND:
        errors.append(f"{where}: no host but not unbound")
    if host and vif not in (UNBOUND, FAILED) and vif != vif_type_of(host):
        errors.append(f"{where}: bound with another host kind's vif_type")
    if asked:
        if vif == UNBOUND:
            errors.append(f"{where}: still unbound after the PUT returned")
        if asked in NEVER_HOSTS and vif != FAILED:
            errors.append(f"{where}: bound on a host that never had an agent")
        if vif == FAILED and not port.get("binding:diagnostics"):
            errors.append(f"{where}: binding_failed without diagnostics")


def client(
    port: int, tid: int, owned: list[str], hot: list[str], deadline: Callable[[], float], log: ClientLog
) -> None:
    rng = random.Random(SEED * 100 + tid)
    conn = Http(port)
    current: dict[str, str] = {}

    def put(pid: str, host: str, is_owned: bool) -> None:
        status, body = conn.call("PUT", f"/v2.0/ports/{pid}", {"port": {"binding:host_id": host}})
        log.ops += 1
        if status != 200:
            log.errors.append(f"PUT {pid} -> {host!r}: HTTP {status} {body}")
            return
        check_response(body["port"], host if is_owned else None, log.errors)
        if is_owned:
            log.owned_last[pid] = host
            current[pid] = host
        else:
            log.hot_last[pid] = host

    def random_op() -> None:
        is_owned = rng.random() < 0.7
        pid = rng.choice(owned if is_owned else hot)
        roll = rng.random()
        if roll < 0.15:
            host = ""  # unbind
        elif roll < 0.25 and current.get(pid):
            host = current[pid]  # the same host again: retries a failed binding
        else:
            host = rng.choice(HOSTS)
        put(pid, host, is_owned)

    try:
        first = owned[:]
        rng.shuffle(first)
        for n, pid in enumerate(first):  # every owned port gets a host at least once
            put(pid, rng.choice(HOSTS), True)
            if n % 4 == 3:
                random_op()
        extra = 0
        while extra < MIN_EXTRA or time.monotonic() < deadline():
            random_op()
            extra += 1
    except Exception as exc:  # a broken connection, a malformed answer: report, don't hang
        log.errors.append(f"client {tid} crashed: {exc!r}")
    finally:
        conn.close()


# --- the test -------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(
    request: pytest.FixtureRequest, tmp_path: Path, make_db_url: Callable[[str], str]
) -> Iterator[tuple[str, ServerProcess]]:
    url = make_db_url(request.param)
    proc = ServerProcess(tmp_path / "srv", CONF.format(url=url, workers=WORKERS))
    try:
        proc.start()
        yield url, proc
    finally:
        proc.stop()


def all_ports(api: Http) -> dict[str, dict[str, Any]]:
    ports = api.ok("GET", "/v2.0/ports")["ports"]
    return {p["id"]: p for p in ports}


def expected_agents(host: str) -> list[tuple[str, bool, bool]]:
    """(agent_type, alive, admin_state_up) of the agents ``host`` ends with."""
    idx, kind = HOSTS.index(host), template_of(host)["agent_type"]
    if host in USABLE_AT_END:
        return [(kind, True, True)]
    if idx in END_DISABLED:
        return [(kind, True, False)]
    if idx in END_DEAD:
        return [(kind, False, True)]
    return []


def wait_for_agents(api: Http, timeout: float) -> None:
    """Until ``/v2.0/agents`` shows every host's final agent state (an end-dead agent
    needs agent_down_time; a late heartbeat on a loaded machine needs one more)."""
    deadline = time.monotonic() + timeout
    while True:
        by_host: dict[str, list[tuple[str, bool, bool]]] = {h: [] for h in HOSTS}
        for ag in api.ok("GET", "/v2.0/agents")["agents"]:
            by_host.setdefault(ag["host"], []).append((ag["agent_type"], ag["alive"], ag["admin_state_up"]))
        wrong = {h: got for h, got in by_host.items() if got != expected_agents(h)}
        if not wrong:
            return
        assert time.monotonic() < deadline, {h: (got, expected_agents(h)) for h, got in wrong.items()}
        time.sleep(0.5)


def port_problems(ports: dict[str, dict[str, Any]], desired: dict[str, str], net_id: str) -> list[str]:
    """Every way a port contradicts its desired host or that host's final agent state."""
    problems: list[str] = []
    for pid, host in desired.items():
        p = ports[pid]
        vif = p["binding:vif_type"]
        where = f"port {pid} (want host {host!r}): host {p['binding:host_id']!r} vif {vif!r}"
        if p["binding:host_id"] != host:
            problems.append(f"{where}: wrong host")
        elif not host:
            if vif != UNBOUND:
                problems.append(f"{where}: not unbound")
        elif host in USABLE_AT_END:
            want = vif_type_of(host)
            bridge = "br-int" if want == "ovs" else "brq" + net_id[:11]
            if vif != want:
                problems.append(f"{where}: expected {want}; diagnostics {p['binding:diagnostics']}")
            elif p["binding:vif_details"].get("bridge_name") != bridge:
                problems.append(f"{where}: vif_details {p['binding:vif_details']}")
        else:
            reasons = " | ".join(p["binding:diagnostics"])
            if vif != FAILED:
                problems.append(f"{where}: expected binding_failed")
            elif not ("openvswitch:" in reasons and "linuxbridge:" in reasons and host in reasons):
                problems.append(f"{where}: diagnostics {p['binding:diagnostics']}")
    return problems


def check_database(url: str, port_ids: list[str], segment_id: str) -> None:
    """One ACTIVE binding per port; levels exactly as the vif_type says; no dynamic segment."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as c:
            dynamic = c.execute(
                text("SELECT count(*) FROM network_segments WHERE is_dynamic = :t"), {"t": True}
            ).scalar()
            bindings = c.execute(text("SELECT port_id, host, vif_type, status FROM port_bindings")).all()
            levels = c.execute(text("SELECT port_id, host, level, driver, segment_id FROM port_binding_levels")).all()
    finally:
        engine.dispose()
    assert dynamic == 0, f"{dynamic} dynamic segments leaked"
    assert sorted(b.port_id for b in bindings) == sorted(port_ids), "not exactly one binding row per port"
    assert {b.status for b in bindings} == {"ACTIVE"}
    levels_by_port: dict[str, list[Any]] = {}
    for lv in levels:
        levels_by_port.setdefault(lv.port_id, []).append(lv)
    for b in bindings:
        mine = levels_by_port.pop(b.port_id, [])
        if b.vif_type in (UNBOUND, FAILED):
            assert not mine, f"{b.vif_type} port {b.port_id} has levels {mine}"
        else:
            assert [(lv.host, lv.level, lv.driver, lv.segment_id) for lv in mine] == [
                (b.host, 0, driver_of(b.vif_type), segment_id)
            ], f"port {b.port_id} bound {b.vif_type} on {b.host} with levels {mine}"
    assert not levels_by_port, f"levels of unknown ports: {list(levels_by_port)[:5]}"


def test_bindings_stay_consistent_under_agent_churn(server: tuple[str, ServerProcess]) -> None:
    url, srv = server
    rng = random.Random(SEED)
    api = Http(srv.port)
    phases: list[tuple[str, float]] = [("start", time.monotonic())]

    net = api.ok("POST", "/v2.0/networks", {"network": {"name": "stress"}})["network"]
    assert net["provider:network_type"] == "vxlan"
    api.ok("POST", "/v2.0/subnets", {"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.8.0.0/20"}})
    port_ids: list[str] = []
    for _ in range(0, N_PORTS, 250):
        created = api.ok("POST", "/v2.0/ports", {"ports": [{"network_id": net["id"]}] * 250})["ports"]
        port_ids += [p["id"] for p in created]
    assert len(port_ids) == N_PORTS
    segments = api.ok("GET", f"/v2.0/segments?network_id={net['id']}")["segments"]
    assert len(segments) == 1
    segment_id = segments[0]["id"]

    agents = Agents(srv.port)
    for group in (ADMIN_FLAP, DELETE_FLAP, DIE_FLAP, STABLE, END_DISABLED, END_DELETED, END_DEAD):
        for i in group:
            agents.apply(HOSTS[i], "appear")
    assert not agents.errors, agents.errors
    phases.append(("setup", time.monotonic()))

    shuffled = port_ids[:]
    rng.shuffle(shuffled)
    hot, owned_all = shuffled[:N_HOT], shuffled[N_HOT:]
    owned = [owned_all[t::CLIENTS] for t in range(CLIENTS)]
    logs = [ClientLog() for _ in range(CLIENTS)]
    schedule = agent_schedule(rng)
    stop_chaos, stop_beats = threading.Event(), threading.Event()
    start = time.monotonic()
    end_at = start + CHURN

    def chaos() -> None:
        for at, host, action in schedule:
            if stop_chaos.wait(max(0.0, start + at - time.monotonic())):
                return
            agents.apply(host, action)

    def heartbeats(hosts: list[str]) -> None:
        while not stop_beats.wait(HEARTBEAT):
            agents.heartbeat(hosts)

    # Heartbeats go on until the end (the final checks need alive agents), from several
    # threads so that a slow server does not make agents miss agent_down_time.
    beaters = [
        threading.Thread(target=heartbeats, args=(HOSTS[n::HEARTBEAT_THREADS],), name=f"hb-{n}")
        for n in range(HEARTBEAT_THREADS)
    ]
    churners = [threading.Thread(target=chaos, name="chaos")] + [
        threading.Thread(
            target=client, args=(srv.port, t, owned[t], hot, lambda: end_at, logs[t]), name=f"client-{t}"
        )
        for t in range(CLIENTS)
    ]
    try:
        for t in beaters + churners:
            t.start()
        # -- churn --------------------------------------------------------------------------
        for t in churners[1:]:
            t.join(timeout=CHURN + 300)
        churners[0].join(timeout=max(0.0, end_at - time.monotonic()) + 60)  # the schedule runs to its end
        assert not any(t.is_alive() for t in churners), "a thread hung"
        churn_took = time.monotonic() - start
        phases.append(("churn", time.monotonic()))
        ops = sum(log.ops for log in logs)
        client_errors = [e for log in logs for e in log.errors]
        assert not client_errors, f"{len(client_errors)} bad responses, e.g. {client_errors[:5]}"
        assert not agents.errors, agents.errors[:5]

        # -- quiesce: one more report from every usable host's agent ------------------------------
        for host in sorted(USABLE_AT_END):
            a = agents.hosts[host]
            with a.lock:
                assert a.reporting and a.admin_up, a
                agents.report(a)  # a dead agent revives here (and rebinds its host's failed ports)
        assert not agents.errors, agents.errors[:5]
        wait_for_agents(api, AGENT_DOWN_TIME + 10)
        phases.append(("settle", time.monotonic()))

        # -- the desired state --------------------------------------------------------------------
        desired: dict[str, str] = {pid: "" for pid in port_ids}
        for log in logs:
            desired.update(log.owned_last)
        before = all_ports(api)
        assert set(before) == set(port_ids)
        for pid in hot:
            finals = {log.hot_last[pid] for log in logs if pid in log.hot_last}
            got = before[pid]["binding:host_id"]
            assert got in (finals or {""}), f"hot port {pid} on {got!r}; the threads' last hosts were {finals}"
            desired[pid] = got

        # Bindings made while an agent was usable survive it; they must be for that host.
        kept = []
        for pid, host in desired.items():
            if host and host not in USABLE_AT_END and host not in NEVER_HOSTS:
                vif = before[pid]["binding:vif_type"]
                assert vif in (FAILED, vif_type_of(host)), f"port {pid} on {host} has vif_type {vif}"
                if vif != FAILED:
                    kept.append(pid)
        problems = port_problems({pid: p for pid, p in before.items() if pid not in kept},
                                 {pid: h for pid, h in desired.items() if pid not in kept}, net["id"])
        assert not problems, f"{len(problems)} ports wrong after quiescing, e.g.\n" + "\n".join(problems[:10])
        for pid in kept:  # unbind and bind again: now it must fail, with reasons
            api.ok("PUT", f"/v2.0/ports/{pid}", {"port": {"binding:host_id": ""}})
            again = api.ok("PUT", f"/v2.0/ports/{pid}", {"port": {"binding:host_id": desired[pid]}})["port"]
            assert again["binding:vif_type"] == FAILED, (desired[pid], again)
        phases.append(("re-set", time.monotonic()))

        # -- every port, over the API, then in the database -------------------------------------------
        final = all_ports(api)
        problems = port_problems(final, desired, net["id"])
        assert not problems, f"{len(problems)} ports wrong, e.g.\n" + "\n".join(problems[:10])
        counts = {
            "unbound": sum(1 for h in desired.values() if not h),
            "bound": sum(1 for h in desired.values() if h in USABLE_AT_END),
            "failed": sum(1 for h in desired.values() if h and h not in USABLE_AT_END),
        }
        assert min(counts.values()) > 0, counts
        for host in HOSTS:  # the host filter agrees with the ports' hosts
            listed = {p["id"] for p in api.ok("GET", f"/v2.0/ports?binding:host_id={quote(host)}")["ports"]}
            assert listed == {pid for pid, h in desired.items() if h == host}, host
        phases.append(("API checks", time.monotonic()))
        check_database(url, port_ids, segment_id)
        phases.append(("DB checks", time.monotonic()))
    finally:
        stop_chaos.set()
        stop_beats.set()
        for t in beaters + churners:
            if t.ident is not None:
                t.join(timeout=60)
        api.close()

    took = ", ".join(f"{name} {t - phases[i][1]:.1f}s" for i, (name, t) in enumerate(phases[1:]))
    print(
        f"\n{url.split(':', 1)[0]}: {took}; {ops} binding PUTs by {CLIENTS} clients in {churn_took:.1f}s "
        f"({ops / churn_took:.0f}/s), {len(schedule)} agent events, {agents.lapses} late heartbeats, "
        f"{len(kept)} bindings survived their agent; final {counts}"
    )
