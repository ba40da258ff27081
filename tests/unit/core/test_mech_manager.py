"""MechanismManager: loading, resource hooks, and the binding algorithm (no database)."""

from __future__ import annotations

import pytest

from netplex import config as cfgmod
from netplex.config import ConfigError
from netplex.core.mech_api import (
    AGENT_TYPE_OVS,
    MAX_BINDING_LEVELS,
    MechanismDriver,
    NetworkContext,
    PortContext,
)
from netplex.core.mech_manager import MechanismManager
from netplex.drivers.mechanisms.linuxbridge import LinuxbridgeMechanismDriver
from netplex.drivers.mechanisms.logger import LoggerMechanismDriver
from netplex.drivers.mechanisms.openvswitch import OpenvswitchMechanismDriver
from netplex.errors import InvalidInput, MechanismDriverError
from tests.unit.drivers.mechanisms.fakes import (
    CallbackDriver,
    FakeAllocator,
    LowerDriver,
    TorDriver,
    agent,
    request,
    segment,
)


def manager(*drivers: tuple[str, MechanismDriver]) -> MechanismManager:
    m = MechanismManager(list(drivers))
    m.initialize()
    return m


# --- loading -----------------------------------------------------------------------


def test_loads_entry_points_in_configured_order() -> None:
    cfg = cfgmod.load(text="[ml2]\nmechanism_drivers = logger, linuxbridge, openvswitch\n")
    m = MechanismManager.from_config(cfg)
    assert m.names == ("logger", "linuxbridge", "openvswitch")
    assert isinstance(m.driver("openvswitch"), OpenvswitchMechanismDriver)
    assert isinstance(m.driver("linuxbridge"), LinuxbridgeMechanismDriver)
    # [ovs] datapath_type reaches the driver through from_config.
    assert m.driver("openvswitch").datapath_type == "netdev"  # type: ignore[attr-defined]
    assert m.agent_types() == {
        "linuxbridge": "Linux bridge agent",
        "openvswitch": "Open vSwitch agent",
    }


def test_unknown_or_duplicate_driver_names_stop_startup() -> None:
    with pytest.raises(ConfigError, match="no mechanism driver named 'nope'.*installed: "):
        MechanismManager.from_names(["openvswitch", "nope"])
    with pytest.raises(ConfigError, match="'logger' twice"):
        MechanismManager.from_names(["logger", "openvswitch", "logger"])
    with pytest.raises(ConfigError):
        MechanismManager([("a", LoggerMechanismDriver()), ("a", LoggerMechanismDriver())])


def test_calls_before_initialize_are_refused() -> None:
    m = MechanismManager([("logger", LoggerMechanismDriver())])
    with pytest.raises(RuntimeError, match="initialize"):
        m.bind_port(request([segment("local")]))


# --- resource hooks -------------------------------------------------------------------


class Failing(MechanismDriver):
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def create_network_precommit(self, context: NetworkContext) -> None:
        raise self.exc

    def create_network_postcommit(self, context: NetworkContext) -> None:
        raise self.exc

    def update_network_postcommit(self, context: NetworkContext) -> None:
        raise self.exc

    def bind_port(self, context: PortContext) -> None:
        context.decline("never binds")


NET = NetworkContext(current={"id": "n1"}, segments=(segment("local"),))


def test_precommit_stops_at_first_failure_and_wraps_it() -> None:
    first, last = LoggerMechanismDriver(), LoggerMechanismDriver()
    m = manager(("first", first), ("bad", Failing(ValueError("no VLANs on the switch"))),
                ("last", last))
    with pytest.raises(MechanismDriverError) as err:
        m.call_precommit("create_network_precommit", NET)
    assert "bad.create_network_precommit failed: no VLANs on the switch" in str(err.value)
    assert first.methods() == ["create_network_precommit"]
    assert last.methods() == []


def test_precommit_netplex_errors_keep_their_status() -> None:
    m = manager(("bad", Failing(InvalidInput(error_message="mtu too small"))))
    with pytest.raises(InvalidInput):
        m.call_precommit("create_network_precommit", NET)


