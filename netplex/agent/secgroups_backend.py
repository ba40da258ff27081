"""Security group enforcement added to a host backend's pass: :class:`FilteredBackend`.

It wraps a Linux bridge or routed backend (composition: the wrapped backend
stays as it is and knows nothing of filters) and adds, in the same pass:

* observe: the agent's nftables tables (``nft -j list table``; an event pass
  takes them from the baseline: the agent is their only writer) and, on
  bridge hosts, the two br_netfilter switches;
* plan: the wrapped plan, preceded by :class:`ApplyFilter` (one ``nft -f``
  transaction, see :mod:`netplex.agent.secgroups_nft`) and
  :class:`EnableBridgeNetfilter`, so a new port's filter is live before its
  tap is attached or set up (the chains are keyed by device name / MAC and
  need not wait for the device);
* apply: the filter first; when it fails, the wrapped operations that would
  attach or bring up the device of a filtered port without its chains are
  held back (reported as errors, retried next pass): never an open port;
* port status: a filtered port whose chains are not in place is DOWN with
  the reason.

``desired.security`` None leaves the tables alone (a desired state built
without the server's security data); an empty :class:`SecurityDesired`
removes them.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from netplex.agent.backend_api import ApplyResult, Backend, Baseline, PortStatus
from netplex.agent.model import HostDesired
from netplex.agent.monitor import DeviceMonitor, DeviceNews
from netplex.agent.ops import Op, Plan
from netplex.agent.secgroups import SecurityDesired
from netplex.agent.secgroups_nft import BRIDGE_TABLE, INET_TABLE, MODES, as_observed, plan_script, render
from netplex.linux.nftables import NftError, NftTable, apply_script, read_table
from netplex.linux.sysctl import read_sysctls, write_sysctls

__all__ = ["BRIDGE_NF_SYSCTLS", "ApplyFilter", "EnableBridgeNetfilter", "FilterObserved", "Filtered",
           "FilteredBackend", "filter_ops", "with_filter"]

#: Bridged IPv4/IPv6 through the inet hooks (where conntrack is), in the host's namespace.
BRIDGE_NF_SYSCTLS: Mapping[str, str] = {"net.bridge.bridge-nf-call-iptables": "1",
                                        "net.bridge.bridge-nf-call-ip6tables": "1"}

T = TypeVar("T")


@dataclass(frozen=True)
class FilterObserved:
    """The agent's tables (None: absent) and, on bridge hosts, the br_netfilter switches."""

    tables: Mapping[tuple[str, str], NftTable | None] = field(default_factory=dict)
    sysctls: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Filtered(Generic[T]):
    """The wrapped backend's observed state plus the filter's."""

    base: T
    filter: FilterObserved


@dataclass(frozen=True)
class ApplyFilter(Op):
    """One ``nft -f`` transaction; ``after`` is what the tables are once it applied."""

    script: str
    after: Mapping[tuple[str, str], NftTable | None] = field(compare=False, repr=False)

    def __str__(self) -> str:
        return f"ApplyFilter({self.script.count(chr(10))} line(s))"


@dataclass(frozen=True)
class EnableBridgeNetfilter(Op):
    """Hand bridged IP traffic to the inet hooks (set, never reset)."""

    keys: tuple[str, ...] = tuple(BRIDGE_NF_SYSCTLS)


_TABLES = {"bridge": (BRIDGE_TABLE, INET_TABLE), "routed": (INET_TABLE,)}


def filter_ops(security: SecurityDesired | None, observed: FilterObserved, mode: str) -> list[Op]:
    """Pure: the filter's operations for one pass ([] when the tables are right)."""
    if security is None:
        return []
    want = render(security, mode)
    ops: list[Op] = []
    if mode == "bridge" and want and any(observed.sysctls.get(k) != v
                                         for k, v in BRIDGE_NF_SYSCTLS.items()):
        ops.append(EnableBridgeNetfilter())
    lines = plan_script(want, {k: observed.tables.get(k) for k in _TABLES[mode]})
    if lines:
        after = {k: (as_observed(want[k]) if k in want else None) for k in _TABLES[mode]}
        ops.append(ApplyFilter("\n".join(lines) + "\n", after))
    return ops


def _filter_present(port_device: str, observed: FilterObserved) -> bool:
    inet = observed.tables.get(INET_TABLE)
    return inet is not None and f"o-{port_device}" in inet.chains and f"i-{port_device}" in inet.chains


def _filtered_devices(ops: Sequence[Op]) -> set[str]:
    out: set[str] = set()
    for op in ops:
        if isinstance(op, ApplyFilter):
            inet = op.after.get(INET_TABLE)
            out |= {c[2:] for c in (inet.chains if inet else {}) if c.startswith("o-")}
    return out


def _op_device(op: Op) -> str | None:
    for attr in ("dev", "name"):
        value = getattr(op, attr, None)
        if isinstance(value, str):
            return value
    return None


