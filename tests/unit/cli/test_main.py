from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from netplex.cli.main import app

runner = CliRunner()


def test_server_refuses_bad_config_with_a_next_step(tmp_path: Path) -> None:
    f = tmp_path / "bad.conf"
    f.write_text("[DEFAULT]\nbind_port = banana\n")
    r = runner.invoke(app, ["server", "--config", str(f)])
    assert r.exit_code == 2
    assert "bind_port" in r.output and "banana" in r.output and "next:" in r.output


def test_bad_type_driver_range_stops_the_server(tmp_path: Path) -> None:
    f = tmp_path / "bad.conf"
    f.write_text(f"[DEFAULT]\nstate_path = {tmp_path}\n[ml2_type_vxlan]\nvni_ranges = 10:5\n")
    r = runner.invoke(app, ["server", "--config", str(f)])
    assert r.exit_code != 0
    assert "vni_ranges" in r.output


def test_unknown_service_plugin_and_bad_policy_stop_the_server(tmp_path: Path) -> None:
    f = tmp_path / "bad.conf"
    f.write_text(f"[DEFAULT]\nstate_path = {tmp_path}\nservice_plugins = router,bogus\n")
    r = runner.invoke(app, ["server", "--config", str(f)])
    assert r.exit_code != 0
    assert "bogus" in r.output and "installed:" in r.output and "next:" in r.output
    (tmp_path / "policy.yaml").write_text('"create_network": "rule:admin_only or ("\n')
    f.write_text(f"[DEFAULT]\nstate_path = {tmp_path}\n[oslo_policy]\npolicy_file = policy.yaml\n")
    r = runner.invoke(app, ["server", "--config", str(f)])
    assert r.exit_code != 0 and "create_network" in r.output


def test_db_upgrade_and_current(tmp_path: Path) -> None:
    f = tmp_path / "db.conf"
    f.write_text(f"[DEFAULT]\nstate_path = {tmp_path}\n")
    r = runner.invoke(app, ["db", "current", "--config", str(f)])
    assert r.exit_code == 0 and "empty" in r.output
    r = runner.invoke(app, ["db", "upgrade", "--config", str(f)])
    assert r.exit_code == 0
    r = runner.invoke(app, ["db", "current", "--config", str(f)])
    assert r.exit_code == 0 and "up to date" in r.output
