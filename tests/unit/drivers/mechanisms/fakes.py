"""Test-only mechanism drivers and helpers (never registered as entry points).

``TorDriver`` + ``LowerDriver`` are the hierarchical-binding pair: the upper
one (think top-of-rack switch) takes a VXLAN segment, allocates a dynamic
VLAN segment on ``physnet1`` and continues; the lower one binds VLAN
segments on hosts it is told about.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from netplex.core.mech_api import (
    AgentInfo,
    MechanismDriver,
    NetworkContext,
    PortBindingInfo,
    PortContext,
)
from netplex.core.mech_manager import BindingRequest
from netplex.core.segments_model import Segment


class TorDriver(MechanismDriver):
    """Level 0: VXLAN -> dynamic VLAN on ``physnet``."""

    def __init__(self, physnet: str = "physnet1") -> None:
        self.physnet = physnet
        self.calls = 0

    def bind_port(self, context: PortContext) -> None:
        self.calls += 1
        for seg in context.segments_to_bind:
            if seg.network_type == "vxlan":
                dyn = context.allocate_dynamic_segment("vlan", self.physnet)
                context.continue_binding(seg.id, [dyn])
                return
        context.decline("no vxlan segment to map onto a VLAN")


class LowerDriver(MechanismDriver):
    """Level 1: binds VLAN segments on the hosts in ``hosts``."""

    def __init__(self, hosts: Iterable[str] = ()) -> None:
        self.hosts = set(hosts)

    def bind_port(self, context: PortContext) -> None:
        if context.host not in self.hosts:
            context.decline(f"host {context.host} is not cabled to a managed switch")
            return
        for seg in context.segments_to_bind:
            if seg.network_type == "vlan":
                context.set_binding(seg.id, "ovs", {"vlan": seg.segmentation_id})
                return
        context.decline("no vlan segment")


class CallbackDriver(MechanismDriver):
    """Runs ``fn(context)`` as its bind_port (for one-off behaviours in tests)."""

    def __init__(self, fn: Callable[[PortContext], None]) -> None:
        self.fn = fn
        self.calls = 0

    def bind_port(self, context: PortContext) -> None:
        self.calls += 1
        self.fn(context)


def agent(
    agent_type: str,
    host: str,
    *,
    alive: bool = True,
    admin_state_up: bool = True,
    **configurations: Any,
) -> AgentInfo:
    return AgentInfo(
        id=f"{host}-{agent_type}",
        agent_type=agent_type,
        binary="netplex-test-agent",
        host=host,
        topic="N/A",
        alive=alive,
        admin_state_up=admin_state_up,
        configurations=MappingProxyType(dict(configurations)),
    )


def segment(
    network_type: str,
    physical_network: str | None = None,
    segmentation_id: int | None = None,
    *,
    id: str | None = None,
    network_id: str = "net-0123456789abcdef",
    is_dynamic: bool = False,
) -> Segment:
    return Segment(
        id=id or f"seg-{network_type}-{physical_network}-{segmentation_id}",
        network_id=network_id,
        network_type=network_type,
        physical_network=physical_network,
        segmentation_id=segmentation_id,
        is_dynamic=is_dynamic,
    )


def request(
    segments: Sequence[Segment],
    agents: Sequence[AgentInfo] = (),
    *,
    host: str = "host-1",
    vnic_type: str = "normal",
    profile: Mapping[str, Any] | None = None,
    network_id: str = "net-0123456789abcdef",
) -> BindingRequest:
    """A :class:`BindingRequest` without a database."""
    return BindingRequest(
        port=MappingProxyType({"id": "port-1", "network_id": network_id}),
        network=NetworkContext(
            current=MappingProxyType({"id": network_id}), segments=tuple(segments)
        ),
        binding=PortBindingInfo(
            host=host, vnic_type=vnic_type, profile=MappingProxyType(dict(profile or {}))
        ),
        agents=tuple(agents),
    )


class FakeAllocator:
    """A :class:`SegmentAllocator` in memory: VLANs 100.. on the asked physnet."""

    def __init__(self) -> None:
        self.allocated: dict[str, Segment] = {}
        self.released: list[str] = []
        self._next = 100

    def allocate(
        self,
        network_id: str,
        network_type: str,
        physical_network: str | None,
        segmentation_id: int | None,
    ) -> Segment:
        seg = Segment(
            id=f"dyn-{self._next}",
            network_id=network_id,
            network_type=network_type,
            physical_network=physical_network,
            segmentation_id=segmentation_id or self._next,
            is_dynamic=True,
        )
        self._next += 1
        self.allocated[seg.id] = seg
        return seg

    def release_unused(self, segment_ids: Sequence[str]) -> None:
        for sid in segment_ids:
            self.allocated.pop(sid, None)
            self.released.append(sid)


class Clock:
    """A settable UTC clock for AgentService."""

    def __init__(self) -> None:
        from datetime import UTC, datetime

        self.now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

    def __call__(self) -> Any:
        return self.now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now += timedelta(seconds=seconds)
