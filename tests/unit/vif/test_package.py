"""Package surface: exact __all__, and no server-side code on the compute side's path."""

from __future__ import annotations

import subprocess
import sys
import types

import netplex.vif as vif_pkg


def test_vif_all_is_exact() -> None:
    public = {
        n for n, v in vars(vif_pkg).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType) and n != "annotations"
    }
    assert set(vif_pkg.__all__) == public


def test_importing_the_library_pulls_in_no_server_code() -> None:
    code = (
        "import sys, netplex.vif, netplex.client, netplex.cli.vif\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'starlette', 'uvicorn', 'alembic') or "
        "m.startswith(('netplex.core', 'netplex.db', 'netplex.api', 'netplex.drivers', "
        "'netplex.agent', 'netplex.events', 'netplex.linux')))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_both_executors_satisfy_the_protocol() -> None:
    from netplex.vif import Executor, LinuxExecutor
    from netplex.vif.testing import FakeExecutor

    assert isinstance(FakeExecutor(), Executor)
    assert isinstance(LinuxExecutor(), Executor)
