"""Ansible's openstack.cloud collection runs a tenant playbook against a real server; a
second run reports no change.

The collection comes from the ``ansible`` PyPI package (scripts/setup.sh unpacks only
``openstack.cloud`` into ``.venv/share/netplex-ansible``; galaxy.ansible.com is not needed).
Pinned: ansible-core 2.18 + openstack.cloud 2.5.0 (ansible 11.x) with openstacksdk 4.x.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netplex.lab.server_process import ServerProcess

pytestmark = pytest.mark.functional

COLLECTIONS = Path(os.environ.get("NETPLEX_ANSIBLE_COLLECTIONS",
                                  Path(sys.prefix) / "share" / "netplex-ansible"))
PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")

if not PLAYBOOK.exists() or not (COLLECTIONS / "ansible_collections" / "openstack" / "cloud").is_dir():
    pytest.skip("ansible-core or openstack.cloud not installed (scripts/setup.sh)", allow_module_level=True)

PLAY = """
- hosts: localhost
  gather_facts: false
  vars:
    cloud: dansible
  tasks:
    - name: network
      openstack.cloud.network:
        cloud: "{{ cloud }}"
        name: ans-net
        state: present
    - name: subnet
      openstack.cloud.subnet:
        cloud: "{{ cloud }}"
        name: ans-sub
        network_name: ans-net
        cidr: 10.77.0.0/24
        dns_nameservers: [10.77.0.53]
        state: present
      register: sub
    - name: port with a fixed IP
      openstack.cloud.port:
        cloud: "{{ cloud }}"
        name: ans-port
        network: ans-net
        fixed_ips:  # the module compares this list with the port's as is: give both keys
          - ip_address: 10.77.0.10
            subnet_id: "{{ sub.subnet.id }}"
        binding_vnic_type: normal
        binding_profile: {}
        state: present
    - name: read them back
      openstack.cloud.port_info:
        cloud: "{{ cloud }}"
        port: ans-port
      register: info
    - assert:
        that:
          - info.ports | length == 1
          - info.ports[0].fixed_ips[0].ip_address == "10.77.0.10"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("dans")) as srv:
        yield srv


def test_playbook_runs_and_is_idempotent(server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "clouds.yaml").write_text(
        "clouds:\n  dansible:\n    auth_type: none\n"
        f"    auth:\n      endpoint: {server.url}\n"
        f"    network_endpoint_override: {server.url}/\n")
    (tmp_path / "play.yml").write_text(PLAY)
    # openstack.cloud 2.5.0 (the newest the ansible package bundles) reads
    # ``openstack.version`` after a bare ``import openstack``; openstacksdk 4.x no longer
    # imports that submodule in its __init__, so every module fails with "module
    # 'openstack' has no attribute 'version'". A one-line sitecustomize imports it: the
    # shim users of this pair need too (or an older openstacksdk).
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text("import openstack.version  # noqa: F401\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_CLIENT_CONFIG_FILE=str(tmp_path / "clouds.yaml"), ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_HOME=str(tmp_path / "home"),
               PYTHONPATH=os.pathsep.join([str(shim), *filter(None, [os.environ.get("PYTHONPATH")])]))

    def run() -> str:
        r = subprocess.run([str(PLAYBOOK), "-i", "localhost,", "-c", "local", str(tmp_path / "play.yml")],
                           capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
        return r.stdout

    first = run()
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=3\b", first), first[-1500:]
    second = run()
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0\b", second), second[-1500:]
