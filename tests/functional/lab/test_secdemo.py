"""The security-group demo's verdicts, with a scripted network (pure: no root needed)."""

from __future__ import annotations

from netplex.lab.matrix import VmInfo
from netplex.lab.secdemo import EXPECTED, demo_plan, render_probes, run_probes

A1 = VmInfo("vm-a1", "ns1", "host-lb1", "lb", "net-a", "10.0.0.11", "fa:16:3e:00:00:01")
A2 = VmInfo("vm-a2", "ns2", "host-ovs1", "ovs", "net-a", "10.0.0.12", "fa:16:3e:00:00:02")
R1 = VmInfo("vm-r1", "ns3", "host-routed1", "routed", "net-r", "10.50.0.11", "fa:16:3e:00:00:03")
WEB = VmInfo("web-lb1", "ns4", "host-lb1", "lb", "net-a", "10.0.0.41", "fa:16:3e:00:00:04")
ISO = VmInfo("isolated-lb1", "ns5", "host-lb1", "lb", "net-a", "10.0.0.42", "fa:16:3e:00:00:05")
TARGETS = [(WEB, "web"), (ISO, "isolated")]


def enforced_ping(src: VmInfo, ip: str) -> bool:
    return ip == WEB.ip


def enforced_tcp(src: VmInfo, ip: str, port: int) -> str:
    return "open" if (ip, port) == (WEB.ip, 22) else "dropped"


def test_enforced_groups_pass_and_only_the_network_s_vms_probe() -> None:
    probes = run_probes(TARGETS, [A1, A2, R1], enforced_ping, enforced_tcp)
    assert len(probes) == 2 * 2 * 3 and {p.src.name for p in probes} == {"vm-a1", "vm-a2"}
    assert all(p.good for p in probes)
    _, ok = render_probes(probes, {"web-lb1": 6, "isolated-lb1": 18}, {"host-lb1": "linuxbridge"})
    assert ok


def test_an_open_port_or_a_refusal_is_not_a_drop() -> None:
    probes = run_probes(TARGETS, [A1], lambda s, ip: True,
                        lambda s, ip, port: "refused" if port == 23 else "open")
    bad = {(p.dst.name, p.check): p.observed for p in probes if not p.good}
    assert bad == {("web-lb1", "tcp/23"): "refused", ("isolated-lb1", "ping"): "reply",
                   ("isolated-lb1", "tcp/22"): "open", ("isolated-lb1", "tcp/23"): "refused"}
    _, ok = render_probes(probes, {}, {})
    assert not ok
    assert not render_probes([], {}, {})[1]  # nothing probed proves nothing


def test_expected_passes_are_retried_expected_drops_are_not() -> None:
    calls: list[str] = []

    def late_ping(src: VmInfo, ip: str) -> bool:
        calls.append(ip)
        return ip == WEB.ip and calls.count(ip) >= 2  # the first try is lost

    probes = run_probes(TARGETS, [A1], late_ping, enforced_tcp, workers=1)
    assert all(p.good for p in probes)
    assert calls.count(WEB.ip) == 2 and calls.count(ISO.ip) == 1


def test_demo_vms_only_on_hosts_that_enforce() -> None:
    plan = demo_plan({"host-ovs1": "ovs", "host-lb1": "lb", "host-lb2": "lb", "host-routed1": "routed"})
    assert {(vm, host, group) for vm, host, _, _, group in plan} == {
        ("web-lb1", "host-lb1", "web"), ("isolated-lb1", "host-lb1", "isolated"),
        ("web-r1", "host-routed1", "web"), ("isolated-r1", "host-routed1", "isolated")}
    assert demo_plan({"host-ovs1": "ovs"}) == []
    assert set(EXPECTED) == {"web", "isolated"}
