"""``netplex lab up|status|ping|down`` as a user runs them, and ``down`` after a crash.

The same lab shows the security-group demo (:mod:`netplex.lab.secdemo`): its
outcomes are asserted here rather than in a second lab, to keep the time down.

The lab gets its own short state directory and the namespace prefix
``npt-<6 hex>``; the test checks that ``down`` leaves no namespace, no process
and no file behind, even after the server and an agent were SIGKILLed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from netplex.lab import secdemo
from netplex.lab.lab import Lab
from netplex.linux import netns

pytestmark = [
    pytest.mark.functional,
    pytest.mark.timeout(180),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which("ovs-vswitchd") is None, reason="needs Open vSwitch"),
]


def netplex(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("netplex")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=150,
                          env={**os.environ, "COLUMNS": "200"}, check=False)


def processes_mentioning(text: str) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if text.encode() in (p / "cmdline").read_bytes():
                stat = (p / "stat").read_text().rsplit(")", 1)[1].split()
                if stat[0] != "Z":
                    out.append(int(p.name))
        except OSError:
            continue
    return out


@pytest.fixture
def lab_dir() -> Iterator[tuple[Path, str]]:
    root = Path(tempfile.mkdtemp(prefix="npt-"))
    prefix = f"npt-{uuid.uuid4().hex[:6]}"
    try:
        yield root / "lab", prefix
    finally:
        lab = Lab(root / "lab", prefix=prefix)
        if lab.exists:
            lab.down()
        shutil.rmtree(root, ignore_errors=True)


def test_lab_up_ping_status_down_leaves_nothing(lab_dir: tuple[Path, str]) -> None:
    d, prefix = lab_dir
    up = netplex("lab", "up", "--dir", str(d), "--prefix", prefix)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "PASS" in up.stdout
    lab = Lab(d)
    cells = lab.matrix()
    same = [c for c in cells if c.expected]
    cross = [c for c in cells if not c.expected and c.result != "self"]
    assert same and all(c.result == "ok" for c in same)
    assert {c.category for c in same} >= {"LB-OVS", "OVS-OVS", "routed-routed"}
    # Routed and L2 networks have no router between them: isolated both ways.
    assert {c.category for c in cross} >= {"LB-routed", "OVS-routed"}
    # Overlapping addresses: some cross-network pings are answered, by the
    # source's own network, never by the target.
    assert cross and all(c.result in ("none", "other") for c in cross)
    assert any(c.result == "other" for c in cross)

    st = netplex("lab", "status", "--dir", str(d))
    assert st.returncode == 0 and "ACTIVE" in st.stdout and "host-ovs2" in st.stdout
    js = json.loads(netplex("lab", "status", "--dir", str(d), "--json").stdout)
    assert js["endpoint"] == lab.url
    assert {"name", "kind", "namespace", "underlay_ip"} <= set(js["hosts"][0])
    assert {"name", "id", "kind"} <= set(js["networks"][0])
    assert {"name", "host", "mechanism", "network", "ip", "port_id", "namespace"} <= set(js["vms"][0])
    assert {n["kind"] for n in js["networks"]} == {"vxlan", "routed"}
    r2 = next(v for v in js["vms"] if v["name"] == "vm-r2")
    ran = netplex("lab", "exec", "--dir", str(d), "vm-r1", "--", "ping", "-c", "1", "-W", "2", r2["ip"])
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert netplex("lab", "exec", "--dir", str(d), "vm-nope", "--", "true").returncode == 1
    again = netplex("lab", "ping", "--dir", str(d))
    assert again.returncode == 0 and "PASS" in again.stdout
    assert "PASS: group web" in again.stdout

    check_security_group_demo(lab, up.stdout, js)

    # A crash: the server and one agent die hard; down still removes everything
    # (the demo's TCP listeners too: their command lines name the lab directory).
    assert len(lab.state.listeners) == 4
    os.kill(int(lab.state.server["pid"]), signal.SIGKILL)  # type: ignore[index]
    os.kill(int(lab.state.agents["host-lb1"]["pid"]), signal.SIGKILL)
    namespaces = list(lab.state.namespaces)
    down = netplex("lab", "down", "--dir", str(d))
    assert down.returncode == 0, down.stdout + down.stderr
    assert not [n for n in netns.list_names() if n.startswith(prefix)]
    assert set(namespaces) >= {f"{prefix}-underlay", f"{prefix}-host-lb1", f"{prefix}-vm-a1"}
    assert not processes_mentioning(str(d))
    assert not d.exists()
    # Idempotent.
    second = netplex("lab", "down", "--dir", str(d))
    assert second.returncode == 0 and "no lab" in second.stdout


def check_security_group_demo(lab: Lab, up_out: str, js: dict[str, object]) -> None:
    """The demo VMs: out of the ping matrix, in status --json, and their groups enforced."""
    assert "security groups: default-group VMs probe the demo VMs" in up_out and "PASS: group web" in up_out
    demo = {"web-lb1", "isolated-lb1", "web-r1", "isolated-r1"}
    assert not {c.dst.name for c in lab.matrix()} & demo  # the matrix is the default group's
    vms = {v["name"]: v for v in js["vms"]}  # type: ignore[attr-defined]
    assert {n: vms[n]["security_group"] for n in demo} == {
        "web-lb1": "web", "isolated-lb1": "isolated", "web-r1": "web", "isolated-r1": "isolated"}
    assert vms["vm-a1"]["security_group"] == "default"
    groups = {g["name"]: g for g in js["security_groups"]}  # type: ignore[attr-defined]
    assert set(groups) == {"web", "isolated"} and set(groups["web"]["vms"]) == {"web-lb1", "web-r1"}

    probes, drops = secdemo.check(lab)
    seen: dict[tuple[str, str], set[str]] = {}
    sources: dict[str, set[str]] = {}
    for p in probes:
        seen.setdefault((p.dst.name, p.check), set()).add(p.observed)
        sources.setdefault(p.dst.name, set()).add(p.src.kind)
    for host in ("lb1", "r1"):
        assert seen[(f"web-{host}", "ping")] == {"reply"}
        assert seen[(f"web-{host}", "tcp/22")] == {"open"}
        assert seen[(f"web-{host}", "tcp/23")] == {"dropped"}  # a listener is there: not "refused"
        for check in secdemo.CHECKS:
            assert seen[(f"isolated-{host}", check)] == {"dropped"}
        assert drops[f"isolated-{host}"], drops  # dropped by the port's nftables chain
    # Probed from the same host, another mechanism's host (OVS: unfiltered egress) and another routed host.
    assert sources["web-lb1"] == {"lb", "ovs"} and sources["web-r1"] == {"routed"}
    assert len({p.src.name for p in probes if p.dst.name == "web-r1"}) == 2
    assert all(p.good for p in probes)


def test_lab_commands_without_a_lab_say_what_to_do(lab_dir: tuple[Path, str]) -> None:
    d, _ = lab_dir
    res = netplex("lab", "ping", "--dir", str(d))
    assert res.returncode == 1 and "no lab" in res.stdout
    res = netplex("lab", "up", "--dir", str(d), "--hosts", "lb,frr")
    assert res.returncode == 1 and "next:" in res.stderr and "lb,ovs" in res.stderr
    res = netplex("lab", "up", "--dir", str(d), "--fabric", "ospf")
    assert res.returncode == 1 and "unknown fabric" in res.stderr
