"""Data-plane operations as data: what ``plan()`` returns and ``apply()`` executes.

Each operation is a frozen value with a readable ``str()`` (logged by the
agent and shown in test failures). Operations are idempotent on their own
("ensure", "add if missing", "delete if present"), so re-applying a plan
that was interrupted half-way is safe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields

__all__ = [
    "FLOW_COOKIE_MASK",
    "FLOW_COOKIE_PREFIX",
    "AddFdb",
    "AddFlows",
    "AddOvsPort",
    "AddPatchPorts",
    "AddVxlan",
    "AttachPort",
    "DelFdb",
    "DelFlows",
    "DelOvsPort",
    "DeleteBridge",
    "DeleteLink",
    "DetachPort",
    "EnsureBridge",
    "EnsureOvsBridge",
    "EnsureTag",
    "Flow",
    "Op",
    "Plan",
    "SetLinkDown",
    "SetLinkUp",
    "SetMtu",
]


class Op:
    """Base class of all operations (only for typing and ``str``)."""

    def __str__(self) -> str:
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))  # type: ignore[arg-type]
        return f"{type(self).__name__}({args})"


# --- kernel (netlink) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnsureBridge(Op):
    """Create Linux bridge ``name`` if missing and set it up."""

    name: str


@dataclass(frozen=True, slots=True)
class DeleteBridge(Op):
    """Delete Linux bridge ``name``; the kernel releases its ports (taps stay)."""

    name: str


@dataclass(frozen=True, slots=True)
class AddVxlan(Op):
    """Create kernel VXLAN device ``dev`` (learning off; FDB filled by L2 population)."""

    dev: str
    vni: int
    local_ip: str
    port: int
    mtu: int


@dataclass(frozen=True, slots=True)
class DeleteLink(Op):
    name: str


@dataclass(frozen=True, slots=True)
class SetLinkUp(Op):
    name: str


@dataclass(frozen=True, slots=True)
class SetLinkDown(Op):
    name: str


@dataclass(frozen=True, slots=True)
class SetMtu(Op):
    name: str
    mtu: int


@dataclass(frozen=True, slots=True)
class AttachPort(Op):
    """Enslave ``dev`` to Linux bridge ``bridge`` (moves it if enslaved elsewhere)."""

    dev: str
    bridge: str


@dataclass(frozen=True, slots=True)
class DetachPort(Op):
    """Release ``dev`` from its bridge (the device itself belongs to the compute side)."""

    dev: str


@dataclass(frozen=True, slots=True)
class AddFdb(Op):
    """VXLAN FDB ``mac dst`` on ``dev``; the all-zeros MAC is the flood list."""

    dev: str
    mac: str
    dst: str


@dataclass(frozen=True, slots=True)
class DelFdb(Op):
    dev: str
    mac: str
    dst: str


# --- Open vSwitch ---------------------------------------------------------------

#: Every flow the agent installs carries a cookie with this prefix in its top
#: 16 bits ("NP"); the low 48 bits are a hash of the flow itself. The cookie is
#: therefore the flow's identity: observing "which cookies are installed" is
#: enough to diff desired against actual flows, with no parsing of ovs-ofctl's
#: canonical match syntax, and flows of other controllers are never touched.
FLOW_COOKIE_PREFIX = 0x4E50 << 48
FLOW_COOKIE_MASK = 0xFFFF << 48


@dataclass(frozen=True, slots=True)
class Flow:
    """One OpenFlow rule (table 0) on ``bridge``. ``match`` may name ports by name."""

    bridge: str
    priority: int
    match: str
    actions: str

    @property
    def cookie(self) -> int:
        digest = hashlib.sha1(
            f"{self.bridge}|{self.priority}|{self.match}|{self.actions}".encode()).digest()
        return FLOW_COOKIE_PREFIX | int.from_bytes(digest[:6], "big")

    def spec(self) -> str:
        """The ``ovs-ofctl add-flow`` text of this flow, cookie included."""
        match = f",{self.match}" if self.match else ""
        return f"cookie={self.cookie:#x},priority={self.priority}{match} actions={self.actions}"


@dataclass(frozen=True, slots=True)
class EnsureOvsBridge(Op):
    name: str
    datapath_type: str
    fail_mode: str


@dataclass(frozen=True, slots=True)
class AddPatchPorts(Op):
    """Patch pair between the integration bridge and a physical (provider) bridge."""

    int_bridge: str
    int_port: str
    phys_bridge: str
    phys_port: str


@dataclass(frozen=True, slots=True)
class AddOvsPort(Op):
    """Add an existing kernel device to ``bridge`` as an access port of local VLAN ``tag``."""

    bridge: str
    name: str
    tag: int
    net_id: str


@dataclass(frozen=True, slots=True)
class DelOvsPort(Op):
    bridge: str
    name: str


@dataclass(frozen=True, slots=True)
class EnsureTag(Op):
    """Set Port ``name``'s local VLAN and the network it belongs to (None: dead port)."""

    name: str
    tag: int
    net_id: str | None


@dataclass(frozen=True, slots=True)
class AddFlows(Op):
    bridge: str
    flows: tuple[Flow, ...]

    def __str__(self) -> str:
        return f"AddFlows({self.bridge!r}, {[f.spec() for f in self.flows]})"


@dataclass(frozen=True, slots=True)
class DelFlows(Op):
    bridge: str
    cookies: tuple[int, ...]

    def __str__(self) -> str:
        return f"DelFlows({self.bridge!r}, {[hex(c) for c in self.cookies]})"


# --- the plan -----------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Ordered operations plus, per network, why it cannot be built on this host.

    Networks in ``problems`` get no operations (their existing devices are left
    alone rather than torn down), and their ports are reported DOWN.
    """

    ops: tuple[Op, ...] = ()
    problems: Mapping[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    def __bool__(self) -> bool:
        return bool(self.ops)

    def describe(self) -> str:
        lines = [str(op) for op in self.ops]
        lines += [f"problem: network {nid}: {why}" for nid, why in sorted(self.problems.items())]
        return "\n".join(lines) or "(nothing to do)"
