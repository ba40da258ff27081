"""Kernel operations: what they do to a snapshot (against the in-memory kernel) and what
reaches iproute2 (nothing that is not a kernel operation, a name, a MAC or an address)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from netplex.agent.kernel import advance, apply_kernel, refresh
from netplex.agent.model import HostDesired, LinkState, LinuxObserved, VxlanInfo
from netplex.agent.ops import AddFdb, AddVxlan, AttachPort, EnsureBridge, EnsureTag, Op, SetLinkUp

from .fakes import FLAT, VLAN, VXA, VXB, FakeLinuxBridgeHost
from .test_linuxbridge import P1, P2, PB, R2, R3, desired, host_with_taps


def wiring(observed: LinuxObserved) -> tuple[dict[str, tuple[object, ...]], dict[str, frozenset]]:
    """What plans are made from: everything but ifindex and MAC address."""
    links = {n: (s.kind, s.master, s.up, s.mtu, s.vxlan) for n, s in observed.links.items()}
    return links, {dev: frozenset(e) for dev, e in observed.fdb.items()}


def step(h: FakeLinuxBridgeHost, d: HostDesired) -> tuple[LinuxObserved, tuple[Op, ...]]:
    before = h.kernel.observe()
    return before, h.converge(d).ops


def test_advance_predicts_what_the_kernel_does_with_a_plan() -> None:
    h = host_with_taps(P1, P2, PB)
    scenarios = [
        desired(P1, P2, remotes=(R2, R3)),          # build bridge, VXLAN, FDB
        desired(P1, remotes=(R3,)),                  # a local and a remote host go
        desired(P1, PB, remotes=(R2,)),              # a second network
        desired(P1, PB, remotes=(R2,),               # an MTU change is made in place
                nets=(dataclasses.replace(VXA, mtu=1400), VXB, FLAT, VLAN)),
        desired(PB),                                 # the first network goes entirely
        desired(),                                   # everything goes
    ]
    for d in scenarios:
        before, ops = step(h, d)
        assert ops, d
        if d.networks[0].mtu == 1400:
            assert any(type(op).__name__ == "SetMtu" for op in ops)
        assert wiring(advance(before, ops)) == wiring(h.kernel.observe()), [str(op) for op in ops]


def test_advance_skips_what_is_not_a_kernel_operation() -> None:
    obs = LinuxObserved(links={"tapx": LinkState("tapx", 3)})
    after = advance(obs, [EnsureTag("tapx", 5, "net"), SetLinkUp("tapx")])
    assert after.links["tapx"].up and after.links["tapx"].index == 3


def test_refresh_rereads_missing_and_named_devices_only() -> None:
    h = host_with_taps(P1, P2)
    d = desired(P1, P2)
    before, ops = step(h, d)
    reads: list[set[str]] = []

    def read(names: Collection[str]) -> dict[str, LinkState | None]:
        reads.append(set(names))
        return {n: h.kernel.links.get(n) for n in names}

    # Nothing happened since: nothing to read, and nothing to do.
    view = refresh(before, ops, d, (), read)
    assert reads == [] and h.plan(d).ops == () and wiring(view) == wiring(h.kernel.observe())
    # A port whose device was not there yet, and a device the monitor named (unplugged).
    d3 = desired(P1, P2, PB)
    h.kernel.add_link(PB.device)
    h.kernel.delete(P2.device)
    view = refresh(view, (), d3, {P2.device}, read)
    assert reads == [{PB.device, P2.device}]
    assert PB.device in view.links and P2.device not in view.links
    assert wiring(view) == wiring(h.kernel.observe())


def test_refresh_of_a_device_that_a_pass_created() -> None:
    obs = LinuxObserved()
    ops = [EnsureBridge("brqx"), AddVxlan("vxlan-7", 7, "10.0.0.1", 4789, 1450),
           AttachPort("vxlan-7", "brqx"), SetLinkUp("vxlan-7"),
           AddFdb("vxlan-7", "00:00:00:00:00:00", "10.0.0.2")]
    view = refresh(obs, ops, HostDesired("h1"), (), lambda names: {})
    vx = view.links["vxlan-7"]
    assert vx.master == "brqx" and vx.up and vx.vxlan == VxlanInfo(7, "10.0.0.1", 4789, False)
    assert view.links["brqx"].kind == "bridge" and len(view.fdb["vxlan-7"]) == 1


def test_apply_refuses_foreign_operations_and_unsafe_values_without_running_them() -> None:
    ops = [EnsureTag("tapx", 5, "net"),
           AddFdb("vxlan-1", "00:00:00:00:00:00", "10.0.0.1\nlink del eth0"),
           AttachPort("tap x", "brq1")]
    res = apply_kernel("no-such-namespace", ops)
    assert res.applied == 0
    assert [op for op, _ in res.errors] == ops
    assert "not a kernel operation" in res.errors[0][1]
    assert all(err.startswith("ValueError") for _, err in res.errors[1:])
