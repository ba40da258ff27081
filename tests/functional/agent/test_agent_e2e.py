"""End to end: a real server process, four real agent processes, VMs plugged by the VIF library.

One lab for the module (building it is the slow part): hosts ``host-lb1``,
``host-lb2`` (Linux bridge), ``host-ovs1``, ``host-ovs2`` (Open vSwitch, each
with its own ovsdb-server + ovs-vswitchd inside its namespace), a VXLAN
network ``net`` with one VM per host. Tests then change things through the
API only and watch the data planes converge. Every name starts with
``npt-<6 hex>``; everything is removed afterwards, whatever happens.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from netplex.agent.model import bridge_name
from netplex.lab.lab import Lab
from netplex.lab.matrix import VmInfo, ping_from
from netplex.linux import netns

from ..labs import running_lab, wait_for
from .topology import ContinuousPing

pytestmark = [pytest.mark.functional, pytest.mark.timeout(180)]

HOSTS = [("host-lb1", "lb"), ("host-lb2", "lb"), ("host-ovs1", "ovs"), ("host-ovs2", "ovs")]
FLOOD = "00:00:00:00:00:00"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with running_lab("npt", HOSTS, agent_down_time=15) as lab:
        lab.create_network("net", "10.1.0.0/24")
        plan = [("vm-l1", "host-lb1", "10.1.0.11"), ("vm-l2", "host-lb2", "10.1.0.12"),
                ("vm-o1", "host-ovs1", "10.1.0.21"), ("vm-o2", "host-ovs2", "10.1.0.22")]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda a: lab.add_vm(a[0], a[1], "net", a[2]), plan))
        yield lab


def info(lab: Lab, name: str) -> VmInfo:
    return next(v for v in lab.vm_infos() if v.name == name)


def reaches(lab: Lab, src: str, dst: str) -> bool:
    """``src`` pings ``dst``'s address and the answer comes from ``dst`` itself."""
    d = info(lab, dst)
    replied, mac = ping_from(info(lab, src), d.ip)
    return replied and mac == d.mac


def status(lab: Lab, vm: str) -> str:
    with lab.client() as c:
        return str(c.get_port(lab.state.vms[vm].port_id)["status"])


def host_ip(lab: Lab, host: str) -> str:
    return lab.state.hosts[host].ip


@pytest.mark.parametrize("src,dst", [("vm-l1", "vm-l2"), ("vm-o1", "vm-o2"), ("vm-l1", "vm-o1"),
                                     ("vm-o2", "vm-l2")],
                         ids=["lb-lb", "ovs-ovs", "lb-ovs", "ovs-lb"])
def test_vms_reach_each_other_across_hosts_and_mechanisms(lab: Lab, src: str, dst: str) -> None:
    assert reaches(lab, src, dst) and reaches(lab, dst, src)


def test_l2_population_lists_exactly_the_other_hosts(lab: Lab) -> None:
    vms = lab.state.vms
    for host, _ in HOSTS:
        others = {(v.mac, host_ip(lab, v.host)) for v in vms.values()
                  if v.network == "net" and v.host != host}
        floods = {(FLOOD, host_ip(lab, h)) for h, _ in HOSTS if h != host}
        assert lab.fdb(host, "net") == others | floods, host


def test_flat_provider_network_across_lb_and_ovs(lab: Lab) -> None:
    lab.create_network("flat", "172.16.5.0/24", {"provider:network_type": "flat",
                                                  "provider:physical_network": "physnet1"})
    lab.add_vm("vm-f1", "host-lb1", "flat", "172.16.5.11")
    lab.add_vm("vm-f2", "host-ovs2", "flat", "172.16.5.12")
    assert reaches(lab, "vm-f1", "vm-f2") and reaches(lab, "vm-f2", "vm-f1")
    net_id = lab.state.networks["flat"].id
    lab.remove_vm("vm-f1")
    wait_for(lambda: bridge_name(net_id) not in lab.links("host-lb1"), what="flat bridge removed")


