"""Security groups and rules against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from netplex.core.context import Context
from netplex.core.listing import ListQuery
from netplex.db.engine import Database, Txn
from netplex.db.models import Change, Network, Port, SecurityGroup, SecurityGroupPortBinding
from netplex.services.security_groups import errors as e
from netplex.services.security_groups.service import RuleService, SecurityGroupService

ALICE = Context.project("alice")
BOB = Context.project("bob")
ADMIN = Context.admin()


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def groups(db: Database) -> SecurityGroupService:
    return SecurityGroupService(db)


@pytest.fixture
def rules(db: Database) -> RuleService:
    return RuleService(db)


def _default(groups: SecurityGroupService, ctx: Context) -> dict:
    found = [g for g in groups.find(ctx, ListQuery()) if g["name"] == "default"]
    assert len(found) == 1
    return found[0]


def test_default_group_appears_on_first_list_with_neutrons_rules(groups: SecurityGroupService) -> None:
    d = _default(groups, ALICE)
    assert d["project_id"] == "alice" and d["stateful"] is True
    shape = sorted((r["direction"], r["ethertype"], r["remote_group_id"]) for r in d["security_group_rules"])
    assert shape == [("egress", "IPv4", None), ("egress", "IPv6", None),
                     ("ingress", "IPv4", d["id"]), ("ingress", "IPv6", d["id"])]
    assert all(r["belongs_to_default_sg"] for r in d["security_group_rules"])
    assert _default(groups, ALICE)["id"] == d["id"]  # once


def test_create_group_gets_egress_rules_and_feed_entries(db: Database, groups: SecurityGroupService) -> None:
    (g,) = groups.create_bulk(ALICE, [{"name": "web", "description": "w"}])
    assert sorted((r["direction"], r["ethertype"]) for r in g["security_group_rules"]) == [
        ("egress", "IPv4"), ("egress", "IPv6")]
    with db.read() as s:
        kinds = [(c.resource, c.action) for c in s.execute(select(Change).order_by(Change.revision)).scalars()]
    assert ("security_group", "create") in kinds
    with pytest.raises(e.SecurityGroupDefaultAlreadyExists):
        groups.create_bulk(ALICE, [{"name": "default"}])


def test_rules_duplicate_visibility_and_remote_groups(groups: SecurityGroupService, rules: RuleService) -> None:
    (g,) = groups.create_bulk(ALICE, [{"name": "web"}])
    (bob_g,) = groups.create_bulk(BOB, [{"name": "b"}])
    ssh = {"security_group_id": g["id"], "direction": "ingress", "protocol": "tcp",
           "port_range_min": 22, "port_range_max": 22}
    (r,) = rules.create_bulk(ALICE, [ssh])
    assert r["protocol"] == "tcp" and r["ethertype"] == "IPv4" and r["project_id"] == "alice"
    with pytest.raises(e.SecurityGroupRuleExists) as dup:
        rules.create_bulk(ALICE, [{**ssh, "protocol": "6"}])
    assert r["id"] in str(dup.value)
    with pytest.raises(e.SecurityGroupNotFound):
        rules.create_bulk(BOB, [{**ssh, "port_range_min": 23, "port_range_max": 23}])
    with pytest.raises(e.SecurityGroupNotFound):
        rules.create_bulk(ALICE, [{"security_group_id": g["id"], "direction": "ingress",
                                   "remote_group_id": bob_g["id"]}])
    with pytest.raises(e.SecurityGroupRuleNotFound):
        rules.get(BOB, r["id"])
    assert rules.get(ADMIN, r["id"])["id"] == r["id"]
    assert r["id"] in {x["id"] for x in rules.find(ALICE, ListQuery())}
    assert r["id"] not in {x["id"] for x in rules.find(BOB, ListQuery())}
    assert groups.get(ALICE, g["id"])["revision_number"] > g["revision_number"]
    rules.delete(ALICE, r["id"])
    with pytest.raises(e.SecurityGroupRuleNotFound):
        rules.get(ALICE, r["id"])


def test_bulk_rules_are_all_or_nothing(groups: SecurityGroupService, rules: RuleService) -> None:
    (g,) = groups.create_bulk(ALICE, [{"name": "web"}])
    good = {"security_group_id": g["id"], "direction": "ingress", "protocol": "tcp",
            "port_range_min": 80, "port_range_max": 80}
    with pytest.raises(e.SecurityGroupRuleExists):
        rules.create_bulk(ALICE, [good, good])
    assert len(groups.get(ALICE, g["id"])["security_group_rules"]) == 2  # the egress pair only


def test_delete_default_in_use_and_cascade(db: Database, groups: SecurityGroupService, rules: RuleService) -> None:
    d = _default(groups, ALICE)
    with pytest.raises(e.SecurityGroupCannotRemoveDefault):
        groups.delete(ALICE, d["id"])
    with pytest.raises(e.SecurityGroupCannotUpdateDefault):
        groups.update(ALICE, d["id"], {"name": "other"})
    (web, db_g) = groups.create_bulk(ALICE, [{"name": "web"}, {"name": "db"}])
    (ref,) = rules.create_bulk(ALICE, [{"security_group_id": db_g["id"], "direction": "ingress",
                                        "remote_group_id": web["id"]}])

    def use(txn: Txn) -> None:
        txn.session.add(Network(id="n1", project_id="alice"))
        txn.session.flush()
        txn.session.add(Port(id="p1", network_id="n1", project_id="alice", mac_address="fa:16:3e:00:00:01"))
        txn.session.flush()
        txn.session.add(SecurityGroupPortBinding(port_id="p1", security_group_id=web["id"]))
    db.transaction(use)
    with pytest.raises(e.SecurityGroupInUse):
        groups.delete(ALICE, web["id"])
    with pytest.raises(e.SecurityGroupInUse):
        groups.update(ALICE, web["id"], {"stateful": False})
    db.transaction(lambda txn: txn.session.query(SecurityGroupPortBinding).delete())
    groups.delete(ALICE, web["id"])
    with pytest.raises(e.SecurityGroupRuleNotFound):  # rules naming it as remote group go too
        rules.get(ALICE, ref["id"])
    with pytest.raises(e.SecurityGroupNotFound):
        groups.get(BOB, db_g["id"])
    groups.delete(ADMIN, d["id"])  # an admin may remove a default group


def test_concurrent_first_use_makes_one_default_group(db: Database, groups: SecurityGroupService) -> None:
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def first_use() -> None:
        try:
            barrier.wait()
            groups.ensure_default("carol")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with db.read() as s:
        names = list(s.execute(select(SecurityGroup.name).where(SecurityGroup.project_id == "carol")).scalars())
    assert names == ["default"]
