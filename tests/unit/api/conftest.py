"""An in-process API over a real (SQLite/PostgreSQL) database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from netplex import config as config_mod
from netplex.core.plugin import Core
from netplex.db.engine import Database
from netplex.server import app_for_core, build_core

BASE_CONF = """
[ml2]
type_drivers = local,flat,vlan,vxlan
project_network_types = vxlan
mechanism_drivers =
[ml2_type_vxlan]
vni_ranges = 100:199
[ml2_type_vlan]
network_vlan_ranges = physnet1:10:19
[ml2_type_flat]
flat_networks = physnet1,physnet2
"""


class Api:
    """A thin test client that speaks as admin unless told otherwise."""

    def __init__(self, client: TestClient, core: Core) -> None:
        self.client = client
        self.core = core

    def req(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        project: str | None = None,
        roles: str | None = None,
        headers: dict[str, str] | None = None,
        params: Any = None,
    ) -> Any:
        h = dict(headers or {})
        if project:
            h["X-Project-Id"] = project
            h["X-Roles"] = roles or "member"
        return self.client.request(method, path, json=body, headers=h, params=params)

    def ok(self, method: str, path: str, body: Any = None, status: int | None = None, **kw: Any) -> Any:
        r = self.req(method, path, body, **kw)
        expected = status or {"POST": 201, "DELETE": 204}.get(method, 200)
        assert r.status_code == expected, (r.status_code, r.text)
        return r.json() if r.content else None

    def err(
        self, method: str, path: str, body: Any = None, *, status: int, type: str | None = None, **kw: Any
    ) -> dict[str, Any]:
        r = self.req(method, path, body, **kw)
        assert r.status_code == status, (r.status_code, r.text)
        e = r.json()["NeutronError"]
        assert set(e) == {"type", "message", "detail"}
        if type is not None:
            assert e["type"] == type, e
        return e

    def net(self, **attrs: Any) -> dict[str, Any]:
        kw = {k: attrs.pop(k) for k in ("project",) if k in attrs}
        return self.ok("POST", "/v2.0/networks", {"network": {"name": "n", **attrs}}, **kw)["network"]

    def subnet(self, network_id: str, cidr: str = "10.0.0.0/24", **attrs: Any) -> dict[str, Any]:
        kw = {k: attrs.pop(k) for k in ("project",) if k in attrs}
        version = 6 if ":" in cidr else 4
        body = {"subnet": {"network_id": network_id, "cidr": cidr, "ip_version": version, **attrs}}
        return self.ok("POST", "/v2.0/subnets", body, **kw)["subnet"]

    def port(self, network_id: str, **attrs: Any) -> dict[str, Any]:
        kw = {k: attrs.pop(k) for k in ("project",) if k in attrs}
        return self.ok("POST", "/v2.0/ports", {"port": {"network_id": network_id, **attrs}}, **kw)["port"]


@pytest.fixture
def make_api(tmp_path: Any) -> Iterator[Callable[..., Api]]:
    made: list[tuple[TestClient, Core]] = []

    def make(db_url: str, conf: str = BASE_CONF, **core_kwargs: Any) -> Api:
        cfg = config_mod.load(text=conf + f"\n[DEFAULT]\nstate_path = {tmp_path}\n")
        db = Database(db_url)
        core = build_core(cfg, db, **core_kwargs)
        client = TestClient(app_for_core(core, cfg, housekeeping=False), raise_server_exceptions=False)
        client.__enter__()
        made.append((client, core))
        return Api(client, core)

    yield make
    for client, core in made:
        client.__exit__(None, None, None)
        core.db.dispose()


@pytest.fixture
def api(db_url: str, make_api: Callable[..., Api]) -> Api:
    return make_api(db_url)
