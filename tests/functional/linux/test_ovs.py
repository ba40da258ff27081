"""Private OVS instances: lifecycle, isolation from each other, safe stop."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from netplex.linux import netns
from netplex.linux.ovs import OvsError, OvsInstance, list_rows, vsctl

pytestmark = pytest.mark.functional


def _pid(inst: OvsInstance, daemon: str) -> int:
    return int((inst.workdir / f"{daemon}.pid").read_text())


def test_start_is_idempotent_and_stop_is_complete(
        make_netns: Callable[[str], str], ovs_workdir_root: Path) -> None:
    ns = make_netns("h1")
    inst = OvsInstance("h1", ovs_workdir_root / "h1", netns=ns)
    try:
        inst.start()
        pids = (_pid(inst, "ovsdb-server"), _pid(inst, "ovs-vswitchd"))
        inst.start()
        assert (_pid(inst, "ovsdb-server"), _pid(inst, "ovs-vswitchd")) == pids
        inst.vsctl("add-br", "br-x", "--", "set", "Bridge", "br-x", "datapath_type=netdev")
        # ovs-vswitchd runs in the namespace: its netdev devices appear there only.
        assert "br-x" in netns.run(ns, ["ip", "-o", "link"]).stdout
        assert "br-x" not in subprocess.run(["ip", "-o", "link"], capture_output=True,
                                            text=True).stdout
        assert "NORMAL" in inst.ofctl("dump-flows", "br-x")
        assert "Open vSwitch" in inst.appctl("version")
        assert [r["name"] for r in list_rows(inst.db_socket, "Bridge", ["name"])] == ["br-x"]
    finally:
        inst.stop()
    assert not inst.is_running()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    inst.stop()  # idempotent


def test_two_instances_side_by_side(make_netns: Callable[[str], str],
                                    make_ovs: Callable[[str, str | None], OvsInstance]) -> None:
    a = make_ovs("a", make_netns("a"))
    b = make_ovs("b", make_netns("b"))
    a.vsctl("add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev")
    b.vsctl("add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev")
    a.vsctl("add-port", "br-int", "only-a", "--", "set", "Interface", "only-a", "type=internal")
    assert "only-a" in vsctl(a.db_socket, "list-ports", "br-int")
    assert "only-a" not in vsctl(b.db_socket, "list-ports", "br-int")


def test_restart_after_crash_and_stop_by_workdir(
        make_netns: Callable[[str], str], make_ovs: Callable[[str, str | None], OvsInstance],
) -> None:
    inst = make_ovs("c", make_netns("c"))
    inst.vsctl("add-br", "br-keep", "--", "set", "Bridge", "br-keep", "datapath_type=netdev")
    os.kill(_pid(inst, "ovs-vswitchd"), signal.SIGKILL)
    again = OvsInstance("c", inst.workdir, netns=inst.netns)
    again.start()  # restarts only the dead daemon; the database is kept
    assert "br-keep" in again.vsctl("list-br")
    OvsInstance.stop_workdir(inst.workdir)  # all a crashed caller needs
    assert not again.is_running()


def test_stop_never_kills_a_stranger(ovs_workdir_root: Path) -> None:
    """A stale pidfile pointing at somebody else's process must not get it killed."""
    workdir = ovs_workdir_root / "stale"
    workdir.mkdir()
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        (workdir / "ovs-vswitchd.pid").write_text(f"{stranger.pid}\n")
        OvsInstance.stop_workdir(workdir)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_vsctl_error_carries_stderr(make_netns: Callable[[str], str],
                                    make_ovs: Callable[[str, str | None], OvsInstance]) -> None:
    inst = make_ovs("e", make_netns("e"))
    with pytest.raises(OvsError, match="no bridge named nope"):
        inst.vsctl("del-br", "nope")


def test_workdir_too_long_is_refused() -> None:
    with pytest.raises(ValueError, match="too long"):
        OvsInstance("x", Path("/tmp/" + "d" * 120))
