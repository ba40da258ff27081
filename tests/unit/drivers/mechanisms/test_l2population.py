"""``l2population`` loads by name (a stock ``ml2_conf.ini`` names it) and does nothing."""

from __future__ import annotations

import logging

import pytest

from netplex import config
from netplex.core.mech_manager import MechanismManager
from netplex.drivers.mechanisms.l2population import NOTICE, L2populationMechanismDriver


def test_l2population_is_accepted_beside_openvswitch(caplog: pytest.LogCaptureFixture) -> None:
    cfg = config.load(text="[ml2]\nmechanism_drivers = openvswitch,l2population\n")
    mech = MechanismManager.from_config(cfg)
    assert isinstance(mech.driver("l2population"), L2populationMechanismDriver)
    with caplog.at_level(logging.INFO):
        mech.initialize()
    assert NOTICE in caplog.text
