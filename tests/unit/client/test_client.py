"""NeutronClient against an in-process fake server (httpx.MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import netplex.client as client_pkg
from netplex.client import (
    ApiError,
    BadRequest,
    ClientError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InvalidResponse,
    NeutronClient,
    NotFound,
    PreconditionFailed,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    collection_of,
)

Handler = Callable[[httpx.Request], httpx.Response]


def make(handler: Handler, **kwargs: Any) -> NeutronClient:
    return NeutronClient("http://neutron.test:9696/", transport=httpx.MockTransport(handler),
                         **kwargs)


def neutron_error(status: int, type_: str, message: str, detail: str = "") -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"NeutronError": {"type": type_, "message": message, "detail": detail}}
        return httpx.Response(status, json=body)

    return handler


def test_all_is_exact() -> None:
    public = {n for n in dir(client_pkg) if not n.startswith("_")}
    modules = {"annotations"}
    assert set(client_pkg.__all__) == public - modules - {
        n for n in public if type(getattr(client_pkg, n)).__name__ == "module"
    }


def test_get_port_url_headers_and_unwrap() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"port": {"id": "p1", "status": "DOWN"}})

    c = make(handler, project_id="proj", roles=["member", "reader"], agent_token="s3cret",
             headers={"X-Auth-Token": "tok"})
    assert c.get_port("p1") == {"id": "p1", "status": "DOWN"}
    req = seen[0]
    assert req.method == "GET"
    assert str(req.url) == "http://neutron.test:9696/v2.0/ports/p1"
    assert req.headers["X-Project-Id"] == "proj"
    assert req.headers["X-Roles"] == "member,reader"
    assert req.headers["X-Agent-Token"] == "s3cret"
    assert req.headers["X-Auth-Token"] == "tok"


def test_no_identity_headers_by_default() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"network": {"id": "n"}})

    make(handler).get_network("n")
    for h in ("X-Project-Id", "X-Roles", "X-Agent-Token"):
        assert h not in seen[0].headers


def test_update_port_body_and_if_match() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        return httpx.Response(200, json={"port": {"id": "p1", **body["port"]}})

    c = make(handler)
    out = c.update_port("p1", {"binding:host_id": "h1"})
    assert out == {"id": "p1", "binding:host_id": "h1"}
    assert seen[0].method == "PUT"
    assert json.loads(seen[0].content) == {"port": {"binding:host_id": "h1"}}
    assert "If-Match" not in seen[0].headers
    c.update_port("p1", {"name": "x"}, if_revision=7)
    assert seen[1].headers["If-Match"] == "revision_number=7"


def test_list_filters_and_pagination() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.params.get("marker") == "b":
            return httpx.Response(200, json={"ports": [{"id": "c"}]})
        return httpx.Response(200, json={
            "ports": [{"id": "a"}, {"id": "b"}],
            "ports_links": [{"rel": "next", "href":
                             "http://neutron.test:9696/v2.0/ports?limit=2&marker=b&device_owner=x"}],
        })

    ports = make(handler).list_ports(device_owner="x", id=["a", "b", "c"], limit=2)
    assert [p["id"] for p in ports] == ["a", "b", "c"]
    first = seen[0].url.params
    assert first.get_list("id") == ["a", "b", "c"]
    assert first["device_owner"] == "x"
    # The next link is followed as given, not merged with the first query.
    assert seen[1].url.params.get_list("id") == []
    assert seen[1].url.params["marker"] == "b"


def test_pagination_loop_is_detected() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={
            "ports": [{"id": "a"}],
            "ports_links": [{"rel": "next", "href": "http://neutron.test:9696/v2.0/ports?m=a"}],
        })

    with pytest.raises(InvalidResponse, match="pagination loop"):
        make(handler).list_ports()


def test_create_and_delete() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "DELETE":
            return httpx.Response(204)
        return httpx.Response(201, json={"subnet": {"id": "s1"}})

    c = make(handler)
    assert c.create_subnet({"cidr": "10.0.0.0/24"}) == {"id": "s1"}
    assert json.loads(seen[0].content) == {"subnet": {"cidr": "10.0.0.0/24"}}
    assert str(seen[0].url).endswith("/v2.0/subnets")
    c.delete_subnet("s1")
    assert seen[1].method == "DELETE" and str(seen[1].url).endswith("/v2.0/subnets/s1")


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (412, PreconditionFailed),
        (500, ServerError),
        (503, ServiceUnavailable),
        (418, ApiError),
    ],
)
def test_error_mapping(status: int, cls: type[ApiError]) -> None:
    c = make(neutron_error(status, "SomeType", "it broke", "more"))
    with pytest.raises(cls) as info:
        c.get_port("p1")
    err = info.value
    assert type(err) is cls
    assert (err.status, err.type, err.message, err.detail) == (status, "SomeType", "it broke", "more")
    assert err.method == "GET" and err.url.endswith("/v2.0/ports/p1")
    assert "it broke" in str(err)
    assert isinstance(err, ClientError)


def test_service_unavailable_is_a_server_error() -> None:
    with pytest.raises(ServerError):
        make(neutron_error(503, "NoNetworkAvailable", "no segments")).get_network("n")


def test_port_not_found_keeps_neutron_type() -> None:
    with pytest.raises(NotFound) as info:
        make(neutron_error(404, "PortNotFound", "Port p1 could not be found.")).get_port("p1")
    assert info.value.type == "PortNotFound"


def test_non_neutron_error_body() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad gateway</html>")

    with pytest.raises(ServerError) as info:
        make(handler).get_port("p1")
    assert info.value.type == "HTTP502"
    assert "Bad gateway" in info.value.message


def test_connection_failure() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ConnectionFailed) as info:
        make(handler).get_port("p1")
    assert "connection refused" in str(info.value)
    assert info.value.url == "http://neutron.test:9696/v2.0/ports/p1"


def test_invalid_success_bodies() -> None:
    def not_json(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="hello")

    def wrong_key(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"network": {}})

    with pytest.raises(InvalidResponse):
        make(not_json).get_port("p1")
    with pytest.raises(InvalidResponse):
        make(wrong_key).get_port("p1")


def test_generic_resources_and_plurals() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={"policies": []})

    assert make(handler).list_resources("policy") == []
    assert seen == ["/v2.0/policies"]
    assert collection_of("port") == "ports"
    assert collection_of("qos_policy") == "qos_policies"


def test_context_manager_closes() -> None:
    c = make(lambda r: httpx.Response(200, json={"port": {}}))
    with c as same:
        assert same is c
    assert c._http.is_closed
