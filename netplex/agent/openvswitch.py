"""Open vSwitch backend: an integration bridge, local VLAN tags, kernel VXLAN, provider bridges.

Design (and why):

* **Integration bridge** ``br-int`` with ``datapath_type=netdev`` (the kernel
  datapath does not work on these hosts) and ``fail_mode=secure``: without a
  controller, a secure bridge forwards only what our flows allow, so nothing
  passes before the agent has programmed it (standalone would start as a
  learning switch that mixes every untagged port). Our table 0 is
  ``priority=0 NORMAL`` plus the drop rules below; VLAN isolation is then
  done by the NORMAL action over access ports.
* **Local VLAN per network**: each network with a port on this host gets a tag
  1..4094 (lowest free). It is stored in OVSDB itself, on every Port we tag:
  ``tag=<n>`` and ``other_config:netplex-net-id=<network id>``. After an agent
  restart :meth:`OvsBackend.observe` reads the tags back, so the same network
  keeps the same tag and nothing is re-tagged (no traffic disturbance). A tag
  exists only while a port of the network is on the bridge, so freeing it
  needs no bookkeeping either.
* **VM ports** are added to ``br-int`` by the compute side with
  ``external_ids:iface-id=<port id>``; the agent finds them by iface-id and sets
  the tag. Ports with an iface-id the server does not bind here (deleted,
  admin down, network not buildable) are "dead": tag 4095 and
  ``protected=true``. VLAN 4095 alone does not isolate (OVS's NORMAL action
  switches it like any VLAN, so dead ports would reach each other) and no
  other port carries it untagged: protected ports never forward to each
  other, so a dead port reaches nobody. Neutron drops a dead port's traffic
  with a ``priority=10,in_port=<ofport>`` flow instead; with the flag, dead
  and live are one OVSDB column each, so wiring a freshly bound port is one
  OVSDB transaction and no OpenFlow change (a burst of 1,000 bindings used
  to need an ``ovs-ofctl`` run per pass just to lift the drop flows).
  Until the agent sees a new port it is an untagged (trunk) port that the
  NORMAL action may flood to; the compute side should plug with ``tag=4095``
  and ``protected=true`` to close that window (:mod:`netplex.vif.plugins.ovs`
  does).
* **VXLAN** uses the same kernel ``vxlan-<vni>`` device and L2pop FDB code as
  the Linux bridge backend (:mod:`netplex.agent.l2pop`), added to ``br-int`` as
  an access port of the network's local tag. Why not OVS ``type=vxlan`` ports:
  with the userspace datapath, OVS tunnels need the underlay IP on an OVS
  bridge (OVS does its own routing/ARP for the outer header), i.e. taking over
  the host's underlay NIC; and they would need a second, flow-based L2pop
  implementation. The kernel device keeps one L2pop implementation for both
  backends, works against Linux bridge hosts unchanged (same VNI, port 4789)
  and leaves the underlay alone. Packets cross from the kernel device into
  the netdev datapath over AF_PACKET.
* **Provider networks** (flat, vlan) via ``bridge_mappings`` physnet -> an
  existing OVS bridge (created by the operator with its uplink NIC in it). The
  agent links it to ``br-int`` with a patch pair ``int-<br>``/``phy-<br>`` and
  translates tags as Neutron does: on the physical bridge, frames from br-int
  with the local tag are stripped (flat) or re-tagged with the provider VLAN
  (vlan); on br-int, untagged (flat) or provider-tagged (vlan) frames from the
  physical bridge get the local tag. Everything else arriving over the patch
  ports is dropped.

Flows are identified by cookie (see :class:`netplex.agent.ops.Flow`), so the
diff of desired against installed flows is a set difference of cookies.

How the shell talks to Open vSwitch (and why), so that a burst of 1,000
ports costs a few passes of tens of milliseconds:

* **OVSDB over one kept connection** (:class:`netplex.linux.ovsdb.OvsdbClient`)
  that monitors just the columns read here (:data:`OVSDB_COLUMNS`). Reading
  OVSDB is a look at that replica (after an ``echo`` round trip, so changes
  committed by others a moment ago are in it), where each ``ovs-vsctl``
  run read the whole database (40-90 ms with 1,000 ports). Writes are
  transactions on the same connection, built from the replica by
  :class:`OvsdbTxn`; an operation that cannot apply (no such port/bridge)
  is refused before sending, one OVSDB refuses is dropped and the rest sent
  again, a failed commit is bisected.
* **"ACTIVE" still means wired.** Like ``ovs-vsctl``, each transaction also
  increments ``Open_vSwitch:next_cfg``, and :meth:`OvsBackend.apply` returns
  only once ovs-vswitchd has set ``cur_cfg`` to it (seen in the replica):
  ports are opened and numbered. If it does not catch up in time, the ops
  are reported as failed, so the next pass reads everything again. (Not
  waiting for re-tags, and reporting their ports once ``cur_cfg`` catches
  up, was tried: with ovs-vswitchd, the server and the agent sharing two
  CPUs the extra passes cost more than the overlap saved - a burst of
  1,000 went from ~150 to 210-290 ms p50.)
* **No OVSDB, no plan.** Until the connection is (re)established and the
  replica re-filled, :meth:`OvsBackend.observe` raises and the agent retries
  the pass later: nothing is ever planned from an empty replica. After an
  ovsdb-server restart the client reconnects by itself.
* **Event passes** (:meth:`OvsBackend.observe_since`) read OVSDB from the
  replica (the compute side plugs ports) and take flows and the kernel
  VXLAN devices/FDB from the previous pass's snapshot plus the operations
  it applied (:func:`advance_flows`, :func:`netplex.agent.kernel.advance`):
  the agent is the only writer of flows with its cookie prefix and of
  ``vxlan-*`` devices. Full passes (first, every resync, after any error)
  still dump the flows and list the devices, which catches anybody else's
  drift.
* **Flows**: one ``ovs-ofctl bundle`` per bridge per pass (adds and deletes
  together, atomically), with ports given by number (from the replica) so
  ovs-ofctl needs no port-name table: ~12 ms instead of ~30 ms per run on a
  bridge with 1,000 ports.
"""
from __future__ import annotations

