"""The Linux bridge driver."""

from __future__ import annotations

import pytest

from netplex.core.mech_api import AGENT_TYPE_LINUXBRIDGE
from netplex.core.mech_manager import BindingResult, MechanismManager
from netplex.drivers.mechanisms.linuxbridge import LinuxbridgeMechanismDriver, bridge_name
from tests.unit.drivers.mechanisms.fakes import agent, request, segment

NET = "5f0e8a4c-1b2d-4e6f-8a9b-0c1d2e3f4a5b"


def bind(*segments, agents=(), **kw) -> BindingResult:  # type: ignore[no-untyped-def]
    m = MechanismManager([("linuxbridge", LinuxbridgeMechanismDriver())])
    m.initialize()
    return m.bind_port(request(segments, agents, network_id=NET, **kw))


def lb(**conf) -> object:  # type: ignore[no-untyped-def]
    return agent(AGENT_TYPE_LINUXBRIDGE, "host-3", **conf)


def test_bridge_name_fits_ifnamsiz() -> None:
    assert bridge_name(NET) == "brq5f0e8a4c-1b"
    assert len(bridge_name(NET)) == 14


@pytest.mark.parametrize(
    ("seg", "conf"),
    [
        (segment("local", network_id=NET), {}),
        (segment("vlan", "physnet1", 10, network_id=NET),
         {"interface_mappings": {"physnet1": "eth1"}}),
        (segment("flat", "physnet2", network_id=NET), {"bridge_mappings": {"physnet2": "br0"}}),
        (segment("vxlan", None, 1001, network_id=NET), {"tunnel_types": ["vxlan"]}),
    ],
)
def test_binds_what_the_agent_serves(seg, conf) -> None:  # type: ignore[no-untyped-def]
    result = bind(seg, agents=[lb(**conf)])
    assert result.vif_type == "bridge"
    assert result.vif_details == {
        "port_filter": True,
        "bridge_name": "brq5f0e8a4c-1b",
        "connectivity": "l2",
    }


@pytest.mark.parametrize(
    ("seg", "conf", "reason"),
    [
        (segment("vlan", "physnet2", 10, network_id=NET),
         {"interface_mappings": {"physnet1": "eth1"}},
         "linuxbridge: agent on host-3 has no mapping for physical network physnet2"),
        (segment("vxlan", None, 10, network_id=NET), {},
         "linuxbridge: segment type vxlan not in agent tunnel_types []"),
        (segment("gre", None, 10, network_id=NET), {"tunnel_types": ["vxlan"]},
         "linuxbridge: segment type gre not in agent tunnel_types [vxlan]"),
        # Linux bridge has no GRE even when an agent claims it.
        (segment("gre", None, 10, network_id=NET), {"tunnel_types": ["gre"]},
         "linuxbridge: segment type gre is not supported by Linux bridge agent"),
    ],
)
def test_declines_with_a_precise_reason(seg, conf, reason) -> None:  # type: ignore[no-untyped-def]
    result = bind(seg, agents=[lb(**conf)], host="host-3")
    assert list(result.diagnostics) == [reason]


def test_no_agent_and_wrong_vnic_type() -> None:
    assert bind(segment("local", network_id=NET), host="host-c").diagnostics == (
        "linuxbridge: no alive Linux bridge agent on host-c",
    )
    result = bind(segment("local", network_id=NET), agents=[lb()], vnic_type="macvtap")
    assert result.diagnostics == (
        "linuxbridge: vnic_type macvtap is not supported (supported: normal)",
    )
