"""What every ``netplex`` subcommand shares: error output with a next step, and config loading."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from netplex import config as config_mod
from netplex.config import Config, ConfigError

err = Console(stderr=True)


def fail(message: str, hint: str, code: int = 2) -> typer.Exit:
    """Print ``message`` and what to do next; the caller raises the returned Exit."""
    err.print(f"[bold red]error:[/] {message}")
    err.print(f"[yellow]next:[/] {hint}")
    return typer.Exit(code)


def load_config(paths: list[Path] | None, *, report_unknown: bool = True) -> Config:
    try:
        cfg = config_mod.load(paths or [])
    except ConfigError as exc:
        raise fail(str(exc), "fix the value in the configuration file and run the command again") from None
    if report_unknown:
        for item in cfg.unknown:
            err.print(f"[yellow]warning:[/] unknown option {item} is ignored")
    return cfg