class FilteredBackend(Backend[Filtered[Any]]):
    """``inner`` plus security group enforcement in mode ``bridge`` or ``routed``."""

    def __init__(self, inner: Backend[Any], mode: str, netns: str | None = None,
                 read: Callable[[str | None, str, str], NftTable | None] = read_table,
                 run: Callable[[str | None, str], None] = apply_script) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown filter mode {mode!r}")
        self.inner = inner
        self.mode = mode
        self.netns = netns
        self.name = inner.name
        self._read = read
        self._run = run

    def __getattr__(self, name: str) -> Any:
        """The wrapped backend's own attributes (its config, netns) read through."""
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _observe_filter(self) -> FilterObserved:
        if self._read is read_table and shutil.which("nft") is None:
            # No nftables on this host: there are no tables of ours; a port that needs
            # one is reported DOWN when the transaction fails, the rest works.
            return FilterObserved(tables={k: None for k in _TABLES[self.mode]})
        tables = {k: self._read(self.netns, *k) for k in _TABLES[self.mode]}
        sysctls = read_sysctls(self.netns, BRIDGE_NF_SYSCTLS) if self.mode == "bridge" else {}
        return FilterObserved(tables=tables, sysctls=sysctls)

    def observe(self) -> Filtered[Any]:
        return Filtered(self.inner.observe(), self._observe_filter())

    def observe_since(self, baseline: Baseline[Filtered[Any]], desired: HostDesired,
                      devices: Collection[str]) -> Filtered[Any]:
        mine = (ApplyFilter, EnableBridgeNetfilter)
        inner_base = Baseline(baseline.observed.base,
                              tuple(op for op in baseline.applied if not isinstance(op, mine)))
        filt = baseline.observed.filter
        for op in baseline.applied:
            if isinstance(op, ApplyFilter):
                filt = dataclasses.replace(filt, tables=dict(op.after))
            elif isinstance(op, EnableBridgeNetfilter):
                filt = dataclasses.replace(filt, sysctls={**filt.sysctls, **BRIDGE_NF_SYSCTLS})
        return Filtered(self.inner.observe_since(inner_base, desired, devices), filt)

    def plan(self, desired: HostDesired, observed: Filtered[Any]) -> Plan:
        inner = self.inner.plan(desired, observed.base)
        ops = filter_ops(desired.security, observed.filter, self.mode)
        return Plan(ops=(*ops, *inner.ops), problems=inner.problems)

    def apply(self, ops: Sequence[Op]) -> ApplyResult:
        errors: list[tuple[Op, str]] = []
        held: set[str] = set()
        for op in ops:
            try:
                if isinstance(op, EnableBridgeNetfilter):
                    failed = write_sysctls(self.netns, BRIDGE_NF_SYSCTLS)
                    if failed:
                        raise NftError("; ".join(f"{k}: {v}" for k, v in failed.items()))
                elif isinstance(op, ApplyFilter):
                    self._run(self.netns, op.script)
            except NftError as exc:
                errors.append((op, str(exc)))
                # Devices whose filter would have been made: keep them shut (without
                # br_netfilter the inet chains never see bridged traffic, so the same).
                held |= _filtered_devices(ops)
        rest: list[Op] = []
        for op in ops:
            if isinstance(op, (ApplyFilter, EnableBridgeNetfilter)):
                continue
            if held and _op_device(op) in held and type(op).__name__ in ("AttachPort", "SetLinkUp"):
                errors.append((op, "held back: the port's security group filter is not applied"))
                continue
            rest.append(op)
        result = self.inner.apply(rest) if rest else ApplyResult()
        errors += result.errors
        return ApplyResult(applied=len(ops) - len(errors), errors=tuple(errors))

    def port_status(self, desired: HostDesired, observed: Filtered[Any],
                    converged: bool = False) -> dict[str, PortStatus]:
        out = self.inner.port_status(desired, observed.base, converged)
        if desired.security is None or converged:
            return out
        no_brnf = self.mode == "bridge" and any(observed.filter.sysctls.get(k) != v
                                                for k, v in BRIDGE_NF_SYSCTLS.items())
        for pf in desired.security.ports:
            st = out.get(pf.port_id)
            if st is None or not st.up:
                continue
            if no_brnf:
                out[pf.port_id] = PortStatus(False, "security group filter not effective: bridged "
                                             "traffic does not reach it (br_netfilter sysctls "
                                             "net.bridge.bridge-nf-call-ip{,6}tables)")
            elif not _filter_present(pf.device, observed.filter):
                out[pf.port_id] = PortStatus(False, "security group filter not applied")
        return out

    def device_monitor(self, notify: Callable[[DeviceNews], None]) -> DeviceMonitor:
        return self.inner.device_monitor(notify)

    def close(self) -> None:
        self.inner.close()


_WRAPPERS: dict[type[Any], type[FilteredBackend]] = {}


def with_filter(inner: Backend[Any], mode: str, netns: str | None = None) -> FilteredBackend:
    """``inner`` with security group enforcement (what the backend kinds build).

    The result reads the wrapped backend's attributes through and is registered as
    a virtual subclass of its class, so ``isinstance(backend, LinuxBridgeBackend)``
    and ``backend.config`` keep meaning what they meant for the bare backend.
    """
    kind = type(inner)
    cls = _WRAPPERS.get(kind)
    if cls is None:
        cls = type(f"Filtered{kind.__name__}", (FilteredBackend,), {"__module__": __name__})
        kind.register(cls)
        _WRAPPERS[kind] = cls
    return cls(inner, mode, netns)
