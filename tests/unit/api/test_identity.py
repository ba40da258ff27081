"""``auth_strategy = noauth`` identity, as Neutron's: who the headers say is calling."""

from __future__ import annotations

import pytest

from netplex.api.identity import NOAUTH_PROJECT, context_from_headers
from netplex.errors import NotAuthorized
from tests.unit.api.conftest import Api


def test_no_identity_headers_is_an_admin_of_fake_project_id() -> None:
    ctx = context_from_headers({})
    assert ctx.is_admin and ctx.project_id == NOAUTH_PROJECT == "fake_project_id"


def test_project_header_without_admin_role_is_a_member() -> None:
    ctx = context_from_headers({"x-project-id": "p1", "x-roles": "member,reader"})
    assert not ctx.is_admin and ctx.project_id == "p1" and ctx.roles == {"member", "reader"}


def test_admin_role_without_project_has_no_project() -> None:
    ctx = context_from_headers({"x-roles": "admin"})
    assert ctx.is_admin and ctx.project_id is None


def test_agent_token_is_checked() -> None:
    assert context_from_headers({"x-agent-token": "s"}, agent_token="s").is_agent
    with pytest.raises(NotAuthorized):
        context_from_headers({"x-agent-token": "bad"}, agent_token="s")


def test_resources_created_without_headers_belong_to_fake_project_id(api: Api) -> None:
    net = api.net()
    assert net["project_id"] == net["tenant_id"] == "fake_project_id"
    port = api.port(net["id"])
    assert port["project_id"] == "fake_project_id"
    # a member of fake_project_id sees them as its own
    seen = api.ok("GET", "/v2.0/networks", project="fake_project_id")["networks"]
    assert [n["id"] for n in seen] == [net["id"]]


def test_admin_names_another_project(api: Api) -> None:
    net = api.net(project_id="p2")
    assert net["project_id"] == "p2"


def test_admin_without_project_must_name_one(api: Api) -> None:
    # Neutron without Keystone: roles but no project header, and no project in the body.
    e = api.err("POST", "/v2.0/networks", {"network": {"name": "n"}}, status=400,
                headers={"X-Roles": "admin"})
    assert "tenant_id is specified" in e["message"]
    assert api.ok("GET", "/v2.0/networks")["networks"] == []  # nothing half-written
    net = api.ok("POST", "/v2.0/networks", {"network": {"name": "n", "project_id": "p3"}},
                 headers={"X-Roles": "admin"})["network"]
    assert net["project_id"] == "p3"
