"""``netplex vif attach|detach``: plug a namespace VM into a port, from the port's binding alone.

Exit codes (so scripts can tell failures apart):

==  ==========================================================================
0   done
1   a dataplane operation failed, or anything unexpected
2   bad usage or configuration
3   the port could not be bound here (binding_failed, or never bound)
4   timed out waiting (for a binding, or for the port to become ACTIVE)
5   the port, or a namespace, does not exist
6   the binding cannot be plugged here (unknown vif_type, bad vif_details,
    a vif_type that needs a hypervisor)
7   the server refused the request or could not be reached
==  ==========================================================================

Every error is printed with a ``next:`` line saying what to check or run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from netplex import config as config_mod
from netplex.client import (
    ApiError,
    ClientError,
    ConnectionFailed,
    Forbidden,
    NeutronClient,
    NotFound,
)
from netplex.config import Config, ConfigError
from netplex.vif.attach import AttachResult, DetachResult, Progress
from netplex.vif.attach import attach as attach_port
from netplex.vif.attach import detach as detach_port
from netplex.vif.binding import VifDefaults, host_id
from netplex.vif.errors import (
    AttachTimeout,
    BindingFailed,
    ExecutionError,
    InstanceNotSupported,
    InvalidVifDetails,
    NamespaceNotFound,
    PluginError,
    PortNotBound,
    UnsupportedVifType,
    VifError,
)
from netplex.vif.executor import LinuxExecutor
from netplex.vif.ops import Executor, Op, describe
from netplex.vif.registry import PluginRegistry

__all__ = ["ExitCode", "app"]

_R = TypeVar("_R")

app = typer.Typer(
    name="vif",
    help="Plug and unplug namespace VMs using nothing but the port's binding.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_BOUND = 3
    TIMEOUT = 4
    NOT_FOUND = 5
    UNSUPPORTED = 6
    SERVER = 7


# Seams for tests: how the command gets its client and executor.
def make_client(url: str) -> NeutronClient:
    return NeutronClient(url)


def make_executor(host_netns: str | None, ovs_db: str | None) -> Executor:
    return LinuxExecutor(host_netns, ovs_db=ovs_db)


ConfigOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--config", "-c", help="INI file(s) (\\[DEFAULT] host, \\[vif], \\[agent] server_url)."
    ),
]
PortOpt = Annotated[str, typer.Option("--port", help="Port id.")]
HostOpt = Annotated[
    str | None,
    typer.Option(
        "--host", help="binding:host_id to use (default: \\[DEFAULT] host, else hostname)."
    ),
]
HostNetnsOpt = Annotated[
    str | None,
    typer.Option("--host-netns", help="Namespace the host side lives in (lab hosts)."),
]
OvsDbOpt = Annotated[
    str | None,
    typer.Option("--ovs-db", help="OVSDB socket (unix:/path) of this host's Open vSwitch."),
]
UrlOpt = Annotated[
    str | None,
    typer.Option("--url", help="Netplex API endpoint (default: \\[agent] server_url, "
                               "http://127.0.0.1:9696)."),
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=0, help="Seconds to wait in total.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Print every operation.")]


class _Fail(Exception):
    """An error already translated into text, hint and exit code."""

    def __init__(self, code: ExitCode, message: str, hint: str) -> None:
        self.code, self.message, self.hint = code, message, hint
        super().__init__(message)


def _load_config(paths: list[Path] | None) -> Config:
    try:
        cfg = config_mod.load(paths or [])
    except ConfigError as exc:
        raise _Fail(ExitCode.USAGE, str(exc), "fix the configuration file and run again") from None
    for item in cfg.unknown:
        err.print(f"[yellow]warning:[/] unknown option {escape(item)} is ignored")
    return cfg


def _defaults(cfg: Config, registry: PluginRegistry) -> VifDefaults | None:
    defaults = VifDefaults.from_config(cfg)
    if defaults is not None and defaults.vif_type not in registry.vif_types:
        raise _Fail(
            ExitCode.USAGE,
            f"[vif] default_vif_type = {defaults.vif_type} is not a vif type this host can "
            f"plug (supported: {', '.join(registry.vif_types)})",
            "fix [vif] default_vif_type, or leave it empty to disable the fallback",
        )
    return defaults


def _translate(exc: Exception, *, port: str, host: str, url: str) -> _Fail:
    """Map an exception from the flow onto exit code, message and next step."""
    if isinstance(exc, BindingFailed):
        return _Fail(
            ExitCode.NOT_BOUND, str(exc),
            f"no mechanism driver could bind the port on host {host!r}. Check that an agent is "
            f"alive there (openstack network agent list --host {host}), that its bridge or "
            "interface mappings and tunnel types cover this network, and that --host matches "
            "the agent's [DEFAULT] host; then run attach again (it retries the binding)",
        )
    if isinstance(exc, PortNotBound):
        return _Fail(
            ExitCode.NOT_BOUND, str(exc),
            "check the server log for the binding attempt; to plug such ports anyway, set "
            "[vif] default_vif_type (and default_bridge_name) in the configuration",
        )
    if isinstance(exc, AttachTimeout):
        if exc.step == "active":
            hint = (f"the device is plugged; check the agent on {host!r} (is it running, does "
                    "it see the port?). Run attach again to keep waiting (it is idempotent), "
                    "or detach to undo")
        else:
            hint = "check that the server is binding ports (server log), or raise --timeout"
        return _Fail(ExitCode.TIMEOUT, str(exc), hint)
    if isinstance(exc, NamespaceNotFound):
        return _Fail(ExitCode.NOT_FOUND, str(exc),
                     f"create it (ip netns add {exc.netns}) or fix --netns/--host-netns")
    if isinstance(exc, UnsupportedVifType | InvalidVifDetails | InstanceNotSupported):
        return _Fail(
            ExitCode.UNSUPPORTED, str(exc),
            "the server bound the port in a way this host cannot plug into a namespace VM; "
            "check which mechanism driver bound it (binding:vif_type, binding:vif_details) "
            "and the agents configured for this host",
        )
    if isinstance(exc, ExecutionError):
        return _Fail(
            ExitCode.FAILED, str(exc),
            "fix the cause above and run the command again (it is idempotent), or run "
            f"'netplex vif detach --port {port}' to remove what was plugged",
        )
    if isinstance(exc, PluginError):
        return _Fail(ExitCode.FAILED, str(exc), "fix or uninstall the VIF plugin named above")
    if isinstance(exc, NotFound):
        return _Fail(ExitCode.NOT_FOUND, f"port {port} not found on {url}: {exc.message}",
                     "check the id with 'openstack port list' (and --url)")
    if isinstance(exc, ConnectionFailed):
        return _Fail(ExitCode.SERVER, str(exc),
                     f"is the Netplex server running at {url}? Pass --url or set "
                     "[agent] server_url")
    if isinstance(exc, Forbidden):
        return _Fail(ExitCode.SERVER, str(exc),
                     "binding attributes can only be set by an admin caller")
    if isinstance(exc, ApiError | ClientError):
        return _Fail(ExitCode.SERVER, str(exc), "see the server log for the failed request")
    if isinstance(exc, VifError):
        return _Fail(ExitCode.FAILED, str(exc), "see the message above")
    raise exc


class _Reporter:
    """Shows progress: a spinner line while a step runs, a check mark when it is done."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.status = console.status("starting")

    def __call__(self, event: Progress) -> None:
        if event.done:
            self.console.print(f"[green]✓[/] {event.step:<9} {escape(event.message)}")
        else:
            self.status.update(f"{event.step}: {escape(event.message)}")


