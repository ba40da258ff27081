"""Configuration options of the l3 service (declared through the ``netplex.config_options`` entry point).

Its own module, importing nothing but :mod:`netplex.config`, because every process that
reads a configuration file (agents included) loads the declared options.
"""

from __future__ import annotations

from netplex.config import Opt

__all__ = ["CONFIG_OPTIONS"]

CONFIG_OPTIONS: dict[str, list[Opt]] = {}
