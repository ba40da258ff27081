"""Options a standard Neutron deployment sets are accepted with a reason, never "unknown"."""

from __future__ import annotations

import pytest

from netplex import config


def test_accepted_options_say_why_and_are_not_unknown() -> None:
    cfg = config.load(text="""
[DEFAULT]
notify_nova_on_port_status_changes = true
allow_bulk = true
transport_url = rabbit://x
[keystone_authtoken]
auth_url = http://controller:5000
password = secret
[oslo_messaging_rabbit]
rabbit_ha_queues = false
[oslo_concurrency]
lock_path = /tmp
[agent]
arp_responder = true
[quotas]
quota_driver = neutron.db.quota.driver_nolock.DbQuotaNoLockDriver
""")
    assert cfg.unknown == []
    assert all("accepted, no effect because " in line for line in cfg.accepted)
    assert "[DEFAULT] allow_bulk: accepted, no effect because bulk create is always allowed" \
           " (all or nothing, one transaction)" in cfg.accepted
    # one line per accepted section, however many options it sets
    assert sum(line.startswith("[keystone_authtoken]") for line in cfg.accepted) == 1
    assert any(line.startswith("[oslo_messaging_rabbit]:") for line in cfg.accepted)
    assert any(line.startswith("[quotas] quota_driver:") for line in cfg.accepted)


def test_keystone_auth_strategy_is_accepted_but_said_not_enforced() -> None:
    cfg = config.load(text="[DEFAULT]\nauth_strategy = keystone\n")
    assert cfg.get("DEFAULT", "auth_strategy") == "keystone"
    assert any("NOT enforced" in line for line in cfg.accepted)


def test_unknown_options_are_still_reported() -> None:
    cfg = config.load(text="[DEFAULT]\nno_such_option = 1\n[no_such_section]\nx = 1\n")
    assert len(cfg.unknown) == 2 and cfg.accepted == []


def test_declared_option_wins_over_the_accepted_table() -> None:
    # [DEFAULT] debug is declared (honoured): a value is parsed, and no "accepted" line is made
    cfg = config.load(text="[DEFAULT]\ndebug = true\n")
    assert cfg.get("DEFAULT", "debug") is True and cfg.accepted == []


def test_quota_defaults_are_neutrons_and_minus_one_is_unlimited() -> None:
    cfg = config.load(text="[quotas]\nquota_port = -1\n")
    assert cfg.get("quotas", "quota_port") == -1
    assert cfg.get("quotas", "quota_network") == 100
    assert cfg.get("quotas", "default_quota") == -1
    with pytest.raises(config.ConfigError):
        config.load(text="[quotas]\nquota_port = -2\n")
