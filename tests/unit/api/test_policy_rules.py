"""The policy language: every syntax form, errors naming the rule, caching, the defaults table."""

from __future__ import annotations

from typing import Any

import pytest

from netplex.api.policy import LazyTarget, Policy, PolicyError
from netplex.api.policy_defaults import DEFAULTS
from netplex.api.policy_syntax import Credentials, PolicySyntaxError, compile_rule
from netplex.core.context import Context
from netplex.errors import PolicyNotAuthorized


def creds(project: str | None = "p1", *roles: str, user: str | None = "u1") -> Credentials:
    return Credentials(
        values={"project_id": project, "tenant_id": project, "user_id": user, "is_admin": "admin" in roles},
        roles=frozenset(roles),
    )


def check(check_str: str, c: Credentials, target: dict[str, Any] | None = None, **rules: str) -> bool:
    compiled = {n: compile_rule(n, s) for n, s in rules.items()}
    return compile_rule("t", check_str)(c, LazyTarget(target or {}), compiled.get)


@pytest.mark.parametrize(
    ("check_str", "expected"),
    [
        ("", True),
        ("@", True),
        ("!", False),
        ("role:member", True),
        ("role:MEMBER", True),
        ("role:admin", False),
        ("not role:admin", True),
        ("role:admin or role:member", True),
        ("role:admin and role:member", False),
        ("not role:admin and role:member", True),
        ("not (role:admin or role:member)", False),
        ("(role:admin or role:member) and !", False),
        ("((role:member))", True),
        ("role:admin or role:member and !", False),  # and binds tighter than or
        ("! or role:member and @", True),
        ("tenant_id:%(tenant_id)s", True),
        ("project_id:%(project_id)s", True),
        ("tenant_id:%(network:tenant_id)s", False),
        ("user_id:u1", True),
        ("user_id:'u1'", True),
        ("user_id:u2", False),
        ("is_admin:False", True),
        ("is_admin:True", False),
        ("field:networks:shared=True", True),
        ("field:networks:shared=False", False),
        ("field:networks:router:external=True", False),
        ("field:port:device_owner=~^network:", True),
        ("field:port:device_owner=~^compute:", False),
        ("field:port:name=web", True),
        ("rule:yes", True),
        ("rule:no", False),
        ("rule:undefined", False),
        ("not rule:no and rule:yes", True),
    ],
)
def test_syntax_forms(check_str: str, expected: bool) -> None:
    target = {
        "tenant_id": "p1",
        "project_id": "p1",
        "shared": True,
        "router:external": False,
        "device_owner": "network:dhcp",
        "name": "web",
    }
    assert check(check_str, creds("p1", "member"), target, yes="role:member", no="role:admin") is expected


@pytest.mark.parametrize(
    ("check_str", "fragment"),
    [
        ("role:admin or", "unexpected end"),
        ("(role:admin", "missing ')'"),
        ("role:admin)", "unexpected ')'"),
        ("and role:admin", "'and' where a check was expected"),
        ("role:admin role:member", "unexpected 'role:member'"),
        ("admin", "'admin' is not a check"),
        ("field:networks:shared", "field:RESOURCE:ATTR=VALUE"),
        ("field:shared=True", "field:RESOURCE:ATTR=VALUE"),
        ("http://example.com/check", "not supported"),
        ("not", "unexpected end"),
    ],
)
def test_bad_syntax_names_the_rule(check_str: str, fragment: str) -> None:
    with pytest.raises(PolicySyntaxError) as err:
        compile_rule("create_port:mac_address", check_str)
    assert "'create_port:mac_address'" in str(err.value)
    assert fragment in str(err.value)


def test_non_string_check_is_an_error() -> None:
    with pytest.raises(PolicySyntaxError, match="must be a string"):
        compile_rule("create_network", ["role:admin"])


def test_policy_errors_name_file_and_rule() -> None:
    with pytest.raises(PolicyError, match=r"ops.yaml: policy rule 'create_network': cannot parse"):
        Policy({"create_network": "role:admin or"}, source="ops.yaml")
    with pytest.raises(PolicyError, match="cycle: a -> b -> a"):
        Policy({"a": "rule:b", "b": "rule:a"})


def test_missing_target_keys_never_match() -> None:
    c = creds("p1", "member")
    assert not check("tenant_id:%(tenant_id)s", c, {})
    assert not check("field:networks:shared=True", c, {})
    # No project (an admin without X-Project-Id) is never "the owner".
    assert not check("tenant_id:%(tenant_id)s", creds(None, "admin"), {"tenant_id": "p1"})


