"""Neutron's quotas and quota_details API, enforcement on create, and exactness under races."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tests.unit.api.conftest import BASE_CONF, Api


def test_defaults_are_the_configured_ones(api: Api) -> None:
    q = api.ok("GET", "/v2.0/quotas/p1")["quota"]
    assert q["network"] == 100 and q["subnet"] == 100 and q["port"] == 500
    assert q["security_group"] == 10 and q["security_group_rule"] == 100
    assert q["router"] == 10 and q["floatingip"] == 50
    d = api.ok("GET", "/v2.0/quotas/p1/default")["quota"]
    assert d["port"] == 500 and d["project_id"] == "p1"


def test_put_show_details_list_delete(api: Api) -> None:
    q = api.ok("PUT", "/v2.0/quotas/p1", {"quota": {"network": 3, "port": -1}})["quota"]
    assert q["network"] == 3 and q["port"] == -1
    net = api.net(project="p1")
    api.port(net["id"], project="p1")
    d = api.ok("GET", "/v2.0/quotas/p1/details", project="p1")["quota"]
    assert d["network"] == {"limit": 3, "used": 1, "reserved": 0}
    assert d["port"] == {"limit": -1, "used": 1, "reserved": 0}
    listed = api.ok("GET", "/v2.0/quotas")["quotas"]
    assert [(x["project_id"], x["network"]) for x in listed] == [("p1", 3)]
    api.ok("DELETE", "/v2.0/quotas/p1")
    assert api.ok("GET", "/v2.0/quotas/p1")["quota"]["network"] == 100
    assert api.ok("GET", "/v2.0/quotas")["quotas"] == []


def test_only_admins_change_and_projects_read_their_own(api: Api) -> None:
    api.err("PUT", "/v2.0/quotas/p1", {"quota": {"network": 1}}, status=403, project="p1")
    api.err("DELETE", "/v2.0/quotas/p1", status=403, project="p1")
    api.err("GET", "/v2.0/quotas/p2", status=403, project="p1")
    assert api.ok("GET", "/v2.0/quotas/p1", project="p1")["quota"]["network"] == 100


def test_bad_values_and_unknown_resources(api: Api) -> None:
    api.err("PUT", "/v2.0/quotas/p1", {"quota": {"network": -2}}, status=400, type="InvalidQuotaValue")
    api.err("PUT", "/v2.0/quotas/p1", {"quota": {"network": "x"}}, status=400, type="InvalidQuotaValue")
    api.err("PUT", "/v2.0/quotas/p1", {"quota": {"nope": 1}}, status=404, type="QuotaResourceUnknown")


def test_over_quota_is_409_and_bulk_counts_as_a_whole(api: Api) -> None:
    api.ok("PUT", "/v2.0/quotas/p1", {"quota": {"network": 2, "port": 3}})
    net = api.net(project="p1")
    api.port(net["id"], project="p1")
    e = api.err("POST", "/v2.0/ports", {"ports": [{"network_id": net["id"]}] * 3},
                status=409, type="OverQuota", project="p1")
    assert e["message"] == "Quota exceeded for resources: port."
    assert len(api.ok("GET", "/v2.0/ports", project="p1")["ports"]) == 1  # nothing half-written
    api.ok("POST", "/v2.0/ports", {"ports": [{"network_id": net["id"]}] * 2}, project="p1")
    api.net(project="p1")
    api.err("POST", "/v2.0/networks", {"network": {"name": "x"}}, status=409, type="OverQuota", project="p1")
    # other projects are not affected
    api.net(project="p2")


def test_default_quota_applies_to_resources_without_their_own_option(make_api: Callable[..., Api],
                                                                     db_url: str) -> None:
    api = make_api(db_url, BASE_CONF + "\n[quotas]\nquota_network = 1\n")
    api.net(project="p1")
    api.err("POST", "/v2.0/networks", {"network": {"name": "x"}}, status=409, type="OverQuota", project="p1")


def test_eight_clients_race_for_the_last_units(api: Api) -> None:
    api.ok("PUT", "/v2.0/quotas/race", {"quota": {"network": 50}})

    def one(_: int) -> int:
        return int(api.req("POST", "/v2.0/networks", {"network": {"name": "r"}}, project="race").status_code)

    with ThreadPoolExecutor(8) as pool:
        got = Counter(pool.map(one, range(100)))
    assert got == {201: 50, 409: 50}
    assert api.ok("GET", "/v2.0/quotas/race/details")["quota"]["network"]["used"] == 50


def test_security_groups_and_rules_are_enforced(api: Api) -> None:
    # The project's default group and the groups' initial rules count too, as in Neutron.
    api.ok("PUT", "/v2.0/quotas/p1", {"quota": {"security_group": 2, "security_group_rule": 8}})
    sg = api.ok("POST", "/v2.0/security-groups", {"security_group": {"name": "web"}}, project="p1")["security_group"]
    e = api.err("POST", "/v2.0/security-groups", {"security_group": {"name": "x"}}, status=409,
                type="OverQuota", project="p1")
    assert e["message"] == "Quota exceeded for resources: security_group."
    used = api.ok("GET", "/v2.0/quotas/p1/details")["quota"]["security_group_rule"]["used"]
    assert used < 8
    room = 8 - used
    rule = {"security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp", "ethertype": "IPv4"}
    for port in range(room):
        api.ok("POST", "/v2.0/security-group-rules",
               {"security_group_rule": {**rule, "port_range_min": 100 + port, "port_range_max": 100 + port}},
               project="p1")
    api.err("POST", "/v2.0/security-group-rules",
            {"security_group_rule": {**rule, "port_range_min": 99, "port_range_max": 99}},
            status=409, type="OverQuota", project="p1")
    assert api.ok("GET", "/v2.0/quotas/p1/details")["quota"]["security_group_rule"]["used"] == 8
