"""BGP mode: the rendered BIRD config, and when the plan (re)runs BIRD."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from netplex.agent.model import HostDesired
from netplex.agent.routed import RoutedKind
from netplex.agent.routed_bird import BgpSettings, render_bird_config
from netplex.agent.routed_plan import ROUTE_PROTO, RoutedObserved, RoutedPlanConfig, RunBird, plan_routed
from netplex.agent.settings import AgentSettings, SettingsError

CONF = render_bird_config(BgpSettings("192.0.2.1", 64512, ("192.0.2.2", "fd99::2"), ROUTE_PROTO))


def test_exports_only_our_kernel_routes_to_each_peer_family() -> None:
    assert f"import where krt_source = {ROUTE_PROTO};" in CONF
    assert "neighbor 192.0.2.2 as 64512;" in CONF and "neighbor fd99::2 as 64512;" in CONF
    assert CONF.count("next hop self;") == 2


@pytest.mark.skipif(shutil.which("bird") is None, reason="BIRD 2 not installed")
def test_bird_accepts_the_config(tmp_path: Path) -> None:
    (tmp_path / "bird.conf").write_text(CONF)
    proc = subprocess.run(["bird", "-p", "-c", str(tmp_path / "bird.conf")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_bird_is_run_only_when_its_config_differs() -> None:
    cfg = RoutedPlanConfig(local_ip="192.0.2.1", bird_config=CONF)
    empty = HostDesired(host="r1")
    assert plan_routed(empty, RoutedObserved(bird_config=None), cfg).ops == (RunBird(CONF),)
    assert plan_routed(empty, RoutedObserved(bird_config="old"), cfg).ops == (RunBird(CONF),)
    assert plan_routed(empty, RoutedObserved(bird_config=CONF), cfg).ops == ()
    assert plan_routed(empty, RoutedObserved(), RoutedPlanConfig()).ops == ()  # feed mode: no BIRD


def test_bgp_mode_needs_peers_and_turns_feed_routes_off(tmp_path: Path) -> None:
    opts = {"route_distribution": "bgp", "bgp_peers": (), "bgp_as": 64512, "bird": "bird", "birdc": "birdc",
            "bird_dir": str(tmp_path), "local_ip6": "", "create_taps": False}
    s = AgentSettings(host="r1", mechanism="routed", local_ip="192.0.2.1", backend_options=opts)
    with pytest.raises(SettingsError, match="no BGP peers"):
        RoutedKind().validate(s)
    s = AgentSettings(host="r1", mechanism="routed", local_ip="192.0.2.1",
                      backend_options={**opts, "bgp_peers": ("192.0.2.2",)})
    backend = RoutedKind().build(s)
    assert not backend.config.install_remote_routes
    assert "neighbor 192.0.2.2" in backend.config.bird_config