def test_port_deletion_and_new_hosts_converge_without_restarts(lab: Lab) -> None:
    n2 = lab.create_network("net2", "10.2.0.0/24")
    for vm, host, ip in [("n2-l1", "host-lb1", "10.2.0.11"), ("n2-l2", "host-lb2", "10.2.0.12"),
                         ("n2-o2", "host-ovs2", "10.2.0.22")]:
        lab.add_vm(vm, host, "net2", ip)
    assert reaches(lab, "n2-l1", "n2-o2")
    l2_mac = lab.state.vms["n2-l2"].mac
    assert (l2_mac, host_ip(lab, "host-lb2")) in lab.fdb("host-ovs2", "net2")

    # The only net2 port on host-lb2 goes: its bridge and VXLAN device go, and the
    # other hosts drop every entry pointing at host-lb2 for net2.
    lab.remove_vm("n2-l2")
    vx = f"vxlan-{n2.segmentation_id}"
    wait_for(lambda: not {bridge_name(n2.id), vx} & lab.links("host-lb2"), what="lb2 teardown")
    for h in ("host-lb1", "host-ovs2"):
        wait_for(lambda h=h: all(dst != host_ip(lab, "host-lb2") for _, dst in lab.fdb(h, "net2")),
                 what=f"{h} forgets host-lb2")
    # The last net2 port on an OVS host: VXLAN port and device go there.
    lab.remove_vm("n2-o2")
    wait_for(lambda: vx not in lab.links("host-ovs2"), what="ovs2 vxlan device removed")
    wait_for(lambda: lab.fdb("host-lb1", "net2") == set(), what="lb1 has no net2 remotes")
    # A host that never had net2 gets a port: reachable with no agent restart.
    lab.add_vm("n2-o1", "host-ovs1", "net2", "10.2.0.21")
    assert reaches(lab, "n2-l1", "n2-o1") and reaches(lab, "n2-o1", "n2-l1")


def _monitor_pids(ns: str) -> list[int]:
    """``ip -n <ns> -o monitor link`` processes (the LB agent's device monitor)."""
    want = f"ip\0-n\0{ns}\0-o\0monitor\0link".encode()
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if (p / "cmdline").read_bytes().rstrip(b"\0") == want:
                    pids.append(int(p.name))
            except OSError:
                continue
    return pids


def test_agent_sigkill_and_restart_keeps_traffic_and_converges(lab: Lab) -> None:
    ns = lab.state.hosts["host-lb1"].ns
    assert _monitor_pids(ns)
    ping = ContinuousPing(_vm(lab, "vm-l1"), info(lab, "vm-o1").ip, interval=0.05)
    started = time.monotonic()
    try:
        time.sleep(0.5)
        # Only the agent process itself (as the OOM killer would): its device
        # monitor must die with it (parent-death signal), not linger.
        os.kill(lab.state.agents["host-lb1"]["pid"], signal.SIGKILL)
        wait_for(lambda: not lab.agent_running("host-lb1"), 5, "the agent is gone")
        wait_for(lambda: not _monitor_pids(ns), 5, "the monitor dies with its agent")
        # While host-lb1's agent is down: a VM appears on host-lb2, one goes from
        # host-ovs2, and a port is bound to host-lb1 itself.
        lab.add_vm("vm-new", "host-lb2", "net", "10.1.0.13")
        gone_mac = lab.state.vms["vm-o2"].mac
        lab.remove_vm("vm-o2")
        lab.add_vm("vm-l1b", "host-lb1", "net", "10.1.0.14", wait_active=False)
        assert status(lab, "vm-l1b") == "DOWN"
        lab.start_agent("host-lb1")
        new_mac = lab.state.vms["vm-new"].mac
        wait_for(lambda: (new_mac, host_ip(lab, "host-lb2")) in lab.fdb("host-lb1", "net"),
                 what="lb1 learns vm-new")
        wait_for(lambda: all(mac != gone_mac for mac, _ in lab.fdb("host-lb1", "net")),
                 what="lb1 forgets vm-o2")
        wait_for(lambda: status(lab, "vm-l1b") == "ACTIVE", what="vm-l1b ACTIVE")
        time.sleep(max(0.0, 3.0 - (time.monotonic() - started)))
    finally:
        sent, received = ping.stop()
    assert sent >= 40 and sent - received <= 1, (sent, received)
    assert reaches(lab, "vm-l1b", "vm-new")


def _vm(lab: Lab, name: str) -> object:
    """The shape ContinuousPing needs (``.ns``)."""
    return info(lab, name)


def test_server_restart_tears_nothing_down(lab: Lab) -> None:
    hosts = [h for h, _ in HOSTS]
    before = {h: (lab.links(h), lab.fdb(h, "net")) for h in hosts}
    ping = ContinuousPing(_vm(lab, "vm-l2"), info(lab, "vm-o1").ip, interval=0.05)
    try:
        lab.stop_server(timeout=2)  # (SIGKILL if it still waits for long-polls)
        time.sleep(2.5)  # agents see the server gone: long-polls and heartbeats fail
        assert {h: (lab.links(h), lab.fdb(h, "net")) for h in hosts} == before
        lab.start_server()
        time.sleep(0.5)
    finally:
        sent, received = ping.stop()
    assert sent >= 40 and sent - received <= 1, (sent, received)
    assert {h: (lab.links(h), lab.fdb(h, "net")) for h in hosts} == before
    # The agents are back on the feed: a new port is wired and reported as usual.
    lab.wait_agents()
    lab.add_vm("vm-o2b", "host-ovs2", "net", "10.1.0.23", timeout=30)
    # ACTIVE is host-ovs2's word; host-lb2 learns the new port from its own
    # feed watch, which must have reconnected too (within its 2 s backoff cap).
    mac = lab.state.vms["vm-o2b"].mac
    wait_for(lambda: (mac, host_ip(lab, "host-ovs2")) in lab.fdb("host-lb2", "net"), 5,
             "lb2 learns vm-o2b from the feed")
    assert reaches(lab, "vm-o2b", "vm-l2")


