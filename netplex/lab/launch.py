"""Starting, stopping and waiting for the lab's server and agents (real processes, recorded in the state).

The server and the agents run in the root namespace so they reach each other on
loopback; each agent programs its host namespace from outside (``--netns``). Processes
are identified by pid + start time + the lab directory on their command line
(:mod:`netplex.lab.procs`), so nothing that is not ours is ever signalled.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from netplex.agent.settings import AgentSettings
from netplex.client import ClientError, NeutronClient
from netplex.lab import fabric as fabric_mod
from netplex.lab import procs
from netplex.lab.state import PHYS_BRIDGE, PHYSNET, HostRec, LabError
from netplex.lab.workspace import Workspace

__all__ = [
    "agent_argv", "agent_running", "agent_settings", "alive_agents", "netplex_argv", "routed_options",
    "start_agent", "start_server", "stop_agent", "stop_server", "wait_agents", "wait_server",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def netplex_argv() -> list[str]:
    """How to run ``netplex`` from this interpreter (the venv's script, else ``-m``)."""
    exe = Path(sys.executable).with_name("netplex")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "netplex.cli.main"]


# --- the server -------------------------------------------------------------------------

def start_server(ws: Workspace) -> None:
    st = ws.state
    st.server_port = st.server_port or _free_port()
    conf = ws.dir / "server.ini"
    (ws.dir / "server").mkdir(parents=True, exist_ok=True)
    conf.write_text(
        "[DEFAULT]\n"
        f"bind_host = 127.0.0.1\nbind_port = {st.server_port}\n"
        f"state_path = {ws.dir / 'server'}\n"
        f"agent_auth_token = {st.token}\n"
        f"agent_down_time = {ws.options.agent_down_time}\n"
        "api_workers = 1\n"
        "[ml2]\ntype_drivers = local,flat,vlan,vxlan\nproject_network_types = vxlan\n"
        "mechanism_drivers = openvswitch,linuxbridge,routed\n"
        "[ml2_type_vxlan]\nvni_ranges = 1000:1999\n"
        "[ml2_type_flat]\nflat_networks = *\n"
        "[ml2_type_vlan]\nnetwork_vlan_ranges = physnet1:100:199\n")
    proc = procs.spawn([*netplex_argv(), "server", "--config", str(conf)], ws.log("server.log"),
                       marker=str(ws.dir))
    st.server = proc.to_json()
    ws.save()
    wait_server(ws, proc)