import itertools
import logging
import re
import threading
import time
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netplex.agent.backend_api import ApplyResult, Backend, BackendKind, Baseline, PortStatus, SettingsError
from netplex.agent.kernel import advance, apply_kernel
from netplex.agent.model import (
    HostDesired,
    OvsBridgeState,
    OvsObserved,
    OvsPortState,
)
from netplex.agent.monitor import DeviceMonitor, DeviceNews, OvsdbMonitor
from netplex.agent.ops import (
    FLOW_COOKIE_MASK,
    FLOW_COOKIE_PREFIX,
    AddFlows,
    DelFlows,
    Op,
    Plan,
)
from netplex.agent.ovs_plan import (
    OvsConfig,
    plan_openvswitch,
    port_status_openvswitch,
)
from netplex.agent.ovs_txn import (
    OVSDB_COLUMNS,
    OvsdbTxn,
    PortCache,
    advance_flows,
    cur_cfg,
    executor_of,
    ovs_state_from_replica,
    ovsdb_scalar,
)
from netplex.linux import ovs
from netplex.linux.ip import observe_linux
from netplex.linux.ovsdb import OvsdbClient, OvsdbError, TransactionError

if TYPE_CHECKING:
    from netplex.agent.settings import AgentSettings

__all__ = ["OvsBackend", "OvsConfig", "OvsKind"]

LOG = logging.getLogger(__name__)




