"""Registering with the server and the heartbeat that keeps the agent alive there."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from netplex.agent import backends
from netplex.agent.api import ServerApi
from netplex.agent.health import ServerHealth
from netplex.agent.settings import AgentSettings
from netplex.client import ApiError, ClientError

__all__ = ["AgentError", "Registration"]

LOG = logging.getLogger(__name__)


class AgentError(RuntimeError):
    """The agent cannot work with this server at all (retrying would not help)."""

    def __init__(self, message: str, hint: str) -> None:
        self.hint = hint
        super().__init__(message)


class Registration:
    """``POST agent-report``: once with ``start_flag`` (register), then every ``report_interval``."""

    def __init__(self, settings: AgentSettings, api_factory: Callable[[], ServerApi],
                 health: ServerHealth, stop: threading.Event) -> None:
        self._settings = settings
        self._api_factory = api_factory
        self._health = health
        self._stop = stop
        #: Set once the server has accepted a report.
        self.registered = threading.Event()

    def report(self, api: ServerApi, start_flag: bool) -> bool:
        """One report; False if it failed (retry), :class:`AgentError` if retrying is pointless."""
        try:
            agent = api.report(backends.report_body(self._settings, start_flag))
        except ApiError as exc:
            if start_flag and exc.status in (401, 403):
                raise AgentError(f"the server refused the agent: {exc}",
                                 "set [DEFAULT] agent_auth_token to the server's value") from exc
            if start_flag and exc.status in (404, 405):
                raise AgentError(f"the server has no agent endpoints: {exc}",
                                 "point --server at a Netplex server (not a plain Neutron)"
                                 ) from exc
            self._health.error("agent report", exc)
            return False
        except ClientError as exc:
            self._health.error("agent report", exc)
            return False
        self._health.ok()
        if start_flag:
            LOG.info("registered with the server as agent %s (alive: %s)",
                     agent.get("id", "?"), agent.get("alive", "?"))
        self.registered.set()
        return True

    def heartbeat(self) -> None:
        """The heartbeat thread's body: a report every ``report_interval`` until the agent stops."""
        api = self._api_factory()
        try:
            while not self._stop.wait(self._settings.report_interval):
                self.report(api, start_flag=False)
        finally:
            api.close()
