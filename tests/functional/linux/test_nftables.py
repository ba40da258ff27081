"""nft in a throwaway namespace: apply a script, read it back, a refused script changes nothing."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest

from netplex.linux.nftables import NftError, apply_script, read_table

pytestmark = [pytest.mark.functional,
              pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft")]

SCRIPT = """add table inet npt
add set inet npt a4 { type ipv4_addr; flags interval; }
add map inet npt disp { type ifname : verdict; }
add chain inet npt c1
add chain inet npt forward { type filter hook forward priority 0; policy accept; }
add rule inet npt c1 ip saddr @a4 return comment "r1"
add rule inet npt c1 drop comment "r2"
add rule inet npt forward iifname vmap @disp comment "r3"
add element inet npt a4 { 10.0.0.1, 10.1.0.0/16 }
add element inet npt disp { "tapx" : jump c1 }
"""


def test_apply_and_read_back(make_netns: Callable[[str], str]) -> None:
    ns = make_netns("nft")
    assert read_table(ns, "inet", "npt") is None
    apply_script(ns, SCRIPT)
    t = read_table(ns, "inet", "npt")
    assert t is not None
    assert [r.comment for r in t.chains["c1"].rules] == ["r1", "r2"]
    assert t.chains["forward"].hook == "forward" and t.chains["c1"].hook is None
    assert t.sets["a4"].elements == {"10.0.0.1", "10.1.0.0/16"}
    assert t.sets["disp"].elements == {"tapx : jump c1"}


def test_a_refused_script_changes_nothing(make_netns: Callable[[str], str]) -> None:
    ns = make_netns("nft")
    apply_script(ns, SCRIPT)
    before = read_table(ns, "inet", "npt")
    bad = ("add element inet npt a4 { 10.0.0.2 }\n"
           "flush chain inet npt c1\n"
           "delete element inet npt a4 { 10.9.9.9 }\n")  # not there: the whole transaction fails
    with pytest.raises(NftError):
        apply_script(ns, bad)
    after = read_table(ns, "inet", "npt")
    assert after is not None and before is not None
    assert after.sets == before.sets
    assert [r.comment for r in after.chains["c1"].rules] == ["r1", "r2"]
