"""AgentService: registration, heartbeats, liveness and the /v2.0/agents views."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from netplex.core.agents import AgentChange, AgentService
from netplex.db.engine import Database, Txn
from netplex.db.models import Change
from netplex.errors import AgentNotFound, InvalidInput


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    d = Database(db_url)
    yield d
    d.dispose()


def ovs_state(host: str = "host-a", **extra: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "agent_type": "Open vSwitch agent",
        "binary": "netplex-openvswitch-agent",
        "host": host,
        "topic": "N/A",
        "availability_zone": "nova",
        "configurations": {
            "bridge_mappings": {"physnet1": "br-ex"},
            "tunnel_types": ["vxlan"],
            "tunneling_ip": "192.0.2.10",
        },
    }
    state.update(extra)
    return state


def report(db: Database, svc: AgentService, state: dict[str, Any]) -> AgentChange:
    return db.transaction(lambda txn: svc.report_state(txn, state))


def feed(db: Database) -> list[tuple[str, str]]:
    with db.read() as s:
        return [(c.resource, c.action) for c in s.scalars(select(Change).order_by(Change.revision))]


def test_register_heartbeat_and_neutron_shape(db: Database) -> None:
    clock = Clock()
    svc = AgentService(agent_down_time=75, clock=clock)
    change = report(db, svc, ovs_state(start_flag=True))
    assert change.created and change.should_rebind
    agent = change.agent
    assert set(agent) == {
        "id", "agent_type", "binary", "topic", "host", "admin_state_up", "alive",
        "heartbeat_timestamp", "started_at", "created_at", "configurations",
        "availability_zone", "description", "resources_synced",
    }
    assert agent["alive"] is True and agent["admin_state_up"] is True
    assert agent["heartbeat_timestamp"] == "2030-01-02 03:04:05"
    assert agent["started_at"] == agent["created_at"] == "2030-01-02 03:04:05"
    assert agent["description"] is None and agent["availability_zone"] == "nova"

    clock.advance(30)
    beat = report(db, svc, ovs_state())
    assert not (beat.created or beat.revived or beat.configurations_changed)
    assert not beat.should_rebind
    assert beat.agent["id"] == agent["id"]
    assert beat.agent["heartbeat_timestamp"] == "2030-01-02 03:04:35"
    assert beat.agent["started_at"] == "2030-01-02 03:04:05"
    # Plain heartbeats are not fed; registration is.
    assert feed(db) == [("agent", "create")]

    clock.advance(10)
    restarted = report(db, svc, ovs_state(start_flag=True))
    assert restarted.agent["started_at"] == "2030-01-02 03:04:45"
    assert feed(db) == [("agent", "create"), ("agent", "update")]


def test_alive_follows_agent_down_time_and_revival_asks_for_rebind(db: Database) -> None:
    clock = Clock()
    svc = AgentService(agent_down_time=75, clock=clock)
    agent_id = report(db, svc, ovs_state()).agent["id"]
    clock.advance(75)
    with db.read() as s:
        assert svc.get_agent(s, agent_id)["alive"] is True
    clock.advance(1)
    with db.read() as s:
        assert svc.get_agent(s, agent_id)["alive"] is False
        (info,) = svc.agents_on_host(s, "host-a")
        assert info.alive is False and info.usable is False
    revived = report(db, svc, ovs_state())
    assert revived.revived and revived.should_rebind and revived.agent["alive"]


def test_configuration_change_asks_for_rebind(db: Database) -> None:
    svc = AgentService(clock=Clock())
    report(db, svc, ovs_state())
    state = ovs_state()
    state["configurations"]["bridge_mappings"] = {"physnet1": "br-ex", "physnet2": "br-2"}
    change = report(db, svc, state)
    assert change.configurations_changed and change.should_rebind
    with db.read() as s:
        (info,) = svc.agents_on_host(s, "host-a")
    assert info.bridge_mappings == {"physnet1": "br-ex", "physnet2": "br-2"}
    assert info.tunnel_types == ("vxlan",) and info.tunneling_ip == "192.0.2.10"


def test_update_list_delete(db: Database) -> None:
    svc = AgentService(clock=Clock())
    a = report(db, svc, ovs_state("host-b")).agent
    b = report(db, svc, {**ovs_state("host-a"), "agent_type": "Linux bridge agent",
                         "binary": "netplex-linuxbridge-agent"}).agent
    with db.read() as s:
        assert [x["host"] for x in svc.list_agents(s)] == ["host-a", "host-b"]
        assert [x["id"] for x in svc.list_agents(s, agent_type="Open vSwitch agent")] == [a["id"]]
        assert svc.list_agents(s, host="host-z") == []

    down = db.transaction(
        lambda txn: svc.update_agent(txn, a["id"], {"admin_state_up": False, "description": "x"})
    )
    assert down.agent["admin_state_up"] is False and down.agent["description"] == "x"
    assert not down.should_rebind
    up = db.transaction(lambda txn: svc.update_agent(txn, a["id"], {"admin_state_up": True}))
    assert up.enabled and up.should_rebind

    with pytest.raises(InvalidInput):
        db.transaction(lambda txn: svc.update_agent(txn, a["id"], {"host": "elsewhere"}))
    with pytest.raises(InvalidInput):
        db.transaction(lambda txn: svc.update_agent(txn, a["id"], {"admin_state_up": "yes"}))
    with pytest.raises(AgentNotFound):
        db.transaction(lambda txn: svc.update_agent(txn, "nope", {"description": ""}))

    def delete(txn: Txn) -> None:
        svc.delete_agent(txn, b["id"])

    db.transaction(delete)
    with db.read() as s, pytest.raises(AgentNotFound):
        svc.get_agent(s, b["id"])
    with pytest.raises(AgentNotFound):
        db.transaction(delete)
    assert feed(db)[-1] == ("agent", "delete")


@pytest.mark.parametrize(
    "bad",
    [
        {"binary": "x", "host": "h"},
        {"agent_type": "T", "binary": "x", "host": ""},
        {"agent_type": "T", "binary": "x", "host": "h", "configurations": ["a"]},
        {"agent_type": "T", "binary": "x", "host": "h", "availability_zone": 3},
    ],
)
def test_malformed_reports_are_rejected(db: Database, bad: dict[str, Any]) -> None:
    svc = AgentService()
    with pytest.raises(InvalidInput):
        report(db, svc, bad)
