"""The DHCP scheduling pass and the scheduler API on a real (sqlite) database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert

from netplex.core.context import Context
from netplex.db.base import utcnow
from netplex.db.engine import Database, Txn
from netplex.db.models import Agent, Network, Subnet
from netplex.errors import AgentNotFound
from netplex.services.dhcp import errors as e
from netplex.services.dhcp import scheduler
from netplex.services.dhcp.scheduling_api import DhcpSchedulingApi


@pytest.fixture
def db(sqlite_url: str) -> Database:
    return Database(sqlite_url)


def _agent(db: Database, aid: str, host: str, *, age: int = 0, kind: str = scheduler.DHCP_AGENT_TYPE) -> None:
    def run(txn: Txn) -> None:
        txn.conn.execute(insert(Agent).values(id=aid, agent_type=kind, binary="b", topic="t", host=host,
                                              admin_state_up=True, configurations={},
                                              created_at=utcnow(), started_at=utcnow(),
                                              heartbeat_timestamp=utcnow() - timedelta(seconds=age)))
    db.transaction(run)


def _network(db: Database, nid: str, *, dhcp: bool = True) -> None:
    def run(txn: Txn) -> None:
        txn.session.add(Network(id=nid, project_id="p"))
        txn.flush()
        txn.session.add(Subnet(id=f"s-{nid}", network_id=nid, project_id="p", ip_version=4, cidr="10.0.0.0/24",
                               enable_dhcp=dhcp))
    db.transaction(run)


def _pass(db: Database, **kw: int | bool) -> list[tuple[str, str, str]]:
    policy = scheduler.SchedulePolicy(agent_down_time=30, **kw)  # type: ignore[arg-type]
    return db.transaction(lambda txn: scheduler.schedule_pass(txn, policy))


def test_networks_with_dhcp_get_agents_up_to_the_count_least_loaded_first(db: Database) -> None:
    _agent(db, "a1", "h1")
    _agent(db, "a2", "h2")
    _agent(db, "l2", "h1", kind="Linux bridge agent")
    _network(db, "n1")
    _network(db, "n2")
    _network(db, "n3", dhcp=False)
    assert _pass(db) == [("add", "n1", "a1"), ("add", "n2", "a2")]
    assert _pass(db) == []
    assert _pass(db, agents_per_network=2) == [("add", "n1", "a2"), ("add", "n2", "a1")]


def test_dead_agent_networks_move_to_a_live_one_but_never_to_none(db: Database) -> None:
    _agent(db, "a1", "h1", age=100)
    _network(db, "n1")
    db.transaction(lambda txn: scheduler.add_binding(txn, "n1", "a1"))
    assert _pass(db) == []  # no live agent: keep the dead one
    _agent(db, "a2", "h2")
    assert _pass(db) == [("add", "n1", "a2"), ("remove", "n1", "a1")]
    with db.read() as s:
        assert scheduler.bindings(s.connection()) == [("n1", "a2")]


def test_scheduler_api(db: Database) -> None:
    _agent(db, "a1", "h1")
    _agent(db, "l2", "h1", kind="Linux bridge agent")
    _network(db, "n1")
    api = DhcpSchedulingApi(db, 30)
    ctx = Context.admin()
    api.add_network(ctx, "a1", "n1")
    with pytest.raises(e.NetworkHostedByDHCPAgent):
        api.add_network(ctx, "a1", "n1")
    with pytest.raises(e.InvalidDHCPAgent):
        api.add_network(ctx, "l2", "n1")
    with pytest.raises(AgentNotFound):
        api.networks_of_agent(ctx, "nope")
    assert [n["id"] for n in api.networks_of_agent(ctx, "a1")] == ["n1"]
    agents = api.agents_of_network(ctx, "n1")
    assert [(a["id"], a["alive"]) for a in agents] == [("a1", True)]
    api.remove_network(ctx, "a1", "n1")
    with pytest.raises(e.NetworkNotHostedByDhcpAgent):
        api.remove_network(ctx, "a1", "n1")
