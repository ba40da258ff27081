"""A stock ML2/Open vSwitch ``neutron.conf`` + ``ml2_conf.ini`` pair starts ``netplex server`` unchanged.

The two files are written from Neutron's documented sample options (the install guide's
controller node, ML2 with Open vSwitch and l2population); only a third file names the
port and data directory of this test. The server must start with no error and no
"unknown option" line, and say for every option it does not act on why.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netplex.lab.server_process import free_port

pytestmark = pytest.mark.functional

NEUTRON_CONF = """\
[DEFAULT]
core_plugin = ml2
service_plugins = router
allow_overlapping_ips = true
transport_url = rabbit://openstack:RABBIT_PASS@controller
auth_strategy = keystone
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
dhcp_agent_notification = true
allow_bulk = true
ipam_driver = internal
dns_domain = openstacklocal.
filter_validation = true
global_physnet_mtu = 1500
debug = false
log_dir = /var/log/neutron
rpc_workers = 1
api_workers = 1
dhcp_agents_per_network = 1
router_distributed = false
l3_ha = false

[database]
max_retries = 10
max_pool_size = 10

[keystone_authtoken]
www_authenticate_uri = http://controller:5000
auth_url = http://controller:5000
memcached_servers = controller:11211
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = neutron
password = NEUTRON_PASS

[nova]
auth_url = http://controller:5000
auth_type = password
project_domain_name = Default
user_domain_name = Default
region_name = RegionOne
project_name = service
username = nova
password = NOVA_PASS

[oslo_concurrency]
lock_path = /var/lib/neutron/tmp

[oslo_messaging_rabbit]
rabbit_ha_queues = false

[oslo_messaging_notifications]
driver = messagingv2

[oslo_policy]
policy_file = policy.yaml

[agent]
root_helper = sudo neutron-rootwrap /etc/neutron/rootwrap.conf
report_interval = 30

[quotas]
quota_network = 100
quota_subnet = 100
quota_port = 500
quota_router = 10
quota_floatingip = 50
quota_security_group = 10
quota_security_group_rule = 100
default_quota = -1
quota_driver = neutron.db.quota.driver_nolock.DbQuotaNoLockDriver
"""

ML2_CONF = """\
[ml2]
type_drivers = flat,vlan,vxlan
tenant_network_types = vxlan
mechanism_drivers = openvswitch,l2population
extension_drivers = port_security

[ml2_type_flat]
flat_networks = provider

[ml2_type_vlan]
network_vlan_ranges = provider:100:199

[ml2_type_vxlan]
vni_ranges = 1:1000

[securitygroup]
enable_security_group = true
enable_ipset = true
firewall_driver = openvswitch

[ovs]
bridge_mappings = provider:br-provider
local_ip = 10.0.0.11
tunnel_bridge = br-tun

[agent]
tunnel_types = vxlan
l2_population = true
arp_responder = true
prevent_arp_spoofing = true
"""


def _get(port: int, path: str) -> tuple[int, dict[str, str], object]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", path)
    r = c.getresponse()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(r.read() or b"null")


def test_stock_ml2_ovs_files_start_the_server(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "neutron.conf").write_text(NEUTRON_CONF)
    (tmp_path / "ml2_conf.ini").write_text(ML2_CONF)
    (tmp_path / "local.conf").write_text(f"[DEFAULT]\nbind_port = {port}\nstate_path = {tmp_path}\n")
    log = tmp_path / "server.log"
    exe = Path(sys.executable).with_name("netplex")
    cmd = [str(exe), "server"]
    for name in ("neutron.conf", "ml2_conf.ini", "local.conf"):
        cmd += ["--config", str(tmp_path / name)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        status = 0
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                status, _, _ = _get(port, "/v2.0/networks")
                break
            except OSError:
                time.sleep(0.2)
        assert status == 200, log.read_text()[-3000:]
        text = log.read_text()
        assert "unknown option" not in text, text
        assert " ERROR " not in text and "Traceback" not in text, text
        assert "accepted, no effect because Netplex's host agents always populate" in text
        assert "[keystone_authtoken]: accepted, no effect because Keystone is not supported yet" in text
        assert "auth_strategy = keystone: accepted, NOT enforced" in text
        assert "[DEFAULT] notify_nova_on_port_status_changes: accepted, no effect because" in text
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
