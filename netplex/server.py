"""The composition root: config -> database (migrated) -> core services -> the HTTP app.

Besides serving requests the server runs a few periodic jobs (see
:class:`Housekeeping`): marking ports DOWN when their agent dies, releasing
dynamic segments orphaned by a crashed binder, and compacting the feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool

from netplex import config as config_mod
from netplex.api.app import build_app
from netplex.api.feed_routes import feed_routes
from netplex.api.quota_routes import quota_routes
from netplex.config import Config, ConfigError
from netplex.core.admin_resources import AgentResource, SegmentResource
from netplex.core.agent_rpc import AgentRpc
from netplex.core.agents import AgentService
from netplex.core.binding import PortBindingService
from netplex.core.extensions import ResourceExtensions
from netplex.core.hooks import ResourceHooks
from netplex.core.mech_hooks import MechanismHooks
from netplex.core.mech_manager import MechanismManager
from netplex.core.networks import NetworkService
from netplex.core.plugin import Core
from netplex.core.plugin_hooks import PortPluginHooks
from netplex.core.port_addresses import PortAddresses
from netplex.core.port_rows import PortTable
from netplex.core.ports import PortService
from netplex.core.service_access import CorePortAccess
from netplex.core.service_api import ServicePlugin
from netplex.core.subnets import SubnetService
from netplex.core.tags import TagService
from netplex.core.type_manager import TypeManager
from netplex.db import migration
from netplex.db.engine import Database
from netplex.events.feed import Feed, FeedNotifier
from netplex.services import registry
from netplex.services.registry import Selection

LOG = logging.getLogger(__name__)
CONFIG_ENV = "NETPLEX_CONFIG_FILES"
OVERRIDES_ENV = "NETPLEX_CONFIG_TEXT"
#: Set by ``netplex server`` after migrating, so its worker processes skip it.
MIGRATED_ENV = "NETPLEX_MIGRATED"


def load_config_from_env() -> Config:
    files = [f for f in os.environ.get(CONFIG_ENV, "").split(os.pathsep) if f]
    return config_mod.load(files, text=os.environ.get(OVERRIDES_ENV) or None)


def build_core(
    cfg: Config,
    db: Database,
    *,
    types: TypeManager | None = None,
    mech: MechanismManager | None = None,
    hooks: ResourceHooks | None = None,
    plugins: Sequence[type[ServicePlugin]] = (),
) -> Core:
    """Every core service, each built with exactly its collaborators, and the service plugins.

    ``types``, ``mech`` and ``hooks`` replace the configured ones (tests); ``plugins`` are
    plugin classes added to the configured ones.
    """
    if types is None:
        types = TypeManager(cfg)
        types.initialize()
    if mech is None:
        mech = MechanismManager.from_config(cfg)
    mech.initialize()
    hooks = hooks or MechanismHooks(mech)
    agents = AgentService.from_config(cfg)
    access = CorePortAccess(db, {n: mech.driver(n).connectivity for n in mech.names})
    built = build_plugins(cfg, access, extra=plugins)
    extensions = {coll: ResourceExtensions([e for p in built for e in p.resource_extensions() if e.resource == coll])
                  for coll in ("networks", "subnets", "ports")}
    if extensions["subnets"]:
        raise ConfigError("a service plugin extends subnets, which Netplex does not support yet")
    port_rows = PortTable(extensions["ports"])
    bindings = PortBindingService(db, mech, agents, types, ports=port_rows)
    addresses = PortAddresses(
        base_mac=cfg.get("DEFAULT", "base_mac"),
        max_fixed_ips_per_port=cfg.get("DEFAULT", "max_fixed_ips_per_port"),
    )
    ports = PortService(db, types, hooks, bindings, port_rows, addresses, PortPluginHooks(built, access))
    subnets = SubnetService(db, types, hooks, port_rows)
    networks = NetworkService(db, types, hooks, subnets, ports, extensions["networks"])
    return Core(
        cfg=cfg,
        db=db,
        types=types,
        mech=mech,
        hooks=hooks,
        agents=agents,
        bindings=bindings,
        ports=ports,
        subnets=subnets,
        networks=networks,
        tags=TagService(db, {"networks": networks, "subnets": subnets, "ports": ports}),
        segments_api=SegmentResource(db, types, networks),
        agents_api=AgentResource(db, agents, bindings),
        agent_rpc=AgentRpc(db, port_rows, networks, agents, parts=[p.host_state for p in built]),
        plugins=built,
    )


def selected_plugins(cfg: Config, extra: Sequence[type[ServicePlugin]] = ()) -> Selection:
    """The plugins ``[DEFAULT] service_plugins`` names, plus the ones Neutron's ML2 always has
    (security groups, unless ``[securitygroup] enable_security_group = false``) and quotas
    (always on in Neutron)."""
    names = list(cfg.get("DEFAULT", "service_plugins"))
    if cfg.get("securitygroup", "enable_security_group"):
        names.append("security_group")
    names.append("quotas")
    return registry.select(names, extra=extra)


def build_plugins(cfg: Config, access: CorePortAccess,
                  *, extra: Sequence[type[ServicePlugin]] = ()) -> tuple[ServicePlugin, ...]:
    selection = selected_plugins(cfg, extra)
    registry.log_selection(selection)
    return tuple(cls.build(cfg, access) for cls in selection.plugins)


def make_core(cfg: Config, **kwargs: Any) -> Core:
    """The database (migrated unless the parent process did) and the services on it."""
    url = cfg.database_url
    if os.environ.get(MIGRATED_ENV) != "1":
        migration.upgrade(url)
    db = Database(url, max_retries=cfg.get("database", "max_retries"))
    return build_core(cfg, db, **kwargs)


class Housekeeping:
    """Periodic jobs, each in a worker thread so requests are never blocked."""

    def __init__(
        self, bindings: PortBindingService, feed: Feed, *, agent_down_time: float, feed_retention: int
    ) -> None:
        self.feed = feed
        self._tasks: list[asyncio.Task[None]] = []
        self.jobs: list[tuple[float, Callable[[], object]]] = [
            (max(1.0, agent_down_time / 4), bindings.mark_ports_down_for_dead_agents),
            (60.0, bindings.release_orphaned_dynamic_segments),
            (30.0, lambda: feed.compact(feed_retention)),
        ]

    async def start(self) -> None:
        for interval, job in self.jobs:
            self._tasks.append(asyncio.create_task(self._loop(interval, job)))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    async def _loop(self, interval: float, job: Callable[[], object]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await run_in_threadpool(job)
            except Exception:
                LOG.exception("periodic job failed; will run again in %.0fs", interval)


def log_config_notices(cfg: Config) -> None:
    """One line per option the files set that Netplex accepts without acting on it (and why)."""
    for line in cfg.accepted:
        (LOG.warning if "NOT enforced" in line else LOG.info)("config: %s", line)


def create_app(cfg: Config | None = None) -> Starlette:
    """uvicorn factory (``netplex.server:create_app``), also used by tests."""
    cfg = cfg or load_config_from_env()
    log_config_notices(cfg)
    core = make_core(cfg)
    return app_for_core(core, cfg)


def app_for_core(core: Core, cfg: Config, *, housekeeping: bool = True) -> Starlette:
    feed = Feed(core.db)
    notifier = FeedNotifier(core.db)
    chores = Housekeeping(
        core.bindings,
        feed,
        agent_down_time=core.cfg.get("DEFAULT", "agent_down_time"),
        feed_retention=core.cfg.get("DEFAULT", "feed_retention"),
    )
    for plugin in core.plugins:
        chores.jobs.extend((job.interval, job.run) for job in plugin.housekeeping())

    async def startup() -> None:
        await notifier.start()
        if housekeeping:
            await chores.start()

    async def shutdown() -> None:
        await chores.stop()
        await notifier.stop()
        for plugin in core.plugins:
            try:
                plugin.close()
            except Exception:
                LOG.exception("service plugin %s failed to close", plugin.name)
        core.db.dispose()

    extra = [*feed_routes(feed, notifier), *quota_routes(core.plugins)]
    return build_app(core, cfg, extra_routes=extra, on_startup=[startup],
                     on_shutdown=[shutdown], plugins=core.plugins)
