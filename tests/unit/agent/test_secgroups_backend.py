"""FilteredBackend: the filter goes first in the pass, a failed filter keeps new ports shut."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from netplex.agent.backend_api import ApplyResult, Backend, PortStatus
from netplex.agent.model import HostDesired, NetworkSpec, PortSpec
from netplex.agent.monitor import DeviceMonitor, DeviceNews
from netplex.agent.ops import AttachPort, Op, Plan, SetLinkUp
from netplex.agent.reconcile import reconcile
from netplex.agent.secgroups import security_from_api
from netplex.agent.secgroups_backend import ApplyFilter, EnableBridgeNetfilter, FilteredBackend
from netplex.agent.secgroups_nft import INET_TABLE
from netplex.linux.nftables import NftError, NftTable

from .test_secgroups import G_WEB, PID, group, port

NET = NetworkSpec("n1", "local")
TAP = PortSpec(PID, "n1", "fa:16:3e:00:00:01").device


class Inner(Backend[str]):
    """Attaches every port's tap; observed state is just a label."""

    name = "fake"

    def __init__(self) -> None:
        self.applied: list[Op] = []

    def observe(self) -> str:
        return "host"

    def plan(self, desired: HostDesired, observed: str) -> Plan:
        return Plan(ops=tuple(op for p in desired.ports if p.device not in
                              {getattr(o, "dev", None) for o in self.applied}
                              for op in (AttachPort(p.device, "brq"), SetLinkUp(p.device))))

    def apply(self, ops: Sequence[Op]) -> ApplyResult:
        self.applied += ops
        return ApplyResult(applied=len(ops))

    def port_status(self, desired: HostDesired, observed: str, converged: bool = False) -> dict[str, PortStatus]:
        return {p.port_id: PortStatus(True) for p in desired.ports}

    def device_monitor(self, notify: Callable[[DeviceNews], None]) -> DeviceMonitor:
        raise NotImplementedError


class FakeNft:
    def __init__(self) -> None:
        self.tables: dict[tuple[str, str], NftTable | None] = {}
        self.scripts: list[str] = []
        self.fail = False

    def read(self, netns: str | None, family: str, name: str) -> NftTable | None:
        return self.tables.get((family, name))

    def run(self, netns: str | None, script: str) -> None:
        if self.fail:
            raise NftError("Error: Could not process rule")
        self.scripts.append(script)


def desired(security: bool = True) -> HostDesired:
    sec = security_from_api([port()], [group(G_WEB)], []) if security else None
    return HostDesired("h1", networks=(NET,), ports=(PortSpec(PID, "n1", "fa:16:3e:00:00:01"),),
                       security=sec)


def backend(nft: FakeNft, inner: Inner) -> FilteredBackend:
    return FilteredBackend(inner, "routed", read=nft.read, run=nft.run)


def test_filter_is_applied_before_the_port_is_wired() -> None:
    nft, inner = FakeNft(), Inner()
    b = backend(nft, inner)
    res = reconcile(b, desired())
    assert isinstance(res.plan.ops[0], ApplyFilter)
    assert nft.scripts and f"add chain inet netplex o-{TAP}" in nft.scripts[0]
    assert inner.applied == [AttachPort(TAP, "brq"), SetLinkUp(TAP)]
    assert res.up == {PID}
    # The next event pass takes the tables from the baseline: nothing more to do.
    again = reconcile(b, desired(), res.baseline)
    assert again.plan.ops == ()


def test_failed_filter_holds_the_port_back_and_reports_it() -> None:
    nft, inner = FakeNft(), Inner()
    nft.fail = True
    res = reconcile(backend(nft, inner), desired())
    assert inner.applied == []
    assert res.down == {PID}
    assert "security group filter not applied" in res.ports[PID].reason


def test_no_security_data_leaves_tables_alone() -> None:
    nft, inner = FakeNft(), Inner()
    nft.tables[INET_TABLE] = NftTable("inet", "netplex")
    res = reconcile(backend(nft, inner), desired(security=False))
    assert not any(isinstance(op, ApplyFilter) for op in res.plan.ops)
    empty = dataclasses.replace(desired(), security=security_from_api([], [], []))
    res = reconcile(backend(nft, Inner()), empty)
    assert [op.script for op in res.plan.ops if isinstance(op, ApplyFilter)] == ["delete table inet netplex\n"]


def test_bridge_mode_enables_bridge_netfilter(monkeypatch: Any) -> None:
    import netplex.agent.secgroups_backend as sb
    written: list[dict[str, str]] = []
    monkeypatch.setattr(sb, "read_sysctls", lambda netns, keys: {})
    monkeypatch.setattr(sb, "write_sysctls", lambda netns, values: written.append(dict(values)) or {})
    nft, inner = FakeNft(), Inner()
    b = FilteredBackend(inner, "bridge", read=nft.read, run=nft.run)
    res = reconcile(b, desired())
    assert isinstance(res.plan.ops[0], EnableBridgeNetfilter)
    assert written == [dict(sb.BRIDGE_NF_SYSCTLS)]
    assert "add table bridge netplex" in nft.scripts[0]
    assert reconcile(b, desired(), res.baseline).plan.ops == ()


def test_no_bridge_netfilter_keeps_ports_down(monkeypatch: Any) -> None:
    import netplex.agent.secgroups_backend as sb
    monkeypatch.setattr(sb, "read_sysctls", lambda netns, keys: {})
    monkeypatch.setattr(sb, "write_sysctls", lambda netns, values: {k: "cannot stat" for k in values})
    nft, inner = FakeNft(), Inner()
    res = reconcile(FilteredBackend(inner, "bridge", read=nft.read, run=nft.run), desired())
    assert inner.applied == [] and res.down == {PID}
    assert "br_netfilter" in res.ports[PID].reason
