"""Link/FDB verbs in a throwaway namespace: idempotent, failures told per verb, and
observe() sees what they did."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from netplex.agent.linuxbridge import BRIDGE_MAX_PORTS, LinuxBridgeBackend, LinuxBridgeConfig
from netplex.agent.model import HostDesired, NetworkSpec, PortSpec
from netplex.linux import netns
from netplex.linux.ip import FdbEntry, IpBatch, VxlanInfo, observe_linux, read_links

from .netlink_reader import observe_netlink

pytestmark = pytest.mark.functional


def queue_build(b: IpBatch) -> None:
    b.add_bridge("brqtest")
    b.add_vxlan("vxlan-77", 77, "10.1.1.1", 4789, 1450)
    b.set_master("vxlan-77", "brqtest")
    b.set_master("tapx", "brqtest")
    b.set_up("vxlan-77")
    b.fdb_add("vxlan-77", "00:00:00:00:00:00", "10.1.1.2")
    b.fdb_add("vxlan-77", "00:00:00:00:00:00", "10.1.1.3")
    b.fdb_add("vxlan-77", "fa:16:3e:00:00:01", "10.1.1.2")


def queue_teardown(b: IpBatch) -> None:
    b.fdb_del("vxlan-77", "00:00:00:00:00:00", "10.1.1.3")
    b.fdb_del("vxlan-77", "fa:16:3e:00:00:09", "10.1.1.3")  # never there
    b.set_nomaster("tapx")
    b.delete("vxlan-77")
    b.delete("brqtest")


def test_verbs_are_idempotent_and_observable(make_netns: Callable[[str], str]) -> None:
    ns = make_netns("ip")
    netns.run(ns, ["ip", "link", "add", "name", "tapx", "type", "veth", "peer", "name", "tapy"])
    b = IpBatch(ns)
    for _ in range(2):
        queue_build(b)
    b.fdb_add("vxlan-77", "fa:16:3e:00:00:01", "10.1.1.3")  # moved: replaced
    assert len(b) == 17
    assert b.run() == [None] * 17 and len(b) == 0
    obs = observe_linux(ns)
    # Two readers of the same kernel state must agree (iproute2 JSON vs pyroute2).
    with netns.iproute(ns) as ipr:
        assert obs == observe_netlink(ipr)
    assert observe_linux(ns, vxlan_only=True).links == {"vxlan-77": obs.links["vxlan-77"]}
    assert read_links(ns, ["tapx", "vxlan-77", "nothere"]) == {
        "tapx": obs.links["tapx"], "vxlan-77": obs.links["vxlan-77"], "nothere": None}
    vx = obs.links["vxlan-77"]
    assert vx.kind == "vxlan" and vx.master == "brqtest" and vx.up and vx.mtu == 1450
    assert vx.vxlan == VxlanInfo(77, "10.1.1.1", 4789, False)
    assert obs.links["tapx"].master == "brqtest"
    assert obs.fdb["vxlan-77"] == {
        FdbEntry("00:00:00:00:00:00", "10.1.1.2"), FdbEntry("00:00:00:00:00:00", "10.1.1.3"),
        FdbEntry("fa:16:3e:00:00:01", "10.1.1.3")}
    for _ in range(2):
        queue_teardown(b)
    assert b.run() == [None] * 10
    obs = observe_linux(ns)
    assert "vxlan-77" not in obs.links and "brqtest" not in obs.links
    assert obs.links["tapx"].master is None


def test_each_failure_is_told_for_its_own_verb(make_netns: Callable[[str], str]) -> None:
    ns = make_netns("ipf")
    netns.run(ns, ["ip", "link", "add", "name", "tapx", "type", "veth", "peer", "name", "tapy"])
    b = IpBatch(ns)
    b.set_up("nothere")                      # fails, the rest still runs
    b.add_bridge("brqtest")
    b.set_master("tapx", "brqnothere")       # iproute2 exits here without saying where ...
    b.set_master("tapx", "brqtest")          # ... so the rest is run again one by one
    b.set_mtu("tapx", 1400)
    b.fdb_add("nothere", "00:00:00:00:00:00", "10.1.1.2")
    errors = b.run()
    assert [e is None for e in errors] == [False, True, False, True, True, False]
    assert all("nothere" in (errors[i] or "") for i in (0, 2, 5))
    tapx = observe_linux(ns).links["tapx"]
    assert tapx.master == "brqtest" and tapx.mtu == 1400


def test_nothing_but_names_and_addresses_reach_a_batch_line() -> None:
    b = IpBatch("whatever")
    for bad in (lambda: b.set_up("tap x"), lambda: b.delete("a#b"), lambda: b.set_up(""),
                lambda: b.fdb_add("vxlan-1", "00:00:00:00:00:00", "10.0.0.1\nlink del eth0"),
                lambda: b.fdb_del("vxlan-1", "FA:16:3E:00:00:01 dev lo", "10.0.0.1"),
                lambda: b.add_vxlan("vxlan-1", 1, "not-an-ip", 4789, 1450)):
        with pytest.raises(ValueError):
            bad()
    assert len(b) == 0


def test_netns_create_delete_idempotent(prefix: str) -> None:
    name = f"{prefix}-idem"
    try:
        netns.create(name)
        netns.create(name)
        assert netns.exists(name) and name in netns.list_names()
        assert "lo" in netns.run(name, ["ip", "-o", "link"]).stdout
    finally:
        netns.delete(name)
        netns.delete(name)
    assert not netns.exists(name)


def test_full_kernel_bridge_is_reported_not_retried(make_netns: Callable[[str], str]) -> None:
    """The kernel's limit is what the Linux bridge backend assumes: 1,023 ports on
    one bridge. The port beyond it is left out of the plan (no failing operation)
    and reported DOWN as "full"."""
    ns = make_netns("full")
    net = NetworkSpec("cccccccc-0000-0000-0000-000000000000", "local")
    ports = [PortSpec(f"{i:011d}-f", net.network_id, f"fa:16:3e:01:{i >> 8:02x}:{i & 255:02x}", ())
             for i in range(BRIDGE_MAX_PORTS + 1)]
    script = "".join(f"link add {p.device} type veth peer name v{i}\n" for i, p in enumerate(ports))
    subprocess.run(netns.exec_in(ns, ["ip", "-batch", "-"]), input=script, text=True, check=True,
                   capture_output=True, timeout=120)
    backend = LinuxBridgeBackend(LinuxBridgeConfig(), ns)
    desired = HostDesired("h1", networks=(net,), ports=tuple(ports))
    plan = backend.plan(desired, backend.observe())
    assert backend.apply(plan.ops).errors == ()
    after = backend.observe()
    status = backend.port_status(desired, after)
    assert len(after.slaves_of(f"brq{net.network_id[:11]}")) == BRIDGE_MAX_PORTS
    assert [pid for pid, st in status.items() if not st.up] == [ports[-1].port_id]
    assert "is full" in status[ports[-1].port_id].reason
    assert backend.plan(desired, after).ops == ()