def test_postcommit_calls_everyone_then_raises_on_create_only() -> None:
    after = LoggerMechanismDriver()
    m = manager(("bad", Failing(RuntimeError("controller down"))), ("after", after))
    with pytest.raises(MechanismDriverError, match="bad: RuntimeError: controller down"):
        m.call_postcommit("create_network_postcommit", NET)
    assert after.methods() == ["create_network_postcommit"]
    failures = m.call_postcommit("update_network_postcommit", NET)
    assert [(f.driver, f.method) for f in failures] == [("bad", "update_network_postcommit")]
    with pytest.raises(ValueError):
        m.call_postcommit("create_network_precommit", NET)


def test_implements_reports_overridden_hooks_only() -> None:
    m = manager(("ovs", OpenvswitchMechanismDriver()))
    assert not m.implements("update_port_precommit")
    m2 = manager(("logger", LoggerMechanismDriver()))
    assert m2.implements("update_port_precommit")


# --- binding -------------------------------------------------------------------------


def test_first_binding_driver_wins_and_later_ones_are_not_asked() -> None:
    logger_after = LoggerMechanismDriver()
    m = manager(
        ("openvswitch", OpenvswitchMechanismDriver()),
        ("linuxbridge", LinuxbridgeMechanismDriver()),
        ("logger", logger_after),
    )
    vx = segment("vxlan", None, 1001)
    req = request(
        [vx],
        [
            agent(AGENT_TYPE_OVS, "host-1", tunnel_types=["vxlan"]),
            agent("Linux bridge agent", "host-1", tunnel_types=["vxlan"]),
        ],
    )
    result = m.bind_port(req)
    assert result.bound and result.vif_type == "ovs"
    assert [(lv.level, lv.driver, lv.segment_id) for lv in result.levels] == [
        (0, "openvswitch", vx.id)
    ]
    assert result.diagnostics == (
        f"openvswitch: bound segment vxlan:1001 ({vx.id}) with vif_type ovs",
    )
    assert logger_after.calls == []


def test_every_driver_that_declines_leaves_a_reason() -> None:
    m = manager(
        ("logger", LoggerMechanismDriver()),
        ("openvswitch", OpenvswitchMechanismDriver()),
        ("linuxbridge", LinuxbridgeMechanismDriver()),
        ("silent", CallbackDriver(lambda ctx: None)),
    )
    result = m.bind_port(request([segment("vxlan", None, 5)], host="host-3"))
    assert result.vif_type == "binding_failed"
    assert result.levels == ()
    assert list(result.diagnostics) == [
        "logger: records calls only; never binds",
        "openvswitch: no alive Open vSwitch agent on host-3",
        "linuxbridge: no alive Linux bridge agent on host-3",
        "silent: did not bind and gave no reason",
    ]


def test_driver_exception_is_a_diagnostic_and_the_next_driver_is_tried() -> None:
    def boom(ctx: PortContext) -> None:
        raise KeyError("bridge_mappings")

    m = manager(("broken", CallbackDriver(boom)), ("openvswitch", OpenvswitchMechanismDriver()))
    result = m.bind_port(
        request([segment("local")], [agent(AGENT_TYPE_OVS, "host-1")])
    )
    assert result.vif_type == "ovs"
    assert result.diagnostics[0] == "broken: failed: KeyError: 'bridge_mappings'"


def test_bad_set_binding_arguments_are_reported_not_bound() -> None:
    m = manager(
        ("wrong-seg", CallbackDriver(lambda c: c.set_binding("nope", "ovs", {}))),
        ("wrong-vif", CallbackDriver(
            lambda c: c.set_binding(c.segments_to_bind[0].id, "binding_failed", {}))),
    )
    result = m.bind_port(request([segment("local")]))
    assert result.vif_type == "binding_failed"
    assert "wrong-seg: failed: ValueError: segment nope is not one of" in result.diagnostics[0]
    assert "is not a vif_type a driver can bind with" in result.diagnostics[1]


