"""Dataplane operations as data, and the executor contract that applies them.

Plugins never touch the kernel or OVSDB: they return a list of these
operations (a *plan*) computed from the VIF alone, so unit tests can read the
plan, and a fake executor (:mod:`netplex.vif.testing`) can apply it to an
in-memory host. :class:`~netplex.vif.executor.LinuxExecutor` applies plans to
the real thing.

Every operation is idempotent by contract:

* ``Ensure*`` creates what is missing and accepts what is already there (but
  refuses a device of the wrong kind under the same name);
* ``Delete*`` / ``OvsDelPort`` accept that the thing is already gone;
* ``SetLink``, ``AddAddress`` and ``SetDefaultRoute`` converge on the value.

So a plan can be applied again after a partial failure, and unplugging
something that is gone is not an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "AddAddress",
    "DeleteLink",
    "EnsureBridge",
    "EnsureTap",
    "EnsureVeth",
    "Executor",
    "IFNAMSIZ",
    "LinkState",
    "MoveLink",
    "Op",
    "OvsAddPort",
    "OvsDelPort",
    "OvsInterfaceState",
    "SetDefaultRoute",
    "SetLink",
    "describe",
]


#: Usable characters of a Linux interface name: executors refuse longer ones.
IFNAMSIZ = 15


@dataclass(frozen=True)
class EnsureBridge:
    """A Linux bridge ``name`` exists and is up (created if missing)."""

    name: str

    def __str__(self) -> str:
        return f"ensure bridge {self.name}"


@dataclass(frozen=True)
class EnsureVeth:
    """A veth pair ``name`` <-> ``peer`` exists (created if ``name`` is missing).

    Only ``name`` is looked at when checking: the peer may already have been
    moved into another namespace and renamed. ``mtu`` and ``peer_address``
    apply at creation.
    """

    name: str
    peer: str
    mtu: int | None = None
    peer_address: str | None = None

    def __str__(self) -> str:
        return f"ensure veth {self.name} <-> {self.peer}"


@dataclass(frozen=True)
class EnsureTap:
    """A persistent tap device ``name`` exists, for a hypervisor to open."""

    name: str
    mtu: int | None = None

    def __str__(self) -> str:
        return f"ensure tap {self.name}"


@dataclass(frozen=True)
class SetLink:
    """Set attributes of the existing device ``name``; None leaves an attribute alone."""

    name: str
    up: bool | None = True
    mtu: int | None = None
    #: Linux bridge to enslave the device to.
    master: str | None = None
    address: str | None = None

    def __str__(self) -> str:
        parts = [f"set {self.name}"]
        if self.master:
            parts.append(f"master {self.master}")
        if self.mtu:
            parts.append(f"mtu {self.mtu}")
        if self.address:
            parts.append(f"address {self.address}")
        if self.up is not None:
            parts.append("up" if self.up else "down")
        return " ".join(parts)


@dataclass(frozen=True)
class DeleteLink:
    """Device ``name`` does not exist (deleting a veth end deletes its peer too)."""

    name: str

    def __str__(self) -> str:
        return f"delete {self.name}"


@dataclass(frozen=True)
class MoveLink:
    """Move device ``name`` into namespace ``netns`` and rename it ``new_name``.

    Already done (``name`` gone here, ``new_name`` present there) is success.
    """

    name: str
    netns: str
    new_name: str

    def __str__(self) -> str:
        return f"move {self.name} to netns {self.netns} as {self.new_name}"


@dataclass(frozen=True)
class AddAddress:
    """Address ``address/prefixlen`` is on device ``name``."""

    name: str
    address: str
    prefixlen: int

    def __str__(self) -> str:
        return f"add address {self.address}/{self.prefixlen} on {self.name}"


@dataclass(frozen=True)
class SetDefaultRoute:
    """The default route of the gateway's address family goes via ``gateway`` on ``dev``."""

    gateway: str
    dev: str

    def __str__(self) -> str:
        return f"default route via {self.gateway} dev {self.dev}"


@dataclass(frozen=True)
class OvsAddPort:
    """Port ``port`` is on OVS bridge ``bridge`` with these Interface external_ids.

    ``initial_tag`` (and ``initial_protected``, OVS's Port ``protected``: such
    ports never forward to each other) are set only when the port is created,
    never on an existing port (whose tag the agent may have set meanwhile). ``db`` is the OVSDB
    socket from the binding (``vif_details["ovsdb_connection"]``), used unless
    the executor was given one explicitly.
    """

    bridge: str
    port: str
    external_ids: tuple[tuple[str, str], ...] = ()
    initial_tag: int | None = None
    db: str | None = None
    initial_protected: bool = False

    def __str__(self) -> str:
        ids = " ".join(f"{k}={v}" for k, v in self.external_ids)
        initial = ([f"tag={self.initial_tag}"] if self.initial_tag is not None else []) + (
            ["protected"] if self.initial_protected else [])
        tag = f" {' '.join(initial)} if new" if initial else ""
        return f"ovs add-port {self.bridge} {self.port}{tag}" + (f" ({ids})" if ids else "")


@dataclass(frozen=True)
class OvsDelPort:
    """Port ``port`` is on no OVS bridge."""

    port: str
    db: str | None = None

    def __str__(self) -> str:
        return f"ovs del-port {self.port}"


Op = (
    EnsureBridge
    | EnsureVeth
    | EnsureTap
    | SetLink
    | DeleteLink
    | MoveLink
    | AddAddress
    | SetDefaultRoute
    | OvsAddPort
    | OvsDelPort
)


def describe(ops: Sequence[Op]) -> list[str]:
    """One human-readable line per operation (for logs and ``--verbose`` output)."""
    return [str(op) for op in ops]


@dataclass(frozen=True)
class LinkState:
    """What an executor observes about one device."""

    name: str
    #: ``veth``, ``bridge``, ``tun``, ... (None for devices without a kind, e.g. lo).
    kind: str | None
    up: bool
    mtu: int | None = None
    #: Name of the Linux bridge it is enslaved to (None if none or not a bridge).
    master: str | None = None
    address: str | None = None
    #: ``"a.b.c.d/len"`` strings (IPv6 link-local addresses left out).
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class OvsInterfaceState:
    """What an executor observes about one OVS interface."""

    name: str
    bridge: str
    external_ids: dict[str, str]
    #: The Port's VLAN tag (None: untagged/trunk).
    tag: int | None = None


@runtime_checkable
class Executor(Protocol):
    """Applies plans to one host and answers questions about it.

    ``netns=None`` means the executor's home namespace (the host the VIF
    lives on); a name means another namespace (a namespace VM).
    Implementations: :class:`netplex.vif.executor.LinuxExecutor` (real) and
    :class:`netplex.vif.testing.FakeExecutor` (in memory).
    """

    def apply(self, ops: Sequence[Op], *, netns: str | None = None) -> None:
        """Apply ``ops`` in order; raise :class:`~netplex.vif.errors.ExecutionError` on failure."""
        ...

    def link(self, name: str, *, netns: str | None = None) -> LinkState | None:
        """The device ``name``, or None if it does not exist."""
        ...

    def ovs_interface(self, name: str, *, db: str | None = None) -> OvsInterfaceState | None:
        """The OVS interface ``name``, or None if no bridge has it."""
        ...

    def default_gateways(self, *, netns: str | None = None) -> tuple[str, ...]:
        """Gateways of the default routes (both families)."""
        ...
