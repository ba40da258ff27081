"""``netplex agent``: run the host agent (any installed backend: linuxbridge, openvswitch, ...) in the foreground.

Options override the configuration file (Neutron's option names, see
:mod:`netplex.agent.settings`). The agent never touches the data plane when
it stops, so stopping it (SIGTERM, Ctrl-C) or killing it leaves VMs' traffic
flowing; the next agent picks up where it left.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

__all__ = ["agent"]


def _mappings(value: str | None, option: str) -> dict[str, str] | None:
    if value is None:
        return None
    from netplex.config import parse_dict_list

    try:
        return parse_dict_list(value)
    except ValueError as exc:
        from netplex.cli.common import fail

        raise fail(f"{option}: {exc}", f"write it as physnet1:NAME[,physnet2:NAME] ({option})") from None


def _opt(help: str, *names: str) -> Any:
    return typer.Option(*names, help=help)


HostOpt = Annotated[str | None, _opt("Host id (binding:host_id); default \\[DEFAULT] host or hostname.")]
MechOpt = Annotated[str, _opt("Data plane this agent programs: an installed backend "
                              "(netplex.agent_backends entry point: linuxbridge, openvswitch, ...).")]
ConfOpt = Annotated[list[Path] | None, _opt("INI file(s); repeatable.", "--config", "-c")]
ServerOpt = Annotated[str | None, _opt("Netplex API URL (default \\[agent] server_url).")]
NetnsOpt = Annotated[str | None, _opt("Program this network namespace (lab / test hosts).")]
OvsDbOpt = Annotated[str | None, _opt("OVSDB connection, unix:PATH (default \\[ovs] ovsdb_connection).")]
RundirOpt = Annotated[Path | None, _opt("ovs-vswitchd run dir with <bridge>.mgmt (default: the db socket's dir).")]
LocalIpOpt = Annotated[str | None, _opt("VXLAN tunnel endpoint of this host (\\[vxlan] local_ip).")]
ReportOpt = Annotated[float | None, _opt("Seconds between heartbeats (\\[agent] report_interval).")]
ResyncOpt = Annotated[float | None, _opt("Seconds between full resyncs (\\[agent] resync_interval).")]
BridgeMapOpt = Annotated[str | None, _opt("physnet:bridge pairs (OVS: \\[ovs]; LB: \\[linux_bridge]).")]
IfaceMapOpt = Annotated[str | None, _opt("physnet:interface pairs (Linux bridge).")]
LogOpt = Annotated[Path | None, _opt("Log here instead of stderr.")]
DebugOpt = Annotated[bool, _opt("Log every operation.")]


def agent(
    host: HostOpt = None,
    mechanism: MechOpt = "linuxbridge",
    config: ConfOpt = None,
    server: ServerOpt = None,
    netns: NetnsOpt = None,
    ovs_db: OvsDbOpt = None,
    ovs_rundir: RundirOpt = None,
    local_ip: LocalIpOpt = None,
    report_interval: ReportOpt = None,
    resync_interval: ResyncOpt = None,
    bridge_mappings: BridgeMapOpt = None,
    physical_interface_mappings: IfaceMapOpt = None,
    log_file: LogOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run a host agent: register, reconcile this host's data plane with the server, report ports."""
    from netplex.agent.backends import settings_from_config, validate
    from netplex.agent.service import AgentError, AgentService
    from netplex.agent.settings import SettingsError
    from netplex.cli.common import fail, load_config

    cfg = load_config(config)
    mech = mechanism
    overrides: dict[str, object] = {
        "host": host, "server_url": server, "netns": netns, "ovs_db": ovs_db,
        "ovs_rundir": str(ovs_rundir) if ovs_rundir else None, "local_ip": local_ip,
        "report_interval": report_interval, "resync_interval": resync_interval,
        "physical_interface_mappings": _mappings(physical_interface_mappings,
                                                 "--physical-interface-mappings"),
    }
    mapped = _mappings(bridge_mappings, "--bridge-mappings")
    overrides["bridge_mappings" if mech == "openvswitch" else "lb_bridge_mappings"] = mapped
    try:
        settings = settings_from_config(cfg, mech, **overrides)
        validate(settings)
    except SettingsError as exc:
        raise fail(str(exc), exc.hint) from None

    handlers: list[logging.Handler] = [logging.FileHandler(log_file)] if log_file else []
    logging.basicConfig(
        level=logging.DEBUG if (debug or cfg.get("DEFAULT", "debug")) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers or None,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    service = AgentService(settings)

    agent_pid = os.getpid()

    def _stop(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != agent_pid:
            # A forked helper (pyroute2 runs one per namespace) inherits this
            # handler; it must die as usual, not stop an agent it is not.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        logging.getLogger(__name__).info("signal %d: stopping (data plane left as it is)", signum)
        service.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        service.run()
    except AgentError as exc:
        raise fail(str(exc), exc.hint, code=1) from None
    finally:
        service.stop()
