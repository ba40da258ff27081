"""Private Open vSwitch instances and thin ``ovs-vsctl``/``ovs-ofctl`` wrappers.

An :class:`OvsInstance` is one ``ovsdb-server`` + ``ovs-vswitchd`` pair whose
database, sockets, pidfiles and logs all live under one work directory, so
several instances (one per lab "host") can run side by side, next to (or
without) a system Open vSwitch. When a network namespace is given, both
daemons are started inside it with ``ip netns exec``: the userspace (``netdev``)
datapath then creates its tap/internal devices and opens its AF_PACKET sockets
in that namespace, which is what makes a namespace behave like a separate host.

The clients (``ovs-vsctl``, ``ovs-ofctl``, ``ovs-appctl``) talk over Unix
sockets, which are file-system objects, so they need no namespace switch.

Layout of ``workdir``::

    conf.db            the OVSDB database (created from vswitch.ovsschema)
    db.sock            OVSDB remote (``unix:<workdir>/db.sock``)
    ovsdb-server.pid   ovsdb-server.ctl   ovsdb-server.log
    ovs-vswitchd.pid   ovs-vswitchd.ctl   ovs-vswitchd.log
    <bridge>.mgmt      OpenFlow management socket per bridge (OVS_RUNDIR)

:meth:`OvsInstance.stop` only kills processes whose pidfile is in this
workdir *and* whose command line names this workdir, so a stale pidfile can
never make us kill somebody else's process. ``OvsInstance.stop_workdir(path)``
does the same for a crashed caller that only remembers the directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_OTHER_CONFIG",
    "DEFAULT_SCHEMA",
    "OvsError",
    "OvsInstance",
    "VsctlError",
    "appctl",
    "decode_ovsdb",
    "dump_flow_cookies",
    "list_rows",
    "list_tables",
    "ofctl",
    "ofctl_bundle",
    "run_vsctl",
    "vsctl",
]

DEFAULT_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
#: Open_vSwitch other_config set before ovs-vswitchd starts.
#: ``userspace-tso-enable``: makes the netdev datapath open its AF_PACKET
#: sockets with virtio-net headers. Without it, a TCP segment sent from a veth
#: whose checksum the kernel left to "hardware" (CHECKSUM_PARTIAL) is read by
#: ovs-vswitchd with an unfinished checksum and forwarded as such, and the
#: receiver drops it: ping works but TCP between a veth-plugged VM and anything
#: else does not. With the headers, OVS completes (or carries) the checksum.
DEFAULT_OTHER_CONFIG: Mapping[str, str] = {"userspace-tso-enable": "true"}
_PKGDATADIR = "/usr/share/openvswitch"
_DAEMONS = ("ovsdb-server", "ovs-vswitchd")
# sun_path is 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107
_VSCTL_TIMEOUT = 10


class OvsError(RuntimeError):
    """An Open vSwitch command failed; ``stderr`` holds its error output."""

    def __init__(self, cmd: Sequence[str], returncode: int, stderr: str) -> None:
        self.cmd = list(cmd)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"{' '.join(self.cmd)!r} failed ({returncode}): {self.stderr}")


def _run(cmd: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 30) -> str:
    try:
        proc = subprocess.run(
            list(cmd), capture_output=True, text=True, env=dict(env) if env else None,
            timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise OvsError(cmd, -1, f"timed out after {timeout}s") from exc
    if proc.returncode != 0:
        raise OvsError(cmd, proc.returncode, proc.stderr or proc.stdout)
    return proc.stdout


def vsctl(db_socket: str, *args: str, timeout: int = _VSCTL_TIMEOUT) -> str:
    """Run ``ovs-vsctl`` against ``db_socket`` (``unix:/path``); returns stdout.

    Without ``--no-wait`` in ``args``, ovs-vsctl waits until ovs-vswitchd has
    applied the change, so a caller that gets control back can rely on it.
    """
    return _run(["ovs-vsctl", f"--db={db_socket}", f"--timeout={timeout}", *args],
                timeout=timeout + 5)


class VsctlError(RuntimeError):
    """``ovs-vsctl`` is missing, timed out or refused; the message says which, for an operator.

    ``returncode`` is set when it ran and refused (None: it did not run to the end).
    """

    def __init__(self, message: str, returncode: int | None = None) -> None:
        self.returncode = returncode
        super().__init__(message)


def run_vsctl(*args: str, db: str | None = None, binary: str = "ovs-vsctl",
              timeout: int = _VSCTL_TIMEOUT) -> str:
    """Run ``ovs-vsctl`` (against ``db``, else its default socket); returns stdout.

    Unlike :func:`vsctl` the socket is optional and every failure is a
    :class:`VsctlError` worded for someone plugging a VM by hand.
    """
    argv = [binary, *([f"--db={db}"] if db else []), f"--timeout={timeout}", *args]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 5, check=False)
    except FileNotFoundError as exc:
        raise VsctlError(f"{binary} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise VsctlError(f"{' '.join(argv)} timed out; is ovsdb-server (and ovs-vswitchd) running "
                         f"at {db or 'the default socket'}?") from exc
    if proc.returncode != 0:
        raise VsctlError(f"{' '.join(argv)} failed: {(proc.stderr or proc.stdout).strip()}", proc.returncode)
    return proc.stdout


def ofctl(*args: str) -> str:
    """Run ``ovs-ofctl`` (pass a bridge's ``unix:<rundir>/<br>.mgmt`` as the target)."""
    return _run(["ovs-ofctl", *args])


def decode_ovsdb(value: Any) -> Any:
    """Turn OVSDB JSON (``--data=json``) into Python: sets -> list, maps -> dict, uuids -> str.

    An empty set (how OVSDB spells "no value" for optional columns) becomes [].
    """
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        kind, data = value
        if kind == "set":
            return [decode_ovsdb(v) for v in data]
        if kind == "map":
            return {decode_ovsdb(k): decode_ovsdb(v) for k, v in data}
        if kind in ("uuid", "named-uuid"):
            return data
    return value


def list_rows(db_socket: str, table: str, columns: Sequence[str]) -> list[dict[str, Any]]:
    """All rows of ``table`` (only ``columns``), decoded with :func:`decode_ovsdb`."""
    return list_tables(db_socket, {table: columns})[table]


def list_tables(db_socket: str,
                tables: Mapping[str, Sequence[str]]) -> dict[str, list[dict[str, Any]]]:
    """Rows of several tables read in one ``ovs-vsctl`` run (one consistent snapshot)."""
    args: list[str] = ["--format=json", "--data=json"]
    for table, columns in tables.items():
        args += ["--", f"--columns={','.join(columns)}", "list", table]
    out = vsctl(db_socket, *args)
    docs = [json.loads(line) for line in out.splitlines() if line.strip()]
    if len(docs) != len(tables):
        raise OvsError(["ovs-vsctl", *args], 0, f"unexpected output: {out[:200]!r}")
    result: dict[str, list[dict[str, Any]]] = {}
    for table, doc in zip(tables, docs, strict=True):
        heads = doc["headings"]
        result[table] = [{h: decode_ovsdb(v) for h, v in zip(heads, row, strict=True)}
                         for row in doc["data"]]
    return result


def dump_flow_cookies(mgmt: str, prefix: int, mask: int) -> frozenset[int]:
    """Cookies of the flows on bridge socket ``mgmt`` whose cookie matches ``prefix/mask``."""
    out = ofctl("dump-flows", "--no-names", mgmt, f"cookie={prefix:#x}/{mask:#x}")
    cookies = set()
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("cookie="):
            cookies.add(int(line.split(",", 1)[0].removeprefix("cookie="), 16))
    return frozenset(cookies)


def ofctl_bundle(mgmt: str, lines: Sequence[str], names: bool = True) -> None:
    """Apply flow mods (``flow add ...`` / ``flow delete ...`` lines) as one atomic bundle.

    Atomic matters: a re-tag that removes one flow and adds another never
    leaves a window in which traffic hits neither.

    :param names: the lines name ports (``in_port=patch-x``). ovs-ofctl then
        first fetches every port's description to translate them, which is
        most of its run time on a bridge with 1,000 ports (~30 ms against
        ~12 ms); pass False when the lines use OpenFlow port numbers only.
    """
    if not lines:
        return
    cmd = ["ovs-ofctl", *([] if names else ["--no-names"]), "-O", "OpenFlow14", "bundle", mgmt, "-"]
    proc = subprocess.run(cmd, input="\n".join(lines) + "\n", capture_output=True, text=True,
                          timeout=60, check=False)
    if proc.returncode != 0:
        raise OvsError(cmd, proc.returncode, proc.stderr or proc.stdout)


def appctl(target: str, *args: str) -> str:
    """Run ``ovs-appctl -t <target>`` (a ``.ctl`` socket path)."""
    return _run(["ovs-appctl", "-t", target, *args])


class OvsInstance:
    """One private ovsdb-server + ovs-vswitchd, optionally inside network namespace ``netns``.

    Lifecycle is explicit: ``start()`` (idempotent) and ``stop()`` (idempotent,
    also valid after a crash of the process that started it).
    """

    def __init__(self, name: str, workdir: Path, netns: str | None = None,
                 schema: Path = DEFAULT_SCHEMA,
                 other_config: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.other_config = dict(DEFAULT_OTHER_CONFIG if other_config is None else other_config)
        self.workdir = Path(workdir).absolute()
        self.netns = netns
        self.schema = schema
        sock = str(self.workdir / "db.sock")
        longest = str(self.workdir / "ovs-vswitchd.12345678.ctl")
        if len(longest) > _MAX_SOCKET_PATH or len(sock) > _MAX_SOCKET_PATH:
            # Unix socket paths are limited to 107 bytes; fail here with a clear
            # message rather than with an obscure bind() error inside a daemon.
            raise ValueError(f"OVS workdir path too long for Unix sockets: {self.workdir}")

    # --- paths -------------------------------------------------------------

    @property
    def db_path(self) -> Path:
        return self.workdir / "conf.db"

    @property
    def db_socket(self) -> str:
        """The OVSDB remote, ``unix:<workdir>/db.sock``."""
        return f"unix:{self.workdir / 'db.sock'}"

    def ctl_path(self, daemon: str) -> Path:
        """The unixctl socket of ``daemon`` (``ovsdb-server`` or ``ovs-vswitchd``)."""
        return self.workdir / f"{daemon}.ctl"

    def mgmt_socket(self, bridge: str) -> str:
        """OpenFlow management socket of ``bridge`` (created by ovs-vswitchd in OVS_RUNDIR)."""
        return f"unix:{self.workdir / f'{bridge}.mgmt'}"

    @property
    def env(self) -> dict[str, str]:
        """Environment that points every OVS default directory into the workdir."""
        env = dict(os.environ)
        wd = str(self.workdir)
        env.update(OVS_RUNDIR=wd, OVS_DBDIR=wd, OVS_LOGDIR=wd, OVS_SYSCONFDIR=wd,
                   OVS_PKGDATADIR=_PKGDATADIR)
        return env

    # --- lifecycle ----------------------------------------------------------

    def _netns_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns] if self.netns else []

    def _daemon_args(self, daemon: str) -> list[str]:
        wd = self.workdir
        return [
            f"--pidfile={wd / f'{daemon}.pid'}",
            f"--unixctl={self.ctl_path(daemon)}",
            f"--log-file={wd / f'{daemon}.log'}",
            "--detach", "--no-chdir",
            "-vconsole:off", "-vsyslog:off", "-vfile:info",
        ]

    def is_running(self) -> bool:
        """True when both daemons are alive (according to their pidfiles)."""
        return all(_live_pid(self.workdir, d) is not None for d in _DAEMONS)

    def start(self) -> None:
        """Create the database if needed and start both daemons; wait until ready."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = self.env
        if not self.db_path.exists():
            _run(["ovsdb-tool", "create", str(self.db_path), str(self.schema)], env=env)
        prefix = self._netns_prefix()
        if _live_pid(self.workdir, "ovsdb-server") is None:
            _run([*prefix, "ovsdb-server", str(self.db_path),
                  f"--remote=punix:{self.workdir / 'db.sock'}",
                  *self._daemon_args("ovsdb-server")], env=env)
            # Initialise the Open_vSwitch root row (a no-op if it exists).
            vsctl(self.db_socket, "--no-wait", "init")
        if self.other_config:
            # Some options (userspace-tso-enable) are read only at vswitchd start.
            vsctl(self.db_socket, "--no-wait", "set", "Open_vSwitch", ".",
                  *(f"other_config:{k}={v}" for k, v in sorted(self.other_config.items())))
        if _live_pid(self.workdir, "ovs-vswitchd") is None:
            _run([*prefix, "ovs-vswitchd", self.db_socket,
                  *self._daemon_args("ovs-vswitchd")], env=env)
        # Without --no-wait ovs-vsctl returns only when ovs-vswitchd has caught
        # up with the database: that is our readiness signal.
        self.vsctl("set", "Open_vSwitch", ".", f"external_ids:netplex-instance={self.name}")

    def stop(self) -> None:
        """Stop both daemons (vswitchd first). Idempotent."""
        self.stop_workdir(self.workdir)

    @staticmethod
    def stop_workdir(workdir: Path, timeout: float = 5.0) -> None:
        """Kill the daemons recorded in ``workdir``'s pidfiles, verifying they are ours.

        Usable after a crash: needs nothing but the directory.
        """
        workdir = Path(workdir).absolute()
        for daemon in reversed(_DAEMONS):
            pid = _live_pid(workdir, daemon)
            if pid is None:
                continue
            _terminate(pid, timeout)
            (workdir / f"{daemon}.pid").unlink(missing_ok=True)

    # --- clients -------------------------------------------------------------

    def vsctl(self, *args: str) -> str:
        """``ovs-vsctl --db=<db_socket> --timeout=10 <args>``; raises :class:`OvsError`."""
        return vsctl(self.db_socket, *args)

    def ofctl(self, command: str, bridge: str, *args: str) -> str:
        """``ovs-ofctl <command> <bridge's mgmt socket> <args>``.

        Example: ``ofctl("dump-flows", "br-int")``.
        """
        return ofctl(command, self.mgmt_socket(bridge), *args)

    def appctl(self, *args: str, daemon: str = "ovs-vswitchd") -> str:
        """``ovs-appctl`` against one of this instance's daemons."""
        return appctl(str(self.ctl_path(daemon)), *args)

    def __repr__(self) -> str:
        return f"OvsInstance({self.name!r}, {str(self.workdir)!r}, netns={self.netns!r})"


def _live_pid(workdir: Path, daemon: str) -> int | None:
    """The pid in ``<workdir>/<daemon>.pid`` if that process is alive and is ours."""
    try:
        pid = int((workdir / f"{daemon}.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    # A recycled pid belongs to someone else: require the daemon name and our
    # pidfile on its command line before we ever signal it.
    pidfile_arg = f"--pidfile={workdir / f'{daemon}.pid'}".encode()
    if not cmdline or not cmdline[0].endswith(daemon.encode()) or pidfile_arg not in cmdline:
        return None
    return pid


def _terminate(pid: int, timeout: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"
