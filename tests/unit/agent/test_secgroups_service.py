"""The agent loop with security groups: snapshot and feed reach the filter (fake server, fake nft)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytest

from netplex.agent.api import HostState
from netplex.agent.backend_api import ApplyResult
from netplex.agent.ops import Op
from netplex.agent.secgroups_backend import ApplyFilter, FilteredBackend
from netplex.agent.service import AgentService

from .fakes import wait_for
from .test_secgroups import G_ADMIN, G_WEB, SSH_FROM_ADMIN, group
from .test_secgroups_backend import FakeNft
from .test_service import HOST, FakeBackend, FakeServer, settings


class SgServer(FakeServer):
    """FakeServer plus security groups: in the host state and on the feed."""

    def __init__(self) -> None:
        super().__init__()
        self.groups: dict[str, dict[str, Any]] = {}

    def set_group(self, body: dict[str, Any]) -> None:
        with self.lock:
            action = "update" if body["id"] in self.groups else "create"
            self.groups[body["id"]] = body
            self._record("security_group", body["id"], action, body)

    def host_state(self, host: str) -> HostState:
        state = super().host_state(host)
        with self.lock:
            members = [dict(p) for p in self.ports.values()
                       if set(p.get("security_groups") or ()) & {G_ADMIN}]
            return dataclasses.replace(state, security_groups=tuple(self.groups.values()),
                                       remote_group_ports=tuple(members), has_security=True)


class KeepingBackend(FilteredBackend):
    """Keeps the fake nft's tables as an applied transaction leaves them (a full
    observe then reads what the kernel would hold)."""

    def __init__(self, inner: Any, nft: FakeNft) -> None:
        super().__init__(inner, "routed", read=nft.read, run=nft.run)
        self.nft = nft

    def apply(self, ops: Sequence[Op]) -> ApplyResult:
        result = super().apply(ops)
        failed = {id(op) for op, _ in result.errors}
        for op in ops:
            if isinstance(op, ApplyFilter) and id(op) not in failed:
                self.nft.tables.update(op.after)
        return result


@pytest.fixture
def running() -> Iterable[Callable[[AgentService], AgentService]]:
    started: list[AgentService] = []

    def start(agent: AgentService) -> AgentService:
        started.append(agent.start())
        assert agent.wait_ready(5)
        return agent

    yield start
    for a in started:
        a.stop()


def test_rules_and_membership_follow_the_feed(running: Callable[[AgentService], AgentService]) -> None:
    server, nft, inner = SgServer(), FakeNft(), FakeBackend()
    server.set_group(group(G_WEB, SSH_FROM_ADMIN))
    server.set_group(group(G_ADMIN))
    net = server.add_network(1001)
    mine = server.add_port(net, HOST)
    admin = server.add_port(net, "h2")
    server.update_port(mine, port_security_enabled=True, security_groups=[G_WEB])
    server.update_port(admin, port_security_enabled=True, security_groups=[G_ADMIN])
    inner.plug(mine)
    backend = KeepingBackend(inner, nft)
    running(AgentService(settings(), api_factory=lambda: server, backend=backend, monitors=False))
    wait_for(lambda: any("add element inet netplex rg4-" in s for s in nft.scripts))
    first = nft.scripts[-1]
    assert f"add rule inet netplex gi-{G_WEB}" in first and "10.0.0.2" in first

    # The admin port's address changes: one set update.
    server.update_port(admin, fixed_ips=[{"subnet_id": "s", "ip_address": "10.0.0.9"}])
    wait_for(lambda: "10.0.0.9" in nft.scripts[-1])
    assert nft.scripts[-1].splitlines() == [f"delete element inet netplex rg4-{G_ADMIN} {{ 10.0.0.2 }}",
                                            f"add element inet netplex rg4-{G_ADMIN} {{ 10.0.0.9 }}"]

    # A rule change arrives as the group: the group's chain is rewritten, nothing else.
    extra = dict(SSH_FROM_ADMIN, id="r9", port_range_min=80, port_range_max=80)
    server.set_group(group(G_WEB, SSH_FROM_ADMIN, extra))
    wait_for(lambda: "th dport 80" in nft.scripts[-1])
    assert nft.scripts[-1].splitlines()[0] == f"flush chain inet netplex gi-{G_WEB}"
