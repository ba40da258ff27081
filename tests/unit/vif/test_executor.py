"""LinuxExecutor's ovs-vsctl command lines (the contract with an external tool)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from netplex.vif import ExecutionError, LinuxExecutor
from netplex.vif.ops import OvsAddPort, OvsDelPort

IDS = (("iface-id", "p1"), ("vm-uuid", 'we"ird'))


@pytest.fixture
def argvs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    seen: list[list[str]] = []

    def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        seen.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(subprocess, "run", run)
    return seen


def test_add_port_is_idempotent_tags_only_new_ports_and_quotes(argvs: list[list[str]]) -> None:
    LinuxExecutor().apply([OvsAddPort("br-int", "tapx", IDS, initial_tag=4095, initial_protected=True)])
    assert argvs == [[
        "ovs-vsctl", "--timeout=10", "--may-exist", "add-port", "br-int", "tapx", "tag=4095",
        "protected=true", "--", "set", "Interface", "tapx", 'external_ids:iface-id="p1"',
        'external_ids:vm-uuid="we\\"ird"',
    ]]


def test_socket_precedence(argvs: list[list[str]]) -> None:
    LinuxExecutor().apply([OvsDelPort("tapx", db="unix:/from/details")])
    LinuxExecutor(ovs_db="unix:/explicit").apply([OvsDelPort("tapx", db="unix:/from/details")])
    assert argvs[0][:2] == ["ovs-vsctl", "--db=unix:/from/details"]
    assert argvs[1][:2] == ["ovs-vsctl", "--db=unix:/explicit"]
    assert argvs[1][2:] == ["--timeout=10", "--if-exists", "del-port", "tapx"]


def test_missing_bridge_gets_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 1, "", "ovs-vsctl: no bridge named br-int\n")

    monkeypatch.setattr(subprocess, "run", run)
    op = OvsAddPort("br-int", "tapx", IDS)
    with pytest.raises(ExecutionError, match="the OVS agent creates bridge br-int") as info:
        LinuxExecutor().apply([op])
    assert info.value.op == op


def test_ovs_vsctl_not_installed() -> None:
    with pytest.raises(ExecutionError, match="not installed"):
        LinuxExecutor(vsctl="/nonexistent/ovs-vsctl").apply([OvsDelPort("tapx")])
