"""The service-plugin contract end to end: a plugin's collection, member action, port hooks."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from netplex.config import Config
from netplex.core.attr_map import REQUIRED, Attr, string, uuid_str
from netplex.core.context import Context
from netplex.core.listing import ListQuery
from netplex.core.service_api import (
    CoreAccess,
    Extension,
    PortBinding,
    PortChange,
    Resource,
    ServicePlugin,
)
from netplex.db.engine import Txn
from netplex.errors import Conflict, NotFound
from tests.unit.api.conftest import Api


class GuardedPort(Conflict):
    message = "Port {port_id} belongs to a gadget; detach it from the gadget first."


class _Gadgets:
    """An in-memory collection (the contract does not care where a plugin keeps its rows)."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def find(self, ctx: Context, query: ListQuery) -> list[dict[str, Any]]:
        return [g for g in self.items.values() if ctx.owns(g["project_id"])]

    def get(self, ctx: Context, rid: str) -> dict[str, Any]:
        g = self.items.get(rid)
        if g is None or not ctx.owns(g["project_id"]):
            raise NotFound(f"Gadget {rid} could not be found.")
        return g

    def create_bulk(self, ctx: Context, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for it in items:
            gid = f"00000000-0000-0000-0000-{len(self.items):012d}"
            g = {"id": gid, "name": it.get("name", ""), "project_id": ctx.project_id or "", "ports": []}
            self.items[gid] = g
            out.append(g)
        return out

    def update(self, ctx: Context, rid: str, attrs: dict[str, Any], *, if_revision: int | None = None) -> dict:
        g = self.get(ctx, rid)
        g.update(attrs)
        return g

    def delete(self, ctx: Context, rid: str, *, if_revision: int | None = None) -> None:
        self.get(ctx, rid)
        del self.items[rid]


class GadgetPlugin(ServicePlugin):
    name = "gadget"
    events: ClassVar[list[PortChange]] = []

    def __init__(self) -> None:
        self.gadgets = _Gadgets()

    @classmethod
    def build(cls, cfg: Config, core: CoreAccess) -> ServicePlugin:
        return cls()

    def attach(self, ctx: Context, rid: str, body: dict[str, Any]) -> dict[str, Any]:
        g = self.gadgets.get(ctx, rid)
        g["ports"].append(uuid_str(body.get("port_id")))
        return {"id": rid, "ports": g["ports"]}

    def resources(self) -> Sequence[Resource]:
        attrs = {
            "id": Attr(), "project_id": Attr(allow_post=True, default=REQUIRED, convert=string()),
            "tenant_id": Attr(allow_post=True, default=REQUIRED, convert=string()),
            "name": Attr(allow_post=True, allow_put=True, default="", convert=string()), "ports": Attr(),
        }
        return (Resource("gadget", "gadgets", attrs, self.gadgets, actions={"attach_port": self.attach}),)

    def extensions(self) -> Sequence[Extension]:
        return (Extension("gadgets", "Gadgets", "Test-only gadgets."),)

    def policy_defaults(self) -> Mapping[str, str]:
        return {"create_gadget": "", "attach_port": "rule:admin_or_owner"}

    def check_port_delete(self, txn: Txn, ctx: Context, port: PortBinding) -> None:
        if any(port.port_id in g["ports"] for g in self.gadgets.items.values()):
            raise GuardedPort(port_id=port.port_id)

    def port_changed(self, changes: Sequence[PortChange]) -> None:
        type(self).events.extend(changes)


def test_a_plugin_serves_a_collection_and_guards_ports(db_url: str, make_api: Callable[..., Api]) -> None:
    GadgetPlugin.events.clear()
    api = make_api(db_url, plugins=[GadgetPlugin])
    assert "gadgets" in {e["alias"] for e in api.ok("GET", "/v2.0/extensions")["extensions"]}
    g = api.ok("POST", "/v2.0/gadgets", {"gadget": {"name": "g1"}}, project="alice")["gadget"]
    assert api.ok("GET", "/v2.0/gadgets", project="alice")["gadgets"] == [g]
    api.err("GET", f"/v2.0/gadgets/{g['id']}", project="bob", status=404)
    net = api.net(project="alice")
    api.subnet(net["id"], project="alice")
    port = api.port(net["id"], project="alice")
    assert [(c.action, c.after.port_id if c.after else None) for c in GadgetPlugin.events] == [
        ("create", port["id"])]
    assert GadgetPlugin.events[0].after is not None and not GadgetPlugin.events[0].after.bound
    api.err("PUT", f"/v2.0/gadgets/{g['id']}/attach_port", {"port_id": port["id"]}, project="bob", status=404)
    out = api.ok("PUT", f"/v2.0/gadgets/{g['id']}/attach_port", {"port_id": port["id"]}, project="alice")
    assert out["ports"] == [port["id"]]
    e = api.err("DELETE", f"/v2.0/ports/{port['id']}", project="alice", status=409, type="GuardedPort")
    assert "detach it" in e["message"]
    api.ok("GET", f"/v2.0/ports/{port['id']}", project="alice")  # still there, nothing half-done
    api.ok("PUT", f"/v2.0/ports/{port['id']}", {"port": {"name": "renamed"}}, project="alice")
    assert GadgetPlugin.events[-1].action == "update" and GadgetPlugin.events[-1].before is not None
    (plugin,) = [p for p in api.core.plugins if isinstance(p, GadgetPlugin)]
    plugin.gadgets.items[g["id"]]["ports"].clear()  # detached: the port may go now
    api.ok("DELETE", f"/v2.0/ports/{port['id']}", project="alice")
    last = GadgetPlugin.events[-1]
    assert last.action == "delete" and last.before is not None and last.after is None
    dhcp = api.port(net["id"], device_owner="network:dhcp")
    plugin.gadgets.items[g["id"]]["ports"].append(dhcp["id"])
    api.err("DELETE", f"/v2.0/networks/{net['id']}", status=409, type="GuardedPort")  # the cascade asks too
    plugin.gadgets.items[g["id"]]["ports"].clear()
    api.ok("DELETE", f"/v2.0/networks/{net['id']}")
    assert [(c.action, c.port_id) for c in GadgetPlugin.events[-1:]] == [("delete", dhcp["id"])]
