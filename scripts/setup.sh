#!/usr/bin/env bash
# Installs everything Netplex needs on a fresh Debian machine (run as root):
# system packages (iproute2, ping, tcpdump for the tests, Open vSwitch, PostgreSQL, nftables, dnsmasq,
# BIRD 2 and conntrack for the routed, security-group and DHCP data planes) and a
# virtualenv in .venv with Netplex and its test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
for p in iproute2 iputils-ping tcpdump openvswitch-switch postgresql nftables dnsmasq-base bird2 conntrack; do
    dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
    echo "==> installing system packages: ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PY" -m venv .venv
fi
echo "==> installing Python dependencies into .venv"
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
# Ansible's openstack.cloud collection for tests/functional/api/test_clients_ansible.py:
# ansible-core 2.18 + openstack.cloud 2.5.0, taken from the `ansible` 11.x wheel on PyPI
# (galaxy.ansible.com may be unreachable); only that collection is unpacked.
if [ ! -d .venv/share/netplex-ansible/ansible_collections/openstack/cloud ]; then
    echo "==> installing ansible-core and the openstack.cloud collection"
    .venv/bin/pip install -q 'ansible-core>=2.18,<2.19'
    tmp=$(mktemp -d)
    .venv/bin/pip download -q --no-deps 'ansible>=11,<12' -d "$tmp"
    mkdir -p .venv/share/netplex-ansible
    .venv/bin/python -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith("ansible_collections/openstack/cloud/")])' "$tmp"/ansible-*.whl .venv/share/netplex-ansible
    rm -rf "$tmp"
fi
echo "==> setup done"
