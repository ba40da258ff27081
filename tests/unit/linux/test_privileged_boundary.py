"""Every privileged operation goes through netplex/linux/: no other package runs processes or netlink.

Scans the source (imports anywhere in a module, function-level ones too) for
what privileged work needs: ``pyroute2`` (netlink), ``subprocess`` / ``Popen``
/ ``os.system``-style calls (iproute2, ovs-vsctl, nft, birdc), ``ctypes``
(prctl, setns). A module outside ``netplex/linux/`` that needs one of them
should call a function of ``netplex/linux/`` instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import netplex

ROOT = Path(netplex.__file__).parent

#: Modules outside linux/ allowed to run processes, each with the reason. Netplex's
#: own daemons started and stopped by the lab are process management, not network
#: operations.
ALLOWED: dict[str, str] = {
    "lab/procs.py": "starts and stops the lab's own agent and server processes",
    "lab/server_process.py": "starts and stops a netplex server process for the lab",
    # Not a process of netplex's own: asks OVSDB whether br-int exists yet. lab/ is
    # owned elsewhere; it should call netplex.linux.ovs (vsctl / run_vsctl) instead.
    "lab/launch.py": "waits for an OVS host's br-int with ovs-vsctl (to move into linux/)",
}

_MODULES = {"pyroute2", "subprocess", "ctypes"}
_OS_CALLS = {"system", "popen", "spawnl", "spawnlp", "spawnv", "spawnvp", "execv", "execvp",
             "execl", "execlp", "execve", "execvpe", "posix_spawn", "posix_spawnp", "setns"}


def _privileged_uses(source: str) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in _MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in _MODULES:
                found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Name) and node.id == "Popen":
            found.append("Popen")
        elif isinstance(node, ast.Attribute):
            if node.attr == "Popen":
                found.append("Popen")
            elif (node.attr in _OS_CALLS and isinstance(node.value, ast.Name)
                  and node.value.id == "os"):
                found.append(f"os.{node.attr}")
    return found


def test_the_scanner_sees_what_it_looks_for() -> None:
    src = ("import subprocess\nfrom pyroute2 import IPRoute\n"
           "def f():\n    import ctypes\n    os.system('x')\n    return subprocess.Popen\n")
    assert sorted(_privileged_uses(src)) == sorted(
        ["import subprocess", "from pyroute2 import ...", "import ctypes", "os.system", "Popen"])
    assert _privileged_uses('"""runs subprocess work"""\nimport json\n') == []


def test_only_linux_runs_privileged_operations() -> None:
    offenders = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("linux/") or rel in ALLOWED:
            continue
        uses = _privileged_uses(path.read_text())
        if uses:
            offenders[rel] = sorted(set(uses))
    assert offenders == {}, (
        "privileged calls outside netplex/linux/ (move them into a netplex/linux/ module): "
        f"{offenders}")


def test_the_exceptions_still_exist() -> None:
    # A stale entry would hide a new file of the same name.
    assert [rel for rel in ALLOWED if not (ROOT / rel).is_file()] == []
