"""CorePortAccess: what a service plugin learns about each port's wiring, read from real tables."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from netplex.core.service_access import CorePortAccess
from netplex.core.service_api import PortBinding, PortChange
from netplex.db.engine import Database, Txn
from netplex.db.models import IPAllocation, Network, Port, Subnet
from netplex.db.models.binding import PortBinding as BindingRow
from netplex.db.models.binding import PortBindingLevel


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


def _seed(txn: Txn) -> None:
    s = txn.session
    s.add(Network(id="n1", project_id="p1"))
    s.flush()
    s.add(Subnet(id="s1", network_id="n1", project_id="p1", ip_version=4, cidr="10.0.0.0/24",
                 gateway_ip="10.0.0.1"))
    for pid, mac in (("a", "fa:16:3e:00:00:0a"), ("b", "fa:16:3e:00:00:0b"), ("c", "fa:16:3e:00:00:0c")):
        s.add(Port(id=pid, network_id="n1", project_id="p1", mac_address=mac, device_owner="compute:nova",
                   device_id=f"vm-{pid}"))
    s.flush()
    s.add(IPAllocation(subnet_id="s1", ip_address="10.0.0.10", port_id="a", network_id="n1"))
    s.add(IPAllocation(subnet_id="s1", ip_address="10.0.0.5", port_id="a", network_id="n1"))
    # a: bound on h1 through a hierarchy (top: a switch driver, bottom: routed)
    s.add(BindingRow(port_id="a", host="h1", vif_type="tap", vif_details={"port_filter": True}, status="ACTIVE"))
    s.add(PortBindingLevel(port_id="a", host="h1", level=0, driver="tor"))
    s.add(PortBindingLevel(port_id="a", host="h1", level=1, driver="routed"))
    # a is also being migrated to h2 (an INACTIVE binding): not what plugins see
    s.add(BindingRow(port_id="a", host="h2", vif_type="bridge", status="INACTIVE"))
    s.add(PortBindingLevel(port_id="a", host="h2", level=0, driver="linuxbridge"))
    # b: binding failed on h3
    s.add(BindingRow(port_id="b", host="h3", vif_type="binding_failed", status="ACTIVE"))
    # c: no binding row at all


def test_bindings_say_which_mechanism_wired_each_port(db: Database) -> None:
    db.transaction(_seed)
    access = CorePortAccess(db, {"routed": "l3", "linuxbridge": "l2", "tor": "l2"})
    got = db.transaction(lambda txn: access.port_bindings(txn, ["a", "b", "c", "missing", "a"]))
    assert set(got) == {"a", "b", "c"}
    a = got["a"]
    assert (a.host, a.vif_type, a.mechanism, a.connectivity) == ("h1", "tap", "routed", "l3")
    assert a.bound and a.vif_details == {"port_filter": True}
    assert a.fixed_ips == (("s1", "10.0.0.5"), ("s1", "10.0.0.10"))  # in address order
    b, c = got["b"], got["c"]
    assert (b.host, b.vif_type, b.mechanism, b.connectivity, b.bound) == ("h3", "binding_failed", None, None, False)
    assert (c.host, c.vif_type, c.mechanism, c.bound) == ("", "unbound", None, False)
    assert [p.port_id for p in db.transaction(lambda txn: access.ports_of_network(txn, "n1"))] == ["a", "b", "c"]
    assert db.transaction(lambda txn: access.ports_of_network(txn, "other")) == []


def test_many_ports_in_chunks(db: Database) -> None:
    def seed(txn: Txn) -> None:
        txn.session.add(Network(id="n1", project_id="p1"))
        txn.session.flush()
        txn.session.add_all(Port(id=f"p{i:04d}", network_id="n1", project_id="p1",
                                 mac_address=f"fa:16:3e:00:{i // 256:02x}:{i % 256:02x}") for i in range(1200))
    db.transaction(seed)
    access = CorePortAccess(db, {})
    got = db.transaction(lambda txn: access.port_bindings(txn, [f"p{i:04d}" for i in range(1200)]))
    assert len(got) == 1200 and not any(p.bound for p in got.values())


def _pb(host: str, mech: str | None, vif: str = "ovs") -> PortBinding:
    return PortBinding(port_id="x", network_id="n", project_id="p", device_owner="", device_id="",
                       mac_address="m", fixed_ips=(), host=host, vif_type=vif, mechanism=mech)


def test_port_change_rebound() -> None:
    assert PortChange("update", _pb("h1", "ovs"), _pb("h2", "ovs")).rebound
    assert PortChange("update", _pb("h1", "ovs"), _pb("h1", "linuxbridge", "bridge")).rebound
    assert not PortChange("update", _pb("h1", "ovs"), _pb("h1", "ovs")).rebound
    assert PortChange("create", None, _pb("h1", "ovs")).rebound
    assert PortChange("delete", _pb("h1", "ovs"), None).port_id == "x"
