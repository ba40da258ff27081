"""Device monitors: which lines and OVSDB updates are news, and who makes the monitors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netplex.agent.linuxbridge import LinuxBridgeBackend, LinuxBridgeConfig
from netplex.agent.monitor import DeviceNews, LinkMonitor, OvsdbMonitor, interface_news
from netplex.agent.openvswitch import OvsBackend, OvsConfig


def test_link_monitor_reports_new_and_deleted_taps_once_by_name() -> None:
    events: list[DeviceNews] = []
    mon = LinkMonitor("ns", events.append)
    lines = [
        "12: tapabc@if3: <BROADCAST,MULTICAST> mtu 1500 state DOWN",
        "12: tapabc@if3: <BROADCAST,MULTICAST,UP> mtu 1500 master brq1 state UP",  # our own change
        "13: vmabc@tapabc: <BROADCAST> mtu 1500",  # not a tap
        "Deleted 12: tapabc@if3: <BROADCAST,MULTICAST,UP> mtu 1500",
    ]
    got = [mon.interesting(line) for line in lines]
    assert got == [DeviceNews("tapabc appeared", "tapabc"), None, None,
                   DeviceNews("tapabc deleted", "tapabc")]
    assert mon.argv[:3] == ["ip", "-n", "ns"]


def _iface(name: str, iface_id: str | None = None, ofport: Any = None) -> dict[str, Any]:
    ids = [["iface-id", iface_id]] if iface_id else []
    return {"name": name, "external_ids": ["map", ids], "ofport": ofport or ["set", []]}


def test_interface_news_names_vm_ports_only() -> None:
    vm, vx = _iface("tapabc", "abc"), _iface("vxlan-1001")
    updates = {"Interface": {"u1": {"new": vm}, "u2": {"new": vx}},
               "Port": {"p1": {"new": {"name": "tapabc"}}}}
    assert interface_news(updates, False, 1) == [DeviceNews("OVS interface tapabc added", "tapabc")]
    # ovs-vswitchd numbers it (monitor v1: "old" holds only the changed columns)
    numbered = {"Interface": {"u1": {"new": _iface("tapabc", "abc", 7), "old": {"ofport": ["set", []]}}}}
    assert interface_news(numbered, False, 1) == [DeviceNews("OVS interface tapabc changed", "tapabc")]
    gone = {"Interface": {"u1": {"old": vm}, "u2": {"old": vx}}}
    assert interface_news(gone, False, 1) == [DeviceNews("OVS interface tapabc removed", "tapabc")]
    # the iface-id taken away: still news (the port is no longer ours to wire)
    unkeyed = {"Interface": {"u1": {"new": _iface("tapabc"), "old": {"external_ids": vm["external_ids"]}}}}
    assert interface_news(unkeyed, False, 1)[0].device == "tapabc"


def test_interface_news_after_a_reconnect_says_anything_may_have_changed() -> None:
    initial = {"Interface": {"u1": {"new": _iface("tapabc", "abc", 7)}}}
    assert interface_news(initial, True, 1) == []  # the first contents: nobody read before
    assert interface_news(initial, True, 2) == [DeviceNews("OVSDB connection re-established")]


def test_backends_make_their_own_monitors(tmp_path: Path) -> None:
    lb = LinuxBridgeBackend(LinuxBridgeConfig(), netns="ns1")
    mon = lb.device_monitor(lambda _: None)
    assert isinstance(mon, LinkMonitor) and mon.argv[:3] == ["ip", "-n", "ns1"]
    ovs = OvsBackend(OvsConfig(), f"unix:{tmp_path / 'db.sock'}", tmp_path, timeout=0.2)
    try:
        mon = ovs.device_monitor(lambda _: None)
        assert isinstance(mon, OvsdbMonitor) and mon.client is ovs.db  # one connection
        mon.start()
        assert mon.alive()  # (re)connecting counts: it reports once it is in sync
        mon.stop()
        assert not mon.alive()
    finally:
        ovs.close()
