"""The agent's view of the server: four agent endpoints over the generic REST client.

The host agent needs exactly four calls, all Netplex extensions of the
Neutron v2.0 API:

* ``POST /v2.0/netplex/agent-report``: register (first call) and heartbeat;
* ``GET /v2.0/netplex/host-state?host=H``: one consistent snapshot at a feed
  revision (this host's ports, every bound port of their networks for L2
  population, those networks, all agents);
* ``GET /v2.0/changes?after=R&timeout=T``: the long-polled change feed
  (``410 FeedCompacted`` when ``R`` is older than what the server keeps);
* ``POST /v2.0/netplex/device-status``: ports ACTIVE / DOWN.

:class:`ServerApi` is the protocol the agent loop depends on, so unit tests
hand it an in-memory fake; :class:`HttpServerApi` is the real one, built on
:class:`netplex.client.NeutronClient` (which stays generic: these endpoints
are wrapped here, not added there).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from netplex.client import ApiError, InvalidResponse, NeutronClient

__all__ = [
    "FeedCompacted",
    "FeedPage",
    "HostState",
    "HttpServerApi",
    "ServerApi",
    "parse_host_state",
]


class FeedCompacted(Exception):
    """The server no longer keeps changes after our revision: resync from a snapshot."""

    def __init__(self, after: int, message: str = "") -> None:
        self.after = after
        super().__init__(message or f"changes after revision {after} were compacted")


@dataclass(frozen=True)
class HostState:
    """A consistent snapshot of what this host needs, at feed revision ``revision``."""

    revision: int
    networks: tuple[Mapping[str, Any], ...] = ()
    ports: tuple[Mapping[str, Any], ...] = ()
    agents: tuple[Mapping[str, Any], ...] = ()
    #: The groups of this host's ports and the groups their rules name as remote groups.
    security_groups: tuple[Mapping[str, Any], ...] = ()
    #: Ports anywhere that are members of those remote groups.
    remote_group_ports: tuple[Mapping[str, Any], ...] = ()
    #: Whether the server sent security groups at all; one that does not (older, or
    #: security groups not enabled) gets no filter on its ports.
    has_security: bool = False


@dataclass(frozen=True)
class FeedPage:
    """One answer of the feed: changes in revision order, and where to resume."""

    changes: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)
    revision: int = 0


class ServerApi(Protocol):
    """What the agent loop asks of the server. Every method raises
    :class:`netplex.client.ClientError` when the server cannot be reached or
    refuses; :meth:`changes` raises :class:`FeedCompacted` on 410."""

    def report(self, agent: Mapping[str, Any]) -> dict[str, Any]:
        """Register or heartbeat; returns the server's agent dict."""
        ...

    def host_state(self, host: str) -> HostState: ...

    def changes(self, after: int, timeout: float) -> FeedPage: ...

    def device_status(self, host: str, up: Iterable[str], down: Iterable[str]) -> list[str]:
        """Set ports ACTIVE (``up``) / DOWN (``down``); returns the ids the server updated."""
        ...

    def close(self) -> None: ...


def _dicts(value: Any, what: str) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidResponse(f"host-state: {what!r} must be a list of objects")
    return tuple(value)


def parse_host_state(body: Mapping[str, Any]) -> HostState:
    """Validate a host-state body. A malformed snapshot raises instead of looking empty:
    reconciling against a snapshot that only *looks* empty would tear a host down."""
    rev = body.get("revision")
    if not isinstance(rev, int) or isinstance(rev, bool) or rev < 0:
        raise InvalidResponse("host-state: 'revision' must be a non-negative integer")
    for key in ("networks", "ports", "agents"):
        if key not in body:
            raise InvalidResponse(f"host-state: no {key!r} in the response")
    return HostState(
        revision=rev,
        networks=_dicts(body["networks"], "networks"),
        ports=_dicts(body["ports"], "ports"),
        agents=_dicts(body["agents"], "agents"),
        # Optional: a server without security groups sends neither (no filter then).
        security_groups=_dicts(body.get("security_groups", []), "security_groups"),
        remote_group_ports=_dicts(body.get("remote_group_ports", []), "remote_group_ports"),
        has_security="security_groups" in body,
    )


class HttpServerApi:
    """:class:`ServerApi` over HTTP.

    Uses two connection pools: the long-poll holds one request open for up
    to ``timeout`` seconds, and heartbeats / status reports from other
    threads must not queue behind it (httpx clients are thread-safe, but one
    pool per purpose keeps the timeouts honest).
    """

    def __init__(self, base_url: str, agent_token: str | None = None,
                 request_timeout: float = 30.0, **client_kw: Any) -> None:
        self.base_url = base_url
        self._client = NeutronClient(base_url, agent_token=agent_token or None,
                                     timeout=request_timeout, **client_kw)
        # The long-poll's own client: read timeout set per call.
        self._watch = NeutronClient(base_url, agent_token=agent_token or None,
                                    timeout=request_timeout + 60, **client_kw)

    def report(self, agent: Mapping[str, Any]) -> dict[str, Any]:
        body = self._client.request("POST", "/netplex/agent-report", json={"agent": dict(agent)})
        got = body.get("agent")
        if not isinstance(got, dict):
            raise InvalidResponse("agent-report: no 'agent' object in the response")
        return got

    def host_state(self, host: str) -> HostState:
        return parse_host_state(self._client.request("GET", "/netplex/host-state",
                                                     params={"host": host}))

    def changes(self, after: int, timeout: float) -> FeedPage:
        try:
            body = self._watch.request("GET", "/changes", params={
                "after": after, "timeout": int(max(0, timeout)), "limit": 1000})
        except ApiError as exc:
            if exc.status == 410:
                raise FeedCompacted(after, exc.message) from exc
            raise
        changes = body.get("changes")
        rev = body.get("revision")
        if not isinstance(changes, list) or not isinstance(rev, int):
            raise InvalidResponse("changes: expected 'changes' (list) and 'revision' (int)")
        return FeedPage(changes=tuple(changes), revision=rev)

    def device_status(self, host: str, up: Iterable[str], down: Iterable[str]) -> list[str]:
        body = self._client.request("POST", "/netplex/device-status", json={
            "host": host, "up": sorted(up), "down": sorted(down)})
        updated = body.get("updated") or []
        return [str(u) for u in updated] if isinstance(updated, list) else []

    def close(self) -> None:
        self._client.close()
        self._watch.close()
