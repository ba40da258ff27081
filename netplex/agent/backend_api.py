"""The host-backend contract: what a data plane must offer the Netplex host agent.

Read this first if you are writing a backend (a new kind of host: routed L3
with taps and /32 routes, a hardware switch, a SmartNIC). The agent does
everything else — registering and heartbeating, watching the change feed,
coalescing bursts, full resyncs, reporting port status to the server — and
calls a backend only through the two classes below:

* :class:`BackendKind` describes a kind of host to the agent and the server
  and builds its :class:`Backend`. A kind is found by name through the
  ``netplex.agent_backends`` entry-point group (``netplex agent --mechanism
  NAME``), so adding one needs no edit of the agent::

      [project.entry-points."netplex.agent_backends"]
      routed = "my_package.routed:RoutedKind"

* :class:`Backend` reconciles one host. Each reconcile pass (see
  :func:`netplex.agent.reconcile.reconcile`) is ``observe`` (or
  ``observe_since``) → ``plan`` → ``apply`` → ``port_status``, always on the
  agent's one worker thread, never two passes at once. ``plan`` and
  ``port_status`` are pure functions of their arguments: all I/O is in
  ``observe*`` and ``apply``, which keeps the logic testable without root and
  lets a fake backend simulate thousands of hosts.

The rules every backend keeps:

* **Idempotent, convergent.** A pass on a host that already matches plans no
  operation at all (this is what keeps a VM's traffic undisturbed when its
  agent restarts). ``plan`` must therefore compare against what is really
  there, not against what the backend did last time.
* **Own only what you made.** ``observe`` reports, and ``plan`` removes, only
  objects the backend manages (by name prefix, an external-id, a table of its
  own); a device somebody else made is never touched.
* **Errors are data.** ``apply`` runs every operation it can and returns the
  failures in :class:`ApplyResult`; it raises only when it cannot run at all
  (the daemon it talks to is gone), in which case the agent logs it, keeps the
  host's ports as they are and resyncs fully on the next pass.
* **Events are hints, the resync is truth.** ``observe_since`` may take
  shortcuts; every full resync (start-up, the periodic one, after a feed gap)
  calls ``observe`` and must read everything.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from netplex.agent.model import HostDesired
from netplex.agent.monitor import DeviceMonitor, DeviceNews
from netplex.agent.ops import Op, Plan
from netplex.agent.settings import AgentSettings, SettingsError

__all__ = ["ENTRY_POINT_GROUP", "ApplyResult", "Backend", "BackendKind", "Baseline", "ObservedT", "PortStatus",
           "SettingsError"]

#: Entry-point group that names the installed backend kinds.
ENTRY_POINT_GROUP = "netplex.agent_backends"

#: What a backend's ``observe`` returns: its own snapshot type (an immutable
#: dataclass is best), opaque to the agent, handed back to ``plan`` and
#: ``port_status``.
ObservedT = TypeVar("ObservedT")


@dataclass(frozen=True, slots=True)
class PortStatus:
    """Whether a local port is wired (``up``: reported ACTIVE) and, if not, why (DOWN)."""

    up: bool
    #: Shown to operators when the port stays DOWN ("bridge brq… is full").
    reason: str = ""


@dataclass(frozen=True)
class ApplyResult:
    """What :meth:`Backend.apply` did."""

    applied: int = 0
    #: (operation, error text) for operations that failed; the next pass retries them.
    errors: tuple[tuple[Op, str], ...] = ()


@dataclass(frozen=True)
class Baseline(Generic[ObservedT]):
    """What a pass leaves for the next: the host as it saw it, and the operations it
    then applied without error (so ``observed`` plus ``applied`` is the host now,
    as far as the agent's own doing goes)."""

    observed: ObservedT
    applied: tuple[Op, ...] = ()


class Backend(abc.ABC, Generic[ObservedT]):
    """One host's data plane. Built by :meth:`BackendKind.build`; one per agent process.

    A backend keeps no desired state between passes: everything it needs
    comes in ``desired`` (the server's view of this host: its bound ports,
    their networks and segments, the remote endpoints it must reach).
    Connections (an OVSDB session, a netlink socket) may be kept and are
    released in :meth:`close`.
    """

    #: Short name used in the agent's log lines ("linuxbridge").
    name: str

    @abc.abstractmethod
    def observe(self) -> ObservedT:
        """Read the current data-plane state of this host, all of it.

        Called at every full resync and after a pass whose ``apply`` had
        errors. May raise when the data plane cannot be read at all.
        """

    def observe_since(self, baseline: Baseline[ObservedT], desired: HostDesired,
                      devices: Collection[str]) -> ObservedT:
        """The current state, starting from ``baseline`` instead of reading everything.

        What only the agent changes may be taken from the baseline; what
        others change (VM devices plugged or unplugged by the compute side)
        must be read again: at least the devices of ``desired``'s ports the
        baseline lacks, and ``devices`` (named by the device monitor since).
        The default reads everything, which is always correct.
        """
        return self.observe()

    @abc.abstractmethod
    def plan(self, desired: HostDesired, observed: ObservedT) -> Plan:
        """Operations that turn ``observed`` into ``desired``. Pure: no I/O, no clock.

        Networks that cannot be built on this host (a physnet without a
        mapping, a full bridge) go to ``Plan.problems`` with a reason instead
        of into failing operations that would be retried every pass.
        """

    @abc.abstractmethod
    def apply(self, ops: Sequence[Op]) -> ApplyResult:
        """Execute ``ops`` in order; a failing op is recorded and the rest still run.

        Batch what the platform can batch (one ``ip -batch``, one OVSDB
        transaction, one ``nft -f`` file): a pass may carry thousands of ops.
        """

    @abc.abstractmethod
    def port_status(self, desired: HostDesired, observed: ObservedT,
                    converged: bool = False) -> dict[str, PortStatus]:
        """For each local port of ``desired``: wired or not, judged from ``observed``. Pure.

        ``converged=True`` says ``observed`` predates a plan that applied
        without error (the agent skips a second snapshot then), so only
        presence, admin state and buildability need checking.
        """

    @abc.abstractmethod
    def device_monitor(self, notify: Callable[[DeviceNews], None]) -> DeviceMonitor:
        """A monitor (not started) that tells ``notify`` when VM devices come and go.

        Its news let event passes re-read only the devices it names and wake
        the agent when the compute side plugs a port; without a running
        monitor the agent falls back to reading everything every pass.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, most backends keep nothing open
        """Release kept connections; called once when the agent stops."""


class BackendKind(abc.ABC):
    """A kind of host, as the agent and the server see it; the entry point names a subclass.

    The agent instantiates it without arguments. The strings below are what
    ``/v2.0/agents`` shows and what mechanism drivers match when they bind
    (a driver binds on hosts whose live agent has *its* ``agent_type``).
    """

    #: The entry-point name and ``--mechanism`` value ("linuxbridge").
    name: ClassVar[str]
    #: ``agent_type`` reported to the server ("Linux bridge agent").
    agent_type: ClassVar[str]
    #: ``binary`` reported to the server ("netplex-linuxbridge-agent").
    binary: ClassVar[str]
    #: The configuration section whose options belong to this backend ("routed"
    #: for ``[routed] ...``), or None when it reads only the shared ones. The
    #: options themselves are declared like any plugin's, through the
    #: ``netplex.config_options`` entry-point group (see
    #: :func:`netplex.config.plugin_options` and :func:`netplex.config.register_options`),
    #: so ``netplex agent`` checks them (unknown names, unparsable values) like
    #: Netplex's own; their parsed values reach :meth:`validate` and :meth:`build`
    #: as ``settings.backend_options``::
    #:
    #:     [project.entry-points."netplex.config_options"]
    #:     routed = "my_package.routed:CONFIG_OPTIONS"   # {"routed": [Opt(...), ...]}
    #:
    #: (Inside Netplex the layer table keeps ``netplex.config`` out of ``agent/``, so a
    #: backend's declaration lives beside its mechanism driver, e.g.
    #: ``netplex.drivers.mechanisms.routed_options``; the backend reads the values by name.)
    options_section: ClassVar[str | None] = None

    def validate(self, settings: AgentSettings) -> None:
        """Refuse settings this kind cannot start with, before anything is contacted.

        Raise :class:`SettingsError` with a hint that
        says what to do next. The default accepts everything.
        """
        return None

    def local_ip(self, cfg: Any) -> str:
        """This kind's tunnel/underlay address option, read from a :class:`netplex.config.Config`.

        The default is Neutron's ``[vxlan] local_ip``.
        """
        return str(cfg.get("vxlan", "local_ip") or "")

    @abc.abstractmethod
    def configurations(self, settings: AgentSettings) -> dict[str, Any]:
        """The ``configurations`` dict reported with every heartbeat, beyond the common keys.

        The agent adds ``tunneling_ip``, ``tunnel_types`` and ``l2_population``
        itself; return what this kind's mechanism driver binds against
        (mappings, bridge names, datapath type, route distribution mode).
        """

    @abc.abstractmethod
    def build(self, settings: AgentSettings) -> Backend[Any]:
        """A fresh :class:`Backend` for the host these settings describe."""

