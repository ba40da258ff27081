"""Netlink sessions refuse a namespace that does not exist (they never create one)."""

from __future__ import annotations

import errno

import pytest

from netplex.linux.netlink import NamespaceMissing, NetlinkFailure, netns_exists, session


def test_a_missing_namespace_is_named_not_created() -> None:
    name = "npt-netlink-does-not-exist"
    with pytest.raises(NamespaceMissing) as exc, session(name):
        pass
    assert exc.value.netns == name
    assert not netns_exists(name)


def test_a_failure_carries_its_errno_and_says_what_it_is() -> None:
    failure = NetlinkFailure(errno.EPERM)
    assert failure.permission and failure.code == errno.EPERM
    assert f"(errno {errno.EPERM})" in str(failure)
    assert not NetlinkFailure(errno.EEXIST).permission
