"""Netlink verbs in a throwaway namespace: idempotent, and observe() sees what they did."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netplex.linux import netns
from netplex.linux.ip import FdbEntry, Netlink, VxlanInfo, observe_linux, observe_netlink

pytestmark = pytest.mark.functional


def test_verbs_are_idempotent_and_observable(make_netns: Callable[[str], str]) -> None:
    ns = make_netns("ip")
    netns.run(ns, ["ip", "link", "add", "name", "tapx", "type", "veth", "peer", "name", "tapy"])
    with Netlink(ns) as nl:
        for _ in range(2):
            nl.add_bridge("brqtest")
            nl.add_vxlan("vxlan-77", 77, "10.1.1.1", 4789, 1450)
            nl.set_master("vxlan-77", "brqtest")
            nl.set_master("tapx", "brqtest")
            nl.set_up("vxlan-77")
            nl.fdb_add("vxlan-77", "00:00:00:00:00:00", "10.1.1.2")
            nl.fdb_add("vxlan-77", "00:00:00:00:00:00", "10.1.1.3")
            nl.fdb_add("vxlan-77", "fa:16:3e:00:00:01", "10.1.1.2")
        nl.fdb_add("vxlan-77", "fa:16:3e:00:00:01", "10.1.1.3")  # moved: replaced
        obs = nl.observe()
        # Two readers of the same kernel state must agree (iproute2 JSON vs pyroute2).
        assert obs == observe_netlink(nl.ipr)
        assert observe_linux(ns, vxlan_only=True).links == {"vxlan-77": obs.links["vxlan-77"]}
        vx = obs.links["vxlan-77"]
        assert vx.kind == "vxlan" and vx.master == "brqtest" and vx.up and vx.mtu == 1450
        assert vx.vxlan == VxlanInfo(77, "10.1.1.1", 4789, False)
        assert obs.links["tapx"].master == "brqtest"
        assert obs.fdb["vxlan-77"] == {
            FdbEntry("00:00:00:00:00:00", "10.1.1.2"), FdbEntry("00:00:00:00:00:00", "10.1.1.3"),
            FdbEntry("fa:16:3e:00:00:01", "10.1.1.3")}
        for _ in range(2):
            nl.fdb_del("vxlan-77", "00:00:00:00:00:00", "10.1.1.3")
            nl.set_nomaster("tapx")
            nl.delete("vxlan-77")
            nl.delete("brqtest")
        obs = nl.observe()
        assert "vxlan-77" not in obs.links and "brqtest" not in obs.links
        assert obs.links["tapx"].master is None


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
