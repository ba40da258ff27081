"""The attach/detach flow against a scripted server and a fake host (no sleeping)."""

from __future__ import annotations

from typing import Any

import pytest

from netplex.client import ConnectionFailed
from netplex.vif import (
    AttachError,
    AttachTimeout,
    BindingFailed,
    InstanceNotSupported,
    NamespaceNotFound,
    PortNotBound,
    Progress,
    UnsupportedVifType,
    VifDefaults,
    attach,
    detach,
    plan_vm_config,
    vif_from_port,
)
from netplex.vif.attach import DEVICE_OWNER, instance_uuid_for
from netplex.vif.ops import AddAddress, SetDefaultRoute, SetLink
from netplex.vif.testing import FakeExecutor
from tests.unit.vif import contract
from tests.unit.vif.factories import (
    MAC,
    NET_ID,
    PORT_ID,
    SUBNET4,
    FakeClock,
    FakeNeutron,
    binds_as,
    network,
    port,
    subnets,
)

TAP = "tap" + PORT_ID[:11]
HOST = "compute-1"
OVS = {"bridge_name": "br-int", "ovs_hybrid_plug": False}


def host_and_vm() -> FakeExecutor:
    return FakeExecutor("host1", namespaces=["vm1"], ovs_bridges=["br-int"])


def wired_agent(ex: FakeExecutor) -> Any:
    """An agent that reports ACTIVE once the port's device is plugged and bound here."""

    def status(p: dict[str, Any]) -> str:
        bound = p.get("binding:host_id") == HOST and p.get("binding:vif_type") not in (
            "unbound", "binding_failed")
        return "ACTIVE" if bound and ex.link(TAP) is not None else "DOWN"

    return status


def unbound_port(**kw: Any) -> dict[str, Any]:
    return port("unbound", host="", **kw)


def run_attach(server: FakeNeutron, ex: FakeExecutor, clock: FakeClock | None = None,
               **kw: Any) -> Any:
    clock = clock or FakeClock()
    events: list[Progress] = kw.pop("events", [])
    return attach(server, PORT_ID, HOST, "vm1", progress=events.append, executor=ex,
                  clock=clock.clock, sleep=clock.sleep, **kw)


# --- the happy path ---------------------------------------------------------------------


def test_attach_binds_plugs_configures_and_waits_for_active() -> None:
    ex = host_and_vm()
    server = FakeNeutron(unbound_port(ipv6=True), binder=binds_as("ovs", OVS), bind_after=2,
                         agent=wired_agent(ex))
    events: list[Progress] = []
    result = run_attach(server, ex, events=events)

    # The host is set before anything reads the binding.
    assert server.calls[0] == ("get_port", PORT_ID)
    method, attrs = server.calls[1]
    assert method == "update_port"
    assert attrs["binding:host_id"] == HOST
    assert attrs["device_owner"] == DEVICE_OWNER
    assert attrs["device_id"] == instance_uuid_for(HOST, "vm1")
    # Polled until bound, then read the network and both subnets, then waited.
    assert server.methods() == ["get_port", "update_port", "get_port", "get_port", "get_port",
                                "get_network", "get_subnet", "get_subnet", "get_port"]

    # Host side: an OVS port with the agent's external_ids.
    contract.assert_ovs_port(ex, result.vif, result.instance, TAP)
    assert ex.link(result.vif.vm_devname) is None  # moved away
    # VM side: eth0 with MAC, MTU, addresses, default routes.
    eth0 = ex.link("eth0", netns="vm1")
    assert eth0 is not None
    assert eth0.up and eth0.address == MAC and eth0.mtu == 1450
    assert eth0.addresses == ("10.0.0.5/24", "fd00:1::5/64")
    assert ex.default_gateways(netns="vm1") == ("10.0.0.1", "fd00:1::1")
    lo = ex.link("lo", netns="vm1")
    assert lo is not None and lo.up

    assert result.port["status"] == "ACTIVE"
    assert result.ifname == "eth0"
    assert result.vif.vif_type == "ovs"
    steps = [(e.step, e.done) for e in events if e.done]
    assert steps == [("bind", True), ("binding", True), ("plug", True), ("configure", True),
                     ("active", True)]


