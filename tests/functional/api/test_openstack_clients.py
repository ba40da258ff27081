"""The real clients work unchanged: python-openstackclient and openstacksdk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netplex.lab.server_process import ServerProcess

CONF = """
[ml2]
type_drivers = local,vxlan
project_network_types = vxlan
[ml2_type_vxlan]
vni_ranges = 1000:1999
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("osc"), CONF) as srv:
        yield srv


def osc(server: ServerProcess, *args: str) -> object:
    exe = Path(sys.executable).with_name("openstack")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    cmd = [str(exe), "--os-auth-type", "none", "--os-endpoint", server.url, *args]
    if args[-1] not in ("delete",) and args[1] not in ("delete", "set", "unset"):
        cmd += ["-f", "json"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, (cmd, r.stdout, r.stderr)
    return json.loads(r.stdout) if r.stdout.strip() else None


def test_openstack_cli_roundtrip(server: ServerProcess) -> None:
    net = osc(server, "network", "create", "--mtu", "1400", "cli-net")
    assert isinstance(net, dict) and net["name"] == "cli-net" and net["mtu"] == 1400
    sub = osc(
        server,
        "subnet",
        "create",
        "--network",
        "cli-net",
        "--subnet-range",
        "10.20.0.0/24",
        "--dns-nameserver",
        "10.20.0.53",
        "cli-sub",
    )
    assert isinstance(sub, dict) and sub["cidr"] == "10.20.0.0/24" and sub["gateway_ip"] == "10.20.0.1"
    port = osc(
        server,
        "port",
        "create",
        "--network",
        "cli-net",
        "--fixed-ip",
        "subnet=cli-sub,ip-address=10.20.0.10",
        "cli-port",
    )
    assert isinstance(port, dict) and "10.20.0.10" in json.dumps(port["fixed_ips"])
    nets = osc(server, "network", "list")
    assert isinstance(nets, list) and [n["Name"] for n in nets] == ["cli-net"]
    ports = osc(server, "port", "list", "--network", "cli-net")
    assert isinstance(ports, list) and len(ports) == 1
    osc(server, "port", "set", "--name", "renamed", "cli-port")
    shown = osc(server, "port", "show", "renamed")
    assert isinstance(shown, dict) and shown["name"] == "renamed"
    osc(server, "network", "set", "--tag", "blue", "cli-net")
    shown_net = osc(server, "network", "show", "cli-net")
    assert isinstance(shown_net, dict) and shown_net["tags"] == ["blue"]
    osc(server, "port", "delete", "renamed")
    osc(server, "subnet", "delete", "cli-sub")
    osc(server, "network", "delete", "cli-net")
    assert osc(server, "network", "list") == []


def test_openstacksdk(server: ServerProcess) -> None:
    import openstack

    conn = openstack.connect(auth_type="none", endpoint=server.url, network_endpoint_override=server.url)
    net = conn.network.create_network(name="sdk-net")
    sub = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.30.0.0/24", name="sdk-sub")
    port = conn.network.create_port(network_id=net.id, name="sdk-port")
    assert port.fixed_ips[0]["subnet_id"] == sub.id
    assert conn.network.get_port(port.id).mac_address == port.mac_address
    conn.network.update_port(port, name="sdk-port-2")
    assert [p.name for p in conn.network.ports(network_id=net.id)] == ["sdk-port-2"]
    assert conn.network.find_network("sdk-net").id == net.id
    conn.network.delete_port(port)
    conn.network.delete_subnet(sub)
    conn.network.delete_network(net)
    assert list(conn.network.networks()) == []
