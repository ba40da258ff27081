"""The ``netplex`` command."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from netplex.cli.common import err, fail, load_config
from netplex.config import Config, ConfigError

app = typer.Typer(
    help="Netplex: a modular (ML2) network control plane speaking the Neutron v2.0 API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
out = Console()

ConfigOpt = Annotated[
    list[Path] | None,
    typer.Option("--config", "-c", help="INI file(s) (neutron.conf / ml2_conf.ini style); repeatable."),
]


def setup_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


#: No X-Forwarded-* parsing (Neutron's default too: enable_proxy_headers_parsing
#: = False) and no access log: both cost per request and nobody reads them.
_UVICORN: dict[str, Any] = {
    "log_level": "warning",
    "access_log": False,
    "proxy_headers": False,
    "server_header": False,
    "timeout_graceful_shutdown": 2,
    # An idle keep-alive connection is closed after this many seconds.
    "timeout_keep_alive": 5,
}


def _connection_limit() -> int:
    """Open connections per worker before uvicorn answers 503 instead of running into EMFILE.

    Every host agent parks one long-poll on the feed, so the limit must sit well above the
    number of hosts: the soft file limit is raised to the hard one and the limit is what
    that leaves, less a reserve for the database, logs and housekeeping."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 65536 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return max(64, min(20000, soft - 128))


@app.command()
def server(
    config: ConfigOpt = None,
    bind_host: Annotated[str | None, typer.Option(help="Override [DEFAULT] bind_host.")] = None,
    bind_port: Annotated[int | None, typer.Option(help="Override [DEFAULT] bind_port.")] = None,
    state_path: Annotated[Path | None, typer.Option(help="Override [DEFAULT] state_path.")] = None,
) -> None:
    """Serve the Neutron v2.0 API (SQLite under the data directory unless configured)."""
    import uvicorn

    from netplex.server import CONFIG_ENV, MIGRATED_ENV, OVERRIDES_ENV, create_app

    cfg = load_config(config)
    overrides: dict[tuple[str, str], object] = {}
    if bind_host:
        overrides[("DEFAULT", "bind_host")] = bind_host
    if bind_port:
        overrides[("DEFAULT", "bind_port")] = bind_port
    if state_path:
        overrides[("DEFAULT", "state_path")] = str(state_path)
    cfg = cfg.with_overrides(overrides)
    setup_logging(cfg.get("DEFAULT", "debug"))
    check_drivers(cfg)
    os.environ[CONFIG_ENV] = os.pathsep.join(str(p.resolve()) for p in (config or []))
    text = "\n".join(["[DEFAULT]", *(f"{k[1]} = {v}" for k, v in overrides.items())])
    os.environ[OVERRIDES_ENV] = text if overrides else ""
    host, port = cfg.get("DEFAULT", "bind_host"), cfg.get("DEFAULT", "bind_port")
    workers = cfg.get("DEFAULT", "api_workers") or (os.cpu_count() or 1)
    err.print(f"netplex server on http://{host}:{port} (database: {_safe_url(cfg.database_url)}, workers: {workers})")
    try:
        if workers > 1:
            # Migrate once here, not in every worker at the same moment.
            from netplex.db import migration

            migration.upgrade(cfg.database_url)
            os.environ[MIGRATED_ENV] = "1"
            uvicorn.run(
                "netplex.server:create_app",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                **_UVICORN, limit_concurrency=_connection_limit(),
            )
        else:
            uvicorn.run(create_app(cfg), host=host, port=port, **_UVICORN, limit_concurrency=_connection_limit())
    except OSError as exc:
        raise fail(
            f"cannot serve on {host}:{port}: {exc}", "choose another port with --bind-port or stop what is using it"
        ) from None


def check_drivers(cfg: Config) -> None:
    """Load the configured type and mechanism drivers, service plugins and policy now, so a
    bad range, an unknown driver or plugin, or a bad policy file stops the command here
    instead of inside a worker."""
    from netplex.api.policy import load_policy
    from netplex.core.mech_manager import MechanismManager
    from netplex.core.type_manager import TypeManager
    from netplex.server import selected_plugins

    try:
        TypeManager(cfg).initialize()
        MechanismManager.from_config(cfg)
        selection = selected_plugins(cfg)
        for name, why in selection.accepted:
            err.print(f"[yellow]note:[/] service_plugins: {name}: {why}")
        load_policy(cfg)  # the file's syntax; the plugins' own defaults join it in the workers
    except ConfigError as exc:
        raise fail(str(exc), "fix the value in the configuration file and run the command again") from None


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None, revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from netplex.db import migration

    cfg = load_config(config)
    try:
        migration.upgrade(cfg.database_url, revision)
    except Exception as exc:
        raise fail(f"migration failed: {exc}", "check [database] connection and that the server is reachable") from None
    out.print(f"database at {migration.current(cfg.database_url)} (head {migration.head()})")


@db_app.command("current")
def db_current(config: ConfigOpt = None) -> None:
    """Show the schema revision of the configured database."""
    from netplex.db import migration

    cfg = load_config(config)
    try:
        cur = migration.current(cfg.database_url)
    except Exception as exc:
        raise fail(f"cannot read the database: {exc}", "check [database] connection") from None
    state = (
        "up to date" if cur == migration.head() else f"behind (head is {migration.head()}); run 'netplex db upgrade'"
    )
    out.print(f"{cur or 'empty'}: {state}")


from netplex.cli.agent import agent as _agent_command  # noqa: E402
from netplex.cli.lab import lab_app as _lab_app  # noqa: E402

app.command("agent")(_agent_command)
app.add_typer(_lab_app, name="lab")


def _register_subcommands() -> None:
    from netplex.cli.explain import explain_binding
    from netplex.cli.vif import app as vif_app

    app.command("explain-binding")(explain_binding)
    app.add_typer(vif_app, name="vif")


_register_subcommands()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
