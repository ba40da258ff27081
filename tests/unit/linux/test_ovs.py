"""run_vsctl's failures, worded for someone plugging a VM by hand."""

from __future__ import annotations

import pytest

from netplex.linux.ovs import VsctlError, run_vsctl


def test_a_missing_binary_is_not_installed() -> None:
    with pytest.raises(VsctlError, match="is not installed") as exc:
        run_vsctl("show", binary="/nonexistent/ovs-vsctl")
    assert exc.value.returncode is None


def test_a_refusal_keeps_the_exit_code_and_the_command_line() -> None:
    with pytest.raises(VsctlError, match=r"^false --db=unix:/x --timeout=1 show failed") as exc:
        run_vsctl("show", db="unix:/x", binary="false", timeout=1)
    assert exc.value.returncode == 1
