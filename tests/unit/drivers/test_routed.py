"""The routed (calico-style) mechanism driver: what it binds, what it declines, and why."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from netplex.core.mech_manager import BindingResult, MechanismManager
from netplex.drivers.mechanisms.linuxbridge import LinuxbridgeMechanismDriver
from netplex.drivers.mechanisms.routed import (
    AGENT_TYPE_ROUTED,
    HOST_SIDE_MAC,
    RoutedMechanismDriver,
)
from tests.unit.api.conftest import BASE_CONF, Api
from tests.unit.api.conftest import make_api as make_api  # noqa: F401 - the fixture, reused
from tests.unit.drivers.mechanisms.fakes import agent, request, segment

NET = "5f0e8a4c-1b2d-4e6f-8a9b-0c1d2e3f4a5b"
DETAILS = {"port_filter": True, "mac_address": HOST_SIDE_MAC, "connectivity": "l3"}


def bind(*segments, agents=(), **kw) -> BindingResult:  # type: ignore[no-untyped-def]
    m = MechanismManager([("routed", RoutedMechanismDriver()),
                          ("linuxbridge", LinuxbridgeMechanismDriver())])
    m.initialize()
    return m.bind_port(request(segments, agents, network_id=NET, **kw))


def routed(host: str = "host-1", **kw: Any) -> object:
    return agent(AGENT_TYPE_ROUTED, host, **kw)


def test_declares_l3_connectivity_and_the_agent_it_binds_through() -> None:
    assert RoutedMechanismDriver.connectivity == "l3"
    assert RoutedMechanismDriver.agent_type == AGENT_TYPE_ROUTED


@pytest.mark.parametrize("seg", [segment("local", network_id=NET),
                                 segment("flat", "physnet1", network_id=NET)])
def test_binds_local_and_flat_as_tap(seg) -> None:  # type: ignore[no-untyped-def]
    result = bind(seg, agents=[routed()])
    assert result.vif_type == "tap"
    assert result.vif_details == DETAILS
    assert [lv.driver for lv in result.levels] == ["routed"]


@pytest.mark.parametrize("seg", [segment("vxlan", None, 1001, network_id=NET),
                                 segment("vlan", "physnet1", 10, network_id=NET)])
def test_declines_other_types_with_a_reason(seg) -> None:  # type: ignore[no-untyped-def]
    result = bind(seg, agents=[routed()])
    assert result.vif_type == "binding_failed"
    assert (f"routed: segment type {seg.network_type} is not routed "
            "(Routed L3 agent binds flat and local networks)") in result.diagnostics


def test_hosts_without_a_routed_agent_go_to_the_other_drivers() -> None:
    lb = agent("Linux bridge agent", "host-1")
    result = bind(segment("local", network_id=NET), agents=[lb])
    assert result.vif_type == "bridge"
    assert result.diagnostics[0] == "routed: no alive Routed L3 agent on host-1"
    dead = bind(segment("local", network_id=NET), agents=[routed(alive=False)])
    assert dead.vif_type == "binding_failed"
    assert any(d.startswith("routed: no alive Routed L3 agent on host-1 (agent") for d in dead.diagnostics)


def test_the_calico_alias_loads_the_same_driver() -> None:
    from netplex import config as cfgmod

    cfg = cfgmod.load(text="[ml2]\nmechanism_drivers = calico\n")
    m = MechanismManager.from_config(cfg)
    assert m.names == ("calico",)
    assert type(m.driver("calico")) is RoutedMechanismDriver


# --- through the API, on a real (SQLite) database ---------------------------------

CONF = BASE_CONF.replace("mechanism_drivers =", "mechanism_drivers = routed,linuxbridge")
ROUTED = {"agent_type": AGENT_TYPE_ROUTED, "binary": "netplex-routed-agent", "topic": "N/A",
          "configurations": {"tunneling_ip": "192.0.2.9", "tunnel_types": [], "route_distribution": "feed"}}


@pytest.fixture
def rapi(sqlite_url: str, make_api: Callable[..., Api]) -> Iterator[Api]:  # noqa: F811
    yield make_api(sqlite_url, CONF)


def test_binding_over_the_api_with_diagnostics(rapi: Api) -> None:
    rapi.ok("POST", "/v2.0/netplex/agent-report",
            {"agent": {**ROUTED, "host": "r1", "start_flag": True}}, status=200)
    local = rapi.net(**{"provider:network_type": "local"})
    rapi.subnet(local["id"])
    p = rapi.port(local["id"], **{"binding:host_id": "r1"})
    assert p["binding:vif_type"] == "tap"
    assert p["binding:vif_details"] == DETAILS
    vx = rapi.net()  # project network: vxlan, which routed hosts do not serve
    q = rapi.port(vx["id"], **{"binding:host_id": "r1"})
    assert q["binding:vif_type"] == "binding_failed"
    reasons = " | ".join(q["binding:diagnostics"])
    assert "routed: segment type vxlan is not routed" in reasons
    assert "linuxbridge: no alive Linux bridge agent on r1" in reasons
