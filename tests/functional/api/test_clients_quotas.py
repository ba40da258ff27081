"""openstacksdk reads and sets quotas against a real server (noauth, as an operator's tools)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from netplex.lab.server_process import ServerProcess

pytestmark = pytest.mark.functional

openstack = pytest.importorskip("openstack")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("dq"), "[quotas]\nquota_network = 7\n") as srv:
        yield srv


def test_sdk_quota_show_set_details_and_over_quota(server: ServerProcess) -> None:
    conn = openstack.connect(auth_type="none", endpoint=server.url, network_endpoint_override=server.url + "/",
                             load_yaml_config=False, load_envvars=False)
    q = conn.network.get_quota("dq-project")
    assert q.networks == 7 and q.ports == 500
    conn.network.update_quota("dq-project", networks=1)
    assert conn.network.get_quota("dq-project").networks == 1
    details = conn.network.get_quota("dq-project", details=True)
    assert details.networks["limit"] == 1 and details.networks["used"] == 0
    defaults = conn.network.get_quota_default("dq-project")
    assert defaults.networks == 7
    # the header-less sdk acts for fake_project_id: limit that one and exceed it
    conn.network.update_quota("fake_project_id", networks=1)
    net = conn.network.create_network(name="dq-a")
    assert net.project_id == "fake_project_id"
    with pytest.raises(openstack.exceptions.ConflictException) as exc:
        conn.network.create_network(name="dq-b")
    assert "Quota exceeded for resources: network" in str(exc.value)
    assert exc.value.request_id and exc.value.request_id.startswith("req-")
    conn.network.delete_quota("fake_project_id")
    conn.network.delete_network(net)
