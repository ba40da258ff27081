"""A small synchronous Neutron v2.0 REST client on httpx.

Used by the compute side (:mod:`netplex.vif`) and the host agent, so it knows
nothing about either: it speaks the generic resource shapes
(``GET /v2.0/<collection>/<id>`` -> ``{"<resource>": {...}}``) and offers thin
typed helpers for the resources those callers need. Anything else goes through
:meth:`NeutronClient.get_resource` / :meth:`~NeutronClient.list_resources` / ... by resource name,
or :meth:`NeutronClient.request` for non-resource endpoints.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from netplex.client._errors import ConnectionFailed, InvalidResponse, error_from_response

__all__ = ["DEFAULT_URL", "NeutronClient", "collection_of"]

DEFAULT_URL = "http://127.0.0.1:9696"

#: Resources whose collection name is not ``<resource> + "s"``.
_IRREGULAR_PLURALS = {
    "policy": "policies",
    "qos_policy": "qos_policies",
    "address_scope": "address_scopes",
    "network_ip_availability": "network_ip_availabilities",
}

Params = Mapping[str, Any]


def collection_of(resource: str) -> str:
    """``"port"`` -> ``"ports"``, ``"policy"`` -> ``"policies"``."""
    return _IRREGULAR_PLURALS.get(resource, resource + "s")


class NeutronClient:
    """Talks to one Neutron v2.0 endpoint.

    :param base_url: the endpoint without ``/v2.0`` (``http://127.0.0.1:9696``).
    :param project_id: sent as ``X-Project-Id`` (Netplex's ``noauth`` strategy;
        no project header means an admin caller there).
    :param roles: sent comma-joined as ``X-Roles``.
    :param agent_token: sent as ``X-Agent-Token`` (host agents).
    :param headers: any extra headers (e.g. ``X-Auth-Token`` for a Keystone setup).
    :param timeout: seconds per request.
    :param transport: an httpx transport; tests pass ``httpx.MockTransport``.

    Every method raises a :class:`~netplex.client.ClientError` subclass on
    failure. The client is a context manager; :meth:`close` releases the
    connection pool.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        project_id: str | None = None,
        roles: Sequence[str] | None = None,
        agent_token: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        hdrs: dict[str, str] = {"Accept": "application/json", "User-Agent": "netplex-client"}
        if project_id:
            hdrs["X-Project-Id"] = project_id
        if roles:
            hdrs["X-Roles"] = ",".join(roles)
        if agent_token:
            hdrs["X-Agent-Token"] = agent_token
        hdrs.update(headers or {})
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url + "/v2.0", headers=hdrs, timeout=timeout, transport=transport
        )

    # --- lifecycle ------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NeutronClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"NeutronClient({self.base_url!r})"

    # --- generic --------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send one request; return the decoded JSON object (``{}`` for an empty body).

        ``path`` is relative to ``/v2.0`` (``"/ports/abc"``), or an absolute URL
        (pagination ``next`` links are absolute).
        """
        url = path if path.startswith(("http://", "https://")) else "/" + path.lstrip("/")
        try:
            response = self._http.request(
                method, url, params=_encode_params(params), json=json, headers=headers
            )
        except httpx.TransportError as exc:
            full = url if url.startswith("http") else f"{self.base_url}/v2.0{url}"
            raise ConnectionFailed(method, full, str(exc) or type(exc).__name__) from exc
        if response.status_code >= 400:
            raise error_from_response(response)
        if not response.content:
            return {}
        try:
            body = response.json()
        except ValueError as exc:
            raise InvalidResponse(
                f"{method} {response.request.url}: response is not JSON: {response.text[:200]!r}"
            ) from exc
        if not isinstance(body, dict):
            raise InvalidResponse(f"{method} {response.request.url}: expected a JSON object")
        return body

    def get_resource(self, resource: str, id: str, *, fields: Sequence[str] = ()) -> dict[str, Any]:
        """``GET /v2.0/<collection>/<id>``; returns the resource dict."""
        params = {"fields": list(fields)} if fields else None
        body = self.request("GET", f"/{collection_of(resource)}/{id}", params=params)
        return _unwrap(body, resource)

    def iter_resources(self, resource: str, **filters: Any) -> Iterator[dict[str, Any]]:
        """Iterate ``GET /v2.0/<collection>`` with Neutron filters, following ``next`` links.

        A list value becomes a repeated query parameter (``id=a&id=b``), which
        Neutron reads as "any of". ``fields``, ``limit``, ``sort_key`` and
        ``sort_dir`` pass through unchanged.
        """
        collection = collection_of(resource)
        path: str | None = f"/{collection}"
        params: Params | None = filters
        followed: set[str] = set()
        while path is not None:
            body = self.request("GET", path, params=params)
            items = body.get(collection)
            if not isinstance(items, list):
                raise InvalidResponse(f"GET {path}: no {collection!r} list in the response")
            yield from items
            path = _next_link(body.get(f"{collection}_links"))
            params = None  # the next link carries every parameter
            if path is not None:
                if path in followed:
                    raise InvalidResponse(f"pagination loop: {path} was already followed")
                followed.add(path)

    def list_resources(self, resource: str, **filters: Any) -> list[dict[str, Any]]:
        """All resources matching ``filters`` (see :meth:`iter_resources`)."""
        return list(self.iter_resources(resource, **filters))

    def create_resource(self, resource: str, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v2.0/<collection>`` with ``{"<resource>": attrs}``."""
        body = self.request("POST", f"/{collection_of(resource)}", json={resource: dict(attrs)})
        return _unwrap(body, resource)

    def update_resource(
        self,
        resource: str,
        id: str,
        attrs: Mapping[str, Any],
        *,
        if_revision: int | None = None,
    ) -> dict[str, Any]:
        """``PUT /v2.0/<collection>/<id>``; returns the updated resource.

        With ``if_revision`` the update only happens if the resource's
        ``revision_number`` still equals it (``If-Match``); otherwise
        :class:`~netplex.client.PreconditionFailed` is raised.
        """
        headers = None
        if if_revision is not None:
            headers = {"If-Match": f"revision_number={if_revision}"}
        body = self.request(
            "PUT", f"/{collection_of(resource)}/{id}", json={resource: dict(attrs)}, headers=headers
        )
        return _unwrap(body, resource)

    def delete_resource(self, resource: str, id: str) -> None:
        """``DELETE /v2.0/<collection>/<id>``."""
        self.request("DELETE", f"/{collection_of(resource)}/{id}")

    # --- ports ----------------------------------------------------------------

    def get_port(self, port_id: str) -> dict[str, Any]:
        return self.get_resource("port", port_id)

    def list_ports(self, **filters: Any) -> list[dict[str, Any]]:
        return self.list_resources("port", **filters)

    def create_port(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return self.create_resource("port", attrs)

    def update_port(
        self, port_id: str, attrs: Mapping[str, Any], *, if_revision: int | None = None
    ) -> dict[str, Any]:
        return self.update_resource("port", port_id, attrs, if_revision=if_revision)

    def delete_port(self, port_id: str) -> None:
        self.delete_resource("port", port_id)

    # --- networks -------------------------------------------------------------

    def get_network(self, network_id: str) -> dict[str, Any]:
        return self.get_resource("network", network_id)

    def list_networks(self, **filters: Any) -> list[dict[str, Any]]:
        return self.list_resources("network", **filters)

    def create_network(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return self.create_resource("network", attrs)

    def update_network(
        self, network_id: str, attrs: Mapping[str, Any], *, if_revision: int | None = None
    ) -> dict[str, Any]:
        return self.update_resource("network", network_id, attrs, if_revision=if_revision)

    def delete_network(self, network_id: str) -> None:
        self.delete_resource("network", network_id)

    # --- subnets --------------------------------------------------------------

    def get_subnet(self, subnet_id: str) -> dict[str, Any]:
        return self.get_resource("subnet", subnet_id)

    def list_subnets(self, **filters: Any) -> list[dict[str, Any]]:
        return self.list_resources("subnet", **filters)

    def create_subnet(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return self.create_resource("subnet", attrs)

    def update_subnet(
        self, subnet_id: str, attrs: Mapping[str, Any], *, if_revision: int | None = None
    ) -> dict[str, Any]:
        return self.update_resource("subnet", subnet_id, attrs, if_revision=if_revision)

    def delete_subnet(self, subnet_id: str) -> None:
        self.delete_resource("subnet", subnet_id)


def _encode_params(
    params: Params | None,
) -> list[tuple[str, str | int | float | bool | None]] | None:
    """Neutron query encoding: lists repeat the key, booleans are ``True``/``False``.

    None (not an empty list) when there are no parameters: httpx replaces a
    URL's own query with an empty parameter list, which would lose the
    marker of a pagination link.
    """
    if not params:
        return None
    out: list[tuple[str, str | int | float | bool | None]] = []
    for key, value in params.items():
        values = value if isinstance(value, list | tuple | set | frozenset) else [value]
        for v in values:
            if v is None:
                continue
            out.append((key, str(v)))
    return out


def _unwrap(body: dict[str, Any], resource: str) -> dict[str, Any]:
    item = body.get(resource)
    if not isinstance(item, dict):
        raise InvalidResponse(f"expected a {resource!r} object in the response, got {list(body)}")
    return item


def _next_link(links: Any) -> str | None:
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("rel") == "next" and link.get("href"):
            return str(link["href"])
    return None
