"""The Open vSwitch driver: which segments it binds for which agent, and why not."""

from __future__ import annotations

import pytest

from netplex.core.mech_api import AGENT_TYPE_OVS
from netplex.core.mech_manager import BindingResult, MechanismManager
from netplex.drivers.mechanisms.openvswitch import OpenvswitchMechanismDriver
from tests.unit.drivers.mechanisms.fakes import agent, request, segment


def bind(*segments, agents=(), **kw) -> BindingResult:  # type: ignore[no-untyped-def]
    m = MechanismManager([("openvswitch", OpenvswitchMechanismDriver())])
    m.initialize()
    return m.bind_port(request(segments, agents, **kw))


def ovs(**conf) -> object:  # type: ignore[no-untyped-def]
    return agent(AGENT_TYPE_OVS, "host-3", **conf)


@pytest.mark.parametrize(
    ("seg", "conf"),
    [
        (segment("local"), {}),
        (segment("flat", "physnet1"), {"bridge_mappings": {"physnet1": "br-ex"}}),
        (segment("vlan", "physnet1", 100), {"bridge_mappings": {"physnet1": "br-ex"}}),
        (segment("vxlan", None, 1001), {"tunnel_types": ["vxlan"]}),
        (segment("gre", None, 9), {"tunnel_types": ["vxlan", "gre"]}),
        (segment("geneve", None, 9), {"tunnel_types": ["geneve"]}),
    ],
)
def test_binds_what_the_agent_serves(seg, conf) -> None:  # type: ignore[no-untyped-def]
    result = bind(seg, agents=[ovs(**conf)])
    assert result.vif_type == "ovs"
    assert result.levels[0].segment_id == seg.id


def test_vif_details_follow_the_agent() -> None:
    result = bind(segment("local"), agents=[ovs()])
    assert result.vif_details == {
        "port_filter": True,
        "ovs_hybrid_plug": False,
        "bridge_name": "br-int",
        "datapath_type": "system",
        "connectivity": "l2",
    }
    result = bind(
        segment("local"), agents=[ovs(integration_bridge="br-x", datapath_type="netdev")]
    )
    assert result.vif_details["bridge_name"] == "br-x"
    assert result.vif_details["datapath_type"] == "netdev"


@pytest.mark.parametrize(
    ("seg", "conf", "reason"),
    [
        (segment("gre", None, 5), {"tunnel_types": ["vxlan"]},
         "openvswitch: segment type gre not in agent tunnel_types [vxlan]"),
        (segment("vxlan", None, 5), {},
         "openvswitch: segment type vxlan not in agent tunnel_types []"),
        (segment("vlan", "physnet2", 5), {"bridge_mappings": {"physnet1": "br-ex"}},
         "openvswitch: agent on host-3 has no mapping for physical network physnet2"),
        (segment("flat", "physnet2"), {"bridge_mappings": "physnet1:br-ex"},
         "openvswitch: agent on host-3 has no mapping for physical network physnet2"),
    ],
)
def test_declines_with_a_precise_reason(seg, conf, reason) -> None:  # type: ignore[no-untyped-def]
    result = bind(seg, agents=[ovs(**conf)], host="host-3")
    assert result.vif_type == "binding_failed"
    assert list(result.diagnostics) == [reason]


def test_tries_each_segment_of_a_multi_segment_network() -> None:
    a, b = segment("vlan", "physnet9", 7), segment("vxlan", None, 77)
    result = bind(a, b, agents=[ovs(tunnel_types=["vxlan"])], host="host-3")
    assert result.levels[0].segment_id == b.id
    assert result.diagnostics[0] == (
        "openvswitch: agent on host-3 has no mapping for physical network physnet9"
    )


def test_dead_disabled_missing_agents_and_other_vnic_types() -> None:
    result = bind(segment("local"), host="host-3")
    assert result.diagnostics == ("openvswitch: no alive Open vSwitch agent on host-3",)
    result = bind(segment("local"), agents=[agent(AGENT_TYPE_OVS, "host-3", alive=False)],
                  host="host-3")
    assert result.vif_type == "binding_failed"
    assert result.diagnostics[0].startswith(
        "openvswitch: no alive Open vSwitch agent on host-3 (agent host-3-Open vSwitch agent"
    )
    result = bind(segment("local"),
                  agents=[agent(AGENT_TYPE_OVS, "host-3", admin_state_up=False)], host="host-3")
    assert result.vif_type == "binding_failed"
    assert "Open vSwitch agent on host-3 is administratively down" in result.diagnostics[0]
    result = bind(segment("local"), agents=[ovs()], vnic_type="direct")
    assert result.diagnostics == (
        "openvswitch: vnic_type direct is not supported (supported: normal)",
    )
    # Other agent types on the host do not count.
    result = bind(segment("local"), agents=[agent("Linux bridge agent", "host-3")],
                  host="host-3")
    assert result.vif_type == "binding_failed"