def test_binding_methods_outside_bind_port_raise() -> None:
    ctx = PortContext(current={"id": "p"}, original=None, network=NET)
    with pytest.raises(RuntimeError):
        ctx.decline("x")
    with pytest.raises(RuntimeError):
        _ = ctx.segments_to_bind


def test_no_drivers_or_no_segments_fail_with_a_reason() -> None:
    empty = MechanismManager([])
    empty.initialize()
    assert empty.bind_port(request([segment("local")])).diagnostics == (
        "no mechanism drivers are configured ([ml2] mechanism_drivers)",
    )
    m = manager(("openvswitch", OpenvswitchMechanismDriver()))
    result = m.bind_port(request([]))
    assert result.diagnostics == ("network net-0123456789abcdef has no segments to bind",)


def test_hierarchical_binding_keeps_levels_in_order() -> None:
    alloc = FakeAllocator()
    m = manager(("tor", TorDriver()), ("lower", LowerDriver(["host-1"])))
    vx = segment("vxlan", None, 7000)
    result = m.bind_port(request([vx]), alloc)
    assert result.vif_type == "ovs"
    dyn = result.dynamic_segments[0]
    assert (dyn.network_type, dyn.physical_network, dyn.is_dynamic) == ("vlan", "physnet1", True)
    assert result.vif_details == {"vlan": dyn.segmentation_id}
    assert [(lv.level, lv.driver, lv.segment_id) for lv in result.levels] == [
        (0, "tor", vx.id),
        (1, "lower", dyn.id),
    ]
    assert result.diagnostics[0].startswith("tor: bound segment vxlan:7000")
    assert "continued at level 1 with vlan:physnet1:100" in result.diagnostics[0]
    # Level 1 offers the dynamic segment to every driver in order again.
    assert result.diagnostics[1] == "tor (level 1): no vxlan segment to map onto a VLAN"
    assert result.diagnostics[2].startswith("lower (level 1): bound segment vlan:physnet1:100")
    assert alloc.released == []


def test_failed_lower_level_releases_the_dynamic_segment_and_tries_next_driver() -> None:
    alloc = FakeAllocator()
    m = manager(
        ("tor", TorDriver()),
        ("lower", LowerDriver(["elsewhere"])),
        ("openvswitch", OpenvswitchMechanismDriver()),
    )
    vx = segment("vxlan", None, 7000)
    result = m.bind_port(
        request([vx], [agent(AGENT_TYPE_OVS, "host-1", tunnel_types=["vxlan"])]), alloc
    )
    # The OVS driver got the level-0 segment after the hierarchy failed below.
    assert result.vif_type == "ovs"
    assert [lv.driver for lv in result.levels] == ["openvswitch"]
    assert alloc.released == ["dyn-100"] and alloc.allocated == {}
    assert result.dynamic_segments == ()
    assert (
        "lower (level 1): host host-1 is not cabled to a managed switch" in result.diagnostics
    )
    assert any(d.startswith("tor: nothing bound below segment vxlan:7000") for d in
               result.diagnostics)


def test_a_driver_never_binds_the_same_segment_twice_down_the_levels() -> None:
    # A driver that always continues onto the same segment would loop forever.
    def again(ctx: PortContext) -> None:
        s = ctx.segments_to_bind[0]
        ctx.continue_binding(s.id, [s])

    m = manager(("loop", CallbackDriver(again)))
    result = m.bind_port(request([segment("local")]))
    assert result.vif_type == "binding_failed"
    assert len(result.diagnostics) == 2  # continued once, then nobody left below


def test_levels_are_capped() -> None:
    counter = {"n": 0}

    def deeper(ctx: PortContext) -> None:
        counter["n"] += 1
        s = ctx.segments_to_bind[0]
        nxt = segment("vlan", "p", counter["n"], id=f"s{counter['n']}")
        ctx.continue_binding(s.id, [nxt])

    m = manager(("deep", CallbackDriver(deeper)))
    result = m.bind_port(request([segment("vlan", "p", 0, id="s0")]))
    assert result.vif_type == "binding_failed"
    assert counter["n"] == MAX_BINDING_LEVELS
    assert f"binding gave up: more than {MAX_BINDING_LEVELS} levels" in result.diagnostics