@pytest.mark.parametrize(
    ("vif_type", "details"),
    [("bridge", {}), ("tap", {}), ("ovs", {"ovs_hybrid_plug": True})],
)
def test_attach_each_kernel_vif_type(vif_type: str, details: dict[str, Any]) -> None:
    ex = host_and_vm()
    server = FakeNeutron(unbound_port(), binder=binds_as(vif_type, details),
                         agent=wired_agent(ex))
    result = run_attach(server, ex, ifname="ens3")
    eth = ex.link("ens3", netns="vm1")
    assert eth is not None and eth.addresses == ("10.0.0.5/24",)
    tap = ex.link(TAP)
    assert tap is not None and tap.up
    if vif_type == "bridge":
        assert tap.master == "brq" + NET_ID[:11]
    assert result.port["status"] == "ACTIVE"


def test_attach_again_is_idempotent_and_does_not_rebind() -> None:
    ex = host_and_vm()
    server = FakeNeutron(unbound_port(), binder=binds_as("ovs", OVS), agent=wired_agent(ex))
    run_attach(server, ex)
    state = (ex.links(), ex.links(netns="vm1"), ex.ovs_ports("br-int"))
    server.calls.clear()
    run_attach(server, ex)
    assert "update_port" not in server.methods()  # already bound here, device fields set
    assert (ex.links(), ex.links(netns="vm1"), ex.ovs_ports("br-int")) == state


def test_existing_device_id_is_used_as_vm_uuid_and_kept() -> None:
    ex = host_and_vm()
    server = FakeNeutron(unbound_port(device_id="server-42", device_owner="compute:nova"),
                         binder=binds_as("ovs", OVS), agent=wired_agent(ex))
    result = run_attach(server, ex)
    assert server.calls[1] == ("update_port", {"binding:host_id": HOST})
    assert result.instance.uuid == "server-42"
    iface = ex.ovs_interface(TAP)
    assert iface is not None and iface.external_ids["vm-uuid"] == "server-42"


def test_no_wait_returns_before_active() -> None:
    ex = host_and_vm()
    server = FakeNeutron(unbound_port(), binder=binds_as("tap"), agent=lambda p: "DOWN")
    result = run_attach(server, ex, wait_active=False)
    assert result.port["status"] == "DOWN"


# --- binding problems ------------------------------------------------------------------------


def test_binding_failed_lists_every_reason_and_plugs_nothing() -> None:
    ex = host_and_vm()
    reasons = ["openvswitch: no live Open vSwitch agent on host compute-1",
               "linuxbridge: no live Linux bridge agent on host compute-1"]

    def fail(p: dict[str, Any], host: str) -> dict[str, Any]:
        return {"binding:vif_type": "binding_failed", "binding:diagnostics": reasons}

    server = FakeNeutron(unbound_port(), binder=fail)
    with pytest.raises(BindingFailed) as info:
        run_attach(server, ex)
    msg = str(info.value)
    for r in reasons:
        assert r in msg
    assert PORT_ID in msg and HOST in msg
    assert ex.links() == {} and ex.links(netns="vm1") == {}


def test_a_failed_binding_is_retried_by_setting_the_host_again() -> None:
    ex = host_and_vm()
    server = FakeNeutron(port("binding_failed", host=HOST), binder=binds_as("tap"),
                         agent=wired_agent(ex))
    run_attach(server, ex)
    assert ("update_port", {"binding:host_id": HOST, "device_id": instance_uuid_for(HOST, "vm1"),
                            "device_owner": DEVICE_OWNER}) in server.calls


def test_never_bound_times_out_with_port_not_bound() -> None:
    ex = host_and_vm()
    clock = FakeClock()
    server = FakeNeutron(unbound_port(), binder=lambda p, h: {"binding:vif_type": "unbound"})
    with pytest.raises(PortNotBound) as info:
        run_attach(server, ex, clock, timeout=10)
    assert "no binding after 10s" in str(info.value)
    assert clock.now - 1000.0 == pytest.approx(10.0)
    assert ex.links() == {}


def test_unbound_falls_back_to_the_configured_default_after_a_grace_period() -> None:
    ex = host_and_vm()
    clock = FakeClock()
    server = FakeNeutron(unbound_port(), binder=lambda p, h: {"binding:vif_type": "unbound"},
                         agent=lambda p: "ACTIVE")
    result = run_attach(server, ex, clock, timeout=30,
                        defaults=VifDefaults("bridge", {"bridge_name": "br-lab"}))
    assert clock.now - 1000.0 == pytest.approx(5.0)  # not the whole timeout
    assert result.vif.from_default and result.vif.vif_type == "bridge"
    tap = ex.link(TAP)
    assert tap is not None and tap.master == "br-lab"