class OvsBackend(Backend[OvsObserved]):
    """The Open vSwitch data plane of one host.

    :param db_socket: OVSDB remote, ``unix:/path/db.sock`` (or ``tcp:HOST:PORT``).
    :param rundir: where ovs-vswitchd puts ``<bridge>.mgmt`` (OVS_RUNDIR).
    :param netns: namespace of the host, for the kernel VXLAN devices.
    :param timeout: seconds to wait for OVSDB (connection, answers) and for
        ovs-vswitchd to apply a transaction.

    Keeps no host state between calls (tags live in OVSDB), so a new instance
    after an agent restart picks up exactly where the old one stopped. It does
    keep one OVSDB connection with a monitored replica (:mod:`netplex.linux.ovsdb`),
    opened on first use; :meth:`close` ends it (it is also closed when the
    backend is garbage-collected).
    """

    name = "openvswitch"

    def __init__(self, config: OvsConfig, db_socket: str, rundir: Path,
                 netns: str | None = None, timeout: float = 10.0) -> None:
        self.config = config
        self.db_socket = db_socket
        self.rundir = Path(rundir)
        self.netns = netns
        self.timeout = timeout
        self._db: OvsdbClient | None = None
        self._lock = threading.Lock()
        self._converted: tuple[int, int, dict[str, OvsBridgeState], dict[str, OvsPortState]] | None = None
        self._port_cache: PortCache = {}

    @classmethod
    def for_instance(cls, config: OvsConfig, instance: ovs.OvsInstance) -> OvsBackend:
        """Backend for a private :class:`~netplex.linux.ovs.OvsInstance` (lab, tests)."""
        return cls(config, instance.db_socket, instance.workdir, instance.netns)

    def mgmt(self, bridge: str) -> str:
        return f"unix:{self.rundir / f'{bridge}.mgmt'}"

    @property
    def db(self) -> OvsdbClient:
        """The OVSDB connection (opened on first use, so building a backend costs nothing)."""
        with self._lock:
            if self._db is None:
                self._db = OvsdbClient(self.db_socket, OVSDB_COLUMNS, timeout=self.timeout).start()
                # The connection thread refers to the client only, so an
                # unreachable backend is collected and its connection closed.
                weakref.finalize(self, self._db.close)
            return self._db

    def close(self) -> None:
        """Close the OVSDB connection (a later call opens a new one). Idempotent."""
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()

    def device_monitor(self, notify: Callable[[DeviceNews], None]) -> DeviceMonitor:
        """VM ports' Interface rows changing, told by this backend's own OVSDB connection."""
        return OvsdbMonitor(self.db, notify)

    # --- observe ---------------------------------------------------------------

    def _ovsdb_state(self, fresh: bool = True) -> tuple[dict[str, OvsBridgeState], dict[str, OvsPortState]]:
        """Bridges and ports from the replica (raises OvsdbUnavailable when out of sync);
        ``fresh``: after an echo round trip, so it holds what others committed just before."""
        db = self.db
        replica = db.snapshot() if fresh else db.replica()
        cached = self._converted
        if cached is not None and cached[:2] == (db.connections, replica.version):
            return cached[2], cached[3]
        bridges, ports = ovs_state_from_replica(replica, self._port_cache)
        self._converted = (db.connections, replica.version, bridges, ports)
        return bridges, ports

    def _managed(self, bridges: Collection[str]) -> list[str]:
        managed = [self.config.integration_bridge, *self.config.bridge_mappings.values()]
        return [b for b in dict.fromkeys(managed) if b in bridges]

    def observe(self) -> OvsObserved:
        bridges, ports = self._ovsdb_state()
        flows = {b: ovs.dump_flow_cookies(self.mgmt(b), FLOW_COOKIE_PREFIX, FLOW_COOKIE_MASK)
                 for b in self._managed(bridges)}
        linux = observe_linux(self.netns, vxlan_only=True)
        return OvsObserved(bridges=bridges, ports=ports, flows=flows, linux=linux)

    def observe_since(self, baseline: Baseline[OvsObserved], desired: HostDesired,
                      devices: Collection[str]) -> OvsObserved:
        """OVSDB from the replica (others plug ports); flows and VXLAN devices from the baseline.

        Only the agent writes flows with our cookie prefix and the ``vxlan-*``
        devices and their FDB, so the baseline plus what it applied is what is
        there. A managed bridge the baseline has no flows for (the operator
        just created it) is dumped.

        The replica is taken as it is, without the ``echo`` round trip that
        makes it include what others committed a moment ago, unless the device
        monitor named ``devices``: a VM port plugged just before this pass also
        makes the monitor report it, and the pass for that report waits for it.
        """
        prev = baseline.observed
        if not isinstance(prev, OvsObserved):
            return self.observe()
        bridges, ports = self._ovsdb_state(fresh=bool(devices))
        flows = advance_flows(prev.flows, baseline.applied)
        for b in self._managed(bridges):
            if b not in flows:
                flows[b] = ovs.dump_flow_cookies(self.mgmt(b), FLOW_COOKIE_PREFIX, FLOW_COOKIE_MASK)
        linux = advance(prev.linux, baseline.applied)
        return OvsObserved(bridges=bridges, ports=ports, flows=flows, linux=linux)

    def plan(self, desired: HostDesired, observed: OvsObserved) -> Plan:
        return plan_openvswitch(desired, observed, self.config)

    def port_status(self, desired: HostDesired, observed: OvsObserved,
                    converged: bool = False) -> dict[str, PortStatus]:
        return port_status_openvswitch(desired, observed, self.config, converged)

    # --- apply -------------------------------------------------------------------

    def apply(self, ops: Sequence[Op]) -> ApplyResult:
        """Run ``ops`` in order: consecutive OVSDB changes in one transaction, consecutive
        kernel changes in one iproute2 batch, flow changes in one OpenFlow bundle each."""
        applied = 0
        errors: list[tuple[Op, str]] = []
        for kind, group in itertools.groupby(ops, key=executor_of):
            run = list(group)
            start = time.monotonic()
            res = (self._apply_ovsdb(run) if kind == "ovsdb"
                   else apply_kernel(self.netns, run) if kind == "kernel"
                   else self._apply_flows(run))
            LOG.debug("openvswitch: %d %s op(s) in %.0f ms", len(run), kind,
                      (time.monotonic() - start) * 1000)
            applied += res.applied
            errors += res.errors
        return ApplyResult(applied=applied, errors=tuple(errors))

    def _apply_ovsdb(self, ops: Sequence[Op]) -> ApplyResult:
        failed = self._transact(list(ops))
        errors = tuple((ops[i], failed[i]) for i in sorted(failed))
        return ApplyResult(applied=len(ops) - len(errors), errors=errors)

    def _transact(self, ops: list[Op]) -> dict[int, str]:
        """Run ``ops`` as one OVSDB transaction and wait for ovs-vswitchd; errors by index.

        An operation OVSDB refuses aborts the transaction (nothing changed) and
        is named in the answer, so it is dropped and the rest tried again; a
        failed commit names none, and the halves are tried instead (a few more
        transactions rather than one per op). When ovs-vswitchd does not catch
        up, or the connection drops, every op sent is reported: the next pass
        reads everything again and plans what is still missing.
        """
        failed: dict[int, str] = {}
        queue: list[list[int]] = [list(range(len(ops)))]
        while queue:
            todo = [i for i in queue.pop(0) if i not in failed]
            if not todo:
                continue
            sub_failed, refusal = self._transact_once([ops[i] for i in todo])
            failed |= _reindex(sub_failed, todo)
            if refusal is None:
                continue
            if refusal.index is not None:
                queue.insert(0, todo)  # again, without the op OVSDB named
                continue
            todo = [i for i in todo if i not in failed]
            if len(todo) == 1:
                failed[todo[0]] = str(refusal)
            elif todo:
                mid = len(todo) // 2
                queue[0:0] = [todo[:mid], todo[mid:]]
        return failed

    def _transact_once(self, ops: list[Op]) -> tuple[dict[int, str], TransactionError | None]:
        """One try: (errors by index, the refusal when OVSDB aborted the whole transaction).

        When the refusal names an operation, its op is among the errors already.
        """
        try:
            replica = self.db.replica()
        except OvsdbError as exc:
            return dict.fromkeys(range(len(ops)), f"{type(exc).__name__}: {exc}"), None
        txn = OvsdbTxn.build(replica, ops)
        failed = dict(txn.refused)
        if not txn.operations:
            return failed, None
        # As ovs-vsctl does: bump next_cfg; ovs-vswitchd sets cur_cfg to it once
        # it has applied the change (ports opened, ofports assigned).
        tail: list[dict[str, Any]] = [{"op": "mutate", "table": "Open_vSwitch", "where": [],
                                       "mutations": [["next_cfg", "+=", 1]]},
                                      {"op": "select", "table": "Open_vSwitch", "where": [],
                                       "columns": ["next_cfg"]}]
        try:
            results = self.db.transact([*txn.operations, *tail])
        except TransactionError as exc:
            if exc.index is not None and exc.index < len(txn.owner):
                failed[txn.owner[exc.index]] = str(exc)
                return failed, exc
            return failed, TransactionError(None, exc.error, exc.details)
        except OvsdbError as exc:
            return failed | dict.fromkeys(txn.owner, f"{type(exc).__name__}: {exc}"), None
        for i, (res, must) in enumerate(zip(results, txn.must_match, strict=False)):
            if must and isinstance(res, dict) and res.get("count") == 0:
                failed.setdefault(txn.owner[i], "row gone before the transaction committed")
        try:
            next_cfg = results[-1]["rows"][0]["next_cfg"]
            self.db.wait_for(lambda r: cur_cfg(r) >= next_cfg)
        except (OvsdbError, LookupError, TypeError) as exc:
            why = f"ovs-vswitchd did not apply the change: {type(exc).__name__}: {exc}"
            for i in txn.owner:
                failed.setdefault(i, why)
        return failed, None

    def _apply_flows(self, ops: Sequence[Op]) -> ApplyResult:
        """One OpenFlow bundle per bridge for the consecutive flow ops of a pass.

        Adds and deletes of a bridge go in the same bundle, so a re-tag (one
        flow out, another in) is atomic; an ovs-ofctl run costs ~12 ms
        whatever it carries, so fewer runs is most of the gain. Ports named
        in matches are sent as their OpenFlow numbers from the replica when
        all are known (see :func:`netplex.linux.ovs.ofctl_bundle`).
        """
        errors: list[tuple[Op, str]] = []
        per_bridge: dict[str, list[Op]] = {}
        for op in ops:
            if isinstance(op, AddFlows | DelFlows):
                per_bridge.setdefault(op.bridge, []).append(op)
            else:
                errors.append((op, f"TypeError: not an Open vSwitch operation: {op}"))
        ofports = self._ofports() if per_bridge else {}
        for bridge, bops in per_bridge.items():
            lines: list[str] = []
            for op in bops:
                if isinstance(op, AddFlows):
                    lines += [f"flow add {f.spec()}" for f in op.flows]
                elif isinstance(op, DelFlows):
                    lines += [f"flow delete cookie={c:#x}/-1" for c in op.cookies]
            numbered = _numbered_ports(lines, ofports)
            try:
                ovs.ofctl_bundle(self.mgmt(bridge), numbered or lines, names=numbered is None)
            except Exception as exc:  # noqa: BLE001 - recorded, retried next pass
                errors += [(op, f"{type(exc).__name__}: {exc}") for op in bops]
        return ApplyResult(applied=len(ops) - len(errors), errors=tuple(errors))

    def _ofports(self) -> dict[str, int]:
        """Port name -> OpenFlow port number, from the replica (empty if out of sync)."""
        try:
            replica = self.db.replica(timeout=0)
        except OvsdbError:
            return {}
        out: dict[str, int] = {}
        for row in replica.rows("Interface").values():
            ofport = ovsdb_scalar(row.get("ofport"))
            if isinstance(ofport, int) and ofport > 0:
                out[row.get("name", "")] = ofport
        return out




