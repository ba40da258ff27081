"""``netplex vif attach|detach``: output, hints and exit codes (fake server and host)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import netplex.cli.vif as cli
from netplex.client import ConnectionFailed
from netplex.vif.testing import FakeExecutor
from tests.unit.vif.factories import PORT_ID, FakeNeutron, binds_as, port

TAP = "tap" + PORT_ID[:11]
runner = CliRunner()


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> FakeExecutor:
    ex = FakeExecutor("h1", namespaces=["vm1"], ovs_bridges=["br-int"])
    monkeypatch.setattr(cli, "make_executor", lambda host_netns, ovs_db: ex)
    return ex


def serve(monkeypatch: pytest.MonkeyPatch, server: Any) -> list[str]:
    urls: list[str] = []

    def make_client(url: str) -> Any:
        urls.append(url)
        return server

    monkeypatch.setattr(cli, "make_client", make_client)
    return urls


def invoke(*args: str) -> Any:
    return runner.invoke(cli.app, list(args))


def test_attach_success(monkeypatch: pytest.MonkeyPatch, host: FakeExecutor) -> None:
    server = FakeNeutron(port("unbound", host=""), binder=binds_as("ovs"),
                         agent=lambda p: "ACTIVE" if host.link(TAP) else "DOWN")
    urls = serve(monkeypatch, server)
    r = invoke("attach", "--port", PORT_ID, "--host", "compute-1", "--netns", "vm1", "-v")
    assert r.exit_code == 0, r.output
    assert f"port {PORT_ID} attached: vm1:eth0 (ovs via {TAP} on compute-1), status ACTIVE" \
        in r.stdout
    assert "ovs add-port br-int" in r.stderr  # --verbose lists the operations
    assert urls == ["http://127.0.0.1:9696"]
    assert host.link("eth0", netns="vm1") is not None


def test_attach_uses_configured_host_and_url(monkeypatch: pytest.MonkeyPatch,
                                             host: FakeExecutor, tmp_path: Path) -> None:
    conf = tmp_path / "netplex.conf"
    conf.write_text("[DEFAULT]\nhost = lab-h1\n[agent]\nserver_url = http://10.1.1.1:9696\n")
    server = FakeNeutron(port("unbound", host=""), binder=binds_as("tap"),
                         agent=lambda p: "ACTIVE")
    urls = serve(monkeypatch, server)
    r = invoke("attach", "--port", PORT_ID, "--netns", "vm1", "-c", str(conf))
    assert r.exit_code == 0, r.output
    assert urls == ["http://10.1.1.1:9696"]
    assert server.port is not None and server.port["binding:host_id"] == "lab-h1"


def test_binding_failed_prints_every_reason_and_exits_3(
        monkeypatch: pytest.MonkeyPatch, host: FakeExecutor) -> None:
    reasons = ["openvswitch: no live agent on host compute-1",
               "linuxbridge: agent on compute-1 has no mapping for physnet9"]
    server = FakeNeutron(port("unbound", host=""),
                         binder=lambda p, h: {"binding:vif_type": "binding_failed",
                                              "binding:diagnostics": reasons})
    serve(monkeypatch, server)
    r = invoke("attach", "--port", PORT_ID, "--host", "compute-1", "--netns", "vm1")
    assert r.exit_code == cli.ExitCode.NOT_BOUND == 3
    for reason in reasons:
        assert reason in r.stderr
    assert "next:" in r.stderr and "agent list --host compute-1" in r.stderr.replace("\n", " ")


def test_unknown_vif_type_exits_6_with_supported_list(
        monkeypatch: pytest.MonkeyPatch, host: FakeExecutor) -> None:
    serve(monkeypatch, FakeNeutron(port("unbound", host=""), binder=binds_as("midonet")))
    r = invoke("attach", "--port", PORT_ID, "--host", "h", "--netns", "vm1")
    assert r.exit_code == 6
    assert "supported vif types: bridge, ovs, tap, vhostuser" in r.stderr.replace("\n", " ")


def test_active_timeout_exits_4(monkeypatch: pytest.MonkeyPatch, host: FakeExecutor) -> None:
    serve(monkeypatch, FakeNeutron(port("unbound", host=""), binder=binds_as("tap"),
                                   agent=lambda p: "DOWN"))
    r = invoke("attach", "--port", PORT_ID, "--host", "h", "--netns", "vm1", "--timeout", "0")
    assert r.exit_code == 4
    assert "ACTIVE" in r.stderr and "detach" in r.stderr


def test_missing_port_exits_5(monkeypatch: pytest.MonkeyPatch, host: FakeExecutor) -> None:
    server = FakeNeutron(port("unbound", host=""))
    server.port = None
    serve(monkeypatch, server)
    r = invoke("attach", "--port", PORT_ID, "--host", "h", "--netns", "vm1")
    assert r.exit_code == 5
    assert "not found" in r.stderr


def test_missing_namespace_exits_5(monkeypatch: pytest.MonkeyPatch, host: FakeExecutor) -> None:
    serve(monkeypatch, FakeNeutron(port("unbound", host=""), binder=binds_as("tap")))
    r = invoke("attach", "--port", PORT_ID, "--host", "h", "--netns", "nope")
    assert r.exit_code == 5
    assert "ip netns add nope" in r.stderr


def test_unreachable_server_exits_7(monkeypatch: pytest.MonkeyPatch, host: FakeExecutor) -> None:
    class Down(FakeNeutron):
        def get_port(self, port_id: str) -> dict[str, Any]:
            raise ConnectionFailed("GET", "http://127.0.0.1:9/v2.0/ports/x", "refused")

    serve(monkeypatch, Down(port("ovs")))
    r = invoke("attach", "--port", PORT_ID, "--host", "h", "--netns", "vm1",
               "--url", "http://127.0.0.1:9")
    assert r.exit_code == 7
    assert "http://127.0.0.1:9" in r.stderr


def test_bad_default_vif_type_exits_2(monkeypatch: pytest.MonkeyPatch, host: FakeExecutor,
                                      tmp_path: Path) -> None:
    conf = tmp_path / "c.conf"
    conf.write_text("[vif]\ndefault_vif_type = macvtap\n")
    serve(monkeypatch, FakeNeutron(port("ovs")))
    r = invoke("attach", "--port", PORT_ID, "--host", "h", "--netns", "vm1", "-c", str(conf))
    assert r.exit_code == 2
    assert "default_vif_type" in r.stderr


def test_detach(monkeypatch: pytest.MonkeyPatch, host: FakeExecutor) -> None:
    server = FakeNeutron(port("unbound", host=""), binder=binds_as("tap"),
                         agent=lambda p: "ACTIVE" if p["binding:host_id"] else "DOWN")
    serve(monkeypatch, server)
    assert invoke("attach", "--port", PORT_ID, "--host", "h", "--netns", "vm1").exit_code == 0
    r = invoke("detach", "--port", PORT_ID, "--host", "h")
    assert r.exit_code == 0, r.output
    assert f"port {PORT_ID} detached from h: status DOWN" in r.stdout
    assert host.link(TAP) is None and host.links(netns="vm1") == {}
    assert server.port is not None and server.port["binding:host_id"] == ""


def test_detach_of_deleted_port_warns(monkeypatch: pytest.MonkeyPatch, host: FakeExecutor) -> None:
    server = FakeNeutron(port("ovs"))
    server.port = None
    serve(monkeypatch, server)
    r = invoke("detach", "--port", PORT_ID, "--host", "h")
    assert r.exit_code == 0, r.output
    assert "no longer exists" in r.stderr