def test_network_keys_are_looked_up_once_and_only_when_read() -> None:
    calls: list[str] = []

    def network(net_id: str) -> dict[str, Any]:
        calls.append(net_id)
        return {"id": net_id, "project_id": "owner", "shared": True}

    target = LazyTarget({"network_id": "n1", "tenant_id": "p1"}, network=network)
    c = creds("owner", "member")
    assert compile_rule("t", "role:member or tenant_id:%(network:tenant_id)s")(c, target, lambda n: None)
    assert calls == []  # short-circuited before the network was needed
    assert compile_rule("t", "tenant_id:%(network:tenant_id)s")(c, target, lambda n: None)
    assert compile_rule("t", "field:networks:shared=True")(c, target, lambda n: None)
    assert calls == ["n1"]


def test_lazy_target_loads_stored_resource_only_when_read() -> None:
    loads: list[int] = []

    def load() -> dict[str, Any]:
        loads.append(1)
        return {"id": "x", "project_id": "p2"}

    policy = Policy()
    admin = policy.for_caller(Context.admin())
    admin.enforce("update_network", LazyTarget(load=load))
    assert loads == []
    tenant = policy.for_caller(Context.project("p1"))
    with pytest.raises(PolicyNotAuthorized, match=r"\(update_network\) is disallowed by policy"):
        tenant.enforce("update_network", LazyTarget(load=load))
    assert loads == [1]
    assert policy.for_caller(Context.project("p2")).allowed("update_network", LazyTarget(load=load))


def test_defaults_table() -> None:
    names = [d.name for d in DEFAULTS]
    assert len(names) == len(set(names)), "a rule is defined twice"
    policy = Policy()
    for name in (
        "create_network",
        "create_network:provider:network_type",
        "get_network:provider:segmentation_id",
        "update_network:shared",
        "create_port:binding:host_id",
        "get_port:binding:vif_details",
        "get_port:binding:profile",
        "create_port:mac_address",
        "create_port:fixed_ips:ip_address",
        "update_port:mac_address",
        "create_subnet",
        "get_agent",
        "get_segment",
    ):
        assert policy.has_rule(name), name
    assert policy.check_strings["create_port:binding:host_id"] == "rule:admin_only"
    assert policy.overridden == frozenset()
    # Caller-only rules are the ones cached per request.
    assert not policy.reads_target("get_port:binding:vif_details")
    assert policy.reads_target("create_port:mac_address")
    assert policy.reads_target("get_network")


def test_caller_only_results_are_cached_per_request() -> None:
    policy = Policy()
    caller = policy.for_caller(Context.project("p1"))
    assert not caller.allowed("get_port:binding:vif_details")
    assert caller._cache["get_port:binding:vif_details"] is False
    assert caller.hidden("port") >= {"binding:vif_details", "binding:profile", "binding:host_id", "binding:vif_type"}
    assert "binding:vnic_type" not in caller.hidden("port")
    assert policy.for_caller(Context.admin()).hidden("port") == frozenset()


def test_unknown_action_falls_back_to_default_rule() -> None:
    policy = Policy({"default": "role:admin"})
    assert not policy.for_caller(Context.project("p1")).allowed("frobnicate_port")
    assert policy.for_caller(Context.admin()).allowed("frobnicate_port")


def test_body_rules_follow_neutron() -> None:
    policy = Policy()
    tenant = policy.for_caller(Context.project("p1"))
    target = LazyTarget({"project_id": "p1"})
    defaults = {"shared": False, "provider:network_type": None}
    tenant.enforce_body("create_network", {"shared": False, "name": "x"}, target, defaults=defaults)
    with pytest.raises(PolicyNotAuthorized, match="create_network:shared"):
        tenant.enforce_body("create_network", {"shared": True}, target, defaults=defaults)
    with pytest.raises(PolicyNotAuthorized, match="create_network:provider:network_type"):
        tenant.enforce_body("create_network", {"provider:network_type": "vlan"}, target, defaults=defaults)
    # On update, any mention of the attribute counts.
    with pytest.raises(PolicyNotAuthorized, match="update_network:shared"):
        tenant.enforce_body("update_network", {"shared": False}, target)


def test_fixed_ips_sub_attribute_rules() -> None:
    def owner_network(net_id: str) -> dict[str, Any]:
        return {"id": net_id, "project_id": "other", "shared": True}

    tenant = Policy().for_caller(Context.project("p1"))
    target = LazyTarget({"project_id": "p1", "network_id": "n"}, network=owner_network)
    tenant.enforce_body("create_port", {"fixed_ips": [{"subnet_id": "s"}]}, target, defaults={"fixed_ips": None})
    with pytest.raises(PolicyNotAuthorized, match="create_port:fixed_ips:ip_address"):
        tenant.enforce_body(
            "create_port", {"fixed_ips": [{"ip_address": "10.0.0.9"}]}, target, defaults={"fixed_ips": None}
        )
