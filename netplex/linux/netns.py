"""Network namespace helpers: idempotent create/delete, run a command or netlink inside one.

Namespaces are the "hosts" and "VMs" of the lab and the functional tests. We
use the ``ip netns`` convention (a bind mount under ``/run/netns/<name>``) so
operators can inspect everything with ``ip netns exec``.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Sequence

from pyroute2 import IPRoute
from pyroute2 import netns as _pr_netns

__all__ = ["NetnsError", "create", "delete", "exec_in", "exists", "iproute", "list_names", "run"]


class NetnsError(RuntimeError):
    """A command run in a namespace failed."""

    def __init__(self, cmd: Sequence[str], returncode: int, output: str) -> None:
        self.cmd = list(cmd)
        self.returncode = returncode
        self.output = output.strip()
        super().__init__(f"{' '.join(self.cmd)!r} failed ({returncode}): {self.output}")


def list_names() -> list[str]:
    """Names of the namespaces under /run/netns."""
    return sorted(_pr_netns.listnetns())


def exists(name: str) -> bool:
    return name in _pr_netns.listnetns()


def create(name: str) -> None:
    """Create namespace ``name`` unless it exists, and bring its loopback up."""
    if not exists(name):
        _pr_netns.create(name)
    with iproute(name) as ipr:
        idx = ipr.link_lookup(ifname="lo")
        if idx:
            ipr.link("set", index=idx[0], state="up")


def delete(name: str) -> None:
    """Delete namespace ``name``; a missing namespace is not an error.

    Devices in it (veth ends, bridges, vxlan, OVS netdev taps) go with it; a
    veth's peer in another namespace is removed by the kernel too. Processes
    running inside are NOT killed: callers stop their daemons first.
    """
    if exists(name):
        with contextlib.suppress(FileNotFoundError):
            _pr_netns.remove(name)


def iproute(name: str | None) -> IPRoute:
    """An ``IPRoute`` bound to namespace ``name`` (root namespace for None). Close it."""
    return IPRoute(netns=name) if name else IPRoute()


def exec_in(name: str | None, cmd: Sequence[str]) -> list[str]:
    """The argv that runs ``cmd`` inside ``name`` (``ip netns exec``), or ``cmd`` itself."""
    return ["ip", "netns", "exec", name, *cmd] if name else list(cmd)


def run(name: str | None, cmd: Sequence[str], check: bool = True,
        timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` inside namespace ``name``; raise :class:`NetnsError` on failure if ``check``."""
    argv = exec_in(name, cmd)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise NetnsError(argv, proc.returncode, proc.stderr or proc.stdout)
    return proc