@contextmanager
def _progress() -> Iterator[_Reporter]:
    reporter = _Reporter(err)
    with reporter.status:
        yield reporter


def _run(body: Callable[[], None], *, port: str, state: dict[str, str]) -> None:
    """Run ``body``; turn known errors into a message, a hint and an exit code.

    ``state`` holds the host and URL once ``body`` has resolved them from the
    configuration, so hints name the values actually used.
    """
    try:
        body()
    except _Fail as fail:
        _exit(fail)
    except Exception as exc:  # translated below; anything unknown re-raises
        host = state.get("host") or "(this host)"
        url = state.get("url") or "the server"
        _exit(_translate(exc, port=port, host=host, url=url))


def _exit(fail: _Fail) -> None:
    err.print(f"[bold red]error:[/] {escape(fail.message)}", soft_wrap=True)
    err.print(f"[yellow]next:[/] {escape(fail.hint)}", soft_wrap=True)
    raise typer.Exit(int(fail.code))


@dataclass(frozen=True)
class _Side:
    """What attach and detach work with: this host, the server, the plugins, the executor."""

    host: str
    client: Any
    registry: PluginRegistry
    defaults: VifDefaults | None
    executor: Executor
    progress: Callable[[Progress], None]


@contextmanager
def _compute_side(
    config: list[Path] | None, host: str | None, url: str | None, host_netns: str | None,
    ovs_db: str | None, state: dict[str, str],
) -> Iterator[_Side]:
    """Config, host id, server URL, plugins, a client (closed after), progress on stderr."""
    cfg = _load_config(config)
    state["host"] = the_host = host or host_id(cfg)
    state["url"] = the_url = url or str(cfg.get("agent", "server_url"))
    registry = PluginRegistry.default()
    defaults = _defaults(cfg, registry)
    client = make_client(the_url)
    try:
        with _progress() as reporter:
            yield _Side(the_host, client, registry, defaults, make_executor(host_netns, ovs_db),
                        reporter)
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            close()


