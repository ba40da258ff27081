"""The agent's local copy of the server state that concerns its host, kept by the feed.

Filled from a host-state snapshot (:meth:`HostCache.load`), then advanced one
change at a time (:meth:`HostCache.apply`) with the full resource bodies the
feed carries. Pure: no I/O, no threads (the agent loop owns it).

Scope (the same as the snapshot's): this host's ports, every port of a
network that is known here (for L2 population), those networks, all agents.
A change that would widen the scope - a port bound here on a network the
cache has never seen - cannot be served from the feed alone (the other ports
of that network were never sent to us), so :meth:`apply` answers
:attr:`Effect.RESYNC` and the loop reads a fresh snapshot. Segment changes do
the same for known networks (a network's segments are only in its body as of
the last network change).

Security groups (see :mod:`netplex.agent.secgroups`): the groups of the local
ports and the groups their rules name as ``remote_group_id``, and the member
ports of those remote groups on any host. A group or a local port that
comes to refer to a group the cache does not hold answers RESYNC (its
members were never sent); ``security_group_rule`` changes are ignored (every
rule change also arrives as the full group).

Revisions make it safe to mix snapshot and feed: a change at or below the
cache's revision is already contained and is ignored, so a watcher that
delivers a few old changes after a resync does no harm.

:meth:`HostCache.desired` is computed again only after a change that can
alter it: the feed echoes every status report of every agent, and on a big
host rebuilding the desired state for each of those was a good part of the
agent's work.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from typing import Any

from netplex.agent.api import HostState
from netplex.agent.model import (
    DESIRED_PORT_KEYS,
    HostDesired,
    PortSpec,
    desired_from_api,
    tunnel_ips_from_agents,
)
from netplex.agent.secgroups import security_from_api

__all__ = ["Effect", "HostCache"]


class Effect(enum.Enum):
    """What a change means for the agent."""

    #: Already contained, or outside this host's scope.
    IGNORED = "ignored"
    #: The cache changed; the desired state may have.
    APPLIED = "applied"
    #: The cache cannot follow this change from the feed: read a snapshot.
    RESYNC = "resync"


class HostCache:
    """Networks, ports and agents by id, at feed revision :attr:`revision`."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.revision = 0
        self.networks: dict[str, dict[str, Any]] = {}
        self.ports: dict[str, dict[str, Any]] = {}
        self.agents: dict[str, dict[str, Any]] = {}
        #: Security groups by id, and the member ports of the remote groups by id.
        self.security_groups: dict[str, dict[str, Any]] = {}
        self.remote_group_ports: dict[str, dict[str, Any]] = {}
        #: Groups the known groups' rules name as remote_group_id.
        self._remote_refs: set[str] = set()
        #: The snapshot carried security groups (else: no filter, see HostState.has_security).
        self.security_known = False
        #: Set once a snapshot has been loaded (an unloaded cache is never reconciled).
        self.loaded = False
        self._desired: HostDesired | None = None
        #: Local ports' specs, kept while their bodies do not change.
        self._specs: dict[str, PortSpec] = {}

    def load(self, state: HostState) -> None:
        """Replace everything with a snapshot."""
        self.revision = state.revision
        self.networks = {str(n["id"]): dict(n) for n in state.networks if "id" in n}
        self.ports = {str(p["id"]): dict(p) for p in state.ports if "id" in p}
        self.agents = {_agent_key(a): dict(a) for a in state.agents}
        self.security_groups = {str(g["id"]): dict(g) for g in state.security_groups if "id" in g}
        self.remote_group_ports = {str(p["id"]): dict(p) for p in state.remote_group_ports if "id" in p}
        self._remote_refs = _remote_refs(self.security_groups.values())
        self.security_known = state.has_security
        self.loaded = True
        self._desired = None
        self._specs.clear()

    def local_port_ids(self) -> set[str]:
        return {pid for pid, p in self.ports.items() if p.get("binding:host_id") == self.host}

    def apply(self, change: Mapping[str, Any]) -> Effect:
        """Advance by one feed change (``revision``, ``resource``, ``id``, ``action``, ``body``)."""
        rev = int(change.get("revision") or 0)
        if rev <= self.revision:
            return Effect.IGNORED
        self.revision = rev
        resource = change.get("resource")
        action = change.get("action")
        rid = str(change.get("id") or "")
        body = change.get("body") or {}
        if not isinstance(body, Mapping):
            body = {}
        if resource == "port":
            return self._port(action, rid, body)
        if resource == "network":
            return self._changed(self._network(action, rid, body))
        if resource == "agent":
            key = _agent_key(body) if body else rid
            if action == "delete":
                return self._changed(Effect.APPLIED if self.agents.pop(key, None) is not None
                                     else Effect.IGNORED)
            self.agents[key] = dict(body)
            return self._changed(Effect.APPLIED)
        if resource == "security_group":
            return self._changed(self._group(action, rid, body))
        if resource == "segment":
            net_id = body.get("network_id")
            return Effect.RESYNC if net_id in self.networks else Effect.IGNORED
        return Effect.IGNORED  # subnets and anything newer: nothing the data plane uses

    def _changed(self, effect: Effect) -> Effect:
        """``effect``; an applied change drops the desired state computed so far."""
        if effect is Effect.APPLIED:
            self._desired = None
        return effect

    def _port(self, action: Any, pid: str, body: Mapping[str, Any]) -> Effect:
        member = self._member(action, pid, body)
        if action == "delete":
            self._specs.pop(pid, None)
            return self._changed(Effect.APPLIED if self.ports.pop(pid, None) is not None
                                 else member)
        net_id = body.get("network_id")
        local = body.get("binding:host_id") == self.host
        if local and net_id not in self.networks:
            return Effect.RESYNC
        if local and self.security_known and body.get("port_security_enabled") is True and any(
                str(g) not in self.security_groups for g in body.get("security_groups") or ()):
            return Effect.RESYNC  # a group we never got (nor its remote groups' members)
        if local or net_id in self.networks or pid in self.ports:
            old = self.ports.get(pid)
            self.ports[pid] = dict(body)
            if old is None or any(old.get(k) != body.get(k) for k in DESIRED_PORT_KEYS):
                self._desired = None
                self._specs.pop(pid, None)
            elif local and any(old.get(k) != body.get(k) for k in _SECURITY_PORT_KEYS):
                self._desired = None
            return Effect.APPLIED
        return member

    def _member(self, action: Any, pid: str, body: Mapping[str, Any]) -> Effect:
        """Keep :attr:`remote_group_ports` (a port of any host) up to date."""
        old = self.remote_group_ports.get(pid)
        groups = {str(g) for g in body.get("security_groups") or ()}
        if action != "delete" and groups & self._remote_refs:
            self.remote_group_ports[pid] = dict(body)
            if old is None or any(old.get(k) != body.get(k) for k in _SECURITY_PORT_KEYS):
                self._desired = None
            return Effect.APPLIED
        if old is not None:
            del self.remote_group_ports[pid]
            self._desired = None
            return Effect.APPLIED
        return Effect.IGNORED

    def _group(self, action: Any, gid: str, body: Mapping[str, Any]) -> Effect:
        if not self.security_known:
            return Effect.IGNORED
        if action == "delete":
            if self.security_groups.pop(gid, None) is None:
                return Effect.IGNORED
            self._remote_refs = _remote_refs(self.security_groups.values())
            return Effect.APPLIED
        used = gid in self.security_groups or any(
            gid in (str(g) for g in p.get("security_groups") or ())
            for pid, p in self.ports.items() if p.get("binding:host_id") == self.host)
        if not used:
            return Effect.IGNORED  # no port of ours uses it, no rule of ours names it
        self.security_groups[gid] = dict(body)
        self._remote_refs = _remote_refs(self.security_groups.values())
        if self._remote_refs - set(self.security_groups):
            return Effect.RESYNC  # a rule names a group whose members we do not have
        return Effect.APPLIED

    def _network(self, action: Any, nid: str, body: Mapping[str, Any]) -> Effect:
        if action == "delete":
            if self.networks.pop(nid, None) is None:
                return Effect.IGNORED
            for pid in [pid for pid, p in self.ports.items() if p.get("network_id") == nid]:
                del self.ports[pid]
            return Effect.APPLIED
        if nid in self.networks:
            self.networks[nid] = dict(body)
            return Effect.APPLIED
        return Effect.IGNORED  # not ours (yet): a local port on it triggers a resync

    def apply_all(self, changes: Iterable[Mapping[str, Any]]) -> tuple[bool, bool, set[str]]:
        """Apply changes in order; returns (anything applied, resync needed, port ids touched)."""
        applied = resync = False
        touched: set[str] = set()
        for ch in changes:
            eff = self.apply(ch)
            if eff is Effect.APPLIED:
                applied = True
                if ch.get("resource") == "port":
                    touched.add(str(ch.get("id")))
            elif eff is Effect.RESYNC:
                resync = True
        return applied, resync, touched

    def desired(self) -> HostDesired:
        """This host's desired data plane according to the cache (the same object
        until a change alters it)."""
        if self._desired is None:
            base = desired_from_api(self.host, self.networks.values(), self.ports.values(),
                                    tunnel_ips_from_agents(self.agents.values()), self._specs)
            local = [self.ports[p.port_id] for p in base.ports if p.port_id in self.ports]
            security = (security_from_api(local, self.security_groups.values(),
                                          self.remote_group_ports.values())
                        if self.security_known else None)
            self._desired = dataclasses.replace(base, security=security)
        return self._desired


#: Port keys the security filter reads (beyond DESIRED_PORT_KEYS).
_SECURITY_PORT_KEYS = ("security_groups", "port_security_enabled", "allowed_address_pairs",
                       "fixed_ips", "mac_address")


def _remote_refs(groups: Iterable[Mapping[str, Any]]) -> set[str]:
    return {str(r["remote_group_id"]) for g in groups for r in g.get("security_group_rules") or ()
            if isinstance(r, Mapping) and r.get("remote_group_id")}


def _agent_key(agent: Mapping[str, Any]) -> str:
    """Agents by id; a body without one (never from Netplex) by type and host."""
    return str(agent.get("id") or f"{agent.get('agent_type')}@{agent.get('host')}")
