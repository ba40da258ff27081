"""Building the running server: config -> database (migrated) -> core -> app."""

from __future__ import annotations

import logging
import os
from typing import Any

from starlette.applications import Starlette

from netplex import config as config_mod
from netplex.api.app import build_app
from netplex.config import Config
from netplex.core.plugin import Core
from netplex.db import migration
from netplex.db.engine import Database

LOG = logging.getLogger(__name__)
CONFIG_ENV = "NETPLEX_CONFIG_FILES"
OVERRIDES_ENV = "NETPLEX_CONFIG_TEXT"


def load_config_from_env() -> Config:
    files = [f for f in os.environ.get(CONFIG_ENV, "").split(os.pathsep) if f]
    return config_mod.load(files, text=os.environ.get(OVERRIDES_ENV) or None)


def make_core(cfg: Config, **kwargs: Any) -> Core:
    url = cfg.database_url
    migration.upgrade(url)
    db = Database(url, max_retries=cfg.get("database", "max_retries"))
    return build_core(cfg, db, **kwargs)


def build_core(cfg: Config, db: Database, **kwargs: Any) -> Core:
    return Core(cfg, db, **kwargs)


def create_app(cfg: Config | None = None) -> Starlette:
    """uvicorn factory (``netplex.api.server:create_app``), also used by tests."""
    cfg = cfg or load_config_from_env()
    core = make_core(cfg)
    return build_app(core, cfg, on_shutdown=[core.db.dispose])