class OvsKind(BackendKind):
    """Open vSwitch hosts (entry point ``openvswitch``)."""

    name = "openvswitch"
    agent_type = "Open vSwitch agent"
    binary = "netplex-openvswitch-agent"

    def local_ip(self, cfg: Any) -> str:
        # Neutron's OVS agent reads [ovs] local_ip; [vxlan] local_ip is the fallback here.
        return str(cfg.get("ovs", "local_ip") or super().local_ip(cfg))

    def validate(self, settings: AgentSettings) -> None:
        # ssl: would need key/certificate options the agent does not have.
        if not settings.ovs_db.startswith(("unix:", "tcp:")):
            raise SettingsError(f"OVSDB connection {settings.ovs_db!r} is not unix: or tcp:",
                                "pass --ovs-db unix:/path/to/db.sock")
        if settings.ovs_db.startswith("unix:") and not Path(settings.ovs_db[5:]).exists():
            raise SettingsError(
                f"OVSDB socket {settings.ovs_db[5:]} does not exist",
                "start ovsdb-server + ovs-vswitchd, or pass --ovs-db unix:PATH "
                "(and --ovs-rundir DIR) of the instance serving this host")

    def configurations(self, settings: AgentSettings) -> dict[str, Any]:
        return {"bridge_mappings": dict(settings.bridge_mappings),
                "integration_bridge": settings.integration_bridge,
                "datapath_type": settings.datapath_type}

    def build(self, settings: AgentSettings) -> OvsBackend:
        vxlan = "vxlan" in settings.tunnel_types
        return OvsBackend(OvsConfig(
            integration_bridge=settings.integration_bridge,
            datapath_type=settings.datapath_type,
            bridge_mappings=dict(settings.bridge_mappings),
            local_ip=(settings.local_ip or None) if vxlan else None,
            udp_port=settings.udp_port,
        ), db_socket=settings.ovs_db, rundir=settings.rundir, netns=settings.netns or None)


_IN_PORT = re.compile(r"in_port=([^,\s]+)")


def _numbered_ports(lines: Sequence[str], ofports: Mapping[str, int]) -> list[str] | None:
    """``lines`` with ``in_port=<name>`` as ``in_port=<number>``; None if a name is unknown."""
    unknown = False

    def number(m: re.Match[str]) -> str:
        nonlocal unknown
        name = m.group(1)
        if name.isdigit():
            return m.group(0)
        if name not in ofports:
            unknown = True
            return m.group(0)
        return f"in_port={ofports[name]}"

    out = [_IN_PORT.sub(number, line) for line in lines]
    return None if unknown else out


def _reindex(failed: Mapping[int, str], positions: Sequence[int]) -> dict[int, str]:
    """Errors of a sub-list (by its index) -> errors by index in the full list."""
    return {positions[i]: why for i, why in failed.items()}
