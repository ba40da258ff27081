"""A lab's directory, its state file and the namespaces it records: what every lab part works on.

Everything the lab makes is recorded in ``<dir>/state.json`` *before* it is made
(:meth:`Workspace.new_ns` saves first, then creates), so ``down`` can remove it all
from the file alone, even after a crash half-way through ``up``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from netplex.client import NeutronClient
from netplex.lab import fabric as fabric_mod
from netplex.lab.state import DEFAULT_DIR, LabError, LabState
from netplex.linux import netns

__all__ = ["LabOptions", "Workspace"]


@dataclass
class LabOptions:
    """How a lab runs (fixed at ``up``; the fabric is also recorded in the state)."""

    #: Agents' heartbeat period (short, so ``status`` is live).
    report_interval: float = 5.0
    agent_down_time: int = 20
    #: Routed hosts: ``feed`` (agents install each other's routes) or ``bgp`` (each runs
    #: its own BIRD: a full iBGP mesh between the routed hosts on the underlay, or, with
    #: ``fabric = "bgp"``, sessions to the router of :mod:`netplex.lab.fabric`).
    route_distribution: str = "feed"
    fabric: str = "flat"

    def __post_init__(self) -> None:
        if self.fabric not in fabric_mod.FABRICS:
            raise LabError(f"unknown fabric {self.fabric!r}", f"use one of {', '.join(fabric_mod.FABRICS)}")
        if self.fabric == "bgp":
            self.route_distribution = "bgp"


class Workspace:
    """One lab's directory and state. Names: ``<prefix>-underlay``, ``<prefix>-host-*``, ``<prefix>-vm-*``."""

    #: Everything the lab writes in its directory (nothing else is ever deleted there).
    FILES = ("state.json", "state.tmp", ".lock", "server.ini", "agent.ini", "server", "ovs", "bird", "logs")

    def __init__(self, dir: Path = DEFAULT_DIR, prefix: str = "npl", options: LabOptions | None = None) -> None:
        self.dir = Path(dir).absolute()
        self.prefix = prefix
        self.options = options or LabOptions()
        self.state_file = self.dir / "state.json"
        self._state: LabState | None = None
        # VMs are plugged in parallel: state changes and saves are serialised.
        self.mutex = threading.RLock()

    @property
    def exists(self) -> bool:
        return self.state_file.exists()

    @property
    def state(self) -> LabState:
        if self._state is None:
            if not self.exists:
                raise LabError(f"no lab in {self.dir}", "start one with: netplex lab up")
            try:
                self._state = LabState.from_json(json.loads(self.state_file.read_text()))
            except (ValueError, KeyError, TypeError) as exc:
                raise LabError(f"{self.state_file} is unreadable: {exc}",
                               f"inspect it; remove {self.dir} once nothing of the lab runs") from exc
            self.prefix = self._state.prefix
            if self._state.fabric == "bgp":
                self.options.fabric, self.options.route_distribution = "bgp", "bgp"
        return self._state

    def forget(self) -> None:
        """Drop the loaded state (after ``down``)."""
        self._state = None

    def save(self) -> None:
        """Write the state atomically (a crash never leaves half a file)."""
        with self.mutex:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state.to_json(), indent=1))
            os.replace(tmp, self.state_file)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One lab command at a time per directory."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LabError(f"another lab command is running on {self.dir}",
                               "wait for it to finish") from None
            yield
        finally:
            os.close(fd)

    def ns_name(self, name: str) -> str:
        prefix = self._state.prefix if self._state is not None else self.prefix
        return f"{prefix}-{name}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.state.server_port}"

    def client(self, timeout: float = 30.0) -> NeutronClient:
        return NeutronClient(self.url, timeout=timeout)

    def log(self, name: str) -> Path:
        return self.dir / "logs" / name

    def new_ns(self, name: str) -> str:
        """Record, then create, the namespace ``<prefix>-<name>`` (refusing one the lab did not make)."""
        ns = self.ns_name(name)
        with self.mutex:
            if netns.exists(ns) and ns not in self.state.namespaces:
                raise LabError(f"network namespace {ns} exists but this lab did not create it",
                               f"remove it (ip netns del {ns}) if it is a leftover, or use --dir/--prefix")
            if ns not in self.state.namespaces:
                self.state.namespaces.append(ns)
                self.save()
        netns.create(ns)
        return ns

    def check_dir(self) -> None:
        """The OVS daemons' Unix sockets live under the directory: at most 107 bytes."""
        longest = self.dir / "ovs" / "host-ovs10" / "ovs-vswitchd.1234567.ctl"
        if len(str(longest)) > 107:
            raise LabError(f"{self.dir} is too long: OVS's Unix sockets under it would exceed "
                           "107 bytes", "use a shorter --dir, e.g. /tmp/netplex-lab")

    def init(self) -> None:
        """Create the state directory for a new lab."""
        if self.exists:
            raise LabError(f"a lab already exists in {self.dir}",
                           "see it with: netplex lab status; remove it with: netplex lab down")
        self.check_dir()
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        self._state = LabState(prefix=self.prefix, token=secrets.token_hex(12), fabric=self.options.fabric)
        self.save()

    def bird_dir(self, name: str) -> Path:
        return self.dir / "bird" / name

    def routed_hosts(self) -> list[str]:
        return [h for h, rec in self.state.hosts.items() if rec.kind == "routed"]

    def remove_files(self, keep_logs: bool = False) -> None:
        """Delete the lab's own files; the directory too if that leaves it empty."""
        for name in self.FILES:
            path = self.dir / name
            if name == "logs" and keep_logs:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        for own in self.dir.glob("agent-*.ini"):  # routed hosts' own sections
            own.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.dir.rmdir()  # only if empty