def _command(
    port: str, config: list[Path] | None, host: str | None, url: str | None,
    host_netns: str | None, ovs_db: str | None, verbose: bool,
    flow: Callable[[_Side], _R], ops: Callable[[_R], Sequence[Op]],
    done: Callable[[_R, str], None],
) -> None:
    """The frame of both commands: run ``flow`` on this host, print its ``ops`` (-v), then ``done``."""
    state: dict[str, str] = {"host": host or "", "url": url or ""}

    def body() -> None:
        with _compute_side(config, host, url, host_netns, ovs_db, state) as side:
            result = flow(side)
        if verbose:
            for line in describe(ops(result)):
                err.print(f"  {escape(line)}")
        done(result, side.host)

    _run(body, port=port, state=state)


@app.command()
def attach(
    port: PortOpt,
    netns: Annotated[str, typer.Option("--netns", help="The VM's network namespace.")],
    host: HostOpt = None,
    ifname: Annotated[str, typer.Option("--ifname", help="Interface name in the VM.")] = "eth0",
    host_netns: HostNetnsOpt = None,
    ovs_db: OvsDbOpt = None,
    url: UrlOpt = None,
    timeout: TimeoutOpt = 30.0,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Do not wait for the port to become ACTIVE.")
    ] = False,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Bind PORT to this host, plug it into namespace VM NETNS, wait until it is ACTIVE."""

    def flow(side: _Side) -> AttachResult:
        return attach_port(
            side.client, port, side.host, netns, ifname, host_netns, ovs_db, timeout,
            side.progress, defaults=side.defaults, wait_active=not no_wait,
            executor=side.executor, registry=side.registry,
        )

    def done(result: AttachResult, the_host: str) -> None:
        status = result.port.get("status", "?")
        out.print(
            f"port {port} attached: {netns}:{ifname} ({result.vif.vif_type} via "
            f"{result.vif.devname} on {the_host}), status {status}",
            soft_wrap=True,
        )

    _command(port, config, host, url, host_netns, ovs_db, verbose, flow,
             lambda result: [*result.host_plan, *result.vm_plan], done)


@app.command()
def detach(
    port: PortOpt,
    host: HostOpt = None,
    netns: Annotated[
        str | None, typer.Option("--netns", help="The VM's namespace (only for messages).")
    ] = None,
    host_netns: HostNetnsOpt = None,
    ovs_db: OvsDbOpt = None,
    url: UrlOpt = None,
    timeout: TimeoutOpt = 30.0,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Do not wait for the port to go DOWN.")
    ] = False,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Unplug PORT from this host and clear its binding:host_id."""

    def flow(side: _Side) -> DetachResult:
        return detach_port(
            side.client, port, side.host, host_netns, ovs_db, timeout, side.progress,
            netns=netns, defaults=side.defaults, wait_down=not no_wait,
            executor=side.executor, registry=side.registry,
        )

    def done(result: DetachResult, the_host: str) -> None:
        for warning in result.warnings:
            err.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
        state_text = (
            f"status {result.status}" if result.port_exists else "port no longer exists"
        )
        out.print(f"port {port} detached from {the_host}: {state_text}", soft_wrap=True)

    _command(port, config, host, url, host_netns, ovs_db, verbose, flow,
             lambda result: list(result.unplugged), done)