def test_server_without_binding_extension_uses_the_default_at_once() -> None:
    ex = host_and_vm()
    clock = FakeClock()
    server = FakeNeutron(port(None), agent=lambda p: "ACTIVE")
    result = run_attach(server, ex, clock, defaults=VifDefaults("tap"))
    assert clock.slept == []
    assert result.vif.vif_type == "tap"


def test_port_rebound_elsewhere_during_attach() -> None:
    ex = host_and_vm()
    server = FakeNeutron(unbound_port(), binder=binds_as("tap"), bind_after=1)
    original = server.get_port

    def get_port(port_id: str) -> dict[str, Any]:
        p = original(port_id)
        if len(server.calls) > 2:
            p["binding:host_id"] = "compute-9"
        return p

    server.get_port = get_port  # type: ignore[method-assign]
    with pytest.raises(AttachError, match="re-bound to host 'compute-9'"):
        run_attach(server, ex)


def test_unsupported_vif_type_lists_supported() -> None:
    ex = host_and_vm()
    server = FakeNeutron(unbound_port(), binder=binds_as("hw_veb"))
    with pytest.raises(UnsupportedVifType) as info:
        run_attach(server, ex)
    assert info.value.supported == ("bridge", "ovs", "tap", "vhostuser")


def test_vhostuser_cannot_attach_to_a_namespace() -> None:
    server = FakeNeutron(unbound_port(),
                         binder=binds_as("vhostuser", {"vhostuser_socket": "/run/x.sock"}))
    with pytest.raises(InstanceNotSupported):
        run_attach(server, host_and_vm())


# --- after plugging ------------------------------------------------------------------------


def test_active_timeout_leaves_the_port_plugged() -> None:
    ex = host_and_vm()
    clock = FakeClock()
    events: list[Progress] = []
    server = FakeNeutron(unbound_port(), binder=binds_as("ovs", OVS), agent=lambda p: "DOWN")
    with pytest.raises(AttachTimeout) as info:
        run_attach(server, ex, clock, timeout=12, events=events)
    err = info.value
    assert err.step == "active" and err.status == "DOWN" and err.port_id == PORT_ID
    assert "has not reported it ACTIVE" in str(err)
    assert clock.now - 1000.0 == pytest.approx(12.0)
    assert ex.link(TAP) is not None  # plugged; re-running attach keeps waiting
    waiting = [e for e in events if e.step == "active" and not e.done]
    assert waiting and "DOWN" in waiting[0].message


def test_error_status_stops_waiting() -> None:
    ex = host_and_vm()
    server = FakeNeutron(unbound_port(), binder=binds_as("tap"), agent=lambda p: "ERROR")
    with pytest.raises(AttachError, match="status ERROR"):
        run_attach(server, ex)


def test_missing_vm_namespace_is_found_before_binding() -> None:
    ex = FakeExecutor("host1", ovs_bridges=["br-int"])
    server = FakeNeutron(unbound_port(), binder=binds_as("tap"))
    with pytest.raises(NamespaceNotFound, match="vm1"):
        run_attach(server, ex)
    assert server.calls == [] and ex.applied == []


def test_existing_ifname_in_the_vm_is_refused() -> None:
    ex = host_and_vm()
    ex.add_link("eth0", "veth", netns="vm1")
    server = FakeNeutron(unbound_port(), binder=binds_as("tap"))
    with pytest.raises(Exception, match="eth0 exists in vm1"):
        run_attach(server, ex)


def test_unreadable_subnet_is_an_error() -> None:
    server = FakeNeutron(unbound_port(), binder=binds_as("tap"), subnets_={})
    with pytest.raises(AttachError, match=f"cannot read subnet {SUBNET4}"):
        run_attach(server, host_and_vm())


def test_unreadable_network_only_loses_the_mtu() -> None:
    ex = host_and_vm()
    server = FakeNeutron(unbound_port(), binder=binds_as("tap"), agent=lambda p: "ACTIVE",
                         network_={"id": "other"})
    result = run_attach(server, ex)
    assert result.vif.mtu is None


def test_server_errors_propagate() -> None:
    class Down(FakeNeutron):
        def get_port(self, port_id: str) -> dict[str, Any]:
            raise ConnectionFailed("GET", "http://x/v2.0/ports/p", "refused")

    with pytest.raises(ConnectionFailed):
        run_attach(Down(unbound_port()), host_and_vm())


