"""Removing a lab from its state file alone, and finding what of it is left."""

from __future__ import annotations

import signal
from pathlib import Path

from netplex.lab import fabric as fabric_mod
from netplex.lab import procs, secdemo
from netplex.lab.state import Progress
from netplex.lab.workspace import Workspace
from netplex.linux import bird, netns
from netplex.linux.ovs import OvsInstance

__all__ = ["down", "leftovers"]


def down(ws: Workspace, keep_logs: bool = False, say: Progress | None = None) -> list[str]:
    """Remove every process, OVS instance and namespace the lab made; idempotent.

    Returns what was removed. Works from the state file alone.
    """
    say = say or (lambda _m: None)
    done: list[str] = []
    if not ws.exists:
        return done
    st = ws.state

    def tell(item: str) -> None:
        done.append(item)
        say(item)

    # Agents first (all signalled at once), so that the server has no
    # long-polls left to wait for when it shuts down.
    agents = {name: procs.Proc.from_json(rec) for name, rec in st.agents.items()}
    live = {name: p for name, p in agents.items() if procs.is_ours(p)}
    for p in live.values():
        procs.signal_only(p, signal.SIGTERM)
    for name, p in live.items():
        procs.stop(p)
        tell(f"agent {name} (pid {p.pid})")
    for item in secdemo.stop_listeners(ws):
        tell(item)
    # The routed hosts' BIRD daemons (BGP mode), by the PID in their own directories.
    if fabric_mod.stop_tor(ws.bird_dir(fabric_mod.TOR)):
        tell("BIRD of the router")
    for name, h in st.hosts.items():
        if h.kind == "routed" and bird.stop(bird.BirdFiles(ws.bird_dir(name))):
            tell(f"BIRD of {name}")
    if st.server and procs.stop(procs.Proc.from_json(st.server)):
        tell(f"server (pid {st.server['pid']})")
    for wd in st.ovs_dirs:
        if Path(wd).exists():
            OvsInstance.stop_workdir(Path(wd))
            tell(f"OVS instance {wd}")
    for ns in reversed(st.namespaces):
        if netns.exists(ns):
            netns.delete(ns)
            tell(f"namespace {ns}")
    ws.remove_files(keep_logs)
    ws.forget()
    return done


def leftovers(ws: Workspace) -> list[str]:
    """What of this lab still exists (namespaces, live processes); for tests and status."""
    st = ws.state
    out = [ns for ns in st.namespaces if netns.exists(ns)]
    for name, rec in [("server", st.server), *st.agents.items(),
                      *((f"listener {k}", v) for k, v in st.listeners.items())]:
        if rec and procs.is_ours(procs.Proc.from_json(rec)):
            out.append(f"process {name} ({rec['pid']})")
    return out
