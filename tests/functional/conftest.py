"""Fixtures for functional tests: throwaway network namespaces and private OVS instances.

Everything is named with a per-test prefix ``npt-<6 hex>`` and is torn down
in ``finally`` blocks even when the test fails: OVS daemons first (their
pidfiles, verified against the process command line), then the namespaces
(which takes every device inside with them), then the work directories.
Nothing outside the created namespaces is touched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netplex.linux import netns
from netplex.linux.ovs import OvsInstance


def _have_root_and_tools() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("ip", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


#: Test directories that need root, namespaces and Open vSwitch (other
#: functional suites, e.g. the API's, only need a server and are left alone).
_DATAPLANE_DIRS = ("agent", "linux")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the data-plane suites functional; skip them without root or the tools."""
    here = Path(__file__).parent
    dirs = [here / d for d in _DATAPLANE_DIRS]
    reason = _have_root_and_tools()
    for item in items:
        parents = Path(str(item.fspath)).parents
        if any(d in parents for d in dirs):
            item.add_marker(pytest.mark.functional)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def prefix() -> str:
    """A unique name prefix for this test's namespaces and devices (``npt-xxxxxx``)."""
    return f"npt-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def make_netns(prefix: str) -> Iterator[Callable[[str], str]]:
    """Factory: ``make_netns("h1")`` creates namespace ``<prefix>-h1`` (deleted afterwards)."""
    created: list[str] = []

    def make(suffix: str) -> str:
        name = f"{prefix}-{suffix}"
        netns.create(name)
        created.append(name)
        return name

    try:
        yield make
    finally:
        for name in reversed(created):
            netns.delete(name)


@pytest.fixture
def ovs_workdir_root(prefix: str) -> Iterator[Path]:
    """A short directory for OVS work dirs (Unix socket paths must stay < 108 bytes)."""
    root = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def make_ovs(ovs_workdir_root: Path, make_netns: Callable[[str], str],
             ) -> Iterator[Callable[[str, str | None], OvsInstance]]:
    """Factory: ``make_ovs("h1", netns)`` starts a private OVS (stopped afterwards).

    Depends on ``make_netns`` so that daemons stop before their namespaces go.
    """
    started: list[OvsInstance] = []

    def make(name: str, ns: str | None) -> OvsInstance:
        inst = OvsInstance(name, ovs_workdir_root / name, netns=ns)
        started.append(inst)  # before start(): a half-started instance is cleaned too
        inst.start()
        return inst

    try:
        yield make
    finally:
        for inst in started:
            inst.stop()