def test_plan_vm_config() -> None:
    vif = vif_from_port(port("tap", ipv6=True), network=network(1400), subnets=subnets())
    assert plan_vm_config(vif, "eth0") == [
        SetLink("lo"),
        SetLink("eth0", mtu=1400, address=MAC),
        AddAddress("eth0", "10.0.0.5", 24),
        AddAddress("eth0", "fd00:1::5", 64),
        SetDefaultRoute("10.0.0.1", "eth0"),
        SetDefaultRoute("fd00:1::1", "eth0"),
    ]


def test_plan_vm_config_without_gateway() -> None:
    subs = subnets()
    subs[SUBNET4]["gateway_ip"] = None
    vif = vif_from_port(port("tap"), subnets=subs)
    assert not any(isinstance(op, SetDefaultRoute) for op in plan_vm_config(vif, "eth0"))


# --- detach ------------------------------------------------------------------------------------


def attached(vif_type: str = "ovs", details: dict[str, Any] | None = None) -> tuple[
        FakeNeutron, FakeExecutor]:
    ex = host_and_vm()
    server = FakeNeutron(unbound_port(),
                         binder=binds_as(vif_type, OVS if details is None else details),
                         agent=wired_agent(ex))
    run_attach(server, ex)
    server.calls.clear()
    return server, ex


def run_detach(server: FakeNeutron, ex: FakeExecutor, **kw: Any) -> Any:
    clock = FakeClock()
    return detach(server, PORT_ID, HOST, executor=ex, clock=clock.clock, sleep=clock.sleep,
                  netns="vm1", **kw)


def test_detach_unplugs_clears_the_binding_and_sees_down() -> None:
    server, ex = attached()
    vif = vif_from_port(port("ovs", OVS))
    result = run_detach(server, ex)
    contract.assert_nothing_left(ex, vif)
    assert ex.links(netns="vm1") == {}  # eth0 went with its veth peer
    assert ex.ovs_ports("br-int") == {}
    assert server.calls[1] == ("update_port", {"binding:host_id": "", "device_owner": "",
                                               "device_id": ""})
    assert result.unbound and result.status == "DOWN" and result.warnings == ()
    assert server.port is not None and server.port["binding:vif_type"] == "unbound"


def test_detach_twice_is_fine() -> None:
    server, ex = attached("bridge", {})
    run_detach(server, ex)
    result = run_detach(server, ex)
    assert not result.unbound
    assert set(ex.links()) == {"brq" + NET_ID[:11]}


def test_detach_keeps_device_fields_it_did_not_set() -> None:
    ex = host_and_vm()
    server = FakeNeutron(unbound_port(device_id="srv", device_owner="compute:nova"),
                         binder=binds_as("tap"), agent=wired_agent(ex))
    run_attach(server, ex)
    server.calls.clear()
    run_detach(server, ex)
    assert ("update_port", {"binding:host_id": ""}) in server.calls


def test_detach_leaves_a_port_bound_to_another_host_bound() -> None:
    server, ex = attached("tap", {})
    assert server.port is not None
    server.port["binding:host_id"] = "compute-9"
    result = run_detach(server, ex)
    assert ex.link(TAP) is None
    assert "update_port" not in server.methods()
    assert not result.unbound
    assert "bound to host 'compute-9'" in result.warnings[0]


def test_detach_of_a_deleted_port_still_cleans_the_host() -> None:
    server, ex = attached("ovs", {"ovs_hybrid_plug": True})
    server.port = None
    result = run_detach(server, ex)
    assert not result.port_exists and result.vif is None
    contract.assert_nothing_left(ex, vif_from_port(port("ovs", {"ovs_hybrid_plug": True})))
    assert "no longer exists" in result.warnings[0]


def test_detach_of_an_unbound_port_removes_leftovers() -> None:
    server, ex = attached("bridge", {})
    assert server.port is not None
    server.port.update({"binding:vif_type": "unbound", "binding:host_id": ""})
    result = run_detach(server, ex)
    assert result.vif is None
    assert ex.link(TAP) is None


def test_detach_warns_when_the_port_stays_active() -> None:
    server, ex = attached("tap", {})
    server.agent = lambda p: "ACTIVE"
    result = run_detach(server, ex, timeout=3)
    assert result.unbound and result.status == "ACTIVE"
    assert "still ACTIVE" in result.warnings[0]
