"""Fixtures for the VIF functional tests: namespaces and a private OVS, all named ``npv-*``.

Teardown runs in ``finally`` blocks even when a test fails: the OVS daemons
first (stopped through their own pidfiles), then the namespaces (which takes
every device the test plugged with them), then the OVS work directory.
Nothing outside the namespaces created here is touched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netplex.linux.ovs import OvsInstance


def _skip_reason(*tools: str) -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("ip", *tools):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


@pytest.fixture
def prefix() -> str:
    """This directory's names are ``npv-xxxxxx`` (also for ``make_netns`` of tests/functional)."""
    return f"npv-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def vif_prefix(prefix: str) -> str:
    """A unique prefix for this test's namespaces (``npv-xxxxxx``)."""
    return prefix


@pytest.fixture
def vif_netns(make_netns: Callable[[str], str]) -> Callable[[str], str]:
    """Factory: ``vif_netns("h")`` creates namespace ``<prefix>-h``; all deleted afterwards."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    return make_netns


@pytest.fixture
def vif_ovs(vif_prefix: str, vif_netns: Callable[[str], str]) -> Iterator[
        Callable[[str], OvsInstance]]:
    """Factory: ``vif_ovs(host_ns)`` starts a private OVS in ``host_ns`` with a netdev br-int.

    Requests ``vif_netns`` so the daemons stop before their namespace is deleted.
    """
    reason = _skip_reason("ovsdb-server", "ovs-vswitchd", "ovs-vsctl")
    if reason:
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix=f"{vif_prefix}-"))
    started: list[OvsInstance] = []

    def make(host_ns: str) -> OvsInstance:
        inst = OvsInstance(f"{vif_prefix}-ovs", root / "ovs", netns=host_ns)
        started.append(inst)
        inst.start()
        inst.vsctl("--may-exist", "add-br", "br-int", "--", "set", "Bridge", "br-int",
                   "datapath_type=netdev")
        return inst

    try:
        yield make
    finally:
        for inst in started:
            inst.stop()
        shutil.rmtree(root, ignore_errors=True)