def wait_server(ws: Workspace, proc: procs.Proc | None = None, timeout: float = 120.0) -> None:
    proc = proc or procs.Proc.from_json(ws.state.server or {"pid": 0, "start": 0, "marker": ""})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not procs.is_ours(proc):
            raise LabError("the server exited", f"see {ws.log('server.log')}")
        try:
            if httpx.get(ws.url + "/", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise LabError(f"the server did not answer within {timeout:g}s", f"see {ws.log('server.log')}")


def stop_server(ws: Workspace, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stop the server (SIGKILL after ``timeout``: it waits for open long-polls)."""
    if ws.state.server:
        procs.stop(procs.Proc.from_json(ws.state.server), sig, timeout)


# --- the agents -------------------------------------------------------------------------

def routed_options(ws: Workspace, host: HostRec) -> dict[str, str]:
    """The ``[routed]`` section of a routed host's agent (BGP: a full mesh of the routed hosts)."""
    distribution = ws.options.route_distribution
    opts = {"route_distribution": distribution, "local_ip6": host.ip6}
    if distribution == "bgp":
        peers = [ip for h in ws.state.hosts.values() if h.kind == "routed" and h.name != host.name
                 for ip in (h.ip, h.ip6) if ip]
        if ws.options.fabric == "bgp":  # the router only
            peers = list(fabric_mod.router_address(host.ip.rsplit(".", 1)[0]))
        opts.update(bgp_peers=",".join(peers), bird_dir=str(ws.bird_dir(host.name)))
    return opts


def agent_argv(ws: Workspace, host: HostRec) -> list[str]:
    conf = ws.dir / "agent.ini"
    if not conf.exists():
        conf.write_text(f"[DEFAULT]\nagent_auth_token = {ws.state.token}\n"
                        f"[agent]\nreport_interval = {ws.options.report_interval:g}\n"
                        "resync_interval = 300\n")
    configs = ["--config", str(conf)]
    if host.kind == "routed":
        own = ws.dir / f"agent-{host.name}.ini"
        own.write_text("[routed]\n" + "".join(f"{k} = {v}\n" for k, v in routed_options(ws, host).items()))
        configs += ["--config", str(own)]
    argv = [*netplex_argv(), "agent", *configs, "--host", host.name,
            "--mechanism", host.mechanism, "--server", ws.url, "--netns", host.ns,
            "--local-ip", host.ip, "--log-file", str(ws.log(f"agent-{host.name}.log"))]
    if host.kind == "ovs":
        argv += ["--ovs-db", host.ovs_db or "", "--ovs-rundir", host.ovs_dir,
                 "--bridge-mappings", f"{PHYSNET}:{PHYS_BRIDGE}"]
    elif host.kind == "lb":
        argv += ["--physical-interface-mappings", f"{PHYSNET}:eth1"]
    return argv


def agent_settings(ws: Workspace, name: str) -> AgentSettings:
    """The settings :func:`agent_argv` gives the agent process (for in-process agents)."""
    host = ws.state.hosts[name]
    common: dict[str, Any] = dict(host=name, server_url=ws.url, agent_token=ws.state.token,
                                  local_ip=host.ip, netns=host.ns, report_interval=ws.options.report_interval)
    if host.kind == "ovs":
        return AgentSettings(mechanism="openvswitch", ovs_db=host.ovs_db or "",
                             ovs_rundir=host.ovs_dir, bridge_mappings={PHYSNET: PHYS_BRIDGE},
                             **common).with_overrides()
    if host.kind == "routed":
        opts: dict[str, Any] = {"create_taps": False, "bgp_as": 64512, "bird": "bird",
                                "birdc": "birdc", **routed_options(ws, host)}
        opts["bgp_peers"] = tuple(p for p in str(opts.get("bgp_peers", "")).split(",") if p)
        return AgentSettings(mechanism="routed", backend_options=opts, **common).with_overrides()
    return AgentSettings(mechanism="linuxbridge",
                         physical_interface_mappings={PHYSNET: "eth1"}, **common).with_overrides()


def start_agent(ws: Workspace, name: str) -> procs.Proc:
    host = ws.state.hosts[name]
    old = ws.state.agents.get(name)
    if old and procs.is_ours(procs.Proc.from_json(old)):
        return procs.Proc.from_json(old)
    proc = procs.spawn(agent_argv(ws, host), ws.log(f"agent-{name}.out"), marker=str(ws.dir))
    ws.state.agents[name] = proc.to_json()
    ws.save()
    return proc


def stop_agent(ws: Workspace, name: str, sig: int = signal.SIGTERM) -> None:
    rec = ws.state.agents.get(name)
    if rec:
        procs.stop(procs.Proc.from_json(rec), sig)


def agent_running(ws: Workspace, name: str) -> bool:
    rec = ws.state.agents.get(name)
    return bool(rec) and procs.is_ours(procs.Proc.from_json(rec or {}))


def alive_agents(client: NeutronClient) -> set[str]:
    try:
        agents = client.list_resources("agent")
    except ClientError:
        return set()
    return {str(a.get("host")) for a in agents if a.get("alive")}


def wait_agents(ws: Workspace, names: Sequence[str] | None = None, timeout: float = 120.0) -> None:
    """Until every agent is registered and alive, and OVS hosts have their br-int.

    The timeout is only a backstop: an agent that exits fails the wait at once, and a
    loaded 2-core machine has taken over 30 s to start five agents (each imports the
    server's client and its backend, then registers)."""
    names = list(names or ws.state.hosts)
    deadline = time.monotonic() + timeout
    with ws.client() as c:
        while True:
            missing = set(names) - alive_agents(c)
            for name in list(set(names) - missing):
                host = ws.state.hosts[name]
                if host.kind == "ovs" and host.ovs_db and subprocess.run(
                        ["ovs-vsctl", f"--db={host.ovs_db}", "br-exists", "br-int"],
                        capture_output=True, check=False).returncode != 0:
                    missing.add(name)
            if not missing:
                return
            for name in missing:
                if not agent_running(ws, name):
                    raise LabError(f"the agent of {name} exited", f"see {ws.log(f'agent-{name}.log')}")
            if time.monotonic() > deadline:
                raise LabError(f"agents not ready after {timeout:g}s: {', '.join(sorted(missing))}",
                               f"see {ws.dir / 'logs'}/agent-*.log")
            time.sleep(0.2)
