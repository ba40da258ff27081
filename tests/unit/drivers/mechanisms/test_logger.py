"""The logger driver records calls and never binds."""

from __future__ import annotations

import logging

import pytest

from netplex.core.mech_api import NetworkContext, PortBindingInfo, PortContext
from netplex.core.mech_manager import MechanismManager
from netplex.drivers.mechanisms.logger import LoggerMechanismDriver
from tests.unit.drivers.mechanisms.fakes import request, segment


def test_records_calls_with_current_and_original(caplog: pytest.LogCaptureFixture) -> None:
    drv = LoggerMechanismDriver()
    m = MechanismManager([("logger", drv)])
    m.initialize()
    net = NetworkContext(current={"id": "n", "name": "new"}, original={"id": "n", "name": "old"})
    with caplog.at_level(logging.INFO, logger="netplex.drivers.mechanisms.logger"):
        m.call_precommit("update_network_precommit", net)
        m.call_postcommit("update_network_postcommit", net)
    port = PortContext(
        current={"id": "p"},
        original={"id": "p"},
        network=net,
        binding=PortBindingInfo(host="h2", vif_type="ovs"),
        original_binding=PortBindingInfo(host="h1", vif_type="bridge"),
    )
    m.call_precommit("update_port_precommit", port)
    result = m.bind_port(request([segment("local")]))

    assert drv.methods() == [
        "update_network_precommit",
        "update_network_postcommit",
        "update_port_precommit",
        "bind_port",
    ]
    first, _, port_call, bind_call = drv.calls
    assert first.current["name"] == "new" and first.original is not None
    assert first.original["name"] == "old"
    assert (port_call.host, port_call.original_host) == ("h2", "h1")
    assert (port_call.vif_type, port_call.original_vif_type) == ("ovs", "bridge")
    assert bind_call.segments_to_bind == ("seg-local-None-None",)
    assert result.diagnostics == ("logger: records calls only; never binds",)
    assert "update_network_precommit: current={'id': 'n', 'name': 'new'}" in caplog.text
    drv.clear()
    assert drv.calls == []


def test_history_is_bounded() -> None:
    from netplex.drivers.mechanisms.logger import LoggedCall, LoggerMechanismDriver

    driver = LoggerMechanismDriver(history=3)
    for i in range(5):
        driver._record(LoggedCall(method=f"m{i}", current={}, original=None))
    assert driver.methods() == ["m2", "m3", "m4"]