def test_agent_behind_a_compacted_feed_resyncs(lab: Lab) -> None:
    from netplex.db.engine import Database
    from netplex.events.feed import Feed

    agent = lab.state.agents["host-ovs1"]["pid"]
    os.kill(agent, signal.SIGSTOP)
    try:
        # The paused agent's pending long-poll is answered with the first change;
        # everything after is compacted away before it polls again.
        with lab.client() as c:
            c.update_port(lab.state.vms["vm-l1"].port_id, {"description": "nudge"})
        time.sleep(0.3)
        lab.add_vm("vm-late", "host-lb2", "net", "10.1.0.15")
        db = Database(f"sqlite:///{lab.dir / 'server' / 'netplex.sqlite'}")
        Feed(db).compact(0)
    finally:
        os.kill(agent, signal.SIGCONT)
    late = lab.state.vms["vm-late"].mac
    wait_for(lambda: (late, host_ip(lab, "host-lb2")) in lab.fdb("host-ovs1", "net"),
             what="ovs1 learns vm-late after a resync")
    log = (lab.dir / "logs" / "agent-host-ovs1.log").read_text()
    assert "feed compacted" in log
    assert reaches(lab, "vm-o1", "vm-late")


def test_nothing_of_ours_outside_the_lab(lab: Lab) -> None:
    """No device in the root namespace and every namespace is one the lab recorded."""
    ours = [n for n in netns.list_names() if n.startswith(lab.state.prefix)]
    assert set(ours) <= set(lab.state.namespaces)
    root_links = netns.run(None, ["ip", "-o", "link", "show"]).stdout
    ours_devs = {bridge_name(n.id) for n in lab.state.networks.values()}
    ours_devs |= {f"tap{v.port_id[:11]}" for v in lab.state.vms.values()}
    assert not any(d in root_links for d in ours_devs)


def _netplex(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("netplex")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)


def test_vif_cli_attach_detach_and_failed_binding(lab: Lab) -> None:
    """The compute side as one command: attach on an OVS host, ping, detach, port DOWN."""
    net = lab.state.networks["net"]
    host = lab.state.hosts["host-ovs2"]
    vm_ns = lab.new_ns("vm-cli")
    with lab.client() as c:
        port = c.create_port({"network_id": net.id, "fixed_ips": [{"subnet_id": net.subnet_id,
                                                                   "ip_address": "10.1.0.77"}]})
    r = _netplex("vif", "attach", "--port", port["id"], "--host", "host-ovs2", "--netns", vm_ns,
                 "--host-netns", host.ns, "--ovs-db", host.ovs_db, "--url", lab.url, "--timeout", "60")
    assert r.returncode == 0, r.stdout + r.stderr
    with lab.client() as c:
        assert c.get_port(port["id"])["status"] == "ACTIVE"
    assert netns.run(vm_ns, ["ping", "-c", "1", "-W", "2", "10.1.0.11"], check=False).returncode == 0
    r = _netplex("vif", "detach", "--port", port["id"], "--host", "host-ovs2", "--netns", vm_ns,
                 "--host-netns", host.ns, "--ovs-db", host.ovs_db, "--url", lab.url)
    assert r.returncode == 0, r.stdout + r.stderr
    with lab.client() as c:
        after = c.get_port(port["id"])
    assert after["status"] == "DOWN" and after["binding:host_id"] == ""
    assert f"tap{port['id'][:11]}" not in lab.links("host-ovs2")

    # No agent on this host: attach fails, naming every driver's reason.
    with lab.client() as c:
        lonely = c.create_port({"network_id": net.id})
    r = _netplex("vif", "attach", "--port", lonely["id"], "--host", "host-nowhere", "--netns", vm_ns,
                 "--url", lab.url, "--timeout", "10")
    assert r.returncode == 3, r.stdout + r.stderr
    text = r.stdout + r.stderr
    assert "openvswitch" in text and "linuxbridge" in text and "host-nowhere" in text
